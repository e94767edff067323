"""The verifier's media shell: decode a clip once into the fingerprints the aligner needs.

Every frame gets its exact digest (:func:`~cctvchain.ingest.fingerprint.frame_digest`,
the same definition the camera's extractor anchors). Perceptual fingerprints (DCT hash
and full tile signature of the grey thumbnail, :mod:`cctvchain.ingest.perceptual`) are
computed

* for every frame when the anchored digests are not known before decoding, or
* with ``known_digests`` (e.g. from an evidence bundle): only for the frames whose
  digest is not anchored and for their two neighbours — all the aligner looks at. A
  decode-exact copy then costs one digest per frame and nothing more.

Digests and fingerprints are computed on worker threads while the next frames decode
(BLAKE3, FFmpeg's scaler and numpy release the GIL), so verifying runs close to
decode-only speed.

:func:`grab_pictures` decodes a few chosen frames again as small RGB pictures for the
HTML report.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.video.reformatter import VideoReformatter

from cctvchain.ingest import perceptual as P
from cctvchain.ingest.fingerprint import frame_digest
from cctvchain.media import DecodedFrame, MediaError, VideoSource
from cctvchain.verify.align import ClipFrame
from cctvchain.verify.fingerprints import ClipFingerprints, ClipInfo

__all__ = ["ClipFingerprints", "ClipInfo", "file_sha256", "fingerprint_clip", "grab_pictures"]

Progress = Callable[[int, int | None], None]

_WINDOW = 6  # frames decoded ahead of the one being finished


def file_sha256(path: str | os.PathLike[str]) -> tuple[bytes, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.digest(), size


def _probe(path: str) -> tuple[str, int | None]:
    """Container format name and the stream's frame count estimate (None if unknown)."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            name = str(container.format.name)
            if stream.frames:
                return name, int(stream.frames)
            if container.duration and stream.average_rate:
                seconds = container.duration / 1_000_000
                return name, int(seconds * float(stream.average_rate))
            return name, None
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise MediaError(f"cannot open {path}: {exc}") from exc


def _digest(frame: DecodedFrame) -> bytes:
    return frame_digest(frame.picture)


_local = threading.local()


def _thumbnail(frame: DecodedFrame) -> npt.NDArray[np.float64]:
    """``frame.thumbnail()``, with a scaler context kept per worker thread.

    ``DecodedFrame.thumbnail`` builds FFmpeg's area scaler afresh for every frame (2.6 ms
    at 1080p); a reused :class:`VideoReformatter` gives the same bytes in 0.4 ms. Until
    the media shell offers that, the decoder's frame is reached here; without it the
    public method is used.
    """
    native = getattr(frame, "_frame", None)
    if not isinstance(native, av.VideoFrame):
        return frame.thumbnail()
    reformatter = getattr(_local, "reformatter", None)
    if reformatter is None:
        reformatter = _local.reformatter = VideoReformatter()
    small = reformatter.reformat(
        native,
        width=P.THUMB_SIZE,
        height=P.THUMB_SIZE,
        format="gray",
        interpolation="AREA",
        src_color_range="JPEG",
        dst_color_range="JPEG",
    )
    plane = small.planes[0]
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    out: npt.NDArray[np.float64] = rows[:, : plane.width].astype(np.float64)
    return out


def _perceptual(frame: DecodedFrame) -> tuple[bytes, bytes]:
    thumb = _thumbnail(frame)
    return P.dct_hash(thumb), P.tile_signature(thumb)


@dataclass
class _Entry:
    frame: DecodedFrame
    digest: Future[bytes]
    perceptual: Future[tuple[bytes, bytes]] | None = None
    exact: bool | None = field(default=None)


