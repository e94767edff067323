"""Synthetic camera streams and clips for the alignment tests (not a test module).

A camera's content is a random walk of perceptual fingerprints that behaves like moving
video: consecutive frames differ by ~3 bits of the DCT hash and a few grey levels per
tile, frames a second apart by ~30 bits. Each anchored frame has a distinct digest; the
sampled ones (1 frame/s, the first of each second) carry their fingerprint.

A clip is a list of :class:`Source` entries — which content each clip frame shows and
how (bit-exact, re-encoded, altered, foreign) — turned into clip frames with pts either
re-timed contiguously (what an editor's export does) or kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from cctvchain.verify.align import AnchoredFrame, ClipFrame

FRAME_MS = 40
SEGMENT_FRAMES = 250
T0 = 1_767_225_600_000
SAMPLE_EVERY = 25

Tiles = npt.NDArray[np.int16]


@dataclass(frozen=True)
class Content:
    hash: int
    tiles: Tiles  # (64, 4): mean, gx, gy, std


def encode_tiles(tiles: Tiles) -> bytes:
    out = np.empty((64, 4), dtype=np.uint8)
    out[:, 0] = np.clip(tiles[:, 0], 0, 255)
    out[:, 1:3] = np.clip(tiles[:, 1:3], -128, 127).astype(np.int8).view(np.uint8)
    out[:, 3] = np.clip(tiles[:, 3], 0, 255)
    return out.tobytes()


def walk(rng: np.random.Generator, n: int, *, bits: int = 3, step: int = 2) -> list[Content]:
    h = int(rng.integers(0, 2**63)) | (int(rng.integers(0, 2)) << 63)
    tiles = np.stack(
        [
            rng.integers(40, 200, 64),
            rng.integers(-20, 20, 64),
            rng.integers(-20, 20, 64),
            rng.integers(10, 40, 64),
        ],
        axis=1,
    ).astype(np.int16)
    out = []
    for _ in range(n):
        for bit in rng.choice(64, bits, replace=False):
            h ^= 1 << int(bit)
        tiles = tiles + rng.integers(-step, step + 1, tiles.shape).astype(np.int16)
        tiles[:, 0] = np.clip(tiles[:, 0], 20, 235)
        tiles[:, 3] = np.clip(tiles[:, 3], 5, 60)
        out.append(Content(h, tiles.copy()))
    return out


def noisy(c: Content, rng: np.random.Generator, bits: int = 2, level: int = 2) -> Content:
    """The same picture after a re-encode."""
    h = c.hash
    for bit in rng.choice(64, int(rng.integers(0, bits + 1)), replace=False):
        h ^= 1 << int(bit)
    tiles = c.tiles + rng.integers(-level, level + 1, c.tiles.shape).astype(np.int16)
    return Content(h, tiles)


def altered(c: Content, rng: np.random.Generator, region: tuple[int, int] = (2, 3)) -> Content:
    """A small local edit: a 2x2 block of tiles painted over (~6 % of the picture)."""
    tiles = c.tiles.copy()
    r, col = region
    for dr in (0, 1):
        for dc in (0, 1):
            k = (r + dr) * 8 + (col + dc)
            tiles[k, 0] = 255 - tiles[k, 0]
            tiles[k, 3] = 0
    h = c.hash
    for bit in rng.choice(64, 3, replace=False):
        h ^= 1 << int(bit)
    return Content(h, tiles)


def digest(tag: str, k: int) -> bytes:
    return hashlib.sha256(f"{tag}/{k}".encode()).digest()


@dataclass
class Camera:
    content: list[Content]
    frames: list[AnchoredFrame]

    @property
    def n(self) -> int:
        return len(self.frames)


def camera(seed: int, seconds: float = 30.0, *, start_ms: int = T0) -> Camera:
    rng = np.random.default_rng(seed)
    n = int(seconds * 1000 / FRAME_MS)
    content = walk(rng, n)
    frames = []
    for k, c in enumerate(content):
        sampled = k % SAMPLE_EVERY == 0
        frames.append(
            AnchoredFrame(
                segment=k // SEGMENT_FRAMES,
                index=k % SEGMENT_FRAMES,
                pts_ms=k * FRAME_MS,
                capture_time_ms=start_ms + k * FRAME_MS,
                digest=digest(f"cam{seed}", k),
                dct_hash=c.hash.to_bytes(8, "big") if sampled else None,
                tiles=encode_tiles(c.tiles) if sampled else None,
            )
        )
    return Camera(content, frames)


@dataclass(frozen=True)
class Source:
    """What one clip frame shows."""

    frame: int | None  # anchored frame index, None for foreign content
    exact: bool = True
    edit: str = ""  # "" | "altered" | "held"
    foreign: Content | None = None
    tag: str = ""


def build_clip(
    cam: Camera,
    sources: list[Source],
    rng: np.random.Generator,
    *,
    retime: bool = True,
    start_pts: int = 0,
    perceptual: str = "all",
) -> list[ClipFrame]:
    """Clip frames for ``sources``; pts contiguous from ``start_pts`` (``retime``) or the
    original pts less the first one's (``retime=False``: an editor that keeps times).

    ``perceptual``: ``all`` frames carry a fingerprint, or ``lazy``: only non-exact frames
    and their neighbours (what the verifier's decoder computes when it knows the anchored
    digests before decoding).
    """
    frames: list[ClipFrame] = []
    first = sources[0].frame if sources[0].frame is not None else 0
    contents: list[Content] = []
    digests: list[bytes] = []
    exact_flags: list[bool] = []
    for i, s in enumerate(sources):
        if s.frame is None:
            assert s.foreign is not None
            c = s.foreign
            d = digest("foreign" + s.tag, i)
            exact = False
        else:
            base = cam.content[s.frame]
            exact = s.exact and s.edit in ("", "held")
            if s.edit == "altered":
                c = altered(base, rng)
            elif s.exact:
                c = base
            else:
                c = noisy(base, rng)
            if s.edit == "held":
                c = base
            d = cam.frames[s.frame].digest if exact else digest(f"clip{s.tag}", i)
        contents.append(c)
        digests.append(d)
        exact_flags.append(exact)
    for i, (s, c, d) in enumerate(zip(sources, contents, digests, strict=True)):
        if retime:
            pts = start_pts + i * FRAME_MS
        else:
            ref = s.frame if s.frame is not None else first + i
            pts = start_pts + (ref - first) * FRAME_MS
            if frames and pts <= frames[-1].pts_ms:
                pts = frames[-1].pts_ms + FRAME_MS
        keep = perceptual == "all" or not all(
            exact_flags[x] for x in range(max(0, i - 1), min(len(sources), i + 2))
        )
        frames.append(
            ClipFrame(
                index=i,
                pts_ms=pts,
                digest=d,
                dct_hash=c.hash.to_bytes(8, "big") if keep else None,
                tiles=encode_tiles(c.tiles) if keep else None,
            )
        )
    return frames


def span(a: int, b: int, **kw: object) -> list[Source]:
    """Sources for anchored frames a..b-1."""
    return [Source(k, **kw) for k in range(a, b)]  # type: ignore[arg-type]


def foreign(seed: int, n: int) -> list[Source]:
    rng = np.random.default_rng(seed)
    return [Source(None, exact=False, foreign=c, tag=str(seed)) for c in walk(rng, n)]


def periodic_camera(seed: int, seconds: float = 20.0, period_s: float = 12.0) -> Camera:
    """A camera whose picture repeats every ``period_s`` seconds as the fingerprints see
    it (ffmpeg's ``testsrc2`` pattern repeats every 12 s): moving content, but frame k
    and frame k + period show the same picture. Digests stay distinct (other frames)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 1000 / FRAME_MS)
    period = int(period_s * 1000 / FRAME_MS)
    cycle = walk(rng, period)
    content = [cycle[k % period] for k in range(n)]
    base = camera(seed, seconds)
    frames = [
        replace(
            f,
            dct_hash=content[k].hash.to_bytes(8, "big") if f.sampled else None,
            tiles=encode_tiles(content[k].tiles) if f.sampled else None,
        )
        for k, f in enumerate(base.frames)
    ]
    return Camera(content, frames)
