"""RFC 6962 / RFC 9162 Merkle trees, checked against an independent reference.

The reference below is written straight from RFC 6962 §2.1 (MTH, PATH, SUBPROOF) with
``hashlib`` only, recursively and without sharing any code with the module under test.
It also contains a recursive *reference verifier* for each proof kind that follows the
shape of the PATH / SUBPROOF definitions, so the iterative RFC 9162 verifiers can be
compared to it on arbitrary (also tampered) input.
"""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cctvchain.crypto import merkle
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

# -- independent reference (RFC 6962 §2.1) ----------------------------------------------

Leaves = tuple[bytes, ...]


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1), found by counting up."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def ref_mth(d: Leaves) -> bytes:
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return _h(b"\x00" + d[0])
    k = _k(n)
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Leaves) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Leaves, b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Leaves) -> list[bytes]:
    return ref_subproof(m, d, True)


def ref_root_from_path(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """Fold a PATH back up along the recursion of its definition (None: bad length)."""
    if n == 1:
        return leaf if not path else None
    if not path:
        return None
    k = _k(n)
    *rest, sibling = path
    if m < k:
        below = ref_root_from_path(m, k, leaf, rest)
        return None if below is None else _h(b"\x01" + below + sibling)
    below = ref_root_from_path(m - k, n - k, leaf, rest)
    return None if below is None else _h(b"\x01" + sibling + below)


def ref_verify_inclusion(leaf: bytes, m: int, n: int, path: list[bytes], root: bytes) -> bool:
    if not 0 <= m < n:
        return False
    return ref_root_from_path(m, n, leaf, path) == root


def _ref_roots(
    m: int, n: int, b: bool, proof: list[bytes], old_root: bytes
) -> tuple[bytes, bytes, list[bytes]] | None:
    """Rebuild (MTH(D[0:m]) part, MTH(D[0:n]) part) following SUBPROOF(m, D[n], b).

    Proof elements are consumed from the end (the last element is the top level);
    returns the unconsumed prefix too.
    """
    if m == n:
        if b:
            return old_root, old_root, proof
        if not proof:
            return None
        *rest, c = proof
        return c, c, rest
    if not proof:
        return None
    k = _k(n)
    *rest, c = proof
    if m <= k:
        inner = _ref_roots(m, k, b, rest, old_root)
        if inner is None:
            return None
        f, s, left = inner
        return f, _h(b"\x01" + s + c), left
    inner = _ref_roots(m - k, n - k, False, rest, old_root)
    if inner is None:
        return None
    f, s, left = inner
    return _h(b"\x01" + c + f), _h(b"\x01" + c + s), left


def ref_verify_consistency(
    m: int, n: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    if not 0 <= m <= n:
        return False
    if m == 0:
        return not proof and old_root == _h(b"") and (n > 0 or new_root == _h(b""))
    if m == n:
        return not proof and old_root == new_root
    rebuilt = _ref_roots(m, n, True, proof, old_root)
    if rebuilt is None:
        return False
    f, s, left = rebuilt
    return not left and f == old_root and s == new_root


# -- helpers ---------------------------------------------------------------------------


def leaves_of(n: int, salt: bytes = b"") -> Leaves:
    return tuple(salt + i.to_bytes(4, "big") for i in range(n))


def flip(data: bytes, i: int = 0, mask: int = 0x08) -> bytes:
    return data[:i] + bytes((data[i] ^ mask,)) + data[i + 1 :]


SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

# -- known vectors ---------------------------------------------------------------------
# From transparency-dev/merkle (Go), proof/verify_test.go and rfc6962/rfc6962_test.go,
# which carry the Certificate Transparency reference vectors.

CT_LEAVES = tuple(
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
)

CT_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

# (0-based leaf index, tree size, proof)
CT_INCLUSION = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]

# (old size, new size, proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def test_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle_root([]) == EMPTY_ROOT
    assert MerkleTree([]).root == EMPTY_ROOT
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )
    # The empty tree's root is not the hash of an empty leaf.
    assert leaf_hash(b"") != EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_ct_roots(size: int) -> None:
    assert merkle_root(CT_LEAVES[:size]) == CT_ROOTS[size - 1]
    assert MerkleTree.from_leaves(CT_LEAVES[:size]).root == CT_ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "proof_hex"), CT_INCLUSION)
