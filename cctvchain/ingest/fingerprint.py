"""The exact tier: one BLAKE3 digest per decoded frame, and the per-frame record.

Exact fingerprint of a frame (version 2)
----------------------------------------
The digest is defined over the decoded picture in the decoder's native planar format —
data the codec standard fixes bit for bit (H.264/H.265 decoding is exact), and never a
colour-converted image::

    digest = BLAKE3( CBOR([ "cctvchain.frame.v2", FORMAT, [ PLANE_0, PLANE_1, ... ] ]) )
    PLANE_i = [ WIDTH_i, HEIGHT_i, SAMPLES_i ]

* ``BLAKE3`` is the BLAKE3 hash (https://github.com/BLAKE3-team/BLAKE3-specs) with its
  default 32-byte output, unkeyed. Why not SHA-256, the hash of everything else in the
  system (blocks, transactions, Merkle trees, signatures): this digest covers every
  byte of every decoded picture — 3.1 MB per 1080p frame, 25 times a second — and on
  this project's machines SHA-256 ran at 1.4 GB/s (2.2 ms per 1080p frame, half again
  the cost of decoding it) where BLAKE3 runs at 4.9 GB/s (0.55 ms) with the same
  256-bit output and 128-bit collision resistance. Version 1 was SHA-256.

* ``CBOR`` is deterministic CBOR (RFC 8949 §4.2.1; the project's canonical encoder):
  definite lengths, shortest-form heads. The value is an array of three items: the text
  ``"cctvchain.frame.v2"``, the text ``FORMAT``, and an array of one entry per plane.
* ``FORMAT`` is the canonical planar layout name, one of :data:`LAYOUTS`: ``gray``,
  ``yuv420p``, ``yuv422p``, ``yuv444p`` (8-bit samples) and ``gray10le``,
  ``yuv420p10le``, ``yuv422p10le``, ``yuv444p10le`` (10-bit samples in 16-bit
  little-endian words). FFmpeg's full-range aliases name the same layout and are
  folded (``yuvj420p`` → ``yuv420p``, ...): the colour range is stream metadata, not
  picture data, and decoders disagree on how they report it. A decoder that outputs
  interleaved chroma (``nv12``) is read back into the planar layout (U samples, then V
  samples), which is a lossless rearrangement.
* Planes come in the layout's order (Y, U, V; or just Y for ``gray``). ``WIDTH_i`` and
  ``HEIGHT_i`` are the plane's size in samples (unsigned integers): the luma plane has
  the picture's width ``W`` and height ``H``; a chroma plane subsampled by 2
  horizontally has width ``ceil(W / 2)``, by 2 vertically height ``ceil(H / 2)``.
* ``SAMPLES_i`` is a CBOR byte string: the plane's rows from top to bottom, each row
  exactly ``WIDTH_i * bytes_per_sample`` bytes, left to right — no line padding, no
  alignment, whatever the decoder's memory layout was.

So in any language with a canonical CBOR encoder, for a 640x360 yuv420p frame::

    blake3(cbor(["cctvchain.frame.v2", "yuv420p",
                 [[640, 360, Y], [320, 180, U], [320, 180, V]]]))

:func:`frame_digest` hashes the same bytes as a stream (no copy of the planes);
:func:`frame_digest_reference` builds the whole encoding with the project's canonical
encoder and exists to prove the two agree.

Frame records
-------------
A :class:`FrameRecord` is the Merkle leaf of a segment: its canonical message bytes
(``FrameRecord.encode()``) are the leaf data of the RFC 6962 tree whose root the
camera anchors. It carries the frame's index in its segment, its presentation
timestamp and camera-clock capture time in milliseconds, the exact digest and, for a
sampled frame, the full perceptual fingerprint (see :mod:`cctvchain.ingest.perceptual`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from blake3 import blake3

from cctvchain.codec import Message, canonical
from cctvchain.crypto import HASH_SIZE

FINGERPRINT_DOMAIN = "cctvchain.frame.v2"


@dataclass(frozen=True)
class PlaneLayout:
    """How one canonical planar format is laid out."""

    name: str
    bytes_per_sample: int
    bit_depth: int
    # (log2 horizontal subsampling, log2 vertical subsampling) of each plane, in order.
    subsampling: tuple[tuple[int, int], ...]

    def plane_sizes(self, width: int, height: int) -> tuple[tuple[int, int], ...]:
        """(width, height) in samples of each plane of a ``width`` x ``height`` picture."""
        return tuple((-(-width >> sx), -(-height >> sy)) for sx, sy in self.subsampling)


_Y = (0, 0)
LAYOUTS: dict[str, PlaneLayout] = {
    layout.name: layout
    for layout in (
        PlaneLayout("gray", 1, 8, (_Y,)),
        PlaneLayout("yuv420p", 1, 8, (_Y, (1, 1), (1, 1))),
        PlaneLayout("yuv422p", 1, 8, (_Y, (1, 0), (1, 0))),
        PlaneLayout("yuv444p", 1, 8, (_Y, _Y, _Y)),
        PlaneLayout("gray10le", 2, 10, (_Y,)),
        PlaneLayout("yuv420p10le", 2, 10, (_Y, (1, 1), (1, 1))),
        PlaneLayout("yuv422p10le", 2, 10, (_Y, (1, 0), (1, 0))),
        PlaneLayout("yuv444p10le", 2, 10, (_Y, _Y, _Y)),
    )
}

# Decoder format names that denote a canonical layout's exact sample bytes.
FORMAT_ALIASES: dict[str, str] = {
    "yuvj420p": "yuv420p",
    "yuvj422p": "yuv422p",
    "yuvj444p": "yuv444p",
    "gray8": "gray",
}


class UnsupportedFormat(ValueError):
    """A pixel format with no canonical planar layout here."""


def canonical_format(name: str) -> str:
    """The canonical layout name for a decoder's pixel format name."""
    name = FORMAT_ALIASES.get(name, name)
    if name not in LAYOUTS:
        raise UnsupportedFormat(f"no canonical planar layout for pixel format {name!r}")
    return name


