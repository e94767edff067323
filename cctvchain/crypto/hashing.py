"""The one hash function of the system (SHA-256)."""

from __future__ import annotations

import hashlib

HASH_SIZE = 32


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
