"""Hashing, ECDSA P-256 signatures with domain separation, RFC 6962 Merkle trees."""

from cctvchain.crypto.hashing import HASH_SIZE, sha256
from cctvchain.crypto.signing import (
    Domain,
    SignatureError,
    SigningKey,
    VerifyingKey,
    signed_bytes,
)

__all__ = [
    "HASH_SIZE",
    "Domain",
    "SignatureError",
    "SigningKey",
    "VerifyingKey",
    "sha256",
    "signed_bytes",
]
