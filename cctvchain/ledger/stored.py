"""How a block is stored in a block-file frame (pure): canonical bytes, or compressed.

A block is hashed and signed over its canonical CBOR bytes, and those are what the
ledger hands out (``get_block``, deliver, raw-block APIs). On disk, a frame's payload is
a *stored block*, told apart by its first byte:

* ``0xa0``-``0xbf`` (a CBOR map head: every canonical block is a map): the canonical
  bytes themselves. Every ledger written before compression holds only these, so old
  block files stay readable unchanged.
* ``0x01``: the marker, then the canonical bytes compressed with zlib (RFC 1950: deflate
  plus an Adler-32 of the inflated bytes). Canonical CBOR repeats field names, type tags
  and hex ids, so an anchoring block shrinks by about a third.

Anything else is refused, as is a compressed payload that is truncated, has trailing
bytes, fails its Adler-32, or inflates beyond :data:`MAX_BLOCK_BYTES` (a corrupt or
hostile file must not exhaust memory). The frame's CRC-32 covers the stored bytes; the
block's own hash is checked by whoever decodes the canonical bytes.
"""

from __future__ import annotations

import zlib

from cctvchain.ledger.block import Block

COMPRESSED = 0x01
"""The first byte of a compressed stored block."""

LEVEL = 6
"""zlib's level (its default). Measured: an anchoring block of 3,663 B stores in 2,460 B
at 6 and 9, 2,485 B at 1, compressing in ~60 us; a 500-transaction block of the commit
benchmark (1.7 MB) takes ~10 ms at 6 and 9, ~5 ms at 1, for 10.8-11 % of its size at
all three: ~20 us per transaction beside ~700 us to validate and commit it."""

MAX_BLOCK_BYTES = 256 * 1024 * 1024
"""The largest canonical block a compressed payload may inflate to: far above any
channel's block-size limit (a batch's ``absolute_max_bytes``, 10 MiB by default), far
below what would hurt a node. A larger block is stored uncompressed, so every stored
block stays readable."""

_MAP_FIRST, _MAP_LAST = 0xA0, 0xBF


class StoredBlockError(ValueError):
    """A frame payload is not a stored block (what this is, precisely)."""


def store_block_bytes(canonical: bytes, *, level: int = LEVEL) -> bytes:
    """The frame payload for a block's canonical bytes: compressed when that is smaller
    (and the block is within :data:`MAX_BLOCK_BYTES`), else the canonical bytes."""
    if not canonical or not _MAP_FIRST <= canonical[0] <= _MAP_LAST:
        raise StoredBlockError("canonical block bytes must begin with a CBOR map head")
    if len(canonical) > MAX_BLOCK_BYTES:
        return canonical
    compressed = bytes((COMPRESSED,)) + zlib.compress(canonical, level)
    return compressed if len(compressed) < len(canonical) else canonical


def load_block_bytes(payload: bytes, *, limit: int = MAX_BLOCK_BYTES) -> bytes:
    """The canonical block bytes a frame payload holds. Raises :class:`StoredBlockError`."""
    if not payload:
        raise StoredBlockError("empty stored block")
    first = payload[0]
    if _MAP_FIRST <= first <= _MAP_LAST:
        return payload
    if first != COMPRESSED:
        raise StoredBlockError(f"unknown stored-block marker 0x{first:02x}")
    inflater = zlib.decompressobj()
    bomb = f"compressed block inflates beyond the {limit}-byte limit"
    try:
        # Bounded: a few kilobytes may inflate to gigabytes. (The output buffer grows as
        # it fills; it is not allocated at the bound.)
        canonical = inflater.decompress(payload[1:], limit + 1)
        if len(canonical) > limit:
            raise StoredBlockError(bomb)
        # All input is consumed once the bound is not hit; what the inflater may still
        # hold back (at most one deflate match) comes out here.
        canonical += inflater.flush()
    except zlib.error as exc:
        raise StoredBlockError(f"compressed block does not inflate: {exc}") from None
    if len(canonical) > limit:
        raise StoredBlockError(bomb)
    if not inflater.eof:
        raise StoredBlockError("compressed block is truncated (the zlib stream does not end)")
    if inflater.unused_data:
        raise StoredBlockError(
            f"{len(inflater.unused_data)} bytes after the end of the compressed block"
        )
    if not canonical or not _MAP_FIRST <= canonical[0] <= _MAP_LAST:
        # Only canonical bytes are ever compressed: no nesting, nothing else inside.
        raise StoredBlockError("compressed block does not hold a CBOR map")
    return canonical


def decode_stored_block(payload: bytes) -> Block:
    """The block a frame payload holds. Raises :class:`StoredBlockError` (not a stored
    block) or :class:`~cctvchain.codec.CodecError` (not a canonical block)."""
    return Block.decode(load_block_bytes(payload))
