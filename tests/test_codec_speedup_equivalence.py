"""The optimised codec against the straightforward one it replaced.

``canonical.decode``/``encode`` and ``Message.from_wire`` were rewritten for speed (error
paths built only on failure, inline fast paths, per-class decode plans). The behaviour
must not have moved by one byte or one character: this file keeps the previous
implementations as private references (``_ref_*``, copied verbatim apart from names)
and compares both over many seeded random values, random mutations and truncations of
valid encodings, and random corruptions of message wire maps. For every input the two
must give the same value (types included: ``True`` is not ``1``) or raise the same
exception class with the same message and path.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import random
import struct
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, Union

import pytest

from cctvchain.codec import (
    CodecError,
    DecodeError,
    EncodeError,
    Message,
    UnsupportedVersion,
    decode,
    encode,
)
from cctvchain.codec.canonical import MAX_DEPTH

# -- the reference canonical codec (the implementation before the speed-up) ------------

_UINT64_MAX = (1 << 64) - 1


def _ref_head(major: int, n: int) -> bytes:
    mt = major << 5
    if n < 24:
        return bytes((mt | n,))
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25,)) + struct.pack(">H", n)
    if n < 0x100000000:
        return bytes((mt | 26,)) + struct.pack(">I", n)
    return bytes((mt | 27,)) + struct.pack(">Q", n)


def _ref_encode(value: Any) -> bytes:
    out: list[bytes] = []
    _ref_encode_into(value, out, 0, "$")
    return b"".join(out)


def _ref_encode_into(value: Any, out: list[bytes], depth: int, path: str) -> None:
    if depth > MAX_DEPTH:
        raise EncodeError(path, f"nesting deeper than {MAX_DEPTH}")
    if value is None:
        out.append(b"\xf6")
    elif value is True:
        out.append(b"\xf5")
    elif value is False:
        out.append(b"\xf4")
    elif isinstance(value, int):
        if 0 <= value <= _UINT64_MAX:
            out.append(_ref_head(0, int(value)))
        elif -(1 << 64) <= value < 0:
            out.append(_ref_head(1, -1 - int(value)))
        else:
            raise EncodeError(path, "integer outside the 64-bit range")
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out.append(_ref_head(2, len(raw)))
        out.append(raw)
    elif isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncodeError(path, "text is not valid Unicode (lone surrogate)") from exc
        out.append(_ref_head(3, len(raw)))
        out.append(raw)
    elif isinstance(value, list | tuple):
        out.append(_ref_head(4, len(value)))
        for i, item in enumerate(value):
            _ref_encode_into(item, out, depth + 1, f"{path}[{i}]")
    elif isinstance(value, Mapping):
        entries: list[tuple[bytes, Any, str]] = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodeError(path, f"map key {key!r} is not text")
            try:
                encoded_key = _ref_encode(key)
            except EncodeError as exc:
                raise EncodeError(path, f"map key {key!r}: {exc.reason}") from exc
            entries.append((encoded_key, item, key))
        entries.sort(key=lambda entry: entry[0])
        out.append(_ref_head(5, len(entries)))
        for encoded_key, item, key in entries:
            out.append(encoded_key)
            _ref_encode_into(item, out, depth + 1, f"{path}.{key}")
    elif isinstance(value, float):
        raise EncodeError(path, "floats are not allowed in canonical encoding")
    else:
        raise EncodeError(path, f"unsupported type {type(value).__name__}")


def _ref_decode(data: Any, *, max_size: int | None = None) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("$", f"expected bytes, got {type(data).__name__}")
    view = bytes(data)
    if max_size is not None and len(view) > max_size:
        raise DecodeError("$", f"input is {len(view)} bytes, more than the limit of {max_size}")
    if not view:
        raise DecodeError("$", "empty input")
    value, end = _RefDecoder(view).read(0, 0, "$")
    if end != len(view):
        raise DecodeError("$", f"{len(view) - end} trailing bytes after the value")
    return value


class _RefDecoder:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def _argument(self, pos: int, info: int, path: str) -> tuple[int, int]:
        data = self.data
        if info < 24:
            return info, pos
        widths = {24: 1, 25: 2, 26: 4, 27: 8}
        width = widths.get(info)
        if width is None:
            if info == 31:
                raise DecodeError(path, "indefinite lengths are not allowed")
            raise DecodeError(path, f"reserved additional information {info}")
        if pos + width > len(data):
            raise DecodeError(path, "truncated input")
        n = int.from_bytes(data[pos : pos + width], "big")
        minimum = {1: 24, 2: 0x100, 4: 0x10000, 8: 0x100000000}[width]
        if n < minimum:
            raise DecodeError(path, "integer or length not in shortest form")
        return n, pos + width

    def read(self, pos: int, depth: int, path: str) -> tuple[Any, int]:
        data = self.data
        if depth > MAX_DEPTH:
            raise DecodeError(path, f"nesting deeper than {MAX_DEPTH}")
        if pos >= len(data):
            raise DecodeError(path, "truncated input")
        initial = data[pos]
        major, info = initial >> 5, initial & 0x1F
        pos += 1
        if major == 7:
            if initial == 0xF4:
                return False, pos
            if initial == 0xF5:
                return True, pos
            if initial == 0xF6:
                return None, pos
            if info in (25, 26, 27):
                raise DecodeError(path, "floats are not allowed")
            raise DecodeError(path, f"unsupported simple value 0x{initial:02x}")
        if major == 6:
            raise DecodeError(path, "tags are not allowed")
        n, pos = self._argument(pos, info, path)
        if major == 0:
            return n, pos
        if major == 1:
            return -1 - n, pos
        if major in (2, 3):
            end = pos + n
            if end > len(data):
                raise DecodeError(path, "truncated input")
            raw = data[pos:end]
            if major == 2:
                return raw, end
            try:
                return raw.decode("utf-8"), end
            except UnicodeDecodeError as exc:
                raise DecodeError(path, "text is not valid UTF-8") from exc
        if major == 4:
            if n > len(data) - pos:
                raise DecodeError(path, "truncated input")
            items = []
            for i in range(n):
                item, pos = self.read(pos, depth + 1, f"{path}[{i}]")
                items.append(item)
            return items, pos
        if n > (len(data) - pos) // 2:
            raise DecodeError(path, "truncated input")
        result: dict[str, Any] = {}
        previous_key: bytes | None = None
        for _ in range(n):
            key_start = pos
            if pos >= len(data) or data[pos] >> 5 != 3:
                raise DecodeError(path, "map key is not text")
            key, pos = self.read(pos, depth + 1, path)
            encoded_key = data[key_start:pos]
            if previous_key is not None:
                if encoded_key == previous_key:
                    raise DecodeError(path, f"duplicate map key {key!r}")
                if encoded_key < previous_key:
                    raise DecodeError(path, f"map keys not in canonical order at {key!r}")
            previous_key = encoded_key
            result[key], pos = self.read(pos, depth + 1, f"{path}.{key}")
        return result, pos


# -- the reference Message.from_wire -----------------------------------------------------

M = TypeVar("M", bound=Message)
_Conv = Callable[[Any, str], Any]


def _ref_kind(value: Any) -> str:
    names = {dict: "map", list: "array", bytes: "bytes", str: "text", bool: "bool"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


def _ref_from_wire(cls: type[M], wire: Any, path: str = "$") -> M:
    if not isinstance(wire, dict):
        raise DecodeError(path, f"expected a {cls.TYPE} map, got {_ref_kind(wire)}")
    type_name = wire.get("_t")
    if type_name != cls.TYPE:
        raise DecodeError(path, f"expected message type {cls.TYPE!r}, got {type_name!r}")
    version = wire.get("_v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise DecodeError(path, f"{cls.TYPE}: missing or malformed version")
    supported = cls.SUPPORTED_VERSIONS or (cls.VERSION,)
    if version not in supported:
        raise UnsupportedVersion(
            path, f"{cls.TYPE} version {version} is not supported (supported: {supported})"
        )
    fields = {k: v for k, v in wire.items() if k not in ("_t", "_v")}
    if version != cls.VERSION:
        fields = cls.upgrade(version, fields)
    converters = _ref_converters(cls)
    expected = {name for name, _ in converters}
    unknown = sorted(set(fields) - expected)
    if unknown:
        raise DecodeError(path, f"{cls.TYPE}: unknown field(s) {', '.join(unknown)}")
    missing = sorted(expected - set(fields))
    if missing:
        raise DecodeError(path, f"{cls.TYPE}: missing field(s) {', '.join(missing)}")
    values = {name: convert(fields[name], f"{path}.{name}") for name, convert in converters}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise DecodeError(path, f"{cls.TYPE}: {exc}") from exc


@functools.cache
def _ref_converters(cls: type[Message]) -> list[tuple[str, _Conv]]:
    hints = typing.get_type_hints(cls)
    return [(f.name, _ref_compile(hints[f.name])) for f in dataclasses.fields(cls)]


def _ref_compile(annotation: Any) -> _Conv:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        inner = _ref_compile(next(a for a in args if a is not type(None)))
        return lambda value, path: None if value is None else inner(value, path)
    if origin is tuple:
        item_in = _ref_compile(args[0])

        def tuple_in(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                raise DecodeError(path, f"expected array, got {_ref_kind(value)}")
            return tuple(item_in(item, f"{path}[{i}]") for i, item in enumerate(value))

        return tuple_in
    if origin is dict:
        value_in = _ref_compile(args[1])

        def dict_in(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise DecodeError(path, f"expected map, got {_ref_kind(value)}")
            return {k: value_in(v, f"{path}.{k}") for k, v in value.items()}

        return dict_in
    if isinstance(annotation, type) and issubclass(annotation, Message):
        message_cls = annotation
        return lambda value, path: _ref_from_wire(message_cls, value, path)
    if isinstance(annotation, type) and issubclass(annotation, enum.IntEnum):
        enum_cls = annotation

        def enum_in(value: Any, path: str) -> Any:
            if not isinstance(value, int) or isinstance(value, bool):
                raise DecodeError(path, f"expected int, got {_ref_kind(value)}")
            try:
                return enum_cls(value)
            except ValueError as exc:
                raise DecodeError(path, f"{value} is not a valid {enum_cls.__name__}") from exc

        return enum_in
    scalar = annotation

    def scalar_in(value: Any, path: str) -> Any:
        if type(value) is not scalar:
            raise DecodeError(path, f"expected {scalar.__name__}, got {_ref_kind(value)}")
        return value

    return scalar_in


# -- comparing outcomes ------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equality that also tells True from 1, tuple from list and an enum from its int."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, Message):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return bool(a == b)


def outcome(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """("ok", value) or ("error", (class, message, path, reason))."""
    try:
        return "ok", fn(*args, **kwargs)
    except CodecError as exc:
        return "error", (type(exc), str(exc), exc.path, exc.reason)


def check(new: Callable[..., Any], ref: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """``new`` and ``ref`` give the same value or raise the same error for the same
    arguments; return "ok" or the error's reason."""
    got, expected = outcome(new, args, kwargs), outcome(ref, args, kwargs)
    assert got[0] == expected[0], (args, kwargs, got, expected)
    if got[0] == "ok":
        assert same(got[1], expected[1]), (args, kwargs, got[1], expected[1])
        return "ok"
    assert got[1] == expected[1], (args, kwargs)
    return str(got[1][3])


