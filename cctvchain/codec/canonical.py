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

import struct
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
        return bytes((mt | 25,)) + struct.pack(">H", n)
    if n < 0x100000000:
        return bytes((mt | 26,)) + struct.pack(">I", n)
    return bytes((mt | 27,)) + struct.pack(">Q", n)


def encode(value: Value) -> bytes:
    """Encode ``value`` canonically; raise :class:`EncodeError` for unsupported input."""
    out: list[bytes] = []
    _encode_into(value, out, 0, "$")
    return b"".join(out)


def _encode_into(value: Value, out: list[bytes], depth: int, path: str) -> None:
    if depth > MAX_DEPTH:
        raise EncodeError(path, f"nesting deeper than {MAX_DEPTH}")
    # bool before int: bool is a subclass of int.
    if value is None:
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
            raise EncodeError(path, "integer outside the 64-bit range")
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        out.append(_head(_MAJOR_BYTES, len(raw)))
        out.append(raw)
    elif isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncodeError(path, "text is not valid Unicode (lone surrogate)") from exc
        out.append(_head(_MAJOR_TEXT, len(raw)))
        out.append(raw)
    elif isinstance(value, list | tuple):
        out.append(_head(_MAJOR_ARRAY, len(value)))
        for i, item in enumerate(value):
            _encode_into(item, out, depth + 1, f"{path}[{i}]")
    elif isinstance(value, Mapping):
        entries: list[tuple[bytes, Value, str]] = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodeError(path, f"map key {key!r} is not text")
            try:
                encoded_key = encode(key)
            except EncodeError as exc:  # report it where the map is, not at "$"
                raise EncodeError(path, f"map key {key!r}: {exc.reason}") from exc
            entries.append((encoded_key, item, key))
        entries.sort(key=lambda entry: entry[0])
        out.append(_head(_MAJOR_MAP, len(entries)))
        for encoded_key, item, key in entries:
            out.append(encoded_key)
            _encode_into(item, out, depth + 1, f"{path}.{key}")
    elif isinstance(value, float):
        raise EncodeError(path, "floats are not allowed in canonical encoding")
    else:
        raise EncodeError(path, f"unsupported type {type(value).__name__}")


def decode(data: bytes, *, max_size: int | None = None) -> Value:
    """Decode canonical bytes; raise :class:`DecodeError` for anything non-canonical.

    Arrays decode to ``list`` and maps to ``dict``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError("$", f"expected bytes, got {type(data).__name__}")
    view = bytes(data)
    if max_size is not None and len(view) > max_size:
        raise DecodeError("$", f"input is {len(view)} bytes, more than the limit of {max_size}")
    if not view:
        raise DecodeError("$", "empty input")
    value, end = _Decoder(view).read(0, 0, "$")
    if end != len(view):
        raise DecodeError("$", f"{len(view) - end} trailing bytes after the value")
    return value


class _Decoder:
    __slots__ = ("data",)

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

    def read(self, pos: int, depth: int, path: str) -> tuple[Value, int]:
        data = self.data
        if depth > MAX_DEPTH:
            raise DecodeError(path, f"nesting deeper than {MAX_DEPTH}")
        if pos >= len(data):
            raise DecodeError(path, "truncated input")
        initial = data[pos]
        major, info = initial >> 5, initial & 0x1F
        pos += 1
        if major == _MAJOR_SIMPLE:
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
        if major == _MAJOR_UINT:
            return n, pos
        if major == _MAJOR_NEGINT:
            return -1 - n, pos
        if major in (_MAJOR_BYTES, _MAJOR_TEXT):
            end = pos + n
            if end > len(data):
                raise DecodeError(path, "truncated input")
            raw = data[pos:end]
            if major == _MAJOR_BYTES:
                return raw, end
            try:
                return raw.decode("utf-8"), end
            except UnicodeDecodeError as exc:
                raise DecodeError(path, "text is not valid UTF-8") from exc
        if major == _MAJOR_ARRAY:
            # Each item takes at least one byte: refuse absurd counts before allocating.
            if n > len(data) - pos:
                raise DecodeError(path, "truncated input")
            items = []
            for i in range(n):
                item, pos = self.read(pos, depth + 1, f"{path}[{i}]")
                items.append(item)
            return items, pos
        # major == _MAJOR_MAP
        if n > (len(data) - pos) // 2:
            raise DecodeError(path, "truncated input")
        result: dict[str, Value] = {}
        previous_key: bytes | None = None
        for _ in range(n):
            key_start = pos
            if pos >= len(data) or data[pos] >> 5 != _MAJOR_TEXT:
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
