"""Who is calling: the TLS client certificate, validated by the channel's MSPs per request.

The TLS handshake (see :mod:`cctvchain.node.tls`) already refused certificates that do
not chain to any organisation's TLS roots, or that are expired. :func:`mtls_auth` then
finds which organisation's MSP the certificate belongs to and validates it *now* with
the current MSP view: expiry, revocation through the CRLs of the channel configuration,
and the identity type. The request carries the result under ``IDENTITY_KEY`` (read it
with :func:`caller`: an :class:`~cctvchain.msp.identity.Identity`); a refusal is a 403
with the MSP's code (``certificate_revoked``, ``certificate_expired``, ...).

The MSP view is a callable so that a node can swap it while running, e.g. a peer when a
configuration block with a new CRL commits: the next request is judged by the new view.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from cryptography import x509

from cctvchain.msp import certs
from cctvchain.msp.errors import MalformedCertificate, MSPError, NotChainedToMSP
from cctvchain.msp.identity import Identity, MSPManager
from cctvchain.node.errors import Forbidden, Unauthorized, from_msp_error
from cctvchain.node.http import HEALTH_PATHS, IDENTITY_KEY, json_response

MSPView = Callable[[], MSPManager]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class IdentityResolver:
    """Finds the organisation whose CA issued a certificate and validates it there.

    The issuer-name index is rebuilt whenever the MSP view hands out a different
    :class:`MSPManager`, so swapping the view needs nothing else.
    """

    # Callers present the same few certificates on request after request; parsing one
    # for its issuer was ~3 % of a busy peer's time. A cache of a pure function of the
    # bytes, cleared when full.
    ISSUER_CACHE_SIZE = 4096

    def __init__(self) -> None:
        self._manager: MSPManager | None = None
        self._by_subject: dict[bytes, tuple[str, ...]] = {}
        self._issuers: dict[bytes, x509.Name] = {}

    def _index(self, manager: MSPManager) -> dict[bytes, tuple[str, ...]]:
        if manager is not self._manager:
            index: dict[bytes, list[str]] = {}
            for msp_id in manager.msp_ids:
                msp = manager.get(msp_id)
                for pem in (*msp.root_certs, *msp.intermediate_certs):
                    subject = certs.name_der(certs.parse_certificate(pem).subject)
                    index.setdefault(subject, []).append(msp_id)
            self._by_subject = {subject: tuple(ids) for subject, ids in index.items()}
            self._manager = manager
        return self._by_subject

    def identify(
        self,
        manager: MSPManager,
        cert: bytes,
        now: datetime,
        allowed_types: Collection[str] | None = None,
    ) -> Identity:
        """The identity of ``cert`` (DER or PEM) in whichever MSP it chains to, or the
        MSP's refusal (:class:`NotChainedToMSP` when it belongs to no organisation)."""
        issuer = self._issuer(cert)
        candidates = self._index(manager).get(certs.name_der(issuer), ())
        refusal: MSPError | None = None
        for msp_id in candidates:
            try:
                return manager.validate(msp_id, cert, now, allowed_types)
            except NotChainedToMSP as exc:
                refusal = refusal or exc
            except MSPError as exc:
                refusal = exc  # chains here, but refused: the most precise answer
        if refusal is not None:
            raise refusal
        raise NotChainedToMSP(
            f"certificate issued by {certs.subject_summary(issuer)} does not chain to any "
            "organisation of the channel"
        )

    def _issuer(self, cert: bytes) -> x509.Name:
        issuer = self._issuers.get(cert)
        if issuer is None:
            try:
                issuer = x509.load_der_x509_certificate(certs.certificate_der(cert)).issuer
            except ValueError as exc:
                raise MalformedCertificate(f"not an X.509 certificate: {exc}") from exc
            if len(self._issuers) >= self.ISSUER_CACHE_SIZE:
                self._issuers.clear()
            self._issuers[cert] = issuer
        return issuer


def peer_certificate(request: web.Request) -> bytes | None:
    """The DER certificate the TLS client presented on this connection, if any."""
    transport = request.transport
    if transport is None:
        return None
    ssl_object: Any = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return bytes(der) if der else None


def mtls_auth(
    msp_view: MSPView,
    *,
    now: Clock = utc_now,
    allowed_types: Collection[str] | None = None,
    public_paths: Collection[str] = HEALTH_PATHS,
    optional: bool = False,
) -> Middleware:
    """Middleware identifying every request by its TLS client certificate.

    ``allowed_types`` limits the identity types let in at all (e.g. ``{"orderer"}`` on a
    Raft-only listener); per route, use :func:`require_type`. ``public_paths`` skip the
    MSP check (the handshake still applies). With ``optional``, a client without a
    certificate gets ``request["identity"] = None`` instead of a 401.
    """
    resolver = IdentityResolver()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in public_paths:
            return await handler(request)
        der = peer_certificate(request)
        if der is None:
            if not optional:
                raise Unauthorized(
                    "a TLS client certificate is required", code="no_client_certificate"
                )
            request[IDENTITY_KEY] = None
            return await handler(request)
        try:
            identity = resolver.identify(msp_view(), der, now(), allowed_types)
        except MSPError as exc:
            raise from_msp_error(exc) from None
        request[IDENTITY_KEY] = identity
        return await handler(request)

    return middleware


def caller(request: web.Request) -> Identity:
    """The identity :func:`mtls_auth` found for this request (401 if there is none)."""
    identity = request.get(IDENTITY_KEY)
    if not isinstance(identity, Identity):
        raise Unauthorized("this request carries no identity", code="no_client_certificate")
    return identity


def require_type(request: web.Request, *types: str) -> Identity:
    """The caller, if its identity type is one of ``types``; 403 otherwise."""
    identity = caller(request)
    if identity.id_type not in types:
        raise Forbidden(
            f"{identity.name} ({identity.msp_id}) is a {identity.id_type}; this needs "
            f"{' or '.join(types)}",
            code="wrong_identity_type",
        )
    return identity


def identity_json(identity: Identity) -> dict[str, Any]:
    """A caller's identity as JSON (what ``GET /whoami`` answers)."""
    return {
        "msp_id": identity.msp_id,
        "name": identity.name,
        "type": identity.id_type,
        "role": identity.role,
        "attributes": dict(identity.attributes),
        "serial": f"{identity.serial_number:x}",
        "not_after": identity.not_after.isoformat(),
    }


async def whoami(request: web.Request) -> web.Response:
    """``GET /whoami``: how this node sees its caller (add it to mutual-TLS nodes)."""
    return json_response(identity_json(caller(request)))