def test_ct_inclusion_vectors(index: int, size: int, proof_hex: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof_hex]
    tree = MerkleTree.from_leaves(CT_LEAVES[:size])
    assert tree.inclusion_proof(index) == expected
    assert inclusion_proof(CT_LEAVES[:size], index) == expected
    assert verify_inclusion(leaf_hash(CT_LEAVES[index]), index, size, expected, CT_ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof_hex"), CT_CONSISTENCY)
def test_ct_consistency_vectors(old: int, new: int, proof_hex: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof_hex]
    tree = MerkleTree.from_leaves(CT_LEAVES[:new])
    assert tree.consistency_proof(old) == expected
    assert consistency_proof(CT_LEAVES[:new], old) == expected
    assert verify_consistency(old, new, CT_ROOTS[old - 1], CT_ROOTS[new - 1], expected)


# -- roots and proofs against the reference, exhaustively for small trees -------------


@pytest.mark.parametrize("n", range(71))
def test_roots_and_inclusion_proofs_match_reference(n: int) -> None:
    d = leaves_of(n)
    tree = MerkleTree.from_leaves(d)
    root = ref_mth(d)
    assert tree.root == root
    assert merkle_root(d) == root
    assert root_from_leaf_hashes([leaf_hash(x) for x in d]) == root
    assert MerkleTree([leaf_hash(x) for x in d]).root == root
    assert tree.size == len(tree) == n
    assert tree.leaf_hashes == tuple(_h(b"\x00" + x) for x in d)
    for m in range(n):
        proof = tree.inclusion_proof(m)
        assert proof == ref_path(m, d), (m, n)
        assert verify_inclusion(leaf_hash(d[m]), m, n, proof, root)
        assert root_from_inclusion_proof(leaf_hash(d[m]), m, n, proof) == root


@pytest.mark.parametrize("n", range(41))
def test_consistency_proofs_match_reference_for_all_pairs(n: int) -> None:
    d = leaves_of(n)
    tree = MerkleTree.from_leaves(d)
    new_root = tree.root
    for m in range(n + 1):
        proof = tree.consistency_proof(m)
        old_root = ref_mth(d[:m])
        if m == 0:
            assert proof == []
        else:
            assert proof == ref_proof(m, d), (m, n)
        assert verify_consistency(m, n, old_root, new_root, proof), (m, n)
        assert ref_verify_consistency(m, n, old_root, new_root, proof)


def test_no_duplication_of_the_last_node() -> None:
    # Bitcoin-style trees give [a, b, c] and [a, b, c, c] one root; RFC 6962 does not.
    d3 = leaves_of(3)
    assert merkle_root(d3) != merkle_root((*d3, d3[-1]))
    assert merkle_root(d3) == _h(
        b"\x01" + _h(b"\x01" + leaf_hash(d3[0]) + leaf_hash(d3[1])) + leaf_hash(d3[2])
    )


# -- tampering --------------------------------------------------------------------------


def _inclusion_tamperings(
    leaf: bytes, m: int, n: int, proof: list[bytes], root: bytes
) -> list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]]:
    cases: list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]] = [
        ("wrong leaf", (flip(leaf), m, n, proof, root)),
        ("wrong root", (leaf, m, n, proof, flip(root, 31))),
        ("empty root", (leaf, m, n, proof, EMPTY_ROOT)),
        ("random root", (leaf, m, n, proof, SOME_HASH)),
        ("index + 1", (leaf, m + 1, n, proof, root)),
        ("index == size", (leaf, n, n, proof, root)),
        ("index + size", (leaf, m + n, n, proof, root)),
        ("trailing root", (leaf, m, n, [*proof, root], root)),
        ("trailing hash", (leaf, m, n, [*proof, SOME_HASH], root)),
        ("preceding root", (leaf, m, n, [root, *proof], root)),
        ("preceding leaf", (leaf, m, n, [leaf, *proof], root)),
    ]
    if m > 0:
        cases.append(("index - 1", (leaf, m - 1, n, proof, root)))
    if m ^ 2 < n:
        cases.append(("index ^ 2", (leaf, m ^ 2, n, proof, root)))
    for i in range(len(proof)):
        for pos, mask in ((0, 0x08), (17, 0x01), (31, 0x80)):
            bad = list(proof)
            bad[i] = flip(bad[i], pos, mask)
            cases.append((f"proof[{i}] byte {pos} flipped", (leaf, m, n, bad, root)))
    if proof:
        cases.append(("truncated", (leaf, m, n, proof[:-1], root)))
        cases.append(("first element dropped", (leaf, m, n, proof[1:], root)))
    if len(proof) > 1:
        cases.append(("swapped elements", (leaf, m, n, [proof[1], proof[0], *proof[2:]], root)))
        cases.append(("inserted element", (leaf, m, n, [proof[0], SOME_HASH, *proof[1:]], root)))
    return cases