# Every reason the decoder gives for bytes it refuses (a fragment of each).
DECODE_REASONS = [
    "truncated input",
    "integer or length not in shortest form",
    "indefinite lengths are not allowed",
    "reserved additional information",
    "floats are not allowed",
    "tags are not allowed",
    "unsupported simple value",
    "text is not valid UTF-8",
    "map key is not text",
    "duplicate map key",
    "map keys not in canonical order",
    "trailing bytes after the value",
]


def reasons_reached(reasons: set[str]) -> set[str]:
    return {fragment for fragment in DECODE_REASONS if any(fragment in r for r in reasons)}


# -- random values and mutations ---------------------------------------------------------

INTERESTING_INTS = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
INTERESTING_INTS += [-1 - n for n in INTERESTING_INTS]


def random_text(rnd: random.Random) -> str:
    alphabet = "abcxyz_ ÿé€😀\u0000\u007f"
    size = rnd.choice([0, 1, 2, 5, 23, 24, 30, 300] if rnd.random() < 0.1 else [0, 1, 2, 5])
    return "".join(rnd.choice(alphabet) for _ in range(size))


def random_value(rnd: random.Random, depth: int = 0) -> Any:
    roll = rnd.random()
    if depth < 4 and roll < 0.25:
        return [random_value(rnd, depth + 1) for _ in range(rnd.choice([0, 1, 2, 3, 24]))]
    if depth < 4 and roll < 0.5:
        keys = [random_text(rnd)[:6] for _ in range(rnd.choice([0, 1, 2, 4]))]
        return {key: random_value(rnd, depth + 1) for key in keys}
    kind = rnd.randrange(7)
    if kind == 0:
        return rnd.choice([None, True, False])
    if kind == 1:
        return rnd.choice(INTERESTING_INTS)
    if kind == 2:
        return rnd.randrange(-(2**64), 2**64)
    if kind == 3:
        return rnd.randrange(-300, 300)
    if kind == 4:
        return random_text(rnd)
    return rnd.randbytes(rnd.choice([0, 1, 23, 24, 255, 256]))


