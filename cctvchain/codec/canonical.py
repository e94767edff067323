"""The one canonical encoder: every byte that is hashed or signed comes from here.

The format is the deterministic subset of CBOR (RFC 8949 §4.2.1, "core deterministic
encoding"): shortest-form integers and lengths, definite lengths only, map keys sorted
by their encoded bytes, no floats, no tags, no undefined. We restrict it further so that
one value has exactly one encoding and one Python form:

* ``None``, ``bool``, ``int`` (within CBOR's 64-bit range), ``str``, ``bytes``,
  ``list``/``tuple`` (an array) and ``dict`` with ``str`` keys (a map);
* bytes are always a CBOR byte string, text always valid UTF-8.

The decoder is strict: it refuses anything the encoder would not have produced
(non-shortest lengths, unsorted or duplicate keys, floats, tags, trailing bytes, ...),
so ``encode(decode(b)) == b`` holds for every accepted ``b``. Hand-written rather than
a CBOR library because the bytes we hash must not change with a third-party release,
and a library that accepts non-canonical input would let two encodings of one value in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cctvchain.codec.errors import DecodeError, EncodeError

MAX_DEPTH = 64
_UINT64_MAX = (1 << 64) - 1

Value = Any  # None | bool | int | str | bytes | list[Value] | tuple[Value, ...] | dict[str, Value]

_MAJOR_UINT = 0
_MAJOR_NEGINT = 1
_MAJOR_BYTES = 2
_MAJOR_TEXT = 3
_MAJOR_ARRAY = 4
_MAJOR_MAP = 5
_MAJOR_SIMPLE = 7

_FALSE = b"\xf4"
_TRUE = b"\xf5"
_NULL = b"\xf6"


def _head(major: int, n: int) -> bytes:
    """The shortest CBOR head for a major type and an argument."""
    mt = major << 5
    if n < 24:
        return bytes((mt | n,))
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((mt | 26,)) + n.to_bytes(4, "big")
    return bytes((mt | 27,)) + n.to_bytes(8, "big")


# Encoded map keys by key: the same few field names ("_t", "_v", "key", ...) are encoded
# over and over (every message is a map). Bounded; cleared when full.
_KEY_CACHE: dict[str, bytes] = {}
_KEY_CACHE_MAX = 4096


class _EncodeFailure(Exception):
    """An :class:`EncodeError` on its way out: the path is only assembled if one is
    raised (``segments`` innermost first), so the common case builds no path strings."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str] = []

    def error(self) -> EncodeError:
        return EncodeError("$" + "".join(reversed(self.segments)), self.reason)


def encode(value: Value) -> bytes:
    """Encode ``value`` canonically; raise :class:`EncodeError` for unsupported input."""
    out: list[bytes] = []
    try:
        _encode_into(value, out, 0)
    except _EncodeFailure as failure:
        raise failure.error() from failure.__cause__
    return b"".join(out)


def _encode_key(key: str) -> bytes:
    encoded = _KEY_CACHE.get(key)
    if encoded is None:
        try:
            raw = key.encode("utf-8")
        except UnicodeEncodeError as exc:  # reported where the map is
            reason = f"map key {key!r}: text is not valid Unicode (lone surrogate)"
            raise _EncodeFailure(reason) from exc
        encoded = _head(_MAJOR_TEXT, len(raw)) + raw
        if len(_KEY_CACHE) >= _KEY_CACHE_MAX:
            _KEY_CACHE.clear()
        # str subclasses (a StrEnum member) would keep their type alive in the cache and
        # hash/compare as their str value anyway: store plain str keys only.
        if type(key) is str:
            _KEY_CACHE[key] = encoded
    return encoded


