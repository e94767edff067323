"""ECDSA P-256 / SHA-256 signatures with low-S normalisation and domain separation.

Every signature covers ``canonical.encode([CONTEXT, domain, message])``, so a signature
made for one purpose (a proposal, a block, a camera segment, ...) can never be replayed
as another. Signatures travel in one fixed form, 64 bytes ``r || s`` big-endian, with
``s <= n/2`` (as Fabric's low-S rule) so that a signature cannot be mangled into a second
valid one; verification refuses any other form.
"""

from __future__ import annotations

import enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from cctvchain.codec import canonical

CONTEXT = "cctvchain/signature/v1"
SIGNATURE_SIZE = 64
CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = CURVE_ORDER // 2


class Domain(enum.StrEnum):
    """What a signature is for. Add a member for each new kind of signed object."""

    CA_REQUEST = "ca.request"
    CONFIG_UPDATE = "ledger.config_update"
    BLOCK = "ledger.block"
    PROPOSAL = "tx.proposal"
    PROPOSAL_RESPONSE = "tx.proposal_response"
    ENVELOPE = "tx.envelope"
    SEGMENT = "cctv.segment"
    TEST = "test"


class SignatureError(ValueError):
    """A signature is malformed, not low-S, or does not verify."""


def signed_bytes(domain: Domain, message: bytes) -> bytes:
    """The exact bytes an ECDSA signature covers for ``message`` in ``domain``."""
    return canonical.encode([CONTEXT, str(domain), message])


class VerifyingKey:
    """A P-256 public key."""

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"only P-256 keys are supported, got {key.curve.name}")
        self._key = key

    @classmethod
    def from_der(cls, der: bytes) -> VerifyingKey:
        key = serialization.load_der_public_key(der)
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("not an elliptic-curve public key")
        return cls(key)

    @property
    def native(self) -> ec.EllipticCurvePublicKey:
        return self._key

    def to_der(self) -> bytes:
        return self._key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, domain: Domain, message: bytes, signature: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is valid for ``message``."""
        if len(signature) != SIGNATURE_SIZE:
            raise SignatureError(f"signature must be {SIGNATURE_SIZE} bytes, got {len(signature)}")
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (0 < r < CURVE_ORDER and 0 < s <= _HALF_ORDER):
            raise SignatureError("signature is not in canonical low-S form")
        try:
            self._key.verify(
                encode_dss_signature(r, s),
                signed_bytes(domain, message),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature as exc:
            raise SignatureError(f"signature does not verify ({domain})") from exc

    def is_valid(self, domain: Domain, message: bytes, signature: bytes) -> bool:
        try:
            self.verify(domain, message, signature)
        except SignatureError:
            return False
        return True


class SigningKey:
    """A P-256 private key."""

    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"only P-256 keys are supported, got {key.curve.name}")
        self._key = key

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes, password: bytes | None = None) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=password)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("not an elliptic-curve private key")
        return cls(key)

    @property
    def native(self) -> ec.EllipticCurvePrivateKey:
        return self._key

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def verifying_key(self) -> VerifyingKey:
        return VerifyingKey(self._key.public_key())

    def sign(self, domain: Domain, message: bytes) -> bytes:
        der = self._key.sign(signed_bytes(domain, message), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        if s > _HALF_ORDER:
            s = CURVE_ORDER - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