def nested(depth: int, leaf: Any, rnd: random.Random) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if rnd.random() < 0.5 else {"k": value}
    return value


SPECIAL_BYTES = [0x00, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1F, 0x38, 0x40, 0x58, 0x5F, 0x60]
SPECIAL_BYTES += [0x61, 0x78, 0x7F, 0x80, 0x81, 0x98, 0x9F, 0xA0, 0xA1, 0xB8, 0xBF, 0xC0, 0xD8]
SPECIAL_BYTES += [0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFF, 0xC3, 0xED, 0x80]


def mutate(data: bytes, rnd: random.Random) -> bytes:
    """One to three random edits: flip, replace, insert, delete, cut or duplicate."""
    out = bytearray(data)
    for _ in range(rnd.choice([1, 1, 2, 3])):
        if not out:
            out.append(rnd.randrange(256))
            continue
        at = rnd.randrange(len(out))
        edit = rnd.randrange(7)
        if edit == 0:
            out[at] ^= 1 << rnd.randrange(8)
        elif edit == 1:
            out[at] = rnd.choice(SPECIAL_BYTES)
        elif edit == 2:
            out.insert(at, rnd.choice([*SPECIAL_BYTES, rnd.randrange(256)]))
        elif edit == 3:
            del out[at]
        elif edit == 4:
            del out[at:]
        elif edit == 5:
            end = min(len(out), at + rnd.randrange(1, 8))
            out[at:at] = out[at:end]
        else:
            out[at] = rnd.randrange(256)
    return bytes(out)


