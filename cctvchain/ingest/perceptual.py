"""The perceptual tier: a 64-bit DCT hash and a per-tile signature of a sampled frame.

Both are computed from a small grey image, the *thumbnail*: the frame's luma plane
(the Y samples as decoded, 8-bit scale, no range conversion) area-averaged down to
:data:`THUMB_SIZE` x :data:`THUMB_SIZE` pixels — every thumbnail pixel is the exact mean
of the luma over its rectangle of the frame, fractional pixels weighted by their
overlap, whatever the frame's size or aspect ratio. :func:`grey_thumbnail` is the
reference implementation; the media shell computes the same with FFmpeg's area scaler
(within about one grey level), which is what keeps sampling cheap at 1080p.

DCT hash (``dct_hash``, 8 bytes; the pHash construction)
    the thumbnail is halved to 32 x 32 (means of 2 x 2 pixels), transformed with the
    orthonormal 2-D DCT-II, and the 8 x 8 block of coefficients ``C[u][v]`` with
    ``1 <= u, v <= 8`` (the lowest frequencies, leaving out the DC row and column) is
    compared with its median: bit ``8 * (u - 1) + (v - 1)`` is 1 when ``C[u][v]`` is
    greater than the median. Bits are packed most significant first. Distance: the
    Hamming distance (0..64).

Tile signature (``tile_signature``, :data:`TILE_SIGNATURE_SIZE` = 256 bytes)
    the thumbnail is cut into a :data:`GRID` x :data:`GRID` grid of 8 x 8-pixel tiles
    (each tile is 1/64 of the frame, about 1.6 % of its area). For each tile, row by row,
    four bytes:

    * ``mean``: the tile's mean grey level, rounded, 0..255;
    * ``gx``: (mean of its left half - mean of its right half) / 2, rounded, clamped to
      -128..127, as a two's-complement byte; ``gy`` likewise for top minus bottom;
    * ``std``: the standard deviation of its 64 pixels, rounded, clamped to 0..255.

    :func:`tile_distances` compares two signatures tile by tile:
    ``max(|Δmean|, |Δgx|, |Δgy|, |Δstd|)`` over the stored values, in grey levels (the
    gradients, stored halved, count at half weight: they move more easily than a mean).

Compact tile signature (``compact_tiles``, :data:`COMPACT_SIGNATURE_SIZE` = 64 bytes)
    the ``mean`` byte of each tile, row by row: a pure function of the full signature,
    for a quick comparison (:func:`compare_compact`). Nothing of it goes on-chain any more:
    the full signature is in the frame record, bound by the segment's Merkle root.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

THUMB_SIZE = 64
HASH_GRID = 32
GRID = 8
TILE_PX = THUMB_SIZE // GRID
TILE_BYTES = 4
TILE_SIGNATURE_SIZE = GRID * GRID * TILE_BYTES
COMPACT_SIGNATURE_SIZE = GRID * GRID
DCT_HASH_SIZE = 8

# Defaults calibrated on H.264 test clips (tests/test_ingest_perceptual.py): re-encodes
# of a 640x360 clip at 720p/300k, 360p/100k and 180p/60k stayed within hamming 8 and
# tile distance 10 on every frame; other content was at hamming >= 20 with more than
# half the tiles beyond 100; a filled box on 2.9 % of a frame moved its tiles by 17-132.
# A tile that moves more than TILE_CHANGED grey levels is an edit.
SAME_CONTENT_MAX_HAMMING = 12
TILE_CHANGED = 14.0
COMPACT_TILE_CHANGED = 14.0

FloatImage = npt.NDArray[np.float64]


@functools.lru_cache(maxsize=32)
def _area_weights(n: int, m: int) -> FloatImage:
    """An (m, n) matrix whose rows average source samples over m equal intervals."""
    scale = n / m
    edges = np.arange(m + 1, dtype=np.float64) * scale
    lo = edges[:-1, None]
    hi = edges[1:, None]
    j = np.arange(n, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    weights: FloatImage = overlap / scale
    weights.flags.writeable = False
    return weights


def grey_thumbnail(luma: npt.NDArray[np.generic], bit_depth: int = 8) -> FloatImage:
    """The reference thumbnail: the luma plane area-averaged to THUMB_SIZE squared.

    ``luma`` is the (height, width) array of Y samples; samples of more than 8 bits are
    brought to the 8-bit scale (divided by ``2 ** (bit_depth - 8)``).
    """
    if luma.ndim != 2 or luma.shape[0] < 1 or luma.shape[1] < 1:
        raise ValueError(f"a luma plane is a non-empty 2-D array, got shape {luma.shape}")
    h, w = luma.shape
    y = luma.astype(np.float64)
    if bit_depth != 8:
        y /= float(1 << (bit_depth - 8))
    rows = _area_weights(h, THUMB_SIZE)
    cols = _area_weights(w, THUMB_SIZE)
    thumb: FloatImage = rows @ y @ cols.T
    return thumb


def _check_thumb(thumb: npt.NDArray[np.generic]) -> FloatImage:
    if thumb.shape != (THUMB_SIZE, THUMB_SIZE):
        raise ValueError(f"a thumbnail is {THUMB_SIZE}x{THUMB_SIZE}, got {thumb.shape}")
    return thumb.astype(np.float64, copy=False)


@functools.lru_cache(maxsize=1)
def _dct_matrix(n: int = HASH_GRID) -> FloatImage:
    k = np.arange(n, dtype=np.float64)[:, None]
    i = np.arange(n, dtype=np.float64)[None, :]
    c: FloatImage = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    c[0, :] = np.sqrt(1.0 / n)
    c.flags.writeable = False
    return c


def dct_hash(thumb: npt.NDArray[np.generic]) -> bytes:
    """The 64-bit DCT hash of a thumbnail (8 bytes, module docstring)."""
    t = _check_thumb(thumb)
    half = t.reshape(HASH_GRID, 2, HASH_GRID, 2).mean(axis=(1, 3))
    c = _dct_matrix()
    coefficients = (c @ half @ c.T)[1:9, 1:9].ravel()
    bits = coefficients > np.median(coefficients)
    return np.packbits(bits).tobytes()


def tile_signature(thumb: npt.NDArray[np.generic]) -> bytes:
    """The full per-tile signature of a thumbnail (256 bytes, module docstring)."""
    t = _check_thumb(thumb)
    tiles = t.reshape(GRID, TILE_PX, GRID, TILE_PX).transpose(0, 2, 1, 3)
    half = TILE_PX // 2
    mean = tiles.mean(axis=(2, 3))
    gx = tiles[:, :, :, :half].mean(axis=(2, 3)) - tiles[:, :, :, half:].mean(axis=(2, 3))
    gy = tiles[:, :, :half, :].mean(axis=(2, 3)) - tiles[:, :, half:, :].mean(axis=(2, 3))
    std = tiles.std(axis=(2, 3))
    out = np.empty((GRID, GRID, TILE_BYTES), dtype=np.uint8)
    out[:, :, 0] = np.clip(np.rint(mean), 0, 255)
    out[:, :, 1] = np.clip(np.rint(gx / 2), -128, 127).astype(np.int8).view(np.uint8)
    out[:, :, 2] = np.clip(np.rint(gy / 2), -128, 127).astype(np.int8).view(np.uint8)
    out[:, :, 3] = np.clip(np.rint(std), 0, 255)
    return out.tobytes()


def compact_tiles(signature: bytes) -> bytes:
    """The on-chain compact signature: each tile's mean byte, row by row (64 bytes)."""
    return bytes(_tiles_array(signature)[:, :, 0].astype(np.uint8).tobytes())