def _encode_into(value: Value, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _EncodeFailure(f"nesting deeper than {MAX_DEPTH}")
    kind = type(value)
    # The exact types first (one identity test each); subclasses (IntEnum members,
    # bytearray, tuple, Mapping, ...) take the general branches below.
    if kind is str:
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _EncodeFailure("text is not valid Unicode (lone surrogate)") from exc
        n = len(raw)
        out.append(bytes((0x60 | n,)) if n < 24 else _head(_MAJOR_TEXT, n))
        out.append(raw)
    elif kind is bytes:
        n = len(value)
        out.append(bytes((0x40 | n,)) if n < 24 else _head(_MAJOR_BYTES, n))
        out.append(value)
    elif kind is dict:
        _encode_map(value, out, depth)
    elif kind is list or kind is tuple:
        _encode_array(value, out, depth)
    # bool before int: bool is a subclass of int.
    elif value is None:
        out.append(_NULL)
    elif value is True:
        out.append(_TRUE)
    elif value is False:
        out.append(_FALSE)
    elif isinstance(value, int):
        if 0 <= value <= _UINT64_MAX:
            out.append(_head(_MAJOR_UINT, int(value)))
        elif -(1 << 64) <= value < 0:
            out.append(_head(_MAJOR_NEGINT, -1 - int(value)))
        else:
            raise _EncodeFailure("integer outside the 64-bit range")
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out.append(_head(_MAJOR_BYTES, len(raw)))
        out.append(raw)
    elif isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _EncodeFailure("text is not valid Unicode (lone surrogate)") from exc
        out.append(_head(_MAJOR_TEXT, len(raw)))
        out.append(raw)
    elif isinstance(value, list | tuple):
        _encode_array(value, out, depth)
    elif isinstance(value, Mapping):
        _encode_map(value, out, depth)
    elif isinstance(value, float):
        raise _EncodeFailure("floats are not allowed in canonical encoding")
    else:
        raise _EncodeFailure(f"unsupported type {type(value).__name__}")


def _encode_array(value: list[Value] | tuple[Value, ...], out: list[bytes], depth: int) -> None:
    out.append(_head(_MAJOR_ARRAY, len(value)))
    depth += 1
    i = 0
    try:
        for i, item in enumerate(value):  # noqa: B007 (i names the failing item)
            _encode_into(item, out, depth)
    except _EncodeFailure as failure:
        failure.segments.append(f"[{i}]")
        raise


def _encode_map(value: Mapping[Any, Value], out: list[bytes], depth: int) -> None:
    entries: list[tuple[bytes, Value, str]] = []
    for key, item in value.items():
        if not isinstance(key, str):
            raise _EncodeFailure(f"map key {key!r} is not text")
        entries.append((_encode_key(key), item, key))
    # Canonical order: by the encoded key (RFC 8949 §4.2.1). Distinct str keys have
    # distinct encodings, so the sort never compares the values.
    entries.sort(key=_first)
    out.append(_head(_MAJOR_MAP, len(entries)))
    depth += 1
    for encoded_key, item, key in entries:
        out.append(encoded_key)
        try:
            _encode_into(item, out, depth)
        except _EncodeFailure as failure:
            failure.segments.append(f".{key}")
            raise


def _first(entry: tuple[bytes, Value, str]) -> bytes:
    return entry[0]


def decode(data: bytes, *, max_size: int | None = None) -> Value:
    """Decode canonical bytes; raise :class:`DecodeError` for anything non-canonical.

    Arrays decode to ``list`` and maps to ``dict``.
    """
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError("$", f"expected bytes, got {type(data).__name__}")
        # One copy up front so that every byte and text value sliced out is ``bytes``
        # (``bytes`` input is used as is: it is immutable).
        data = bytes(data)
    size = len(data)
    if max_size is not None and size > max_size:
        raise DecodeError("$", f"input is {size} bytes, more than the limit of {max_size}")
    if not size:
        raise DecodeError("$", "empty input")
    try:
        value, end = _read(data, 0, 0)
    except _DecodeFailure as failure:
        raise failure.error() from failure.__cause__
    if end != size:
        raise DecodeError("$", f"{size - end} trailing bytes after the value")
    return value


class _DecodeFailure(Exception):
    """A :class:`DecodeError` on its way out. Each array or map it passes through adds
    its step (``[i]``, ``.key``) to ``segments`` (innermost first), so the path is built
    only for input that fails, never for every item of input that decodes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str] = []

    def error(self) -> DecodeError:
        return DecodeError("$" + "".join(reversed(self.segments)), self.reason)


# Argument widths and the smallest value each may carry (smaller ones have a shorter
# form), by additional information 24..27.
_WIDTH = (1, 2, 4, 8)
_MINIMUM = (24, 0x100, 0x10000, 0x100000000)


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    """The argument of a head whose additional information is ``info`` >= 24, read at
    ``pos`` (just after the initial byte); and the position after it."""
    if info > 27:
        if info == 31:
            raise _DecodeFailure("indefinite lengths are not allowed")
        raise _DecodeFailure(f"reserved additional information {info}")
    end = pos + _WIDTH[info - 24]
    if end > len(data):
        raise _DecodeFailure("truncated input")
    n = data[pos] if info == 24 else int.from_bytes(data[pos:end], "big")
    if n < _MINIMUM[info - 24]:
        raise _DecodeFailure("integer or length not in shortest form")
    return n, end


def _read(data: bytes, pos: int, depth: int) -> tuple[Value, int]:
    """The value starting at ``pos`` (nested ``depth`` deep) and the position after it."""
    if depth > MAX_DEPTH:
        raise _DecodeFailure(f"nesting deeper than {MAX_DEPTH}")
    if pos >= len(data):
        raise _DecodeFailure("truncated input")
    initial = data[pos]
    major = initial >> 5
    info = initial & 0x1F
    pos += 1
    if major >= 6:
        if initial == 0xF4:
            return False, pos
        if initial == 0xF5:
            return True, pos
        if initial == 0xF6:
            return None, pos
        if major == 6:
            raise _DecodeFailure("tags are not allowed")
        if info in (25, 26, 27):
            raise _DecodeFailure("floats are not allowed")
        raise _DecodeFailure(f"unsupported simple value 0x{initial:02x}")
    if info < 24:
        n = info
    else:
        n, pos = _argument(data, pos, info)
    if major == _MAJOR_TEXT:
        end = pos + n
        if end > len(data):
            raise _DecodeFailure("truncated input")
        try:
            return data[pos:end].decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise _DecodeFailure("text is not valid UTF-8") from exc
    if major == _MAJOR_BYTES:
        end = pos + n
        if end > len(data):
            raise _DecodeFailure("truncated input")
        return data[pos:end], end
    if major == _MAJOR_UINT:
        return n, pos
    if major == _MAJOR_NEGINT:
        return -1 - n, pos
    if major == _MAJOR_ARRAY:
        return _read_array(data, pos, depth + 1, n)
    return _read_map(data, pos, depth + 1, n)


def _read_array(data: bytes, pos: int, depth: int, n: int) -> tuple[list[Value], int]:
    # Each item takes at least one byte: refuse absurd counts before allocating.
    if n > len(data) - pos:
        raise _DecodeFailure("truncated input")
    items: list[Value] = []
    append = items.append
    i = 0
    try:
        for i in range(n):  # noqa: B007 (i names the failing item)
            item, pos = _read(data, pos, depth)
            append(item)
    except _DecodeFailure as failure:
        failure.segments.append(f"[{i}]")
        raise
    return items, pos


# Short map keys by their encoding (head included): the same field names come back in
# every message. Besides skipping a UTF-8 decode, handing out the same str object each
# time makes the dict lookups of Message.from_wire cheaper (identical keys compare by
# identity). Bounded (keys come from the input); cleared when full.
_DECODED_KEYS: dict[bytes, str] = {}


def _read_map(data: bytes, pos: int, depth: int, n: int) -> tuple[dict[str, Value], int]:
    """A map of ``n`` entries whose keys and values are ``depth`` deep. Errors in a key
    are reported at the map's path, errors in a value at ``.key``."""
    size = len(data)
    # Each entry takes at least two bytes: refuse absurd counts before allocating.
    if n > (size - pos) // 2:
        raise _DecodeFailure("truncated input")
    result: dict[str, Value] = {}
    previous_key = b""  # every encoded key is longer, so the first one is never refused
    for _ in range(n):
        key_start = pos
        if pos >= size or data[pos] >> 5 != _MAJOR_TEXT:
            raise _DecodeFailure("map key is not text")
        info = data[pos] & 0x1F
        if info < 24 and depth <= MAX_DEPTH:
            # The common short key, read here rather than by _read (same checks).
            pos += 1 + info
            if pos > size:
                raise _DecodeFailure("truncated input")
            encoded_key = data[key_start:pos]
            key = _DECODED_KEYS.get(encoded_key)
            if key is None:
                try:
                    key = data[key_start + 1 : pos].decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _DecodeFailure("text is not valid UTF-8") from exc
                if len(_DECODED_KEYS) >= _KEY_CACHE_MAX:
                    _DECODED_KEYS.clear()
                _DECODED_KEYS[encoded_key] = key
        else:
            key, pos = _read(data, pos, depth)
            encoded_key = data[key_start:pos]
        if encoded_key <= previous_key:
            if encoded_key == previous_key:
                raise _DecodeFailure(f"duplicate map key {key!r}")
            raise _DecodeFailure(f"map keys not in canonical order at {key!r}")
        previous_key = encoded_key
        try:
            result[key], pos = _read(data, pos, depth)
        except _DecodeFailure as failure:
            failure.segments.append(f".{key}")
            raise
    return result, pos