@pytest.mark.parametrize("n", range(1, 71))
def test_tampered_inclusion_proofs_fail(n: int) -> None:
    d = leaves_of(n)
    tree = MerkleTree.from_leaves(d)
    root = tree.root
    for m in range(n):
        leaf = leaf_hash(d[m])
        proof = tree.inclusion_proof(m)
        for desc, args in _inclusion_tamperings(leaf, m, n, proof, root):
            assert not verify_inclusion(*args), (n, m, desc)
            assert not ref_verify_inclusion(*args), (n, m, desc)


@pytest.mark.parametrize("n", range(1, 71))
def test_inclusion_proof_with_wrong_tree_size(n: int) -> None:
    """A wrong size is caught exactly when it changes the PATH shape.

    The tree size is not hashed into an inclusion proof: it only fixes the sequence of
    left/right steps. Sizes with the same step sequence for a leaf (e.g. leaf 0 in
    trees of 3 and 4) legitimately verify the same folding; the root binds the size.
    """
    d = leaves_of(n)
    tree = MerkleTree.from_leaves(d)
    root = tree.root
    rejected = 0
    for m in range(n):
        leaf = leaf_hash(d[m])
        proof = tree.inclusion_proof(m)
        for wrong in {0, n // 2, n - 1, n + 1, n + 2, 2 * n, 3 * n + 5} - {n}:
            got = verify_inclusion(leaf, m, wrong, proof, root)
            assert got == ref_verify_inclusion(leaf, m, wrong, proof, root), (m, n, wrong)
            if m >= wrong or len(ref_path(m, leaves_of(wrong))) != len(proof):
                assert not got, (m, n, wrong)
            rejected += not got
    assert rejected > 0


def _consistency_tamperings(
    m: int, n: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    cases: list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]] = [
        ("wrong old root", (m, n, flip(r1), r2, proof)),
        ("wrong new root", (m, n, r1, flip(r2, 5), proof)),
        ("swapped roots", (m, n, r2, r1, proof)),
        ("empty proof", (m, n, r1, r2, [])),
        ("trailing garbage", (m, n, r1, r2, [*proof, SOME_HASH])),
        ("trailing old root", (m, n, r1, r2, [*proof, r1])),
        ("trailing new root", (m, n, r1, r2, [*proof, r2])),
        ("preceding old root", (m, n, r1, r2, [r1, *proof])),
        ("preceding new root", (m, n, r1, r2, [r2, *proof])),
        ("preceding proof[0]", (m, n, r1, r2, [proof[0], *proof])),
        ("truncated", (m, n, r1, r2, proof[:-1])),
        ("first element dropped", (m, n, r1, r2, proof[1:])),
        ("time travel", (n, m, r2, r1, proof)),
    ]
    for i in range(len(proof)):
        for pos, mask in ((0, 0x10), (31, 0x01)):
            bad = list(proof)
            bad[i] = flip(bad[i], pos, mask)
            cases.append((f"proof[{i}] byte {pos} flipped", (m, n, r1, r2, bad)))
    return cases


