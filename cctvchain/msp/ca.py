"""One organisation's certificate authority: register, enroll, revoke, generate CRLs.

Pure core: no file I/O, the time is passed in. The CA works on a :class:`CAMaterial`
(keys and certificates) and mutates a :class:`~cctvchain.msp.registry.Registry` that
the caller persists (see :mod:`cctvchain.msp.store`).

Registration and revocation are requests signed by a registrar, an enrolled identity
of this CA whose ``registrar`` attribute lists the identity types it may manage (or
``*``). A registrar can hand out the registrar attribute only for types it manages
itself, so nobody can register an identity more powerful than they are.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cctvchain.codec import DecodeError
from cctvchain.crypto import Domain, SignatureError, SigningKey, sha256
from cctvchain.msp import certs, issuing
from cctvchain.msp.attributes import REGISTRAR_ATTRIBUTE, check_attributes, registrar_types
from cctvchain.msp.errors import (
    AlreadyRevoked,
    BadEnrollmentSecret,
    BadRequest,
    BadRequestSignature,
    CAExpired,
    IdentityExists,
    IdentityRevoked,
    MSPError,
    NotARegistrar,
    NotAuthorized,
    RegistrarRefused,
    ReplayedRequest,
    SecretAlreadyUsed,
    StaleRequest,
    UnknownCertificate,
    UnknownIdentity,
)
from cctvchain.msp.identity import MSP, Identity, ValidationCache
from cctvchain.msp.registry import (
    IdentityRecord,
    IssuedCertificate,
    Registry,
    hash_secret,
    verify_secret,
)
from cctvchain.msp.requests import RegisterRequest, RevokeRequest, SignedCARequest

REQUEST_WINDOW = timedelta(minutes=5)
MIN_SECRET_LENGTH = 8
MAX_SECRET_LENGTH = 256
BOOTSTRAP_REGISTRAR = "<bootstrap>"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# The reasons a registrar may give; certificateHold and removeFromCRL are left out
# because revocation here is permanent.
REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    flag.value.lower(): flag
    for flag in x509.ReasonFlags
    if flag not in (x509.ReasonFlags.certificate_hold, x509.ReasonFlags.remove_from_crl)
}

_Request = TypeVar("_Request", RegisterRequest, RevokeRequest)


@dataclass(frozen=True)
class CAMaterial:
    """The CA's keys and certificates; the intermediate, if any, issues everything."""

    org_name: str
    msp_id: str
    root_key: SigningKey
    root_cert: x509.Certificate
    intermediate_key: SigningKey | None = None
    intermediate_cert: x509.Certificate | None = None

    @property
    def issuer_key(self) -> SigningKey:
        return self.intermediate_key if self.intermediate_key is not None else self.root_key

    @property
    def issuer_cert(self) -> x509.Certificate:
        return self.intermediate_cert if self.intermediate_cert is not None else self.root_cert

    @property
    def root_pem(self) -> bytes:
        return certs.pem(self.root_cert)

    @property
    def intermediate_pems(self) -> tuple[bytes, ...]:
        return () if self.intermediate_cert is None else (certs.pem(self.intermediate_cert),)

    def msp(self, crls: Sequence[bytes] = (), cache: ValidationCache | None = None) -> MSP:
        return MSP(self.msp_id, [self.root_pem], self.intermediate_pems, crls, cache=cache)


def create_ca_material(
    org_name: str,
    msp_id: str,
    now: datetime,
    *,
    intermediate: bool = False,
    validity: timedelta = issuing.ROOT_VALIDITY,
) -> CAMaterial:
    if not org_name or not msp_id:
        raise BadRequest("the organisation name and the MSP id must not be empty")
    root_key, root_cert = issuing.create_root(org_name, now, validity)
    if not intermediate:
        return CAMaterial(org_name, msp_id, root_key, root_cert)
    key, cert = issuing.create_intermediate(org_name, root_key, root_cert, now, validity)
    return CAMaterial(org_name, msp_id, root_key, root_cert, key, cert)