# -- canonical decode ----------------------------------------------------------------------


def test_decode_matches_the_reference_on_random_valid_values() -> None:
    rnd = random.Random(20261127)
    for _ in range(3000):
        data = _ref_encode(random_value(rnd))
        assert check(decode, _ref_decode, data) == "ok"


def test_decode_matches_the_reference_on_mutations_and_truncations() -> None:
    rnd = random.Random(1127)
    refused = 0
    reasons: set[str] = set()
    for _ in range(2500):
        data = _ref_encode(random_value(rnd))
        candidates = [mutate(data, rnd) for _ in range(6)]
        candidates += [data[: rnd.randrange(len(data) + 1)] for _ in range(2)]
        candidates.append(data + bytes([rnd.randrange(256)]))
        for bad in candidates:
            result = check(decode, _ref_decode, bad)
            if result != "ok":
                refused += 1
                reasons.add(result)
    # The mutations do reach the error paths, every one of them.
    assert refused > 10000
    assert reasons_reached(reasons) == set(DECODE_REASONS)


def test_decode_matches_the_reference_on_random_bytes() -> None:
    rnd = random.Random(7)
    for _ in range(20000):
        data = bytes(rnd.choice([*SPECIAL_BYTES, rnd.randrange(256)]) for _ in range(12))
        data = data[: rnd.randrange(1, 13)]
        check(decode, _ref_decode, data)


