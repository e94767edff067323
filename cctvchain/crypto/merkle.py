"""RFC 6962 / RFC 9162 Merkle trees: 0x00-prefixed leaves, 0x01-prefixed nodes.

The tree over ``n`` leaves splits at the largest power of two below ``n``; the last
node is never duplicated (so no two leaf lists share a root, unlike Bitcoin's tree).
"""

from __future__ import annotations

from collections.abc import Sequence

from cctvchain.crypto.hashing import sha256

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"")


def leaf_hash(data: bytes) -> bytes:
    return sha256(LEAF_PREFIX + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(NODE_PREFIX + left + right)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash over already-hashed leaves, bottom-up in O(n)."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    # Pairing left to right and carrying an odd last node up unchanged yields exactly
    # RFC 6962's split at the largest power of two below n.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1 over raw leaf data."""
    return root_from_leaf_hashes([leaf_hash(leaf) for leaf in leaves])
