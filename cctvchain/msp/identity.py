"""Membership service provider: who is a member of which organisation, as what.

An :class:`MSP` is one organisation's trust definition (root CAs, optional intermediate
CAs, CRLs). :meth:`MSP.validate` turns a certificate into an :class:`Identity` or refuses
it with a distinct :class:`~cctvchain.msp.errors.MSPError` subclass. Pure: the time is
passed in, nothing is read from disk or the clock.

The expensive part (parsing, building the chain, verifying its signatures, reading the
OU and attributes) is cached by certificate hash in a :class:`ValidationCache` that MSP
instances may share, e.g. across channel-configuration updates. The cheap part (validity
windows of the leaf and every issuer, revocation, the allowed types) is checked on every
call, so a cached identity that has since expired or been revoked is still refused.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from cctvchain.codec import encode
from cctvchain.crypto import Domain, VerifyingKey, sha256
from cctvchain.msp import certs
from cctvchain.msp.attributes import certificate_attributes
from cctvchain.msp.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    InvalidMSPConfig,
    MalformedCertificate,
    NotChainedToMSP,
    UnknownMSP,
    UntrustedCRL,
    WrongIdentityType,
)

if TYPE_CHECKING:
    from cctvchain.ledger.config import ChannelConfig, OrganizationConfig

_UNLIMITED = 1 << 30


@dataclass(frozen=True, eq=False)
class Identity:
    """A validated member: who (CN), of which organisation, as what (OU), with what role."""

    msp_id: str
    name: str
    id_type: str
    attributes: Mapping[str, str]
    cert_der: bytes
    cert_hash: bytes
    serial_number: int
    verifying_key: VerifyingKey
    not_before: datetime
    not_after: datetime

    def attribute(self, name: str, default: str | None = None) -> str | None:
        return self.attributes.get(name, default)

    @property
    def role(self) -> str | None:
        return self.attributes.get("role")

    @property
    def cert_pem(self) -> bytes:
        return certs.pem(x509.load_der_x509_certificate(self.cert_der))

    def verify(self, domain: Domain, message: bytes, signature: bytes) -> None:
        """Raise :class:`~cctvchain.crypto.SignatureError` unless this identity signed it."""
        self.verifying_key.verify(domain, message, signature)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return (self.msp_id, self.cert_hash) == (other.msp_id, other.cert_hash)

    def __hash__(self) -> int:
        return hash((self.msp_id, self.cert_hash))


@dataclass(frozen=True, eq=False)
class _CA:
    """A CA certificate of an MSP, already anchored to one of its roots."""

    cert: x509.Certificate
    subject: bytes
    issuer: bytes
    serial_number: int
    not_before: datetime
    not_after: datetime
    is_root: bool
    path: tuple[_CA, ...]  # the CAs above this one, nearest first, ending at a root
    # How many more intermediate CAs may appear below this one (RFC 5280 pathLen).
    remaining_path_length: int

    @property
    def label(self) -> str:
        return certs.subject_summary(self.cert.subject)

    def window_label(self) -> str:
        return f"CA certificate {self.label}"


@dataclass(frozen=True, eq=False)
class _Chain:
    """The cached outcome of the expensive part of validation."""

    identity: Identity
    issuer: bytes  # the leaf's issuer name (DER): with its serial, its CRL key
    cas: tuple[_CA, ...]  # issuing CA first, root last


class ValidationCache:
    """A bounded, thread-safe LRU of chain-validation results keyed by certificate hash.

    Entries are also keyed by the trust anchors of the MSP that built them, so MSPs with
    different roots never share an entry, while a new MSP instance with the same roots
    and different CRLs does.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[bytes, bytes], _Chain] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[bytes, bytes]) -> _Chain | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple[bytes, bytes], entry: _Chain) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _check_window(
    what: Callable[[], str], not_before: datetime, not_after: datetime, now: datetime
) -> None:
    """``what`` names the certificate, asked for only when it is refused."""
    if now < not_before:
        raise CertificateNotYetValid(f"{what()} is not valid before {not_before.isoformat()}")
    if now > not_after:
        raise CertificateExpired(f"{what()} expired at {not_after.isoformat()}")


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    try:
        if certs.is_pem(data):
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise InvalidMSPConfig(f"unreadable CRL: {exc}") from exc


