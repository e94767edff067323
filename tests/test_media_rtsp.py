"""A live RTSP camera (GStreamer) read by the media shell, against an NVR-style recording.

The camera is Debian's GStreamer RTSP server looping a generated H.264 clip. While the
shell decodes the live stream, Debian's ffmpeg records the same stream with ``-c copy``
(what an NVR or an export does); decoding that recording must give a long run of frames
whose exact fingerprints equal the live ones, at one constant frame offset.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from rtsp_camera import FFMPEG, RtspCamera, rtsp_camera, start_rtsp_camera

from cctvchain.media import MediaError, VideoSource, decode_frames

# The first test may install Debian packages (apt) for the whole run.
pytestmark = pytest.mark.timeout(900)

__all__ = ["rtsp_camera"]  # the session fixture, imported for pytest

LIVE_FRAMES = 100  # 4 s at 25 fps


def best_offset(live: list[bytes], recorded: list[bytes]) -> tuple[int, int]:
    """The frame offset (recording index - live index) most digests agree on, and how many."""
    positions: dict[bytes, list[int]] = {}
    for j, digest in enumerate(recorded):
        positions.setdefault(digest, []).append(j)
    votes = Counter(j - i for i, d in enumerate(live) for j in positions.get(d, []))
    assert votes, "no live frame appears in the recording"
    return votes.most_common(1)[0]


def test_live_frames_and_a_c_copy_recording_are_bit_identical_at_one_offset(
    rtsp_camera: RtspCamera, tmp_path: Path
) -> None:
    recording = tmp_path / "nvr.mp4"
    recorder = subprocess.Popen(
        [
            *(FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
            *("-rtsp_transport", "tcp", "-i", rtsp_camera.url, "-c", "copy", "-t", "5"),
            str(recording),
        ],
        stderr=subprocess.PIPE,
    )
    live_digests: list[bytes] = []
    pts: list[int] = []
    captured: list[int] = []
    received: list[int] = []
    try:
        with VideoSource(rtsp_camera.url, open_timeout_s=10, read_timeout_s=10) as source:
            assert source.codec == "h264"
            for frame in source.frames():
                assert (frame.width, frame.height, frame.format) == (640, 360, "yuv420p")
                live_digests.append(frame.digest)
                pts.append(frame.pts_ms)
                captured.append(source.capture_time_ms(frame))
                received.append(time.time_ns() // 1_000_000)
                if len(live_digests) == LIVE_FRAMES:
                    break
            clock = source.clock_source
    finally:
        _, err = recorder.communicate(timeout=60)
    assert recorder.returncode == 0, err.decode()[-2000:]

    recorded = [f.digest for f in decode_frames(recording)]
    offset, votes = best_offset(live_digests, recorded)
    overlap = [(i, i + offset) for i in range(len(live_digests)) if 0 <= i + offset < len(recorded)]
    print(
        f"live {len(live_digests)}, recorded {len(recorded)}, offset {offset}, "
        f"identical {votes} of {len(overlap)} overlapping, clock {clock}"
    )
    assert votes >= 60
    assert all(live_digests[i] == recorded[j] for i, j in overlap)  # every overlapping frame

    # Timestamps: 25 fps, in order; capture times follow pts on the camera's clock.
    steps = {b - a for a, b in itertools.pairwise(pts)}
    assert steps <= {39, 40, 41}
    assert [c - p for c, p in zip(captured, pts, strict=True)] == [captured[0] - pts[0]] * len(pts)
    assert clock in ("rtcp", "host")  # RTCP if a sender report came before the first frame
    lag = [r - c for r, c in zip(received, captured, strict=True)]
    assert max(abs(x) for x in lag) < 10_000, lag[:5]


def test_a_camera_that_stops_sending_raises_after_the_read_timeout(tmp_path: Path) -> None:
    """A hung camera (process stopped, connection still open) must not hang ingest."""
    with start_rtsp_camera(tmp_path, seconds=2.0) as camera:
        source = VideoSource(camera.url, open_timeout_s=10, read_timeout_s=2)
        frames = source.frames()
        for _ in range(10):
            next(frames)
        camera.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(MediaError):
                for _ in frames:
                    assert time.monotonic() - started < 30
            waited = time.monotonic() - started
        finally:
            camera.process.send_signal(signal.SIGCONT)
            source.close()
    print(f"hung camera detected after {waited:.1f} s")
    assert waited < 15