def test_decode_matches_the_reference_at_the_depth_limit() -> None:
    rnd = random.Random(64)
    reasons: set[str] = set()
    for depth in range(MAX_DEPTH - 2, MAX_DEPTH + 3):
        for leaf in [0, "x", b"y", [], {}, [1, 2], {"a": 1, "b": [3]}, None, -5]:
            for _ in range(4):
                # Built by hand: the encoder refuses the deeper ones.
                data = _ref_encode(leaf)
                for _ in range(depth):
                    data = (b"\x81" + data) if rnd.random() < 0.5 else (b"\xa1\x61k" + data)
                for bad in [data, *(mutate(data, rnd) for _ in range(5))]:
                    reasons.add(check(decode, _ref_decode, bad))
    # A map at the limit whose key is not text, or is text: which error comes first.
    deep = b"\x81" * MAX_DEPTH
    for tail in [b"\xa1\x01\x02", b"\xa1\x61a\x01", b"\xa1", b"\xa1\x78", b"\x81\x00", b"\x80"]:
        data = deep + tail
        reasons.add(check(decode, _ref_decode, data))
    assert f"nesting deeper than {MAX_DEPTH}" in reasons
    assert "map key is not text" in reasons


def test_decode_matches_the_reference_for_other_input_types_and_limits() -> None:
    rnd = random.Random(3)
    for _ in range(300):
        data = _ref_encode(random_value(rnd))
        for form in (bytes, bytearray, memoryview):
            view = form(data)
            limit = rnd.choice([None, 0, len(data) - 1, len(data), len(data) + 1])
            check(decode, _ref_decode, view, max_size=limit)
        # Byte and text values taken from a memoryview are still bytes and str.
        decoded = decode(memoryview(data))
        assert same(decoded, _ref_decode(data))
    for not_bytes in ["text", 1, None, [b"x"], bytearray]:
        check(decode, _ref_decode, not_bytes)
    for empty in (b"", bytearray(), memoryview(b"")):
        check(decode, _ref_decode, empty)


# -- canonical encode ----------------------------------------------------------------------


class Shade(enum.IntEnum):
    DARK = 1
    LIGHT = 300


class Label(enum.StrEnum):
    GATE = "gate"
    LOBBY = "lobby"


def random_encodable(rnd: random.Random, depth: int = 0) -> Any:
    """Values the encoder accepts, in every Python form it takes, and some it refuses."""
    roll = rnd.random()
    if depth < 4 and roll < 0.2:
        items = [random_encodable(rnd, depth + 1) for _ in range(rnd.choice([0, 1, 3, 24]))]
        return tuple(items) if rnd.random() < 0.3 else items
    if depth < 4 and roll < 0.4:
        keys: list[Any] = [random_text(rnd)[:6] for _ in range(rnd.choice([0, 1, 3, 8]))]
        if rnd.random() < 0.1:
            keys.append(rnd.choice([Label.GATE, "\ud800", 1, b"k", None, ("t",)]))
        mapping = {key: random_encodable(rnd, depth + 1) for key in keys}
        return types.MappingProxyType(mapping) if rnd.random() < 0.1 else mapping
    if rnd.random() < 0.04:
        return rnd.choice(
            [1.5, float("nan"), 2**64, -(2**64) - 1, {1, 2}, object(), "a\udfffb", Label.LOBBY]
        )
    kind = rnd.randrange(5)
    if kind == 0:
        return rnd.choice([Shade.DARK, Shade.LIGHT, True, False, None])
    if kind == 1:
        raw = rnd.randbytes(rnd.choice([0, 5, 24, 300]))
        return rnd.choice([raw, bytearray(raw), memoryview(raw)])
    return random_value(rnd, 4)


