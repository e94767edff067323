"""RFC 6962 / RFC 9162 Merkle trees: 0x00-prefixed leaves, 0x01-prefixed nodes.

The tree over ``n`` leaves splits at the largest power of two below ``n``; the last
node is never duplicated (so no two leaf lists share a root, unlike Bitcoin's tree).

:class:`MerkleTree` hashes its leaves once and keeps every level, so the root and any
number of inclusion or consistency proofs come from table look-ups (``O(log n)`` per
proof). Proofs follow RFC 6962 §2.1.1 (``PATH``) and §2.1.2 (``SUBPROOF``); the
verifiers are the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 and answer ``False``
(never raise) for any malformed input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cctvchain.crypto.hashing import HASH_SIZE, sha256

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"")

# Tree sizes and indexes are 64-bit in RFC 9162; anything larger is refused outright,
# and no proof for such trees has more than 64 (inclusion) or 65 (consistency) hashes.
_MAX_SIZE = 1 << 64
_MAX_PROOF_LENGTH = 65


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
        level = _next_level(level)
    return level[0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 §2.1 over raw leaf data."""
    return root_from_leaf_hashes([leaf_hash(leaf) for leaf in leaves])


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly less than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An immutable RFC 6962 tree over leaf hashes, with every level kept.

    ``levels[0]`` holds the leaf hashes; ``levels[l][j]`` is the hash of the subtree
    over leaves ``[j * 2**l, min((j + 1) * 2**l, size))``. An odd last node is carried
    up a level unchanged, never paired with itself, which is exactly RFC 6962's split
    at the largest power of two.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        level: list[bytes] = []
        for i, h in enumerate(leaf_hashes):
            if not isinstance(h, bytes | bytearray | memoryview):
                raise TypeError(f"leaf hash {i} is a {type(h).__name__}, not bytes")
            h = bytes(h)
            level.append(h)
            if len(h) != HASH_SIZE:
                raise ValueError(f"leaf hash {i} is {len(h)} bytes, expected {HASH_SIZE}")
        levels = [level]
        while len(level) > 1:
            level = _next_level(level)
            levels.append(level)
        self._levels: tuple[tuple[bytes, ...], ...] = tuple(tuple(lv) for lv in levels)

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MerkleTree:
        """A tree over raw leaf data (each leaf is hashed with the 0x00 prefix)."""
        return cls(leaf_hash(bytes(leaf)) for leaf in leaves)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def __len__(self) -> int:
        return self.size

    @property
    def leaf_hashes(self) -> tuple[bytes, ...]:
        return self._levels[0]

    @property
    def root(self) -> bytes:
        """MTH(D[n]); the hash of the empty string for the empty tree."""
        if not self._levels[0]:
            return EMPTY_ROOT
        return self._levels[-1][0]

    def _subtree(self, start: int, size: int) -> bytes:
        """MTH(D[start:start + size]) for a node of this tree.

        Every range RFC 6962's recursion visits starts at a multiple of ``2**l`` where
        ``2**l`` is the smallest power of two ``>= size``, and either is complete or
        ends at the tree's last leaf, so it is stored at ``levels[l][start >> l]``.
        """
        level = (size - 1).bit_length()
        return self._levels[level][start >> level]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[n]) of RFC 6962 §2.1.1, deepest sibling first."""
        n = self.size
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"leaf index must be an int, got {type(index).__name__}")
        if not 0 <= index < n:
            raise ValueError(f"leaf index {index} is out of range for a tree of {n} leaves")
        path: list[bytes] = []
        start, size = 0, n
        while size > 1:
            k = _largest_power_of_two_below(size)
            if index - start < k:  # PATH(m, D[0:k]) : MTH(D[k:n])
                path.append(self._subtree(start + k, size - k))
                size = k
            else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
                path.append(self._subtree(start, k))
                start, size = start + k, size - k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """PROOF(old_size, D[n]) of RFC 6962 §2.1.2 (``SUBPROOF(m, D[n], true)``).

        ``old_size`` may be 0 (the empty tree is consistent with every tree; the proof
        is empty) up to ``size`` (empty proof).
        """
        n = self.size
        if isinstance(old_size, bool) or not isinstance(old_size, int):
            raise TypeError(f"old size must be an int, got {type(old_size).__name__}")
        if not 0 <= old_size <= n:
            raise ValueError(f"old size {old_size} is out of range for a tree of {n} leaves")
        if old_size == 0:
            return []
        proof: list[bytes] = []
        m, start, size, complete = old_size, 0, n, True
        while m != size:
            k = _largest_power_of_two_below(size)
            if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
                proof.append(self._subtree(start + k, size - k))
                size = k
            else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
                proof.append(self._subtree(start, k))
                start, size, m, complete = start + k, size - k, m - k, False
        if not complete:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
            proof.append(self._subtree(start, size))
        proof.reverse()
        return proof


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) over raw leaf data (build a :class:`MerkleTree` for many)."""
    return MerkleTree.from_leaves(leaves).inclusion_proof(index)


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(old_size, D[n]) over raw leaf data (build a :class:`MerkleTree` for many)."""
    return MerkleTree.from_leaves(leaves).consistency_proof(old_size)


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2): False, never an exception ----------


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_SIZE


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_path(proof: object) -> bool:
    return (
        isinstance(proof, Sequence)
        and not isinstance(proof, bytes | str)
        and len(proof) <= _MAX_PROOF_LENGTH
        and all(_is_hash(p) for p in proof)
    )


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1-4), or ``None``.

    ``None`` means the proof is malformed for ``index`` and ``tree_size`` (wrong
    length, index out of range, a hash not of 32 bytes, ...).
    """
    if not (_is_hash(leaf_hash) and _is_size(index) and _is_size(tree_size)):
        return None
    if not _is_path(proof):
        return None
    if index >= tree_size:
        return None
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return None  # the proof is too long
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None  # the proof is too short
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows the leaf hash at ``index`` in the tree of ``root``."""
    if not _is_hash(root):
        return False
    computed = root_from_inclusion_proof(leaf_hash, index, tree_size, proof)
    return computed is not None and computed == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree ``old_root`` is a prefix of the tree ``new_root``.

    Edge cases: equal sizes need an empty proof and equal roots; ``old_size == 0``
    needs an empty proof and ``old_root`` equal to the empty-tree hash (the empty
    tree is a prefix of every tree; a second tree of size 0 must have that root too);
    ``old_size > new_size`` is refused.
    """
    if not (_is_size(old_size) and _is_size(new_size)):
        return False
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_path(proof)):
        return False
    if old_size > new_size:
        return False
    if old_size == 0:
        # Only the empty-tree hash is a root of size 0; nothing else needs proving.
        empty_new = new_size > 0 or new_root == EMPTY_ROOT
        return len(proof) == 0 and old_root == EMPTY_ROOT and empty_new
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    # RFC 9162 §2.1.4.2, 0 < first < second from here on.
    # 1. An empty consistency path fails.
    if not proof:
        return False
    path = list(proof)
    # 2. If first is an exact power of two, prepend first_hash.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3.
    fn, sn = old_size - 1, new_size - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7.
    return sn == 0 and fr == old_root and sr == new_root