@dataclass(frozen=True)
class Perceptual:
    """A sampled frame's perceptual fingerprint, full signature."""

    dct_hash: bytes
    tiles: bytes


def fingerprint(thumb: npt.NDArray[np.generic]) -> Perceptual:
    return Perceptual(dct_hash(thumb), tile_signature(thumb))


# -- distances -------------------------------------------------------------------------------


def hamming(a: bytes, b: bytes) -> int:
    """Bits that differ between two DCT hashes (0..64)."""
    if len(a) != DCT_HASH_SIZE or len(b) != DCT_HASH_SIZE:
        raise ValueError(f"DCT hashes are {DCT_HASH_SIZE} bytes")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def _tiles_array(signature: bytes) -> npt.NDArray[np.int16]:
    if len(signature) != TILE_SIGNATURE_SIZE:
        raise ValueError(f"a tile signature is {TILE_SIGNATURE_SIZE} bytes, got {len(signature)}")
    raw = np.frombuffer(signature, dtype=np.uint8).reshape(GRID, GRID, TILE_BYTES)
    values = raw.astype(np.int16)
    values[:, :, 1:3] = raw[:, :, 1:3].view(np.int8)
    return values


def tile_distances(a: bytes, b: bytes) -> FloatImage:
    """GRID x GRID distances in grey levels between two full tile signatures."""
    d = np.abs(_tiles_array(a) - _tiles_array(b)).astype(np.float64)
    dist: FloatImage = d.max(axis=2)
    return dist


def compact_tile_distances(a: bytes, b: bytes) -> FloatImage:
    """GRID x GRID distances in grey levels between two compact (on-chain) signatures."""
    if len(a) != COMPACT_SIGNATURE_SIZE or len(b) != COMPACT_SIGNATURE_SIZE:
        raise ValueError(f"a compact tile signature is {COMPACT_SIGNATURE_SIZE} bytes")
    x = np.frombuffer(a, dtype=np.uint8).astype(np.float64)
    y = np.frombuffer(b, dtype=np.uint8).astype(np.float64)
    dist: FloatImage = np.abs(x - y).reshape(GRID, GRID)
    return dist


@dataclass(frozen=True)
class Comparison:
    """How two perceptual fingerprints of (supposedly) the same frame differ."""

    hamming: int
    tiles: FloatImage  # GRID x GRID distances in grey levels
    changed: tuple[tuple[int, int], ...]  # (row, column) of tiles beyond the threshold

    @property
    def max_tile_distance(self) -> float:
        return float(self.tiles.max())

    @property
    def same_content(self) -> bool:
        """Same picture (possibly re-encoded) and no tile changed."""
        return self.hamming <= SAME_CONTENT_MAX_HAMMING and not self.changed


def _changed(tiles: FloatImage, threshold: float) -> tuple[tuple[int, int], ...]:
    rows, cols = np.nonzero(tiles > threshold)
    return tuple((int(r), int(c)) for r, c in zip(rows, cols, strict=True))


def compare(a: Perceptual, b: Perceptual, *, tile_threshold: float = TILE_CHANGED) -> Comparison:
    tiles = tile_distances(a.tiles, b.tiles)
    return Comparison(hamming(a.dct_hash, b.dct_hash), tiles, _changed(tiles, tile_threshold))


def compare_compact(
    a_hash: bytes,
    a_tiles: bytes,
    b_hash: bytes,
    b_tiles: bytes,
    *,
    tile_threshold: float = COMPACT_TILE_CHANGED,
) -> Comparison:
    """Compare on-chain fingerprints (compact tile signatures)."""
    tiles = compact_tile_distances(a_tiles, b_tiles)
    return Comparison(hamming(a_hash, b_hash), tiles, _changed(tiles, tile_threshold))