@pytest.mark.parametrize("n", range(2, 41))
def test_tampered_consistency_proofs_fail(n: int) -> None:
    d = leaves_of(n)
    tree = MerkleTree.from_leaves(d)
    r2 = tree.root
    for m in range(1, n):
        r1 = ref_mth(d[:m])
        proof = tree.consistency_proof(m)
        assert proof, (m, n)
        for desc, args in _consistency_tamperings(m, n, r1, r2, proof):
            assert not verify_consistency(*args), (m, n, desc)
            assert not ref_verify_consistency(*args), (m, n, desc)
        # A different log that shares no prefix is not consistent.
        other_r1 = ref_mth(leaves_of(m, salt=b"x"))
        assert not verify_consistency(m, n, other_r1, r2, proof)


@pytest.mark.parametrize("n", range(2, 41))
def test_consistency_proof_with_wrong_sizes(n: int) -> None:
    d = leaves_of(n)
    tree = MerkleTree.from_leaves(d)
    r2 = tree.root
    for m in range(1, n):
        r1 = ref_mth(d[:m])
        proof = tree.consistency_proof(m)
        for wm, wn in {(m - 1, n), (m + 1, n), (m ^ 2, n), (m, n * 2), (m, n // 2), (m, n + 1)}:
            if (wm, wn) == (m, n):
                continue
            got = verify_consistency(wm, wn, r1, r2, proof)
            assert got == ref_verify_consistency(wm, wn, r1, r2, proof), (m, n, wm, wn)
            if not 0 < wm < wn or len(ref_proof(wm, leaves_of(wn))) != len(proof):
                assert not got, (m, n, wm, wn)


def test_consistency_edge_cases() -> None:
    r = ref_mth(leaves_of(5))
    r3 = ref_mth(leaves_of(3))
    # Equal sizes: the roots must match and the proof must be empty.
    assert verify_consistency(5, 5, r, r, [])
    assert not verify_consistency(5, 5, r, r3, [])
    assert not verify_consistency(5, 5, r, r, [r])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, r, r, [])  # no tree of size 0 has root r
    assert not verify_consistency(0, 0, EMPTY_ROOT, r, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    # The empty tree is a prefix of every tree, with an empty proof and the empty root.
    assert verify_consistency(0, 5, EMPTY_ROOT, r, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, r, [EMPTY_ROOT])
    assert not verify_consistency(0, 5, r3, r, [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    # Time travel.
    assert not verify_consistency(1, 0, r, EMPTY_ROOT, [])
    assert not verify_consistency(5, 3, r, r3, [])
    # 0 < m < n needs a proof.
    assert not verify_consistency(3, 5, r3, r, [])


def test_inclusion_edge_cases() -> None:
    leaf = leaf_hash(b"data")
    # A single-leaf tree: the root is the leaf hash and the proof is empty.
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], SOME_HASH)
    assert not verify_inclusion(leaf, 0, 1, [leaf], node_hash(leaf, leaf))
    for index, size in ((0, 0), (1, 0), (1, 1), (2, 1), (5, 5)):
        assert not verify_inclusion(leaf, index, size, [], leaf)
        assert root_from_inclusion_proof(leaf, index, size, []) is None
    # Wrong hash lengths.
    assert not verify_inclusion(b"", 0, 1, [], b"")
    assert not verify_inclusion(leaf, 0, 1, [], leaf + b"\x00")
    assert not verify_inclusion(leaf[:31], 0, 1, [], leaf[:31])


# -- larger random trees -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 1500), data=st.data())
def test_random_trees_match_reference(n: int, data: st.DataObject) -> None:
    d = leaves_of(n, salt=b"r")
    tree = MerkleTree.from_leaves(d)
    assert tree.root == ref_mth(d)
    for m in data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=5)):
        proof = tree.inclusion_proof(m)
        assert proof == ref_path(m, d)
        assert verify_inclusion(leaf_hash(d[m]), m, n, proof, tree.root)
        assert not verify_inclusion(leaf_hash(d[m]), (m + 1) % n or n, n, proof, tree.root)
    for old in data.draw(st.lists(st.integers(0, n), min_size=1, max_size=3)):
        proof = tree.consistency_proof(old)
        old_root = ref_mth(d[:old])
        if old:
            assert proof == ref_proof(old, d)
        assert verify_consistency(old, n, old_root, tree.root, proof)
        if 0 < old < n:
            assert not verify_consistency(old, n, flip(old_root), tree.root, proof)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 300),
    index=st.integers(-3, 310),
    size=st.integers(-3, 310),
    drop=st.integers(0, 3),
    extra=st.lists(st.sampled_from([SOME_HASH, EMPTY_ROOT]), max_size=2),
    flip_at=st.none() | st.integers(0, 12),
)
def test_verify_inclusion_agrees_with_reference(
    n: int, index: int, size: int, drop: int, extra: list[bytes], flip_at: int | None
) -> None:
    """Differential check on honest and mangled inputs alike."""
    d = leaves_of(n, salt=b"v")
    tree = MerkleTree.from_leaves(d)
    m = min(max(index, 0), n - 1)
    proof = tree.inclusion_proof(m)
    proof = proof[: len(proof) - drop] if drop else proof
    proof = [*proof, *extra]
    if flip_at is not None and flip_at < len(proof):
        proof[flip_at] = flip(proof[flip_at])
    leaf = leaf_hash(d[m])
    expected = ref_verify_inclusion(leaf, index, size, proof, tree.root)
    assert verify_inclusion(leaf, index, size, proof, tree.root) == expected
    if expected:
        assert (index, size) == (m, n) or len(proof) == len(ref_path(index, leaves_of(size)))


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 200),
    m=st.integers(-2, 210),
    old=st.integers(-2, 210),
    new=st.integers(-2, 210),
    drop=st.integers(0, 2),
    extra=st.lists(st.sampled_from([SOME_HASH, EMPTY_ROOT]), max_size=2),
    flip_at=st.none() | st.integers(0, 10),
)
def test_verify_consistency_agrees_with_reference(
    n: int,
    m: int,
    old: int,
    new: int,
    drop: int,
    extra: list[bytes],
    flip_at: int | None,
) -> None:
    d = leaves_of(n, salt=b"c")
    tree = MerkleTree.from_leaves(d)
    m = min(max(m, 0), n)
    proof = tree.consistency_proof(m)
    proof = proof[: len(proof) - drop] if drop else proof
    proof = [*proof, *extra]
    if flip_at is not None and flip_at < len(proof):
        proof[flip_at] = flip(proof[flip_at])
    r1, r2 = ref_mth(d[:m]), tree.root
    for args in ((m, n, r1, r2, proof), (old, new, r1, r2, proof), (m, new, r1, r2, proof)):
        assert verify_consistency(*args) == ref_verify_consistency(*args), args


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.binary(max_size=40),
    st.text(max_size=5),
    st.lists(st.binary(min_size=0, max_size=40), max_size=4),
    st.lists(st.integers(), max_size=3),
    st.floats(allow_nan=True),
)