@dataclass(frozen=True)
class Plane:
    """One plane: ``height`` rows of ``width`` samples.

    ``data`` may be the decoder's own memory (a ``memoryview``) with rows ``stride``
    bytes apart; the padding after each row is not part of the plane. ``stride`` 0
    means rows are packed back to back.
    """

    width: int
    height: int
    data: bytes | memoryview
    stride: int = 0

    def rows(self, row_bytes: int) -> list[bytes | memoryview]:
        """The rows' bytes without padding, top to bottom (one item when packed)."""
        if self.stride in (0, row_bytes):
            return [self.data[: row_bytes * self.height]]
        view = memoryview(self.data)
        step = self.stride
        return [view[r * step : r * step + row_bytes] for r in range(self.height)]

    def packed(self, row_bytes: int) -> bytes:
        """The plane's samples as one packed byte string (rows without padding)."""
        return b"".join(bytes(r) for r in self.rows(row_bytes))


@dataclass(frozen=True)
class Picture:
    """A decoded picture in a canonical planar layout (see the module docstring)."""

    format: str
    planes: tuple[Plane, ...]

    def __post_init__(self) -> None:
        layout = LAYOUTS.get(self.format)
        if layout is None:
            raise UnsupportedFormat(f"{self.format!r} is not a canonical layout name")
        if len(self.planes) != len(layout.subsampling):
            raise ValueError(
                f"{self.format} has {len(layout.subsampling)} planes, got {len(self.planes)}"
            )
        if self.planes[0].width <= 0 or self.planes[0].height <= 0:
            raise ValueError("a picture has a positive width and height")
        expected = layout.plane_sizes(self.width, self.height)
        for i, (plane, (w, h)) in enumerate(zip(self.planes, expected, strict=True)):
            if (plane.width, plane.height) != (w, h):
                raise ValueError(
                    f"plane {i} of a {self.width}x{self.height} {self.format} picture is "
                    f"{w}x{h}, got {plane.width}x{plane.height}"
                )
            row = w * layout.bytes_per_sample
            stride = plane.stride or row
            if stride < row:
                raise ValueError(f"plane {i} has rows {stride} bytes apart, shorter than {row}")
            size = stride * (h - 1) + row
            if len(plane.data) < size or (plane.stride == 0 and len(plane.data) != size):
                raise ValueError(f"plane {i} holds {len(plane.data)} bytes, expected {size}")

    @property
    def width(self) -> int:
        return self.planes[0].width

    @property
    def height(self) -> int:
        return self.planes[0].height

    @property
    def layout(self) -> PlaneLayout:
        return LAYOUTS[self.format]

    def row_bytes(self, index: int) -> int:
        return self.planes[index].width * self.layout.bytes_per_sample

    def plane_bytes(self, index: int) -> bytes:
        """Plane ``index``'s samples, packed (what the digest covers)."""
        return self.planes[index].packed(self.row_bytes(index))

    def packed(self) -> Picture:
        """The same picture with every plane copied into packed bytes."""
        return Picture(
            self.format,
            tuple(Plane(p.width, p.height, self.plane_bytes(i)) for i, p in enumerate(self.planes)),
        )


# -- the digest ----------------------------------------------------------------------------

_ARRAY, _BYTES, _TEXT, _UINT = 4, 2, 3, 0


