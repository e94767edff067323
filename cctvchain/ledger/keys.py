"""LevelDB key layout and Fabric-style composite keys (pure).

Every integer in a key is big-endian and fixed width, so LevelDB's bytewise order is
numeric order, and UTF-8's byte order is code-point order, so ranges over keys are
ranges over strings. Key families, one leading byte each:

* ``s`` world state: ``s | ns | 0x00 | key``. Namespaces are non-empty and contain no
  NUL, so the first NUL ends the namespace; keys may contain NUL (composite keys do).
* ``y`` history: ``y | ns | 0x00 | u32 len(key) | key | u64 block | u32 tx``. The
  length prefix keeps the entries of key ``"a"`` apart from those of ``"a\\x00b"``.
  The value is empty (Fabric's history database): the writing transaction's id and
  value are in the block; indexes written before 2026-11 hold a ``HistoryRecord``.
* ``n`` block number → location, ``h`` block hash → number, ``t`` tx id → position,
  ``m:savepoint`` → what the index covers.
* ``c`` certificate registry: ``c | SHA-256(PEM)`` → the PEM, for every certificate
  carried in the transactions of a committed block (what certificate references
  resolve against); ``m:certificates`` marks an index whose registry covers every
  block (an index written before the registry existed lacks it and is backfilled).

Composite keys are Fabric's: ``"\\x00" + object_type + "\\x00" + attr + "\\x00" ...``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

STATE_PREFIX = b"s"
HISTORY_PREFIX = b"y"
BLOCK_NUMBER_PREFIX = b"n"
BLOCK_HASH_PREFIX = b"h"
TX_PREFIX = b"t"
CERTIFICATE_PREFIX = b"c"
SAVEPOINT_KEY = b"m:savepoint"
CERTIFICATE_REGISTRY_KEY = b"m:certificates"

NS_SEPARATOR = b"\x00"
# No valid UTF-8 contains the byte 0xFF, so ``prefix + b"\xff"`` is past every key that
# starts with ``prefix``.
RANGE_END = b"\xff"

COMPOSITE_KEY_NAMESPACE = "\x00"
MIN_UNICODE_RUNE = "\x00"
MAX_UNICODE_RUNE = "\U0010ffff"

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_VERSION = struct.Struct(">QI")
VERSION_SIZE = _VERSION.size


class KeyEncodingError(ValueError):
    """A namespace, key or composite-key part that cannot be stored."""


def encode_text(text: str, what: str) -> bytes:
    if not isinstance(text, str):
        raise KeyEncodingError(f"{what} must be text, got {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise KeyEncodingError(f"{what} {text!r} is not valid Unicode") from exc


def encode_namespace(namespace: str) -> bytes:
    raw = encode_text(namespace, "namespace")
    if not raw:
        raise KeyEncodingError("namespace must not be empty")
    if NS_SEPARATOR in raw:
        raise KeyEncodingError(f"namespace {namespace!r} contains a NUL character")
    return raw


def encode_key(key: str) -> bytes:
    raw = encode_text(key, "key")
    if not raw:
        raise KeyEncodingError("key must not be empty")
    return raw


def u64(n: int) -> bytes:
    return _U64.pack(n)


# -- world state ---------------------------------------------------------------------------


def state_prefix(namespace: str) -> bytes:
    return STATE_PREFIX + encode_namespace(namespace) + NS_SEPARATOR


def state_key(namespace: str, key: str) -> bytes:
    return state_prefix(namespace) + encode_key(key)


def decode_state_key(raw: bytes) -> tuple[str, str]:
    if not raw.startswith(STATE_PREFIX):
        raise KeyEncodingError(f"{raw!r} is not a state key")
    ns, sep, key = raw[1:].partition(NS_SEPARATOR)
    if not sep:
        raise KeyEncodingError(f"{raw!r} has no namespace separator")
    return ns.decode("utf-8"), key.decode("utf-8")


def state_range(namespace: str, start: bytes, end: bytes | None) -> tuple[bytes, bytes]:
    """LevelDB bounds ``[start, stop)`` for keys ``start <= key < end`` (UTF-8 bytes) in
    ``namespace``; ``end=None`` means to the end of the namespace."""
    prefix = state_prefix(namespace)
    return prefix + start, prefix + (RANGE_END if end is None else end)


def encode_versioned_value(block: int, tx: int, value: bytes) -> bytes:
    return _VERSION.pack(block, tx) + value


def decode_versioned_value(raw: bytes) -> tuple[int, int, bytes]:
    if len(raw) < VERSION_SIZE:
        raise KeyEncodingError("versioned value shorter than its version")
    block, tx = _VERSION.unpack_from(raw)
    return block, tx, raw[VERSION_SIZE:]


# -- history -------------------------------------------------------------------------------


def history_prefix(namespace: str, key: str) -> bytes:
    raw_key = encode_key(key)
    return (
        HISTORY_PREFIX
        + encode_namespace(namespace)
        + NS_SEPARATOR
        + _U32.pack(len(raw_key))
        + raw_key
    )


def history_key(namespace: str, key: str, block: int, tx: int) -> bytes:
    return history_prefix(namespace, key) + _VERSION.pack(block, tx)


def decode_history_version(raw: bytes) -> tuple[int, int]:
    """(block, tx) from the end of a history key."""
    if len(raw) < VERSION_SIZE:
        raise KeyEncodingError(f"{raw!r} is not a history key")
    block, tx = _VERSION.unpack_from(raw, len(raw) - VERSION_SIZE)
    return block, tx


# -- block and transaction index -----------------------------------------------------------


def block_number_key(number: int) -> bytes:
    return BLOCK_NUMBER_PREFIX + _U64.pack(number)


def block_hash_key(block_hash: bytes) -> bytes:
    return BLOCK_HASH_PREFIX + block_hash


def tx_key(tx_id: str) -> bytes:
    raw = encode_text(tx_id, "transaction id")
    if not raw:
        raise KeyEncodingError("transaction id must not be empty")
    return TX_PREFIX + raw


def certificate_key(reference: bytes) -> bytes:
    return CERTIFICATE_PREFIX + reference


def decode_u64(raw: bytes) -> int:
    (value,) = _U64.unpack(raw)
    return int(value)


# -- composite keys ------------------------------------------------------------------------


def _check_part(part: str, what: str) -> None:
    encode_text(part, what)
    if MIN_UNICODE_RUNE in part or MAX_UNICODE_RUNE in part:
        raise KeyEncodingError(f"{what} {part!r} contains U+0000 or U+10FFFF")


def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
    """Fabric's ``CreateCompositeKey``."""
    _check_part(object_type, "object type")
    parts = [COMPOSITE_KEY_NAMESPACE, object_type, MIN_UNICODE_RUNE]
    for attribute in attributes:
        _check_part(attribute, "attribute")
        parts += [attribute, MIN_UNICODE_RUNE]
    return "".join(parts)


def is_composite_key(key: str) -> bool:
    return key.startswith(COMPOSITE_KEY_NAMESPACE)


def split_composite_key(key: str) -> tuple[str, list[str]]:
    """Fabric's ``SplitCompositeKey``: (object type, attributes)."""
    if not is_composite_key(key) or not key.endswith(MIN_UNICODE_RUNE) or len(key) < 2:
        raise KeyEncodingError(f"{key!r} is not a composite key")
    object_type, *attributes = key[1:-1].split(MIN_UNICODE_RUNE)
    return object_type, attributes


def partial_composite_key_range(object_type: str, attributes: Sequence[str]) -> tuple[bytes, bytes]:
    """Key bounds ``[start, end)`` (UTF-8 bytes) of every composite key that begins with
    ``object_type`` and ``attributes``."""
    start = create_composite_key(object_type, attributes).encode("utf-8")
    return start, start + RANGE_END