@settings(max_examples=300, deadline=None)
@given(
    leaf=_junk | st.binary(min_size=32, max_size=32),
    index=_junk,
    size=_junk,
    proof=_junk | st.lists(st.binary(min_size=32, max_size=32), max_size=70),
    root=_junk | st.binary(min_size=32, max_size=32),
)
def test_verify_inclusion_never_raises(
    leaf: object, index: object, size: object, proof: object, root: object
) -> None:
    result = verify_inclusion(leaf, index, size, proof, root)  # type: ignore[arg-type]
    assert result is False or result is True
    rebuilt = root_from_inclusion_proof(leaf, index, size, proof)  # type: ignore[arg-type]
    assert rebuilt is None or isinstance(rebuilt, bytes)


@settings(max_examples=300, deadline=None)
@given(
    old=_junk,
    new=_junk,
    r1=_junk | st.binary(min_size=32, max_size=32),
    r2=_junk | st.binary(min_size=32, max_size=32),
    proof=_junk | st.lists(st.binary(min_size=32, max_size=32), max_size=70),
)
def test_verify_consistency_never_raises(
    old: object, new: object, r1: object, r2: object, proof: object
) -> None:
    result = verify_consistency(old, new, r1, r2, proof)  # type: ignore[arg-type]
    assert result is False or result is True