def test_encode_matches_the_reference() -> None:
    rnd = random.Random(99)
    refused = 0
    for _ in range(4000):
        value = random_encodable(rnd)
        if check(encode, _ref_encode, value) != "ok":
            refused += 1
    assert refused > 100
    for depth in range(MAX_DEPTH - 1, MAX_DEPTH + 3):
        for leaf in [0, [], {}, "x", 1.5]:
            value = nested(depth, leaf, rnd)
            check(encode, _ref_encode, value)


def test_encode_then_decode_is_the_identity_on_valid_encodings() -> None:
    rnd = random.Random(5)
    for _ in range(1000):
        data = _ref_encode(random_value(rnd))
        assert encode(decode(data)) == data


# -- Message.from_wire ---------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedLeaf(Message):
    TYPE = "test.speedup.leaf"
    name: str
    blob: bytes
    count: int
    flag: bool

    def __post_init__(self) -> None:
        if self.count == 13:
            raise ValueError("13 is refused")


@dataclass(frozen=True)
class SpeedTree(Message):
    TYPE = "test.speedup.tree"
    shade: Shade
    leaf: SpeedLeaf
    maybe: SpeedLeaf | None
    leaves: tuple[SpeedLeaf, ...]
    words: tuple[str, ...]
    numbers: tuple[int, ...]
    optional_numbers: tuple[int | None, ...]
    by_name: dict[str, SpeedLeaf]
    counts: dict[str, int]
    note: str | None


@dataclass(frozen=True)
class SpeedVersioned(Message):
    TYPE = "test.speedup.versioned"
    VERSION = 3
    SUPPORTED_VERSIONS = (1, 3)
    tree: SpeedTree
    extra: int

    @classmethod
    def upgrade(cls, version: int, fields: dict[str, Any]) -> dict[str, Any]:
        fields = dict(fields)
        if "old_extra" in fields:
            fields["extra"] = fields.pop("old_extra")
        return fields


def ref_from_wire(wire: Any, path: str = "$") -> SpeedVersioned:
    return _ref_from_wire(SpeedVersioned, wire, path)


def ref_decode_message(data: bytes) -> SpeedVersioned:
    return _ref_from_wire(SpeedVersioned, _ref_decode(data))


def random_leaf(rnd: random.Random) -> SpeedLeaf:
    return SpeedLeaf(random_text(rnd)[:5], rnd.randbytes(3), rnd.randrange(12), rnd.random() < 0.5)


def random_tree(rnd: random.Random) -> SpeedTree:
    return SpeedTree(
        rnd.choice(list(Shade)),
        random_leaf(rnd),
        random_leaf(rnd) if rnd.random() < 0.5 else None,
        tuple(random_leaf(rnd) for _ in range(rnd.randrange(3))),
        tuple(random_text(rnd)[:3] for _ in range(rnd.randrange(3))),
        tuple(rnd.randrange(-5, 5) for _ in range(rnd.randrange(3))),
        tuple(rnd.choice([None, 1, 2]) for _ in range(rnd.randrange(3))),
        {random_text(rnd)[:3]: random_leaf(rnd) for _ in range(rnd.randrange(3))},
        {random_text(rnd)[:3]: rnd.randrange(9) for _ in range(rnd.randrange(3))},
        rnd.choice([None, "n"]),
    )


WIRE_REPLACEMENTS: list[Any] = [None, True, False, 0, 1, 13, 300, -1, "", "x", b"", b"x"]
WIRE_REPLACEMENTS += [[], [1], ["a"], [None], {}, {"a": 1}, {"_t": "test.speedup.leaf"}]
WIRE_REPLACEMENTS += ["test.speedup.leaf", "test.speedup.tree", 2, 3, 4]


def replacement(rnd: random.Random) -> Any:
    """A fresh copy of one of the replacement values (never shared between edits)."""
    return copy.deepcopy(rnd.choice(WIRE_REPLACEMENTS))


