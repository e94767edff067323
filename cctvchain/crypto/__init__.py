"""Hashing, ECDSA P-256 signatures with domain separation, RFC 6962 Merkle trees."""

from cctvchain.crypto.hashing import HASH_SIZE, sha256
from cctvchain.crypto.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from cctvchain.crypto.signing import (
    Domain,
    SignatureError,
    SigningKey,
    VerifyingKey,
    signed_bytes,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Domain",
    "MerkleTree",
    "SignatureError",
    "SigningKey",
    "VerifyingKey",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "sha256",
    "signed_bytes",
    "verify_consistency",
    "verify_inclusion",
]