def test_verifiers_refuse_odd_types_and_huge_sizes() -> None:
    leaf = leaf_hash(b"a")
    root = node_hash(leaf, leaf_hash(b"b"))
    proof = [leaf_hash(b"b")]
    assert verify_inclusion(leaf, 0, 2, proof, root)
    assert not verify_inclusion(leaf, False, 2, proof, root)
    assert not verify_inclusion(leaf, 0, True, [], leaf)
    assert not verify_inclusion(leaf, 0, 2, (*proof, "x"), root)  # type: ignore[arg-type]
    assert not verify_inclusion(leaf, 0, 2, proof[0], root)  # type: ignore[arg-type]
    assert not verify_inclusion(leaf, 0, 2**64, proof, root)
    assert not verify_inclusion(bytearray(leaf), 0, 2, proof, root)  # type: ignore[arg-type]
    assert verify_inclusion(leaf, 0, 2, tuple(proof), root)  # any sequence of hashes
    assert not verify_consistency(1, 2**64, leaf, root, proof)
    assert not verify_consistency(True, 2, leaf, root, proof)
    # Over-long proofs are refused up front, even for the largest trees.
    assert not verify_inclusion(leaf, 0, 2**64 - 1, [leaf] * 66, root)
    assert not verify_consistency(1, 2**64 - 1, leaf, root, [leaf] * 66)


# -- generation errors -------------------------------------------------------------------


def test_generation_refuses_out_of_range() -> None:
    tree = MerkleTree.from_leaves(leaves_of(5))
    for bad in (-1, 5, 6, 2**64):
        with pytest.raises(ValueError, match=r"leaf index .* out of range .* 5 leaves"):
            tree.inclusion_proof(bad)
    for bad in (-1, 6):
        with pytest.raises(ValueError, match=r"old size .* out of range .* 5 leaves"):
            tree.consistency_proof(bad)
    with pytest.raises(ValueError, match="out of range"):
        MerkleTree([]).inclusion_proof(0)
    assert MerkleTree([]).consistency_proof(0) == []
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof([b"a"], 1)
    with pytest.raises(ValueError, match="out of range"):
        consistency_proof([b"a"], 2)
    with pytest.raises(TypeError):
        tree.inclusion_proof(True)
    with pytest.raises(TypeError):
        tree.consistency_proof(1.0)  # type: ignore[arg-type]


def test_tree_refuses_malformed_leaf_hashes() -> None:
    with pytest.raises(ValueError, match="leaf hash 1 is 31 bytes"):
        MerkleTree([b"\x00" * 32, b"\x00" * 31])
    with pytest.raises(ValueError, match="expected 32"):
        MerkleTree([b""])
    with pytest.raises(TypeError, match="leaf hash 0 is a int"):
        MerkleTree([32])  # type: ignore[list-item]
    assert MerkleTree([bytearray(32)]).root == b"\x00" * 32  # type: ignore[list-item]


def test_tree_is_built_once_and_reused() -> None:
    """A segment of 250 frames: all proofs come from one tree and all verify."""
    frames = [b"frame-%d" % i for i in range(250)]
    tree = MerkleTree.from_leaves(frames)
    proofs = [tree.inclusion_proof(i) for i in range(250)]
    assert proofs == [ref_path(i, tuple(frames)) for i in range(250)]
    assert all(
        verify_inclusion(leaf_hash(f), i, 250, p, tree.root)
        for i, (f, p) in enumerate(zip(frames, proofs, strict=True))
    )
    # Proofs are fresh lists: mutating one does not disturb the tree.
    proofs[0].clear()
    assert tree.inclusion_proof(0) == ref_path(0, tuple(frames))


def test_module_exports() -> None:
    from cctvchain import crypto

    for name in (
        "MerkleTree",
        "verify_inclusion",
        "verify_consistency",
        "inclusion_proof",
        "consistency_proof",
        "root_from_inclusion_proof",
        "EMPTY_ROOT",
    ):
        assert getattr(crypto, name) is getattr(merkle, name)
