"""Small X.509 helpers shared by the MSP and the CA: loading, hashing, names, policy checks.

The policy of the house is ECDSA P-256 with SHA-256 for every key and signature, so the
checks here refuse anything else instead of trying to be general.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from cctvchain.crypto import SigningKey, sha256
from cctvchain.msp.errors import BadCSR, MalformedCertificate

# The node types an identity certificate can name in its OU (Fabric's NodeOUs + camera).
ID_TYPES: frozenset[str] = frozenset({"peer", "orderer", "client", "admin", "camera"})

MAX_CERT_SIZE = 64 * 1024

_PEM_CERT = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)


def is_pem(data: bytes) -> bool:
    return data.lstrip().startswith(b"-----BEGIN")


def certificate_der(data: bytes) -> bytes:
    """The DER bytes of one certificate given as PEM or DER, without a full parse.

    Un-armouring PEM by hand lets the MSP compute the cache key (the hash of the DER)
    before paying for an X.509 parse.
    """
    if len(data) > MAX_CERT_SIZE:
        raise MalformedCertificate(f"certificate is {len(data)} bytes, over {MAX_CERT_SIZE}")
    if not is_pem(data):
        return bytes(data)
    blocks = _PEM_CERT.findall(data)
    if len(blocks) != 1:
        raise MalformedCertificate(f"expected exactly one PEM certificate, found {len(blocks)}")
    try:
        return base64.b64decode(b"".join(blocks[0].split()), validate=True)
    except binascii.Error as exc:
        raise MalformedCertificate("PEM certificate is not valid base64") from exc


def parse_certificate(data: bytes) -> x509.Certificate:
    """Parse one certificate (PEM or DER); raise :class:`MalformedCertificate`."""
    der = certificate_der(data)
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MalformedCertificate(f"not an X.509 certificate: {exc}") from exc


def parse_certificates(bundle: bytes) -> list[x509.Certificate]:
    """Parse a PEM bundle of zero or more certificates."""
    if not bundle.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(bundle)
    except ValueError as exc:
        raise MalformedCertificate(f"not a PEM certificate bundle: {exc}") from exc


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def certificate_hash(cert: x509.Certificate) -> bytes:
    """SHA-256 of the DER encoding: the identity's stable fingerprint and cache key."""
    return sha256(der(cert))


def fingerprint_hex(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in certificate_hash(cert))


def name_der(name: x509.Name) -> bytes:
    """A name in a form usable as a dict key (issuer name + serial identifies a cert)."""
    return name.public_bytes()


def single_attribute(name: x509.Name, oid: x509.ObjectIdentifier, label: str) -> str:
    values = name.get_attributes_for_oid(oid)
    if len(values) != 1:
        raise MalformedCertificate(f"subject must have exactly one {label}, has {len(values)}")
    value = values[0].value
    if not isinstance(value, str) or not value:
        raise MalformedCertificate(f"subject {label} must be non-empty text")
    return value


def common_name(cert: x509.Certificate) -> str:
    return single_attribute(cert.subject, NameOID.COMMON_NAME, "CN")


def subject_summary(name: x509.Name) -> str:
    return name.rfc4514_string()


def check_p256_sha256(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    """Refuse any key but P-256 and any signature but ECDSA with SHA-256."""
    if cert.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        raise MalformedCertificate(
            f"signature algorithm {cert.signature_algorithm_oid.dotted_string} is not "
            "ecdsa-with-SHA256"
        )
    try:
        key = cert.public_key()
    except ValueError as exc:
        raise MalformedCertificate(f"unreadable public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise MalformedCertificate("public key is not ECDSA P-256")
    return key


def extensions(cert: x509.Certificate) -> x509.Extensions:
    try:
        return cert.extensions
    except ValueError as exc:  # duplicate or undecodable extensions
        raise MalformedCertificate(f"bad extensions: {exc}") from exc


def basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return extensions(cert).get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return extensions(cert).get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def is_ca(cert: x509.Certificate) -> bool:
    constraints = basic_constraints(cert)
    return constraints is not None and constraints.ca


def valid_at(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def build_csr(key: SigningKey, name: str) -> bytes:
    """A PEM CSR for ``key``; the CA sets the real subject, the CN is only a hint."""
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key.native, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def csr_public_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The P-256 key of a well-signed PEM CSR; raise :class:`BadCSR` otherwise."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise BadCSR(f"not a PEM certificate signing request: {exc}") from exc
    if csr.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        raise BadCSR("the CSR must be signed with ecdsa-with-SHA256")
    try:
        key = csr.public_key()
    except ValueError as exc:
        raise BadCSR(f"unreadable CSR public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise BadCSR("the CSR key must be ECDSA P-256")
    if not csr.is_signature_valid:
        raise BadCSR("the CSR signature does not verify")
    return key