def _head(major: int, n: int) -> bytes:
    """The shortest CBOR head for a major type and argument (RFC 8949 §4.2.1)."""
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


def _text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return _head(_TEXT, len(raw)) + raw


def frame_digest(picture: Picture) -> bytes:
    """The exact fingerprint of a decoded picture (32 bytes; module docstring)."""
    h = blake3()  # releases the GIL while it hashes a plane: decoding goes on meanwhile
    h.update(_head(_ARRAY, 3) + _text(FINGERPRINT_DOMAIN) + _text(picture.format))
    h.update(_head(_ARRAY, len(picture.planes)))
    bytes_per_sample = picture.layout.bytes_per_sample
    for plane in picture.planes:
        row = plane.width * bytes_per_sample
        h.update(_head(_ARRAY, 3) + _head(_UINT, plane.width) + _head(_UINT, plane.height))
        h.update(_head(_BYTES, row * plane.height))
        for chunk in plane.rows(row):
            h.update(chunk)
    return h.digest()


def frame_digest_reference(picture: Picture) -> bytes:
    """The same digest built from the whole canonical encoding (slow; for checking)."""
    value = [
        FINGERPRINT_DOMAIN,
        picture.format,
        [[p.width, p.height, picture.plane_bytes(i)] for i, p in enumerate(picture.planes)],
    ]
    return blake3(canonical.encode(value)).digest()


def picture_from_planes(
    format_name: str, width: int, height: int, planes: Sequence[bytes]
) -> Picture:
    """A :class:`Picture` from a decoder's format name and unpadded plane bytes."""
    name = canonical_format(format_name)
    sizes = LAYOUTS[name].plane_sizes(width, height)
    if len(planes) != len(sizes):
        raise ValueError(f"{name} has {len(sizes)} planes, got {len(planes)}")
    return Picture(
        name, tuple(Plane(w, h, bytes(data)) for (w, h), data in zip(sizes, planes, strict=True))
    )


def split_raw_frame(format_name: str, width: int, height: int, raw: bytes) -> Picture:
    """A picture from one frame of FFmpeg ``-f rawvideo`` output (planes back to back)."""
    name = canonical_format(format_name)
    layout = LAYOUTS[name]
    chunks: list[bytes] = []
    offset = 0
    for w, h in layout.plane_sizes(width, height):
        size = w * h * layout.bytes_per_sample
        chunks.append(raw[offset : offset + size])
        offset += size
    if offset != len(raw):
        raise ValueError(f"a raw {width}x{height} {name} frame is {offset} bytes, got {len(raw)}")
    return picture_from_planes(name, width, height, chunks)


def raw_frame_size(format_name: str, width: int, height: int) -> int:
    layout = LAYOUTS[canonical_format(format_name)]
    return sum(w * h for w, h in layout.plane_sizes(width, height)) * layout.bytes_per_sample


def pts_to_ms(pts: int, time_base_num: int, time_base_den: int) -> int:
    """``pts * time_base`` seconds in whole milliseconds, rounded half up, exactly."""
    if time_base_num <= 0 or time_base_den <= 0:
        raise ValueError("a time base is a positive fraction")
    return (2 * pts * time_base_num * 1000 + time_base_den) // (2 * time_base_den)


# -- the per-frame record (a Merkle leaf) ----------------------------------------------------


@dataclass(frozen=True)
class FramePerceptual(Message):
    """The full perceptual fingerprint of a sampled frame (kept off-chain, by the peers)."""

    TYPE = "ingest.frame_perceptual"
    dct_hash: bytes  # 8 bytes, see perceptual.dct_hash
    tiles: bytes  # the full per-tile signature, see perceptual.tile_signature

    def __post_init__(self) -> None:
        if len(self.dct_hash) != 8:
            raise ValueError(f"a DCT hash is 8 bytes, got {len(self.dct_hash)}")


@dataclass(frozen=True)
class FrameRecord(Message):
    """One frame's record: the leaf data of its segment's RFC 6962 Merkle tree."""

    TYPE = "ingest.frame_record"
    index: int  # position in the segment, from 0
    pts_ms: int  # presentation timestamp of the stream, in milliseconds
    capture_time_ms: int  # camera-clock capture time, ms since the Unix epoch
    digest: bytes  # exact fingerprint, 32 bytes (frame_digest)
    perceptual: FramePerceptual | None  # present exactly for sampled frames

    def __post_init__(self) -> None:
        if len(self.digest) != HASH_SIZE:
            raise ValueError(f"a frame digest is {HASH_SIZE} bytes, got {len(self.digest)}")
        if self.index < 0:
            raise ValueError("a frame index is >= 0")