class CertificateAuthority:
    def __init__(self, material: CAMaterial, registry: Registry) -> None:
        self.material = material
        self.registry = registry
        # The CA's own view of its members, for checking registrars. Revocation comes
        # from the registry, which is always current, not from the last generated CRL.
        self._msp = material.msp()

    # -- registration --------------------------------------------------------------------

    def register_bootstrap(self, name: str, now: datetime, *, secret: str | None = None) -> str:
        """Register the first registrar (an admin that may register every type).

        Not a signed request: whoever holds the CA directory is trusted to do this.
        """
        return self._add_identity(
            name, "admin", {REGISTRAR_ATTRIBUTE: "*"}, secret, BOOTSTRAP_REGISTRAR, now
        )

    def register(self, signed: SignedCARequest, now: datetime) -> str:
        """Register a new identity on a registrar's signed request; return its secret."""
        request, registrar, allowed = self._authenticate(signed, RegisterRequest, now)
        if request.id_type not in certs.ID_TYPES:
            raise BadRequest(
                f"unknown identity type {request.id_type!r}; expected one of "
                f"{', '.join(sorted(certs.ID_TYPES))}"
            )
        if request.id_type not in allowed:
            raise NotAuthorized(
                f"registrar {registrar.name} may not register identities of type {request.id_type}"
            )
        granted = registrar_types(request.attributes)
        if REGISTRAR_ATTRIBUTE in request.attributes:
            if granted is None or not granted <= (certs.ID_TYPES | {"*"}):
                raise BadRequest("registrar attribute must be '*' or a list of identity types")
            if not _expand(granted) <= allowed:
                raise NotAuthorized(
                    f"registrar {registrar.name} may not grant registrar rights beyond "
                    f"{', '.join(sorted(allowed))}"
                )
        return self._add_identity(
            request.name,
            request.id_type,
            request.attributes,
            request.secret,
            registrar.name,
            now,
        )

    def _add_identity(
        self,
        name: str,
        id_type: str,
        attributes: dict[str, str],
        secret: str | None,
        registered_by: str,
        now: datetime,
    ) -> str:
        if not _NAME.fullmatch(name):
            raise BadRequest(f"identity name {name!r} must match {_NAME.pattern}")
        if name in self.registry.identities:
            raise IdentityExists(f"identity {name} is already registered")
        try:
            check_attributes(attributes)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        if secret is None:
            # Hex, not urlsafe base64: a generated secret must never start with '-', or
            # `ca enroll --secret VALUE` reads it as an option (1 registration in 64).
            secret = secrets.token_hex(24)
        elif not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
            raise BadRequest(
                f"a chosen secret must have {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters"
            )
        self.registry.identities[name] = IdentityRecord(
            name=name,
            id_type=id_type,
            attributes=dict(attributes),
            secret_hash=hash_secret(secret),
            registered_by=registered_by,
            registered_at=now,
        )
        return secret

    # -- enrollment ----------------------------------------------------------------------

    def enroll(
        self,
        name: str,
        secret: str,
        csr_pem: bytes,
        now: datetime,
        *,
        profile: str = "msp",
        hosts: Sequence[str] = (),
        validity: timedelta = issuing.IDENTITY_VALIDITY,
    ) -> bytes:
        """Issue a certificate (PEM) for the CSR's key; the secret is single-use per profile."""
        if profile not in issuing.PROFILES:
            raise BadRequest(f"unknown profile {profile!r}; expected msp or tls")
        if hosts and profile != "tls":
            raise BadRequest("host names only apply to the tls profile")
        if validity <= timedelta(0):
            raise BadRequest("validity must be positive")
        try:
            san = issuing.parse_hosts(hosts)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        public_key = certs.csr_public_key(csr_pem)
        record = self.registry.identities.get(name)
        if record is None:
            raise UnknownIdentity(f"no identity named {name} is registered")
        if not verify_secret(secret, record.secret_hash):
            raise BadEnrollmentSecret(f"wrong enrollment secret for {name}")
        # Only reveal the revocation once the caller has proven to hold the secret.
        if record.revoked_at is not None:
            raise IdentityRevoked(f"identity {name} is revoked")
        if profile in record.used_profiles:
            raise SecretAlreadyUsed(f"the {profile} enrollment of {name} was already done")
        issuer_cert = self.material.issuer_cert
        if not certs.valid_at(issuer_cert, now):
            raise CAExpired("the issuing CA certificate is not valid now")
        not_before = max(now - issuing.BACKDATE, issuer_cert.not_valid_before_utc)
        not_after = min(now + validity, issuer_cert.not_valid_after_utc)
        spec = issuing.LeafSpec(
            org_name=self.material.org_name,
            name=name,
            id_type=record.id_type,
            attributes=record.attributes,
            profile=profile,
            hosts=san,
        )
        cert = issuing.issue_leaf(
            spec, public_key, self.material.issuer_key, issuer_cert, not_before, not_after
        )
        record.used_profiles.append(profile)
        record.certificates.append(
            IssuedCertificate(
                serial=cert.serial_number,
                profile=profile,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
            )
        )
        return certs.pem(cert)

    # -- revocation ----------------------------------------------------------------------

    def revoke(self, signed: SignedCARequest, now: datetime) -> tuple[int, ...]:
        """Revoke an identity (all its certificates, no more enrollment) or one serial."""
        request, registrar, allowed = self._authenticate(signed, RevokeRequest, now)
        reason = REVOCATION_REASONS.get(request.reason.lower())
        if reason is None:
            raise BadRequest(
                f"unknown revocation reason {request.reason!r}; expected one of "
                f"{', '.join(flag.value for flag in REVOCATION_REASONS.values())}"
            )
        if (request.name is None) == (request.serial is None):
            raise BadRequest("name exactly one identity or one serial number to revoke")
        if request.name is not None:
            record = self.registry.identities.get(request.name)
            if record is None:
                raise UnknownIdentity(f"no identity named {request.name} is registered")
            _check_may_revoke(registrar, allowed, record)
            if record.revoked_at is not None:
                raise AlreadyRevoked(f"identity {record.name} is already revoked")
            targets = [issued for issued in record.certificates if issued.revoked_at is None]
        else:
            serial = _parse_serial(request.serial or "")
            found = self.registry.find_certificate(serial)
            if found is None:
                raise UnknownCertificate(f"no certificate with serial {serial:x} was issued")
            record, issued = found
            _check_may_revoke(registrar, allowed, record)
            if issued.revoked_at is not None:
                raise AlreadyRevoked(f"certificate {serial:x} is already revoked")
            targets = [issued]
        if request.name is not None:
            record.revoked_at = now
            record.revocation_reason = reason.value
        for issued in targets:
            issued.revoked_at = now
            issued.revocation_reason = reason.value
        return tuple(issued.serial for issued in targets)

    def generate_crl(self, now: datetime, next_update: datetime) -> bytes:
        """A PEM CRL, signed by the issuing CA, of every certificate revoked so far."""
        if next_update <= now:
            raise BadRequest("the CRL's next update must be after now")
        self.registry.crl_number += 1
        entries = [
            issuing.RevokedEntry(
                serial=issued.serial,
                revoked_at=issued.revoked_at,
                reason=x509.ReasonFlags(issued.revocation_reason or "unspecified"),
            )
            for issued in self.registry.revoked_certificates()
            if issued.revoked_at is not None
        ]
        crl = issuing.build_crl(
            self.material.issuer_key,
            self.material.issuer_cert,
            entries,
            now,
            next_update,
            self.registry.crl_number,
        )
        return crl.public_bytes(serialization.Encoding.PEM)

    # -- registrar authentication -------------------------------------------------------

    def _authenticate(
        self, signed: SignedCARequest, kind: type[_Request], now: datetime
    ) -> tuple[_Request, IdentityRecord, frozenset[str]]:
        """Check who signed ``signed`` and that they are a registrar here, now."""
        try:
            request = kind.decode(signed.request)
        except DecodeError as exc:
            raise BadRequest(f"malformed {kind.TYPE}: {exc}") from exc
        try:
            identity = self._msp.validate(request.registrar_cert, now)
        except MSPError as exc:
            raise RegistrarRefused(f"registrar certificate refused: {exc}") from exc
        try:
            identity.verify(Domain.CA_REQUEST, signed.request, signed.signature)
        except SignatureError as exc:
            raise BadRequestSignature(f"request signature does not verify: {exc}") from exc
        sent = datetime.fromtimestamp(request.timestamp_ms / 1000, tz=now.tzinfo)
        if abs(sent - now) > REQUEST_WINDOW:
            raise StaleRequest(
                f"request time {sent.isoformat()} is more than {REQUEST_WINDOW} from the "
                f"CA's time {now.isoformat()}"
            )
        registrar = self._registrar_record(identity)
        allowed = registrar_types(registrar.attributes)
        if allowed is None:
            raise NotARegistrar(f"{registrar.name} is not a registrar")
        self._remember(sha256(signed.request).hex(), request.timestamp_ms, now)
        return request, registrar, _expand(allowed)

    def _registrar_record(self, identity: Identity) -> IdentityRecord:
        record = self.registry.identities.get(identity.name)
        if record is None or record.revoked_at is not None:
            raise RegistrarRefused(f"{identity.name} is not a current identity of this CA")
        for issued in record.certificates:
            if issued.serial == identity.serial_number:
                if issued.revoked_at is not None:
                    raise RegistrarRefused(f"the certificate of {identity.name} is revoked")
                if issued.profile != "msp":
                    raise RegistrarRefused("requests must be signed with an msp identity")
                return record
        raise RegistrarRefused(f"certificate not on record for {identity.name}")

    def _remember(self, digest: str, sent_ms: int, now: datetime) -> None:
        recent = self.registry.recent_requests
        horizon = int((now - 2 * REQUEST_WINDOW).timestamp() * 1000)
        for old in [key for key, ms in recent.items() if ms < horizon]:
            del recent[old]
        if digest in recent:
            raise ReplayedRequest("this request was already processed")
        recent[digest] = sent_ms

    # -- read-outs -----------------------------------------------------------------------

    def identity(self, name: str) -> IdentityRecord:
        record = self.registry.identities.get(name)
        if record is None:
            raise UnknownIdentity(f"no identity named {name} is registered")
        return record


def _check_may_revoke(
    registrar: IdentityRecord, allowed: frozenset[str], record: IdentityRecord
) -> None:
    if record.id_type not in allowed:
        raise NotAuthorized(
            f"registrar {registrar.name} may not revoke identities of type {record.id_type}"
        )


def _expand(types: frozenset[str]) -> frozenset[str]:
    return certs.ID_TYPES if "*" in types else types


def _parse_serial(text: str) -> int:
    try:
        return int(text.replace(":", ""), 16)
    except ValueError as exc:
        raise BadRequest(f"serial {text!r} is not hexadecimal") from exc