class MSP:
    """One organisation's membership definition and its certificate validator."""

    def __init__(
        self,
        msp_id: str,
        root_certs: Iterable[bytes],
        intermediate_certs: Iterable[bytes] = (),
        crls: Iterable[bytes] = (),
        *,
        cache: ValidationCache | None = None,
    ) -> None:
        if not msp_id:
            raise InvalidMSPConfig("the MSP id must not be empty")
        self.msp_id = msp_id
        self.cache = cache if cache is not None else ValidationCache()
        roots = [self._parse_ca(data, "root") for data in root_certs]
        if not roots:
            raise InvalidMSPConfig(f"MSP {msp_id} has no root certificate")
        intermediates = [self._parse_ca(data, "intermediate") for data in intermediate_certs]
        self._cas: list[_CA] = [self._anchor_root(cert) for cert in roots]
        self._anchor_intermediates(intermediates)
        self._by_subject: dict[bytes, list[_CA]] = {}
        for ca in self._cas:
            self._by_subject.setdefault(ca.subject, []).append(ca)
        self._anchor_digest = sha256(
            encode(
                [
                    msp_id,
                    sorted(certs.der(cert) for cert in roots),
                    sorted(certs.der(cert) for cert in intermediates),
                ]
            )
        )
        # Certificate bytes as presented (PEM or DER) -> their cache key: the same signers
        # come back with every transaction; un-armouring and hashing them once is enough.
        self._cache_keys: dict[bytes, tuple[bytes, bytes]] = {}
        self._revoked: dict[tuple[bytes, int], datetime] = {}
        for data in crls:
            self._add_crl(_load_crl(data))

    @classmethod
    def from_config(cls, org: OrganizationConfig, *, cache: ValidationCache | None = None) -> MSP:
        return cls(org.msp_id, org.root_certs, org.intermediate_certs, org.crls, cache=cache)

    # -- construction -------------------------------------------------------------------

    def _parse_ca(self, data: bytes, kind: str) -> x509.Certificate:
        try:
            cert = certs.parse_certificate(data)
            certs.check_p256_sha256(cert)
        except MalformedCertificate as exc:
            raise InvalidMSPConfig(f"MSP {self.msp_id}: bad {kind} certificate: {exc}") from exc
        usage = certs.key_usage(cert)
        if not certs.is_ca(cert) or usage is None or not usage.key_cert_sign:
            raise InvalidMSPConfig(
                f"MSP {self.msp_id}: {kind} {certs.subject_summary(cert.subject)} is not a CA "
                "(needs basicConstraints CA:true and keyUsage keyCertSign)"
            )
        return cert

    def _anchor_root(self, cert: x509.Certificate) -> _CA:
        try:
            cert.verify_directly_issued_by(cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise InvalidMSPConfig(
                f"MSP {self.msp_id}: root {certs.subject_summary(cert.subject)} is not self-signed"
            ) from exc
        return self._make_ca(cert, (), True, _UNLIMITED)

    def _make_ca(
        self, cert: x509.Certificate, path: tuple[_CA, ...], is_root: bool, budget: int
    ) -> _CA:
        constraints = certs.basic_constraints(cert)
        own = (
            constraints.path_length if constraints and constraints.path_length is not None else None
        )
        return _CA(
            cert=cert,
            subject=certs.name_der(cert.subject),
            issuer=certs.name_der(cert.issuer),
            serial_number=cert.serial_number,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            is_root=is_root,
            path=path,
            remaining_path_length=budget if own is None else min(own, budget),
        )

    def _anchor_intermediates(self, pending: list[x509.Certificate]) -> None:
        # Anchor in rounds so that the order of the intermediates in the config is free.
        while pending:
            still_pending = []
            for cert in pending:
                parent = self._issuer_among(cert, self._cas)
                if parent is None or parent.remaining_path_length < 1:
                    still_pending.append(cert)
                    continue
                path = (parent, *parent.path)
                self._cas.append(self._make_ca(cert, path, False, parent.remaining_path_length - 1))
            if len(still_pending) == len(pending):
                names = ", ".join(certs.subject_summary(c.subject) for c in still_pending)
                raise InvalidMSPConfig(
                    f"MSP {self.msp_id}: intermediate(s) {names} do not chain to a root "
                    "(or exceed a path length constraint)"
                )
            pending = still_pending

    @staticmethod
    def _issuer_among(cert: x509.Certificate, cas: Iterable[_CA]) -> _CA | None:
        issuer = certs.name_der(cert.issuer)
        for ca in cas:
            if ca.subject != issuer:
                continue
            try:
                cert.verify_directly_issued_by(ca.cert)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return ca
        return None

    def _add_crl(self, crl: x509.CertificateRevocationList) -> None:
        issuer = certs.name_der(crl.issuer)
        for ca in self._cas:
            usage = certs.key_usage(ca.cert)
            if ca.subject != issuer or usage is None or not usage.crl_sign:
                continue
            if crl.is_signature_valid(certs.check_p256_sha256(ca.cert)):
                break
        else:
            raise UntrustedCRL(
                f"MSP {self.msp_id}: CRL from {certs.subject_summary(crl.issuer)} is not "
                "signed by a CA of this MSP"
            )
        try:
            for entry in crl:
                self._revoked[(issuer, entry.serial_number)] = entry.revocation_date_utc
        except ValueError as exc:
            raise InvalidMSPConfig(f"MSP {self.msp_id}: malformed CRL entry: {exc}") from exc

    # -- validation ---------------------------------------------------------------------

    def validate(
        self, cert: bytes, now: datetime, allowed_types: Collection[str] | None = None
    ) -> Identity:
        """The identity ``cert`` (PEM or DER) stands for at ``now``, or an MSPError."""
        _require_aware(now)
        key = self._cache_key(cert)
        chain = self.cache.get(key)
        if chain is None:
            try:
                chain = self._build_chain(certs.certificate_der(cert))
            except ValueError as exc:  # a lazily parsed field that turned out malformed
                raise MalformedCertificate(f"unusable certificate: {exc}") from exc
            self.cache.put(key, chain)
        self._check_current(chain, now, allowed_types)
        return chain.identity

    def _cache_key(self, cert: bytes) -> tuple[bytes, bytes]:
        """(this MSP's anchors, SHA-256 of the DER): the validation cache's key."""
        key = self._cache_keys.get(cert) if type(cert) is bytes else None
        if key is None:
            key = (self._anchor_digest, sha256(certs.certificate_der(cert)))
            if type(cert) is bytes:
                if len(self._cache_keys) >= self.cache.maxsize:
                    self._cache_keys.clear()
                self._cache_keys[cert] = key
        return key

    def _check_current(
        self, chain: _Chain, now: datetime, allowed_types: Collection[str] | None
    ) -> None:
        identity = chain.identity
        _check_window(
            lambda: f"certificate of {identity.name}", identity.not_before, identity.not_after, now
        )
        for ca in chain.cas:
            _check_window(ca.window_label, ca.not_before, ca.not_after, now)
        if (chain.issuer, identity.serial_number) in self._revoked:
            raise CertificateRevoked(
                f"certificate {identity.serial_number:x} of {identity.name} is revoked"
            )
        for ca in chain.cas:
            if not ca.is_root and (ca.issuer, ca.serial_number) in self._revoked:
                raise CertificateRevoked(f"intermediate CA {ca.label} is revoked")
        if allowed_types is not None and identity.id_type not in allowed_types:
            raise WrongIdentityType(
                f"{identity.name} is a {identity.id_type}; expected one of "
                f"{', '.join(sorted(allowed_types))}"
            )

    def _build_chain(self, der: bytes) -> _Chain:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise MalformedCertificate(f"not an X.509 certificate: {exc}") from exc
        public_key = certs.check_p256_sha256(cert)
        issuing_ca = self._issuer_among(cert, self._by_subject.get(certs.name_der(cert.issuer), []))
        if issuing_ca is None:
            raise NotChainedToMSP(
                f"certificate issued by {certs.subject_summary(cert.issuer)} does not chain "
                f"to a CA of MSP {self.msp_id}"
            )
        if certs.is_ca(cert):
            raise MalformedCertificate("a CA certificate cannot act as an identity")
        usage = certs.key_usage(cert)
        if usage is not None and not usage.digital_signature:
            raise MalformedCertificate("key usage does not allow digital signatures")
        name = certs.common_name(cert)
        id_types = [
            value.value
            for value in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
            if value.value in certs.ID_TYPES
        ]
        if len(id_types) != 1:
            raise WrongIdentityType(
                f"certificate of {name} must name exactly one identity type "
                f"({', '.join(sorted(certs.ID_TYPES))}) in its OU"
            )
        identity = Identity(
            msp_id=self.msp_id,
            name=name,
            id_type=str(id_types[0]),
            attributes=MappingProxyType(certificate_attributes(cert)),
            cert_der=der,
            cert_hash=sha256(der),
            serial_number=cert.serial_number,
            verifying_key=VerifyingKey(public_key),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
        )
        return _Chain(
            identity=identity,
            issuer=issuing_ca.subject,
            cas=(issuing_ca, *issuing_ca.path),
        )

    # -- read-outs ------------------------------------------------------------------------

    @property
    def root_certs(self) -> tuple[bytes, ...]:
        return tuple(certs.pem(ca.cert) for ca in self._cas if ca.is_root)

    @property
    def intermediate_certs(self) -> tuple[bytes, ...]:
        return tuple(certs.pem(ca.cert) for ca in self._cas if not ca.is_root)

    @property
    def revoked_serials(self) -> frozenset[int]:
        return frozenset(serial for _, serial in self._revoked)


class MSPManager:
    """All organisations of a channel: validates a certificate for a claimed MSP id."""

    def __init__(self, msps: Iterable[MSP]) -> None:
        self._msps: dict[str, MSP] = {}
        for msp in msps:
            if msp.msp_id in self._msps:
                raise InvalidMSPConfig(f"MSP id {msp.msp_id} is defined twice")
            self._msps[msp.msp_id] = msp

    @classmethod
    def from_channel_config(
        cls, config: ChannelConfig, *, cache: ValidationCache | None = None
    ) -> MSPManager:
        shared = cache if cache is not None else ValidationCache()
        return cls(MSP.from_config(org, cache=shared) for org in config.organizations)

    @property
    def msp_ids(self) -> tuple[str, ...]:
        return tuple(self._msps)

    def get(self, msp_id: str) -> MSP:
        msp = self._msps.get(msp_id)
        if msp is None:
            raise UnknownMSP(f"unknown MSP {msp_id!r}")
        return msp

    def validate(
        self,
        msp_id: str,
        cert: bytes,
        now: datetime,
        allowed_types: Collection[str] | None = None,
    ) -> Identity:
        return self.get(msp_id).validate(cert, now, allowed_types)
