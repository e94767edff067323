"""Certificate references: a 32-byte SHA-256 in place of a PEM certificate (pure).

The same few certificates (a camera's, the peers', the orderers') would otherwise be
carried in full in every transaction and block. ``SerializedIdentity.cert`` and
``MetadataSignature.cert`` therefore hold either the PEM or its *reference*, the SHA-256
of the PEM bytes. The two cannot be confused: a reference is exactly 32 bytes, a PEM
certificate is hundreds of bytes long and starts with ``-----BEGIN``.

A reference is self-certifying (whoever holds bytes checks them against it by hash) and
grants no trust: the resolved PEM is validated by the MSP exactly as a PEM carried in
full would be (chain to a CA root, CRLs, validity, identity type). Where the PEMs come
from depends on the checker: the ledger's certificate registry (every PEM carried in an
earlier block's transactions), the channel configuration's orderer certificates (block
signatures), or the ``certificates`` part of an evidence bundle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from cctvchain.msp.errors import MSPError

REFERENCE_SIZE = 32
PEM_CERTIFICATE_PREFIX = b"-----BEGIN CERTIFICATE-----"

CertificateResolver = Callable[[bytes], bytes | None]
"""A reference in, the PEM it stands for out (None: unknown here)."""


class UnknownCertificateReference(MSPError):
    """A certificate reference that does not resolve here: the checker has never seen the
    PEM it stands for (the sender must resend with the full certificate)."""

    code = "unknown_certificate_reference"


def certificate_reference(pem: bytes) -> bytes:
    """The reference of a PEM certificate: SHA-256 of its bytes as carried."""
    return hashlib.sha256(pem).digest()


def is_reference(cert: bytes) -> bool:
    """Whether ``cert`` (as carried in an identity or a block signature) is a reference."""
    return len(cert) == REFERENCE_SIZE


def is_registrable(cert: bytes) -> bool:
    """Whether ``cert`` is a PEM certificate a registry should remember (a reference or
    other bytes are not: a registry holds certificates, keyed by their reference)."""
    return cert.startswith(PEM_CERTIFICATE_PREFIX)


def short(reference: bytes) -> str:
    """A reference for messages: its first 8 bytes in hex."""
    return reference[:8].hex() + "…"


def resolve_certificate(cert: bytes, resolver: CertificateResolver | None) -> bytes:
    """The PEM that ``cert`` carries or refers to.

    A PEM (anything that is not a reference) is returned as is; a reference is looked
    up with ``resolver`` and the bytes found are checked against it by hash. Raises
    :class:`UnknownCertificateReference` if it does not resolve (no resolver, unknown,
    or bytes that do not hash to it).
    """
    if not is_reference(cert):
        return cert
    pem = resolver(cert) if resolver is not None else None
    if pem is None:
        raise UnknownCertificateReference(
            f"certificate reference {short(cert)} is unknown here (no earlier block "
            "carried the certificate); resend with the full certificate"
        )
    if certificate_reference(pem) != cert:
        raise UnknownCertificateReference(
            f"the certificate found for reference {short(cert)} does not match it by hash"
        )
    return pem


def table_resolver(pems: Iterable[bytes]) -> CertificateResolver:
    """A resolver over a fixed set of PEMs (a bundle's certificates, the orderers of a
    channel configuration)."""
    table = {certificate_reference(pem): pem for pem in pems}
    return table.get
