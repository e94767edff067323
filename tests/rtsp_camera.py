"""Test support for the media and ingest tests (not a test module): real video, made here.

* :func:`ensure_media_packages` installs Debian's FFmpeg and GStreamer RTSP server
  packages when they are missing (as root, with apt) and fails loudly when it cannot —
  these tests never skip.
* :func:`make_clip` has Debian's ``ffmpeg`` generate a short H.264 clip with moving
  content (``testsrc2``, ``mandelbrot``, ...) at test time; no video is committed.
* :func:`start_rtsp_camera` runs ``scripts/rtsp_server.py`` under Debian's
  ``/usr/bin/python3`` (GStreamer's RTSP server through ``gi``) on a free loopback port,
  looping such a clip like a live camera, and stops it afterwards; the session-scoped
  :func:`rtsp_camera` fixture yields one for the whole session.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = REPO / "scripts" / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"
FFMPEG = "/usr/bin/ffmpeg"
FFPROBE = "/usr/bin/ffprobe"

DEBIAN_PACKAGES = (
    "gstreamer1.0-rtsp",
    "gir1.2-gst-rtsp-server-1.0",
    "python3-gi",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-libav",
    "ffmpeg",
)

_GI_CHECK = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
    "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
    "missing = [e for e in ('multifilesrc', 'h264parse', 'rtph264pay') "
    "if Gst.ElementFactory.find(e) is None]; "
    "raise SystemExit(' '.join(missing) or None)"
)

_installed = False


def _packages_present() -> bool:
    if not (os.access(FFMPEG, os.X_OK) and os.access(FFPROBE, os.X_OK)):
        return False
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    check = subprocess.run(
        [SYSTEM_PYTHON, "-c", _GI_CHECK], capture_output=True, text=True, timeout=60
    )
    return check.returncode == 0


def ensure_media_packages() -> None:
    """Install the Debian packages the media tests need, or fail the test run loudly."""
    global _installed
    if _installed:
        return
    lock_path = Path(tempfile.gettempdir()) / "cctvchain-media-apt.lock"
    with open(lock_path, "w") as lock:  # one installer at a time across xdist workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _packages_present():
            if shutil.which("apt-get") is None or os.geteuid() != 0:
                pytest.fail(
                    "the media tests need Debian packages "
                    f"({' '.join(DEBIAN_PACKAGES)}) and can install them only as root "
                    "with apt-get",
                    pytrace=False,
                )
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            for command in (
                ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *DEBIAN_PACKAGES],
            ):
                done = subprocess.run(command, capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    pytest.fail(
                        f"{' '.join(command)} failed ({done.returncode}):\n"
                        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}",
                        pytrace=False,
                    )
            if not _packages_present():
                pytest.fail("installed the media packages, still missing a piece", pytrace=False)
    _installed = True


def ffmpeg(*args: str, timeout: float = 120.0) -> None:
    """Run Debian's ffmpeg quietly; fail the test with its stderr if it fails."""
    ensure_media_packages()
    command = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)}\n{done.stderr[-3000:]}", pytrace=False)


def ffmpeg_output(*args: str, timeout: float = 120.0) -> bytes:
    """Run Debian's ffmpeg and return what it writes to stdout."""
    ensure_media_packages()
    command = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    done = subprocess.run(command, capture_output=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)}\n{done.stderr.decode()[-3000:]}", pytrace=False)
    return done.stdout


def make_clip(
    path: Path,
    *,
    source: str = "testsrc2",
    size: str = "640x360",
    rate: int = 25,
    seconds: float = 3.0,
    gop: int = 25,
    bframes: int | None = None,
    pix_fmt: str = "yuv420p",
    crf: int | None = 20,
    filters: str | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """Generate an H.264 clip with moving content (libx264 via Debian's ffmpeg)."""
    args = ["-f", "lavfi", "-i", f"{source}=size={size}:rate={rate}", "-t", str(seconds)]
    if filters:
        args += ["-vf", filters]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-g", str(gop)]
    if crf is not None:
        args += ["-crf", str(crf)]
    if bframes is not None:
        args += ["-bf", str(bframes)]
    args += ["-pix_fmt", pix_fmt, "-threads", "2", *extra, str(path)]
    ffmpeg(*args)
    return path


def transcode(source: Path, target: Path, *args: str) -> Path:
    """Re-encode (or with ``-c copy``, remux) ``source`` frame for frame into ``target``."""
    ffmpeg("-i", str(source), "-fps_mode", "passthrough", *args, str(target))
    return target


@dataclass
class RtspCamera:
    url: str
    clip: Path  # the looped Annex-B H.264 stream
    process: subprocess.Popen[str]


@contextlib.contextmanager
def start_rtsp_camera(workdir: Path, *, seconds: float = 8.0) -> Iterator[RtspCamera]:
    """A GStreamer RTSP server on a free loopback port looping a generated clip.

    The clip is 640x360 at 25 fps, one keyframe a second and no B-frames (like an IP
    camera's stream); the server shares one pipeline between clients.
    """
    ensure_media_packages()
    clip = make_clip(workdir / "camera.h264", seconds=seconds, bframes=0, extra=("-f", "h264"))
    process = subprocess.Popen(
        [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--clip", str(clip), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _wait_ready(process, timeout=30.0)
        yield RtspCamera(url, clip, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _wait_ready(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    found: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        line = process.stdout.readline()
        found.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    line = found[0] if found else ""
    if not line.startswith("ready "):
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(
            f"the RTSP test camera did not start (got {line!r}):\n{err[-3000:]}", pytrace=False
        )
    return line.split()[1]


@pytest.fixture(scope="session")
def rtsp_camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspCamera]:
    """A live RTSP camera for the whole session: yields its rtsp:// URL and clip."""
    with start_rtsp_camera(tmp_path_factory.mktemp("rtsp-camera")) as camera:
        yield camera


@pytest.fixture(scope="session")
def media_tools() -> None:
    """Debian's ffmpeg (and the GStreamer RTSP server) are installed."""
    ensure_media_packages()
