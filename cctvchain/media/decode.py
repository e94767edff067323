"""Decode a video file or an RTSP stream into canonical planes (PyAV, i.e. FFmpeg).

Each decoded picture comes out as a :class:`DecodedFrame`: its presentation timestamp
(in the stream's time base and in milliseconds), the decoder's native planes
(:class:`~cctvchain.ingest.fingerprint.Picture`, the input of the exact fingerprint:
views of the decoder's memory whose line padding the digest leaves out; a decoder's
interleaved-chroma output such as ``nv12`` is rearranged into planar chroma) and, on
demand, the small grey thumbnail of the perceptual tier.

RTSP is read over TCP (``rtsp_transport=tcp``: no loss to UDP reordering or drops),
with an open timeout and a read timeout so a dead camera raises instead of hanging.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from types import TracebackType
from typing import Any

import av
import av.container
import av.video.frame
import numpy as np
import numpy.typing as npt

from cctvchain.ingest.fingerprint import (
    FORMAT_ALIASES,
    LAYOUTS,
    Picture,
    Plane,
    UnsupportedFormat,
    frame_digest,
    pts_to_ms,
)
from cctvchain.ingest.perceptual import THUMB_SIZE, grey_thumbnail

# Decoder outputs that are a lossless rearrangement of a canonical planar layout.
_REPACKED = {"nv12": "yuv420p", "nv21": "yuv420p", "nv16": "yuv422p", "nv24": "yuv444p"}


class MediaError(Exception):
    """A source that cannot be opened or decoded."""


def is_stream_url(source: str | os.PathLike[str]) -> bool:
    return isinstance(source, str) and source.startswith(("rtsp://", "rtsps://"))


def picture_of(frame: av.video.frame.VideoFrame) -> Picture:
    """The canonical planar picture of a decoded frame (see fingerprint's docstring).

    The planes are views of the decoder's memory, rows ``line_size`` apart: nothing is
    copied; :meth:`Picture.packed` copies them out without the padding.
    """
    name = frame.format.name
    canonical = FORMAT_ALIASES.get(name, name)
    if canonical not in LAYOUTS:
        target = _REPACKED.get(name)
        if target is None:
            raise UnsupportedFormat(f"decoder output {name!r} has no canonical planar layout")
        # Interleaved chroma to planar chroma, same size and range: a plain copy.
        frame = frame.reformat(
            format=target, src_color_range="JPEG", dst_color_range="JPEG", interpolation="POINT"
        )
        canonical = target
    layout = LAYOUTS[canonical]
    sizes = layout.plane_sizes(frame.width, frame.height)
    planes = tuple(
        Plane(w, h, memoryview(plane).cast("B"), plane.line_size)
        for (w, h), plane in zip(sizes, frame.planes, strict=True)
    )
    return Picture(canonical, planes)


class DecodedFrame:
    """One decoded picture of a source, in output (presentation) order."""

    __slots__ = (
        "_digest",
        "_frame",
        "_pending_digest",
        "index",
        "key_frame",
        "picture",
        "pts",
        "pts_ms",
        "time_base",
    )

    def __init__(
        self,
        index: int,
        pts: int,
        time_base: Fraction,
        frame: av.video.frame.VideoFrame,
    ) -> None:
        self.index = index
        self.pts = pts
        self.time_base = time_base
        self.pts_ms = pts_to_ms(pts, time_base.numerator, time_base.denominator)
        self.key_frame = bool(frame.key_frame)
        self.picture = picture_of(frame)
        self._frame: av.video.frame.VideoFrame | None = frame
        self._digest: bytes | None = None
        self._pending_digest: Future[bytes] | None = None

    @property
    def width(self) -> int:
        return self.picture.width

    @property
    def height(self) -> int:
        return self.picture.height

    @property
    def format(self) -> str:
        return self.picture.format

    @property
    def digest(self) -> bytes:
        """The exact fingerprint (:func:`~cctvchain.ingest.fingerprint.frame_digest`)."""
        if self._digest is None:
            pending = self._pending_digest
            self._digest = frame_digest(self.picture) if pending is None else pending.result()
            self._pending_digest = None
        return self._digest

    def luma(self) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]:
        """The Y plane as a (height, width) array of samples."""
        y = self.picture.planes[0]
        data = self.picture.plane_bytes(0)
        if self.picture.layout.bytes_per_sample == 1:
            return np.frombuffer(data, dtype=np.uint8).reshape(y.height, y.width)
        return np.frombuffer(data, dtype="<u2").reshape(y.height, y.width)

    def thumbnail(self) -> npt.NDArray[np.float64]:
        """The perceptual tier's grey thumbnail, by FFmpeg's area scaler over the luma.

        Equal, within about one grey level, to the reference
        :func:`~cctvchain.ingest.perceptual.grey_thumbnail` (see :meth:`reference_thumbnail`)
        and some 10-30 times cheaper at 1080p. Colour ranges are declared equal so the
        scaler copies luma values instead of converting them.
        """
        if self._frame is None:
            return self.reference_thumbnail()
        small = self._frame.reformat(
            width=THUMB_SIZE,
            height=THUMB_SIZE,
            format="gray",
            interpolation="AREA",
            src_color_range="JPEG",
            dst_color_range="JPEG",
        )
        return _gray_array(small).astype(np.float64)

    def reference_thumbnail(self) -> npt.NDArray[np.float64]:
        return grey_thumbnail(self.luma(), self.picture.layout.bit_depth)

    def release(self) -> None:
        """Drop the decoder's frame (the thumbnail then falls back to the reference)."""
        self._frame = None

    def __repr__(self) -> str:
        return (
            f"DecodedFrame(index={self.index}, pts_ms={self.pts_ms}, "
            f"{self.width}x{self.height} {self.format}, key={self.key_frame})"
        )


def _gray_array(frame: av.video.frame.VideoFrame) -> npt.NDArray[np.uint8]:
    plane = frame.planes[0]
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8)
    return rows.reshape(plane.height, plane.line_size)[:, : plane.width]