def maps_in(wire: Any) -> list[dict[str, Any]]:
    """Every map inside a wire value (the value itself included)."""
    found: list[dict[str, Any]] = []
    if isinstance(wire, dict):
        found.append(wire)
        for item in wire.values():
            found += maps_in(item)
    elif isinstance(wire, list):
        for item in wire:
            found += maps_in(item)
    return found


def corrupt(wire: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """A deep copy of ``wire`` with one to three random edits in random nested maps."""
    wire = decode(encode(wire))  # a fresh copy
    for _ in range(rnd.choice([1, 1, 2, 3])):
        target = rnd.choice(maps_in(wire))
        edit = rnd.randrange(4)
        if edit == 0 and target:
            target[rnd.choice(list(target))] = replacement(rnd)
        elif edit == 1 and target:
            del target[rnd.choice(list(target))]
        elif edit == 2:
            target[rnd.choice(["zz", "old_extra", "extra", "leaf", "_v"])] = replacement(rnd)
        else:
            # An array item or a map value deeper down replaced.
            for value in target.values():
                if isinstance(value, list) and value:
                    value[rnd.randrange(len(value))] = replacement(rnd)
                    break
    return wire


def test_from_wire_matches_the_reference_on_valid_messages() -> None:
    rnd = random.Random(11)
    for _ in range(500):
        message = SpeedVersioned(random_tree(rnd), rnd.randrange(100))
        wire = message.to_wire()
        assert check(SpeedVersioned.from_wire, ref_from_wire, wire) == "ok"
        assert SpeedVersioned.from_wire(wire) == message
        # The older supported layout goes through upgrade().
        old = dict(wire, _v=1)
        old["old_extra"] = old.pop("extra")
        assert check(SpeedVersioned.from_wire, ref_from_wire, old) == "ok"
        assert SpeedVersioned.from_wire(old) == message


def test_from_wire_matches_the_reference_on_corrupted_wire_maps() -> None:
    rnd = random.Random(12)
    refused = 0
    for _ in range(3000):
        wire = corrupt(SpeedVersioned(random_tree(rnd), rnd.randrange(100)).to_wire(), rnd)
        path = rnd.choice(["$", "$.inner[3]"])
        if check(SpeedVersioned.from_wire, ref_from_wire, wire, path) != "ok":
            refused += 1
    assert refused > 1500


@pytest.mark.parametrize("cls", [SpeedLeaf, SpeedTree, SpeedVersioned])
def test_from_wire_matches_the_reference_on_non_maps(cls: type[Message]) -> None:
    for value in WIRE_REPLACEMENTS:
        check(cls.from_wire, functools.partial(_ref_from_wire, cls), value)


def test_message_decode_matches_the_reference_on_mutated_bytes() -> None:
    rnd = random.Random(13)
    for _ in range(1500):
        data = SpeedVersioned(random_tree(rnd), rnd.randrange(100)).encode()
        for bad in [data, *(mutate(data, rnd) for _ in range(4))]:
            check(SpeedVersioned.decode, ref_decode_message, bad)


@dataclass(frozen=True)
class SpeedOddVersions(Message):
    """Misconfigured on purpose: its own VERSION is not among the supported ones."""

    TYPE = "test.speedup.odd_versions"
    VERSION = 2
    SUPPORTED_VERSIONS = (1,)
    n: int


@dataclass(frozen=True)
class SpeedReservedName(Message):
    """A field named like the version key: it can never be given, so always missing."""

    TYPE = "test.speedup.reserved_name"
    _v: int
    n: int


@pytest.mark.parametrize("cls", [SpeedOddVersions, SpeedReservedName])
def test_from_wire_matches_the_reference_on_odd_declarations(cls: type[Message]) -> None:
    for version in (1, 2, 3):
        for extra in ({}, {"n": 1}, {"n": 1, "m": 2}, {"n": "x"}):
            wire = {"_t": cls.TYPE, "_v": version, **extra}
            check(cls.from_wire, functools.partial(_ref_from_wire, cls), wire)
