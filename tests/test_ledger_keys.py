"""LevelDB key layout and composite keys (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cctvchain.ledger import keys
from cctvchain.ledger.keys import (
    KeyEncodingError,
    create_composite_key,
    partial_composite_key_range,
    split_composite_key,
)

part = st.text(st.characters(codec="utf-8", exclude_characters="\x00\U0010ffff"))
text = st.text(st.characters(codec="utf-8"), min_size=1)
namespace = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1)


def test_composite_key_is_fabrics_layout() -> None:
    key = create_composite_key("camera", ["CityCCTV", "cam-7"])
    assert key == "\x00camera\x00CityCCTV\x00cam-7\x00"
    assert split_composite_key(key) == ("camera", ["CityCCTV", "cam-7"])
    assert create_composite_key("camera", []) == "\x00camera\x00"
    assert split_composite_key("\x00camera\x00") == ("camera", [])
    assert split_composite_key(create_composite_key("t", ["", "x"])) == ("t", ["", "x"])


@given(part, st.lists(part, max_size=5))
def test_composite_round_trip(object_type: str, attributes: list[str]) -> None:
    key = create_composite_key(object_type, attributes)
    assert split_composite_key(key) == (object_type, attributes)


@pytest.mark.parametrize("bad", ["a\x00b", "x\U0010ffff"])
def test_composite_parts_are_validated(bad: str) -> None:
    with pytest.raises(KeyEncodingError, match="U\\+0000 or U\\+10FFFF"):
        create_composite_key(bad, [])
    with pytest.raises(KeyEncodingError, match="attribute"):
        create_composite_key("t", ["ok", bad])
    with pytest.raises(KeyEncodingError, match="not valid Unicode"):
        create_composite_key("t", ["\ud800"])


@pytest.mark.parametrize("bad", ["plain", "\x00no-terminator", "\x00"])
def test_split_refuses_non_composite_keys(bad: str) -> None:
    with pytest.raises(KeyEncodingError, match="not a composite key"):
        split_composite_key(bad)


@given(part, st.lists(part, max_size=3), st.lists(part, max_size=3), st.lists(part, max_size=3))
def test_partial_range_holds_exactly_the_extensions(
    object_type: str, prefix: list[str], rest: list[str], other: list[str]
) -> None:
    start, end = partial_composite_key_range(object_type, prefix)
    inside = create_composite_key(object_type, prefix + rest).encode()
    assert start <= inside < end
    candidate = create_composite_key(object_type, other)
    is_extension = other[: len(prefix)] == prefix
    assert (start <= candidate.encode() < end) == is_extension


def test_partial_range_does_not_match_longer_object_types() -> None:
    start, end = partial_composite_key_range("cam", [])
    assert not start <= create_composite_key("camera", []).encode() < end
    start, end = partial_composite_key_range("cam", ["a"])
    assert not start <= create_composite_key("cam", ["ab"]).encode() < end


def test_key_families_and_validation() -> None:
    assert keys.state_key("ns", "k") == b"sns\x00k"
    assert keys.decode_state_key(b"sns\x00a\x00b") == ("ns", "a\x00b")
    assert keys.block_number_key(258) == b"n" + bytes([0, 0, 0, 0, 0, 0, 1, 2])
    assert keys.tx_key("abc") == b"tabc"
    with pytest.raises(KeyEncodingError, match="namespace must not be empty"):
        keys.state_key("", "k")
    with pytest.raises(KeyEncodingError, match="contains a NUL"):
        keys.state_key("a\x00b", "k")
    with pytest.raises(KeyEncodingError, match="key must not be empty"):
        keys.state_key("ns", "")
    with pytest.raises(KeyEncodingError, match="transaction id must not be empty"):
        keys.tx_key("")


@given(namespace, text, text)
def test_state_keys_sort_like_their_keys(ns: str, a: str, b: str) -> None:
    assert (keys.state_key(ns, a) < keys.state_key(ns, b)) == (a.encode() < b.encode())
    assert keys.decode_state_key(keys.state_key(ns, a)) == (ns, a)
    lo, hi = keys.state_range(ns, b"", None)
    assert lo <= keys.state_key(ns, a) < hi


@given(namespace, namespace, text)
def test_state_keys_of_other_namespaces_are_outside_the_range(
    ns: str, other: str, key: str
) -> None:
    lo, hi = keys.state_range(ns, b"", None)
    assert (lo <= keys.state_key(other, key) < hi) == (ns == other)


@given(text, text, st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
def test_history_keys_of_different_keys_never_share_a_prefix(
    a: str, b: str, block: int, tx: int
) -> None:
    hk = keys.history_key("ns", a, block, tx)
    assert keys.decode_history_version(hk) == (block, tx)
    assert hk.startswith(keys.history_prefix("ns", b)) == (a == b)


def test_history_key_order_is_commit_order() -> None:
    order = [(0, 5), (1, 0), (1, 3), (256, 0), (2**40, 1)]
    encoded = [keys.history_key("ns", "k", b, t) for b, t in order]
    assert encoded == sorted(encoded)
    # "a" and "a\x00b" would collide without the length prefix.
    assert not keys.history_key("ns", "a\x00b", 0, 0).startswith(keys.history_prefix("ns", "a"))


def test_versioned_value_encoding() -> None:
    raw = keys.encode_versioned_value(7, 3, b"value")
    assert keys.decode_versioned_value(raw) == (7, 3, b"value")
    assert keys.decode_versioned_value(keys.encode_versioned_value(1, 0, b"")) == (1, 0, b"")
