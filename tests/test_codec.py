"""The canonical encoder/decoder and typed messages.

RFC 8949 vectors are from Appendix A of the RFC (as published machine-readably in
github.com/cbor/test-vectors, appendix_a.json).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cctvchain.codec import (
    DecodeError,
    EncodeError,
    Message,
    UnknownMessageType,
    UnsupportedVersion,
    decode,
    decode_message,
    encode,
    message_class,
)
from cctvchain.codec.canonical import MAX_DEPTH

U64 = 2**64 - 1

# -- strategies --------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), U64),
    st.sampled_from([0, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, U64, -(2**64)]),
    st.text(max_size=30),
    st.binary(max_size=40),
)

# Python forms: tuples are allowed on the way in.
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(st.text(max_size=10), children, max_size=6),
    ),
    max_leaves=30,
)


def normalise(value: Any) -> Any:
    """The form ``decode`` gives back: tuples become lists."""
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that also tells True from 1 and False from 0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


# -- round trip and determinism -------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(values)
def test_round_trip(value: Any) -> None:
    data = encode(value)
    decoded = decode(data)
    assert same(decoded, normalise(value))
    assert encode(decoded) == data


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.text(max_size=8), values, min_size=1, max_size=8), st.randoms())
def test_insertion_order_does_not_matter(mapping: dict[str, Any], rnd: Any) -> None:
    items = list(mapping.items())
    rnd.shuffle(items)
    shuffled = dict(items)
    assert encode(shuffled) == encode(mapping)
    assert encode({"outer": shuffled, "list": [shuffled]}) == encode(
        {"list": [mapping], "outer": mapping}
    )


@settings(max_examples=150, deadline=None)
@given(values)
def test_decoded_maps_keep_canonical_key_order(value: Any) -> None:
    def check(v: Any) -> None:
        if isinstance(v, dict):
            keys = [encode(k) for k in v]
            assert keys == sorted(keys)
            assert len(set(keys)) == len(keys)
            for item in v.values():
                check(item)
        elif isinstance(v, list):
            for item in v:
                check(item)

    check(decode(encode(value)))


def test_map_keys_are_ordered_bytewise_on_their_encoding() -> None:
    # RFC 8949 §4.2.1: "b" (0x61 0x62) sorts before "aa" (0x62 0x61 0x61).
    assert encode({"aa": 2, "b": 1}).hex() == "a2616201626161" + "02"
    assert encode({"aa": 2, "b": 1}) == bytes.fromhex("a2 6162 01 626161 02".replace(" ", ""))
    assert list(decode(encode({"aa": 2, "b": 1}))) == ["b", "aa"]
    # Same length: plain byte order, so "B" < "a" < "b" < "ü".
    assert list(decode(encode({"ü": 0, "b": 0, "a": 0, "B": 0}))) == ["B", "a", "b", "ü"]


def test_bytes_and_text_stay_distinct() -> None:
    assert encode("a") != encode(b"a")
    assert decode(encode(b"a")) == b"a"
    assert decode(encode("a")) == "a"
    assert decode(encode(True)) is True
    assert decode(encode(1)) == 1 and decode(encode(1)) is not True
    assert encode(bytearray(b"xy")) == encode(b"xy") == encode(memoryview(b"xy"))


# -- RFC 8949 Appendix A ----------------------------------------------------------------

APPENDIX_A: list[tuple[Any, str]] = [
    (0, "00"),
    (1, "01"),
    (10, "0a"),
    (23, "17"),
    (24, "1818"),
    (25, "1819"),
    (100, "1864"),
    (1000, "1903e8"),
    (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"),
    (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"),
    (-10, "29"),
    (-100, "3863"),
    (-1000, "3903e7"),
    (False, "f4"),
    (True, "f5"),
    (None, "f6"),
    (b"", "40"),
    (bytes.fromhex("01020304"), "4401020304"),
    ("", "60"),
    ("a", "6161"),
    ("IETF", "6449455446"),
    ('"\\', "62225c"),
    ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"),
    ("\U00010151", "64f0908591"),
    ([], "80"),
    ([1, 2, 3], "83010203"),
    ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    (
        {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"},
        "a56161614161626142616361436164614461656145",
    ),
]


@pytest.mark.parametrize(("value", "hex_"), APPENDIX_A)
def test_rfc8949_appendix_a(value: Any, hex_: str) -> None:
    data = bytes.fromhex(hex_)
    assert encode(value) == data
    assert same(decode(data), value)


# Appendix A items outside our subset: bignums, floats, simple values, tags,
# indefinite lengths and non-text map keys.
APPENDIX_A_REFUSED = [
    ("c249010000000000000000", "tags are not allowed"),
    ("c349010000000000000000", "tags are not allowed"),
    ("f90000", "floats"),
    ("f98000", "floats"),
    ("f93c00", "floats"),
    ("fb3ff199999999999a", "floats"),
    ("fa47c35000", "floats"),
    ("fa7f7fffff", "floats"),
    ("fb7e37e43c8800759c", "floats"),
    ("f97c00", "floats"),
    ("f97e00", "floats"),
    ("fa7fc00000", "floats"),
    ("fb7ff8000000000000", "floats"),
    ("f7", "unsupported simple value 0xf7"),
    ("f0", "unsupported simple value"),
    ("f818", "unsupported simple value"),
    ("f8ff", "unsupported simple value"),
    ("c074323031332d30332d32315432303a30343a30305a", "tags"),
    ("c11a514b67b0", "tags"),
    ("c1fb41d452d9ec200000", "tags"),
    ("d74401020304", "tags"),
    ("d818456449455446", "tags"),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", "tags"),
    ("a201020304", "map key is not text"),
    ("5f42010243030405ff", "indefinite"),
    ("7f657374726561646d696e67ff", "indefinite"),
    ("9fff", "indefinite"),
    ("9f018202039f0405ffff", "indefinite"),
    ("9f01820203820405ff", "indefinite"),
    ("83018202039f0405ff", "indefinite"),
    ("83019f0203ff820405", "indefinite"),
    ("9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", "indefinite"),
    ("bf61610161629f0203ffff", "indefinite"),
    ("826161bf61626163ff", "indefinite"),
    ("bf6346756ef563416d7421ff", "indefinite"),
]


@pytest.mark.parametrize(("hex_", "reason"), APPENDIX_A_REFUSED)
def test_rfc8949_items_outside_the_subset_are_refused(hex_: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode(bytes.fromhex(hex_))


def test_encoder_refuses_values_outside_the_subset() -> None:
    for value, path, reason in [
        (1.0, "$", "floats"),
        (float("nan"), "$", "floats"),
        ({"a": [1, 2.5]}, "$.a[1]", "floats"),
        ({1, 2}, "$", "unsupported type set"),
        ([frozenset()], "$[0]", "unsupported type frozenset"),
        (object(), "$", "unsupported type object"),
        (2**64, "$", "64-bit range"),
        (-(2**64) - 1, "$", "64-bit range"),
        ({"n": [U64 + 1]}, "$.n[0]", "64-bit range"),
        ({1: 2}, "$", "map key 1 is not text"),
        ({"x": {b"k": 1}}, "$.x", "is not text"),
        ({None: 1}, "$", "is not text"),
        ("\ud800", "$", "lone surrogate"),
        (["ok", "a\udfffb"], "$[1]", "lone surrogate"),
        ({"a": {"\ud800": 1}}, "$.a", "lone surrogate"),
    ]:
        with pytest.raises(EncodeError, match=reason) as info:
            encode(value)
        assert info.value.path == path, value


# -- strict decoding --------------------------------------------------------------------

NON_CANONICAL = [
    ("1817", "shortest form"),  # 23 in one extra byte
    ("1800", "shortest form"),
    ("190017", "shortest form"),
    ("1900ff", "shortest form"),
    ("1a0000ffff", "shortest form"),
    ("1b00000000ffffffff", "shortest form"),
    ("3800", "shortest form"),  # -1
    ("39000a", "shortest form"),
    ("580100", "shortest form"),  # h'00' with a one-byte length
    ("7800", "shortest form"),  # "" with a one-byte length
    ("980100", "shortest form"),  # [0]
    ("b800", "shortest form"),  # {}
    ("1c", "reserved"),
    ("1d", "reserved"),
    ("1e", "reserved"),
    ("1f", "indefinite"),
    ("5f40ff", "indefinite"),
    ("7f60ff", "indefinite"),
    ("9fff", "indefinite"),
    ("bfff", "indefinite"),
    ("f9", "floats"),
    ("fa00000000", "floats"),
    ("fb0000000000000000", "floats"),
    ("c000", "tags"),
    ("d81800", "tags"),
    ("f7", "unsupported simple value"),
    ("ff", "unsupported simple value"),
    ("a2616201616102", "not in canonical order"),
    ("a2626161026162" + "01", "not in canonical order"),  # {"aa": 2, "b": 1}
    ("a2616101616102", "duplicate map key 'a'"),
    ("a1010203", "map key is not text"),
    ("a1416101", "map key is not text"),  # bytes key
    ("a1f601", "map key is not text"),
    ("a18001", "map key is not text"),
    ("61ff", "not valid UTF-8"),
    ("62c328", "not valid UTF-8"),
    ("62c080", "not valid UTF-8"),  # overlong NUL
    ("63eda080", "not valid UTF-8"),  # an encoded surrogate
    ("64f4908080", "not valid UTF-8"),  # beyond U+10FFFF
]


@pytest.mark.parametrize(("hex_", "reason"), NON_CANONICAL)
def test_non_canonical_input_is_refused(hex_: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as info:
        decode(bytes.fromhex(hex_))
    assert info.value.path == "$"
    assert info.value.reason
    assert str(info.value).startswith("$: ")


def test_errors_name_the_nested_path() -> None:
    nested = encode({"a": [0, {"b": "x"}]})
    bad = nested.replace(b"\x61x", b"\x61\xff")
    with pytest.raises(DecodeError) as info:
        decode(bad)
    assert info.value.path == "$.a[1].b"
    assert "UTF-8" in info.value.reason
    bad_int = encode({"k": [1, 2]}).replace(b"\x82\x01\x02", b"\x82\x01\x18\x02")
    with pytest.raises(DecodeError, match="shortest") as info:
        decode(bad_int)
    assert info.value.path == "$.k[1]"
    with pytest.raises(DecodeError, match="duplicate") as info:
        decode(bytes.fromhex("a16178" + "a2616101616102"))
    assert info.value.path == "$.x"


@settings(max_examples=100, deadline=None)
@given(values)
def test_every_truncation_is_refused(value: Any) -> None:
    data = encode(value)
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode(data[:cut])


@settings(max_examples=100, deadline=None)
@given(values, st.binary(min_size=1, max_size=4))
def test_trailing_bytes_are_refused(value: Any, extra: bytes) -> None:
    with pytest.raises(DecodeError, match="trailing bytes") as info:
        decode(encode(value) + extra)
    assert info.value.path == "$"


def test_truncated_inputs_say_so() -> None:
    for hex_ in ("18", "19ff", "1a000000", "1b00000000000000", "4201", "6261", "82", "8201"):
        with pytest.raises(DecodeError, match="truncated"):
            decode(bytes.fromhex(hex_))
    # Absurd lengths and counts are refused before anything is allocated.
    for hex_ in ("5bffffffffffffffff", "9bffffffffffffffff", "bbffffffffffffffff00"):
        with pytest.raises(DecodeError, match="truncated"):
            decode(bytes.fromhex(hex_))


def test_empty_and_non_bytes_input() -> None:
    with pytest.raises(DecodeError, match="empty input") as info:
        decode(b"")
    assert info.value.path == "$"
    with pytest.raises(DecodeError, match="expected bytes"):
        decode("00")  # type: ignore[arg-type]
    assert decode(bytearray(b"\x01")) == 1  # type: ignore[arg-type]
    assert decode(memoryview(b"\x41\x00")) == b"\x00"  # type: ignore[arg-type]


def _nested_lists(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _nested_maps(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth):
        value = {"k": value}
    return value


def test_nesting_limit() -> None:
    # The outermost container sits at depth 0, so MAX_DEPTH + 1 levels are fine.
    for build in (_nested_lists, _nested_maps):
        deepest_ok = build(MAX_DEPTH)
        assert decode(encode(deepest_ok)) == deepest_ok
        with pytest.raises(EncodeError, match="nesting deeper"):
            encode(build(MAX_DEPTH + 1))
    ok = b"\x81" * MAX_DEPTH + b"\x80"
    assert decode(ok) == _nested_lists(MAX_DEPTH)
    with pytest.raises(DecodeError, match="nesting deeper") as info:
        decode(b"\x81" * (MAX_DEPTH + 1) + b"\x80")
    assert info.value.path == "$" + "[0]" * (MAX_DEPTH + 1)
    with pytest.raises(DecodeError, match="nesting deeper"):
        decode(b"\xa1\x61k" * (MAX_DEPTH + 1) + b"\xa0")
    # Far deeper input fails cleanly rather than exhausting the Python stack.
    with pytest.raises(DecodeError, match="nesting deeper"):
        decode(b"\x81" * 100_000 + b"\x80")


def test_max_size() -> None:
    data = encode({"frames": [b"\x00" * 100] * 3})
    assert decode(data, max_size=len(data)) == {"frames": [b"\x00" * 100] * 3}
    with pytest.raises(DecodeError, match="more than the limit") as info:
        decode(data, max_size=len(data) - 1)
    assert info.value.path == "$"
    assert str(len(data)) in info.value.reason


# -- fuzzing ----------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    try:
        value = decode(data)
    except DecodeError:
        return
    assert encode(value) == data  # anything accepted is canonical


@settings(max_examples=300, deadline=None)
@given(values, st.data())
def test_mutated_encodings_are_canonical_or_refused(value: Any, data: st.DataObject) -> None:
    raw = bytearray(encode(value))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    assume(bytes(raw) != encode(value))
    try:
        decoded = decode(bytes(raw))
    except DecodeError:
        return
    assert encode(decoded) == bytes(raw)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_into_decode_message(data: bytes) -> None:
    try:
        message = decode_message(data)
    except DecodeError:
        return
    assert message.encode() == data


# -- typed messages ---------------------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1
    GREEN = 2


@dataclass(frozen=True)
class THeader(Message):
    TYPE = "test.codec.header"
    number: int
    previous_hash: bytes


@dataclass(frozen=True)
class TBlock(Message):
    TYPE = "test.codec.block"
    header: THeader
    items: tuple[bytes, ...]
    labels: dict[str, int]
    note: str | None
    color: Color
    sealed: bool
    parent: THeader | None
    children: tuple[THeader, ...]
    by_name: dict[str, THeader]
    maybe_numbers: tuple[int | None, ...]


@dataclass(frozen=True)
class TVersioned(Message):
    """Version 1 called ``name`` ``title`` and had no ``size``."""

    TYPE = "test.codec.versioned"
    VERSION = 2
    SUPPORTED_VERSIONS = (1, 2)
    name: str
    size: int

    @classmethod
    def upgrade(cls, version: int, fields: dict[str, Any]) -> dict[str, Any]:
        lifted = dict(fields)
        if version == 1:
            if "title" in lifted:
                lifted["name"] = lifted.pop("title")
            lifted["size"] = 0
        return lifted


@dataclass(frozen=True)
class TRange(Message):
    TYPE = "test.codec.range"
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}")


headers = st.builds(
    THeader, number=st.integers(-(2**64), U64), previous_hash=st.binary(max_size=32)
)
blocks = st.builds(
    TBlock,
    header=headers,
    items=st.lists(st.binary(max_size=8), max_size=4).map(tuple),
    labels=st.dictionaries(st.text(max_size=5), st.integers(-10, 10), max_size=4),
    note=st.none() | st.text(max_size=10),
    color=st.sampled_from(Color),
    sealed=st.booleans(),
    parent=st.none() | headers,
    children=st.lists(headers, max_size=3).map(tuple),
    by_name=st.dictionaries(st.text(max_size=5), headers, max_size=3),
    maybe_numbers=st.lists(st.none() | st.integers(-(2**64), U64), max_size=4).map(tuple),
)


def a_block(**changes: Any) -> TBlock:
    base: dict[str, Any] = {
        "header": THeader(7, b"\x01" * 32),
        "items": (b"a", b"b"),
        "labels": {"x": 1},
        "note": None,
        "color": Color.GREEN,
        "sealed": True,
        "parent": None,
        "children": (THeader(1, b""), THeader(2, b"\x02")),
        "by_name": {"first": THeader(1, b"")},
        "maybe_numbers": (1, None),
    }
    base.update(changes)
    return TBlock(**base)


@settings(max_examples=150, deadline=None)
@given(blocks)
def test_message_round_trip(block: TBlock) -> None:
    data = block.encode()
    assert data == encode(block.to_wire())
    back = TBlock.decode(data)
    assert back == block
    assert decode_message(data) == block
    assert type(back.items) is tuple and type(back.children) is tuple
    assert type(back.color) is Color
    assert back.encode() == data


def test_message_wire_form() -> None:
    wire = decode(THeader(5, b"h").encode())
    assert wire == {"_t": "test.codec.header", "_v": 1, "number": 5, "previous_hash": b"h"}
    block_wire = decode(a_block().encode())
    assert block_wire["color"] == 2 and type(block_wire["color"]) is int
    assert block_wire["header"]["_t"] == "test.codec.header"
    assert block_wire["items"] == [b"a", b"b"]
    assert message_class("test.codec.block") is TBlock
    assert message_class("test.codec.nope") is None


def _block_wire(**changes: Any) -> dict[str, Any]:
    wire: dict[str, Any] = a_block().to_wire()
    wire.update(changes)
    return wire


def _decode_error(wire: Any, cls: type[Message] = TBlock) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        cls.decode(encode(wire))
    return info.value


def test_unknown_and_missing_fields() -> None:
    err = _decode_error({**THeader(1, b"").to_wire(), "extra": 1, "more": 2}, THeader)
    assert err.path == "$"
    assert "unknown field(s) extra, more" in err.reason
    wire = THeader(1, b"").to_wire()
    del wire["previous_hash"]
    err = _decode_error(wire, THeader)
    assert err.path == "$"
    assert "missing field(s) previous_hash" in err.reason
    nested = _block_wire()
    del nested["header"]["number"]
    err = _decode_error(nested)
    assert err.path == "$.header"
    assert "missing field(s) number" in err.reason


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"header": {**THeader(1, b"").to_wire(), "number": "1"}}, "$.header.number", "int"),
        ({"header": {**THeader(1, b"").to_wire(), "number": True}}, "$.header.number", "bool"),
        (
            {"header": {**THeader(1, b"").to_wire(), "previous_hash": "ab"}},
            "$.header.previous_hash",
            "expected bytes, got text",
        ),
        ({"sealed": 1}, "$.sealed", "expected bool, got int"),
        ({"sealed": None}, "$.sealed", "expected bool, got null"),
        ({"items": [b"a", 1]}, "$.items[1]", "expected bytes, got int"),
        ({"items": b"ab"}, "$.items", "expected array, got bytes"),
        ({"labels": {"x": "1"}}, "$.labels.x", "expected int, got text"),
        ({"labels": [1]}, "$.labels", "expected map, got array"),
        ({"note": 3}, "$.note", "expected str, got int"),
        ({"color": 9}, "$.color", "not a valid Color"),
        ({"color": True}, "$.color", "expected int, got bool"),
        ({"color": "RED"}, "$.color", "expected int, got text"),
        ({"parent": [1]}, "$.parent", "map, got array"),
        ({"header": None}, "$.header", "got null"),
        (
            {"children": [THeader(1, b"").to_wire(), {"_t": "test.codec.header"}]},
            "$.children[1]",
            "version",
        ),
        (
            {"children": [THeader(1, b"").to_wire(), {**THeader(1, b"").to_wire(), "number": b""}]},
            "$.children[1].number",
            "expected int, got bytes",
        ),
        ({"by_name": {"k": {**THeader(1, b"").to_wire(), "number": 1.5}}}, None, "floats"),
        (
            {"by_name": {"k": {**THeader(1, b"").to_wire(), "number": False}}},
            "$.by_name.k.number",
            "bool",
        ),
        ({"header": a_block().to_wire()}, "$.header", "expected message type 'test.codec.header'"),
        ({"maybe_numbers": [None, "x"]}, "$.maybe_numbers[1]", "expected int, got text"),
    ],
)
def test_wrong_types_name_their_path(
    changes: dict[str, Any], path: str | None, reason: str
) -> None:
    wire = _block_wire(**changes)
    if path is None:  # not even encodable
        with pytest.raises(EncodeError, match=reason):
            encode(wire)
        return
    err = _decode_error(wire)
    assert err.path == path
    assert reason in err.reason


def test_wrong_and_unknown_types() -> None:
    with pytest.raises(DecodeError, match=r"expected message type 'test\.codec\.header'") as info:
        THeader.decode(a_block().encode())
    assert not isinstance(info.value, UnknownMessageType)
    with pytest.raises(DecodeError, match=r"expected a test\.codec\.header map, got array"):
        THeader.decode(encode([1]))
    for wire in (
        {"_t": "test.codec.nope", "_v": 1},
        {"_v": 1, "number": 1},
        {"_t": 5, "_v": 1},
        {"_t": b"test.codec.header", "_v": 1},
    ):
        with pytest.raises(UnknownMessageType, match="unknown message type") as unknown:
            decode_message(encode(wire))
        assert unknown.value.path == "$"
    with pytest.raises(DecodeError, match="expected a message map, got array") as info:
        decode_message(encode([1, 2]))
    assert not isinstance(info.value, UnknownMessageType)


def test_versions() -> None:
    wire = THeader(1, b"").to_wire()
    for bad in (0, 2, -1):
        with pytest.raises(UnsupportedVersion, match=r"version .* not supported"):
            THeader.decode(encode({**wire, "_v": bad}))
        with pytest.raises(UnsupportedVersion):
            decode_message(encode({**wire, "_v": bad}))
    for malformed in (True, "1", None):
        with pytest.raises(DecodeError, match="missing or malformed version") as info:
            THeader.decode(encode({**wire, "_v": malformed}))
        assert not isinstance(info.value, UnsupportedVersion)
    del wire["_v"]
    with pytest.raises(DecodeError, match="missing or malformed version"):
        THeader.decode(encode(wire))


def test_older_version_is_upgraded() -> None:
    current = TVersioned("cam-1", 42)
    assert decode(current.encode())["_v"] == 2
    assert TVersioned.decode(current.encode()) == current
    v1 = encode({"_t": "test.codec.versioned", "_v": 1, "title": "cam-1"})
    assert TVersioned.decode(v1) == TVersioned("cam-1", 0)
    assert decode_message(v1) == TVersioned("cam-1", 0)
    # The lifted fields are checked like any other.
    with pytest.raises(DecodeError, match=r"\$\.name: expected str, got int"):
        TVersioned.decode(encode({"_t": "test.codec.versioned", "_v": 1, "title": 3}))
    with pytest.raises(DecodeError, match="missing field"):
        TVersioned.decode(encode({"_t": "test.codec.versioned", "_v": 1}))
    with pytest.raises(DecodeError, match="unknown field"):
        TVersioned.decode(encode({"_t": "test.codec.versioned", "_v": 1, "title": "a", "x": 1}))
    with pytest.raises(UnsupportedVersion, match=r"supported: \(1, 2\)"):
        TVersioned.decode(encode({"_t": "test.codec.versioned", "_v": 3, "name": "a", "size": 1}))


def test_post_init_errors_surface_as_decode_errors() -> None:
    assert TRange.decode(TRange(1, 2).encode()) == TRange(1, 2)
    with pytest.raises(ValueError, match="low 3 > high 2"):
        TRange(3, 2)
    bad = encode({"_t": "test.codec.range", "_v": 1, "low": 3, "high": 2})
    with pytest.raises(DecodeError, match="low 3 > high 2") as info:
        TRange.decode(bad)
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(DecodeError, match="low 3 > high 2"):
        decode_message(bad)


def test_duplicate_type_registration_is_refused() -> None:
    with pytest.raises(TypeError, match=r"'test.codec.header' already used by THeader"):

        @dataclass(frozen=True)
        class Impostor(Message):
            TYPE = "test.codec.header"
            other: str

    assert message_class("test.codec.header") is THeader
    assert THeader.decode(THeader(1, b"x").encode()) == THeader(1, b"x")


def test_message_size_limit() -> None:
    data = a_block().encode()
    assert TBlock.decode(data, max_size=len(data)) == a_block()
    with pytest.raises(DecodeError, match="limit"):
        TBlock.decode(data, max_size=len(data) - 1)
    with pytest.raises(DecodeError, match="limit"):
        decode_message(data, max_size=10)


def test_encoding_a_message_with_a_float_names_the_field() -> None:
    with pytest.raises(EncodeError, match="floats") as info:
        THeader(1.5, b"").encode()  # type: ignore[arg-type]
    assert info.value.path == "$.number"


_field_junk = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["_t", "_v", "number", "x"]), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    type_name=st.sampled_from(
        ["test.codec.header", "test.codec.block", "test.codec.versioned", "test.codec.range"]
    ),
    version=st.sampled_from([1, 2, 3, True, None]),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "number",
                "previous_hash",
                "header",
                "items",
                "labels",
                "note",
                "color",
                "sealed",
                "parent",
                "children",
                "by_name",
                "maybe_numbers",
                "name",
                "title",
                "size",
                "low",
                "high",
            ]
        ),
        _field_junk | headers.map(lambda h: h.to_wire()),
        max_size=12,
    ),
)
def test_structured_junk_only_raises_decode_error(
    type_name: str, version: Any, fields: dict[str, Any]
) -> None:
    data = encode({**fields, "_t": type_name, "_v": version})
    try:
        message = decode_message(data)
    except DecodeError:
        return
    assert message.encode() == encode(message.to_wire())
    assert type_name == type(message).TYPE