def fingerprint_clip(
    path: str | os.PathLike[str],
    *,
    known_digests: Collection[bytes] | None = None,
    progress: Progress | None = None,
    workers: int = 2,
    threads: int = 0,
) -> ClipFingerprints:
    """Decode ``path`` once into :class:`ClipFrame` s (module docstring)."""
    source = os.fspath(path)
    sha, size = file_sha256(source)
    container_name, estimate = _probe(source)
    lazy = known_digests is not None
    known: Collection[bytes] = known_digests if known_digests is not None else ()
    frames: list[ClipFrame] = []
    computed = 0
    width = height = 0
    codec = ""
    with (
        VideoSource(source, threads=threads) as video,
        ThreadPoolExecutor(max(1, workers), thread_name_prefix="verify-fingerprint") as pool,
    ):
        codec = video.codec
        window: deque[_Entry] = deque()
        finishing: deque[tuple[_Entry, bytes]] = deque()
        previous_exact = True

        def finish_one() -> None:
            nonlocal computed
            entry, digest = finishing.popleft()
            dct: bytes | None = None
            tiles: bytes | None = None
            if entry.perceptual is not None:
                dct, tiles = entry.perceptual.result()
                computed += 1
            frames.append(ClipFrame(entry.frame.index, entry.frame.pts_ms, digest, dct, tiles))
            entry.frame.release()
            if progress is not None:
                progress(len(frames), estimate)

        def decide_first() -> None:
            nonlocal previous_exact
            entry = window.popleft()
            digest = entry.digest.result()
            exact = digest in known
            if lazy and entry.perceptual is None:
                nxt = window[0] if window else None
                next_exact = nxt is None or nxt.digest.result() in known
                if not (exact and previous_exact and next_exact):
                    entry.perceptual = pool.submit(_perceptual, entry.frame)
            previous_exact = exact
            finishing.append((entry, digest))
            while len(finishing) > _WINDOW:
                finish_one()

        for frame in video.frames(lookahead=False):
            if not width:
                width, height = frame.width, frame.height
            entry = _Entry(frame, pool.submit(_digest, frame))
            if not lazy:
                entry.perceptual = pool.submit(_perceptual, frame)
            window.append(entry)
            while len(window) > _WINDOW:
                decide_first()
        while window:
            decide_first()
        while finishing:
            finish_one()
    duration = 0
    if frames:
        step = frames[1].pts_ms - frames[0].pts_ms if len(frames) > 1 else 0
        duration = frames[-1].pts_ms - frames[0].pts_ms + step
    info = ClipInfo(
        path=source,
        name=Path(source).name,
        sha256=sha,
        size=size,
        container=container_name,
        codec=codec,
        width=width,
        height=height,
        frames=len(frames),
        duration_ms=duration,
    )
    return ClipFingerprints(info, tuple(frames), computed)


# -- pictures for the report ---------------------------------------------------------------

RGB = npt.NDArray[np.uint8]


def _rgb(frame: DecodedFrame, max_width: int) -> RGB:
    """A small RGB rendering of a decoded frame (BT.601, for people, not for hashing)."""
    picture = frame.picture.packed()
    layout = picture.layout
    depth = layout.bit_depth
    dtype = np.uint8 if layout.bytes_per_sample == 1 else np.dtype("<u2")

    def plane(k: int) -> npt.NDArray[np.float64]:
        p = picture.planes[k]
        data = np.frombuffer(picture.plane_bytes(k), dtype=dtype).reshape(p.height, p.width)
        return data.astype(np.float64) / float(1 << (depth - 8))

    y = plane(0)
    h, w = y.shape
    if len(picture.planes) == 3:
        u, v = plane(1), plane(2)
        ry, rx = -(-h // u.shape[0]), -(-w // u.shape[1])
        u = np.repeat(np.repeat(u, ry, axis=0), rx, axis=1)[:h, :w] - 128.0
        v = np.repeat(np.repeat(v, ry, axis=0), rx, axis=1)[:h, :w] - 128.0
    else:
        u = v = np.zeros_like(y)
    r = y + 1.402 * v
    g = y - 0.344136 * u - 0.714136 * v
    b = y + 1.772 * u
    rgb = np.clip(np.stack([r, g, b], axis=-1), 0, 255)
    factor = max(1, -(-w // max_width))
    if factor > 1:
        hh, ww = (h // factor) * factor, (w // factor) * factor
        rgb = rgb[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor, 3).mean(axis=(1, 3))
    out: RGB = np.rint(rgb).astype(np.uint8)
    return out


def grab_pictures(
    path: str | os.PathLike[str], indices: Sequence[int], *, max_width: int = 320
) -> dict[int, RGB]:
    """Small RGB pictures of the clip frames at ``indices`` (decoding up to the last)."""
    wanted = sorted(set(indices))
    out: dict[int, RGB] = {}
    if not wanted:
        return out
    with VideoSource(path) as video:
        for frame in video.frames(lookahead=False):
            if frame.index in wanted:
                out[frame.index] = _rgb(frame, max_width)
            if frame.index >= wanted[-1]:
                break
    return out