class VideoSource:
    """A video file or RTSP URL, decoded frame by frame (a context manager).

    ``open_timeout_s`` bounds connecting and reading the stream's header,
    ``read_timeout_s`` any later wait for data. ``threads`` is the decoder's thread
    count (0: FFmpeg chooses). ``capture_origin_ms`` is, for files, the camera-clock
    time of ``pts == 0`` if the caller knows it (see :meth:`capture_time_ms`).
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        rtsp_transport: str = "tcp",
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
        threads: int = 0,
        capture_origin_ms: int | None = None,
    ) -> None:
        self.source = os.fspath(source)
        self.is_stream = is_stream_url(self.source)
        options: dict[str, str] = {}
        if self.is_stream:
            options["rtsp_transport"] = rtsp_transport
            options["timeout"] = str(int(read_timeout_s * 1_000_000))  # socket I/O, µs
        try:
            self._container: av.container.InputContainer = av.open(
                self.source, mode="r", options=options, timeout=(open_timeout_s, read_timeout_s)
            )
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"cannot open {self.source}: {exc}") from exc
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(f"{self.source} has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._stream.codec_context.thread_count = threads
        if self._stream.time_base is None:
            self._container.close()
            raise MediaError(f"{self.source}: the video stream has no time base")
        self.time_base: Fraction = self._stream.time_base
        self._capture_origin_ms = capture_origin_ms
        self._origin_ms: int | None = None
        self._clock_source: str | None = None

    # -- properties ----------------------------------------------------------------------

    @property
    def codec(self) -> str:
        return str(self._stream.codec_context.name)

    @property
    def average_rate(self) -> Fraction | None:
        rate = self._stream.average_rate or self._stream.guessed_rate
        return Fraction(rate) if rate else None

    @property
    def start_time_realtime_us(self) -> int | None:
        """For RTSP with RTCP sender reports: the wall-clock time (µs since the epoch,
        the camera's clock) at which ``pts == 0`` was captured, as FFmpeg defines it."""
        value = self._container.start_time_realtime
        if value is None or value <= 0:
            return None
        return int(value)

    @property
    def clock_source(self) -> str | None:
        """Where :meth:`capture_time_ms` takes its origin: ``rtcp`` (the camera's NTP
        clock, from the RTCP sender reports FFmpeg had when the first frame was read),
        ``given`` (the caller's), ``host`` (this machine's clock when the first frame
        arrived), or None before the first frame."""
        return self._clock_source

    def capture_time_ms(self, frame: DecodedFrame) -> int:
        """Camera-clock capture time of a frame: the clock origin plus its pts.

        The origin is fixed at the first frame asked about — RTCP if the stream has
        sender reports by then, else the given origin, else the host's clock at that
        moment less the frame's pts — so capture times advance exactly with the stream's
        timestamps and never jump when a later sender report arrives.
        """
        if self._origin_ms is None:
            realtime = self.start_time_realtime_us if self.is_stream else None
            if realtime is not None:
                self._origin_ms, self._clock_source = (realtime + 500) // 1000, "rtcp"
            elif self._capture_origin_ms is not None:
                self._origin_ms, self._clock_source = self._capture_origin_ms, "given"
            else:
                self._origin_ms = time.time_ns() // 1_000_000 - frame.pts_ms
                self._clock_source = "host"
        return self._origin_ms + frame.pts_ms

    # -- decoding ------------------------------------------------------------------------

    def frames(self, *, lookahead: bool = True) -> Iterator[DecodedFrame]:
        """Decoded frames in presentation order until the end of the source.

        With ``lookahead`` the exact digest of each frame is computed on a worker thread
        while the next frame decodes (BLAKE3 releases the GIL), and each frame is
        handed out once its successor is decoded — one frame of latency for the
        throughput of a whole hash pass over the planes. A frame without a timestamp
        (raw elementary streams) gets one from its index and the stream's average rate.
        """
        if not lookahead:
            yield from self._decoded()
            return
        with ThreadPoolExecutor(1, thread_name_prefix="frame-digest") as pool:
            held: DecodedFrame | None = None
            for frame in self._decoded():
                frame._pending_digest = pool.submit(frame_digest, frame.picture)
                if held is not None:
                    yield held
                held = frame
            if held is not None:
                yield held

    def _decoded(self) -> Iterator[DecodedFrame]:
        rate = self.average_rate
        index = 0
        last_pts: int | None = None
        try:
            for frame in self._container.decode(self._stream):
                pts = frame.pts
                if pts is None:
                    if rate is None:
                        raise MediaError(f"{self.source}: a frame without a timestamp")
                    pts = int(Fraction(index) / rate / self.time_base)
                if last_pts is not None and pts <= last_pts:
                    # A repeated or backwards timestamp: keep order, one tick later.
                    pts = last_pts + 1
                last_pts = pts
                yield DecodedFrame(index, pts, self.time_base, frame)
                index += 1
        except av.FFmpegError as exc:
            raise MediaError(f"{self.source}: {exc}") from exc

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def decode_frames(source: str | os.PathLike[str], **options: Any) -> Iterator[DecodedFrame]:
    """Every frame of a file or stream (opens and closes the source)."""
    with VideoSource(source, **options) as video:
        yield from video.frames()
