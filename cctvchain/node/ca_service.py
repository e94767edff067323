"""The CA node: an organisation's certificate authority served over HTTPS.

Endpoints (JSON bodies and answers; binary values in base64, certificates in PEM)::

    POST /register  {"signed_request": b64}                  -> {"name", "secret"}
    POST /enroll    {"name", "secret", "csr", "profile", "hosts", "days"}
                                                             -> {"certificate", "root",
                                                                 "intermediates", ...}
    POST /revoke    {"signed_request": b64}                  -> {"revoked", "crl", ...}
    GET  /crl                                                -> {"crl", "crl_number", ...}
    GET  /cainfo                                             -> {"org_name", "msp_id",
                                                                 "root", ...}

Clients need no certificate (``CERT_OPTIONAL``): enrollment is how they get their first
one. Registration and revocation carry a registrar-signed
:class:`~cctvchain.msp.requests.SignedCARequest` that the CA core authenticates
(signature, registrar rights, freshness, replay); enrollment is authenticated by the
single-use secret. Each request opens the CA directory under its lock
(:meth:`CAStore.open`), so ``cctvchain ca --dir`` on the same directory stays safe; the
synchronous core runs in a thread pool so the event loop keeps serving.

The server's own TLS certificate is issued by the organisation's CA on first start (and
again when it nears expiry or the host changed) into ``<ca dir>/tls/``; clients trust it
through the organisation's root certificate.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from cctvchain.codec import CodecError
from cctvchain.crypto import SigningKey
from cctvchain.msp import certs, issuing
from cctvchain.msp.ca import CertificateAuthority
from cctvchain.msp.errors import CAError, MSPError, StoreError
from cctvchain.msp.files import (
    PRIVATE_DIR_MODE,
    locked,
    read_private_key,
    write_atomic,
    write_private_key,
)
from cctvchain.msp.requests import RegisterRequest, RevokeRequest, SignedCARequest
from cctvchain.msp.store import LOCK_FILE, CAStore
from cctvchain.msp.wallet import TLSFiles
from cctvchain.network.config import Endpoint
from cctvchain.network.material import CRL_VALIDITY, tls_hosts
from cctvchain.node import tls
from cctvchain.node.auth import Clock
from cctvchain.node.errors import BadRequest, from_ca_error
from cctvchain.node.http import (
    check_fields,
    field_b64,
    field_int,
    field_str,
    field_str_list,
    json_response,
    make_app,
    read_json,
)
from cctvchain.node.runtime import NodeContext, NodeService, NodeStartError

MAX_BODY: Final = 64 * 1024
MAX_ENROLL_DAYS: Final = 3650
TLS_DIR: Final = "tls"
SERVER_CERT_VALIDITY: Final = issuing.IDENTITY_VALIDITY
RENEW_BEFORE: Final = timedelta(days=30)
# The OU of the CA's server certificate: not an identity type, so the MSP refuses it as
# a caller identity should it ever be presented as a client certificate.
SERVER_CERT_TYPE: Final = "ca"

_T = TypeVar("_T")


# -- the server certificate ----------------------------------------------------------------


def server_tls_files(store: CAStore) -> TLSFiles:
    directory = store.directory / TLS_DIR
    return TLSFiles(directory / "cert.pem", directory / "key.pem", directory / "ca.pem")


def ensure_server_certificate(
    store: CAStore, endpoint: Endpoint, now: datetime
) -> tuple[TLSFiles, x509.Certificate | None]:
    """The CA's TLS server files; issues a certificate if there is no usable one.

    Returns the files and the certificate just issued (None if the existing one is kept).
    """
    # Under the CA directory's lock, so two CA processes never write a mismatched pair.
    with locked(store.path(LOCK_FILE), exclusive=True):
        return _ensure_server_certificate(store, endpoint, now)


def _ensure_server_certificate(
    store: CAStore, endpoint: Endpoint, now: datetime
) -> tuple[TLSFiles, x509.Certificate | None]:
    files = server_tls_files(store)
    material = store.load_material()
    hosts = tls_hosts(endpoint)
    if _usable(files, material.issuer_cert, hosts, now):
        return files, None
    issuer = material.issuer_cert
    if not certs.valid_at(issuer, now):
        raise NodeStartError(
            f"{endpoint.name}: the issuing CA certificate is not valid now "
            f"({issuer.not_valid_before_utc:%Y-%m-%d} to {issuer.not_valid_after_utc:%Y-%m-%d})"
        )
    key = SigningKey.generate()
    spec = issuing.LeafSpec(
        org_name=material.org_name,
        name=endpoint.name,
        id_type=SERVER_CERT_TYPE,
        attributes={},
        profile="tls",
        hosts=issuing.parse_hosts(hosts),
    )
    cert = issuing.issue_leaf(
        spec,
        key.native.public_key(),
        material.issuer_key,
        issuer,
        max(now - issuing.BACKDATE, issuer.not_valid_before_utc),
        min(now + SERVER_CERT_VALIDITY, issuer.not_valid_after_utc),
    )
    files.cert_file.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    write_private_key(files.key_file, key)
    write_atomic(files.ca_file, material.root_pem)
    # The certificate last: a key without a certificate is simply issued again.
    write_atomic(files.cert_file, certs.pem(cert) + b"".join(material.intermediate_pems))
    return files, cert


def _usable(
    files: TLSFiles, issuer: x509.Certificate, hosts: tuple[str, ...], now: datetime
) -> bool:
    try:
        if not (files.cert_file.exists() and files.key_file.exists() and files.ca_file.exists()):
            return False
        key = read_private_key(files.key_file)
        leaf = certs.parse_certificates(files.cert_file.read_bytes())[0]
        leaf.verify_directly_issued_by(issuer)
        if leaf.public_key() != key.native.public_key():
            return False
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc - RENEW_BEFORE:
            return False
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return set(issuing.parse_hosts(hosts)) <= set(san)
    except (StoreError, MSPError, OSError, ValueError, TypeError, IndexError, InvalidSignature):
        return False
    except x509.ExtensionNotFound:
        return False


# -- the service ----------------------------------------------------------------------------


class CAService:
    """The HTTP handlers around one CA directory."""

    def __init__(self, context: NodeContext, store: CAStore, executor: ThreadPoolExecutor) -> None:
        self.store = store
        self.now: Clock = context.now
        self.log = context.log
        self.executor = executor

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/register", self.register)
        app.router.add_post("/enroll", self.enroll)
        app.router.add_post("/revoke", self.revoke)
        app.router.add_get("/crl", self.crl)
        app.router.add_get("/cainfo", self.cainfo)

    async def _run(self, work: Callable[[], _T]) -> _T:
        """Run blocking CA work in the pool; the CA's refusals become HTTP errors."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, work)
        except CAError as exc:
            raise from_ca_error(exc) from None

    def _with_ca(
        self, operation: Callable[[CertificateAuthority, datetime], _T], *, write: bool = True
    ) -> Callable[[], _T]:
        def work() -> _T:
            with self.store.open(write=write) as ca:
                return operation(ca, self.now())

        return work

    # -- POST /register ----------------------------------------------------------------

    async def register(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        check_fields(body, ("signed_request",))
        signed = _signed_request(body)

        def operation(ca: CertificateAuthority, now: datetime) -> tuple[str, RegisterRequest, str]:
            secret = ca.register(signed, now)
            registered = RegisterRequest.decode(signed.request)
            return secret, registered, ca.identity(registered.name).registered_by

        secret, registered, registrar = await self._run(self._with_ca(operation))
        name = registered.name
        self.log.info("registered %s (%s) by %s", name, registered.id_type, registrar)
        return json_response({"name": name, "secret": secret})

    # -- POST /enroll ------------------------------------------------------------------

    async def enroll(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        check_fields(body, ("name", "secret", "csr", "profile", "hosts", "days"))
        name = field_str(body, "name", max_length=64)
        secret = field_str(body, "secret", max_length=256)
        csr = field_str(body, "csr", max_length=16 * 1024).encode("utf-8")
        profile = field_str(body, "profile", default="msp", max_length=8)
        hosts = field_str_list(body, "hosts", max_items=32, max_length=253)
        days = field_int(body, "days", default=365, minimum=1, maximum=MAX_ENROLL_DAYS)

        def operation(ca: CertificateAuthority, now: datetime) -> tuple[bytes, str]:
            cert_pem = ca.enroll(
                name,
                secret,
                csr,
                now,
                profile=profile,
                hosts=hosts,
                validity=timedelta(days=days),
            )
            return cert_pem, ca.identity(name).id_type

        cert_pem, id_type = await self._run(self._with_ca(operation))
        info, (root, intermediates) = await self._run(
            lambda: (self.store.info(), self.store.ca_chain_pems())
        )
        cert = certs.parse_certificate(cert_pem)
        self.log.info(
            "enrolled %s (%s): %s certificate %x", name, id_type, profile, cert.serial_number
        )
        return json_response(
            {
                "name": name,
                "type": id_type,
                "profile": profile,
                "msp_id": info["msp_id"],
                "org_name": info["org_name"],
                "certificate": cert_pem.decode("ascii"),
                "root": root.decode("ascii"),
                "intermediates": [pem.decode("ascii") for pem in intermediates],
                "serial": f"{cert.serial_number:x}",
                "not_after": cert.not_valid_after_utc.isoformat(),
            }
        )

    # -- POST /revoke ------------------------------------------------------------------

    async def revoke(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        check_fields(body, ("signed_request",))
        signed = _signed_request(body)

        def operation(
            ca: CertificateAuthority, now: datetime
        ) -> tuple[tuple[int, ...], bytes, int]:
            revoked = ca.revoke(signed, now)
            crl = ca.generate_crl(now, now + CRL_VALIDITY)
            self.store.write_crl(crl)
            return revoked, crl, ca.registry.crl_number

        revoked, crl, number = await self._run(self._with_ca(operation))
        target = RevokeRequest.decode(signed.request)
        what = target.name if target.name is not None else f"certificate {target.serial}"
        self.log.info(
            "revoked %s: %d certificate(s) (%s); published CRL #%d",
            what,
            len(revoked),
            ", ".join(f"{serial:x}" for serial in revoked) or "none enrolled",
            number,
        )
        return json_response(
            {
                "revoked": [f"{serial:x}" for serial in revoked],
                "crl": crl.decode("ascii"),
                "crl_number": number,
            }
        )

    # -- GET /crl ----------------------------------------------------------------------

    async def crl(self, request: web.Request) -> web.Response:
        pem, generated = await self._run(self._current_crl)
        if generated:
            self.log.info("generated a CRL (none was current)")
        return json_response(crl_json(pem))

    def _current_crl(self) -> tuple[bytes, bool]:
        with self.store.open(write=False):
            pem = self.store.read_crl()
        if pem is not None and _crl_current(pem, self.now()):
            return pem, False
        with self.store.open() as ca:
            now = self.now()
            pem = self.store.read_crl()  # another request may have made one meanwhile
            if pem is not None and _crl_current(pem, now):
                return pem, False
            pem = ca.generate_crl(now, now + CRL_VALIDITY)
            self.store.write_crl(pem)
            return pem, True

    # -- GET /cainfo -------------------------------------------------------------------

    async def cainfo(self, request: web.Request) -> web.Response:
        return json_response(await self._run(self._cainfo))

    def _cainfo(self) -> dict[str, Any]:
        info = self.store.info()
        root_pem, intermediates = self.store.ca_chain_pems()
        root = certs.parse_certificate(root_pem)
        issuer = certs.parse_certificate(intermediates[0]) if intermediates else None
        return {
            "org_name": info["org_name"],
            "msp_id": info["msp_id"],
            "subject": certs.subject_summary(root.subject),
            "root_fingerprint": certs.fingerprint_hex(root),
            "not_after": root.not_valid_after_utc.isoformat(),
            "intermediate": None if issuer is None else certs.subject_summary(issuer.subject),
            "root": root_pem.decode("ascii"),
            "intermediates": [pem.decode("ascii") for pem in intermediates],
        }


def _signed_request(body: dict[str, Any]) -> SignedCARequest:
    raw = field_b64(body, "signed_request", max_bytes=MAX_BODY)
    try:
        return SignedCARequest.decode(raw, max_size=MAX_BODY)
    except CodecError as exc:
        raise BadRequest(
            f"signed_request is not a signed CA request: {exc}", code="malformed_request"
        ) from None


def _crl_current(pem: bytes, now: datetime) -> bool:
    try:
        crl = x509.load_pem_x509_crl(pem)
    except ValueError:
        return False
    next_update = crl.next_update_utc
    return next_update is not None and now < next_update


def crl_json(pem: bytes) -> dict[str, Any]:
    crl = x509.load_pem_x509_crl(pem)
    try:
        number: int | None = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = None
    next_update = crl.next_update_utc
    return {
        "crl": pem.decode("ascii"),
        "crl_number": number,
        "revoked": [f"{entry.serial_number:x}" for entry in crl],
        "this_update": crl.last_update_utc.isoformat(),
        "next_update": None if next_update is None else next_update.isoformat(),
    }


# -- the factory ---------------------------------------------------------------------------


async def create_ca_service(context: NodeContext) -> NodeService:
    """The service factory of CA nodes (``SERVICES["ca"]``)."""
    if context.kind != "ca":
        raise NodeStartError(f"{context.name} is a {context.kind} node, not a CA")
    store = context.ca_store()
    info = store.info()
    if info["msp_id"] != context.org.msp_id:
        raise NodeStartError(
            f"{context.name}: {store.directory} is the CA of MSP {info['msp_id']}, but the "
            f"configuration says {context.org.name} is MSP {context.org.msp_id}"
        )
    loop = asyncio.get_running_loop()
    files, issued = await loop.run_in_executor(
        None, ensure_server_certificate, store, context.endpoint, context.now()
    )
    if issued is not None:
        context.log.info(
            "issued the CA's TLS server certificate %x for %s into %s",
            issued.serial_number,
            ", ".join(tls_hosts(context.endpoint)),
            files.cert_file.parent,
        )
    root, intermediates = store.ca_chain_pems()
    ssl_context = tls.server_context(
        files, tls.bundle([root, *intermediates]), client_cert=ssl.CERT_OPTIONAL
    )
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"{context.name}-ca")
    app = make_app(context.name, "ca", log=context.log, max_body=MAX_BODY)
    CAService(context, store, executor).add_routes(app)

    async def close_pool(_: web.Application) -> None:
        await asyncio.to_thread(executor.shutdown, True)

    app.on_cleanup.append(close_pool)
    return NodeService(
        app=app,
        ssl_context=ssl_context,
        description=(
            f"CA of {info['org_name']} (MSP {info['msp_id']}) from {_display(store.directory)}"
        ),
    )


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
