"""The demo's video side: Debian's FFmpeg and GStreamer RTSP server, a generated camera
clip, a live RTSP camera looping it, an NVR-style ``-c copy`` recording, and the two
edited copies (one frame with a box painted on it, a 720p re-encode).

Everything runs as real programs: ``/usr/bin/ffmpeg`` (libx264) makes and edits the
video, ``scripts/rtsp_server.py`` under Debian's ``/usr/bin/python3`` (GStreamer's RTSP
server through ``gi``, which the virtualenv does not have) serves it. The packages are
installed with apt when missing and the demo runs as root; otherwise the error names
the command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cctvchain.demo import DemoError

SYSTEM_PYTHON: Final = "/usr/bin/python3"
FFMPEG: Final = "/usr/bin/ffmpeg"
FFPROBE: Final = "/usr/bin/ffprobe"
# The checkout the package runs from (an editable install) holds the server script.
SERVER_SCRIPT: Final = Path(__file__).resolve().parent.parent.parent / "scripts" / "rtsp_server.py"

DEBIAN_PACKAGES: Final = (
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

# What the RTSP server needs from GStreamer, checked under Debian's python3.
_GI_CHECK: Final = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
    "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
    "missing = [e for e in ('multifilesrc', 'h264parse', 'rtph264pay') "
    "if Gst.ElementFactory.find(e) is None]; "
    "raise SystemExit(' '.join(missing) or None)"
)

FPS: Final = 25
SIZE: Final = "640x360"
# Fractions of the width and height scrolled per frame (periods of 32.5 s and 23.5 s).
SCROLL: Final = "scroll=horizontal=0.00123:vertical=0.0017"
REENCODE_BITRATE: Final = "800k"
# The tampering: a white box with a black centre over 3 % of one frame. Two tones, so
# that it changes the picture whatever the (scrolling) pattern shows beneath it.
BOX: Final = (
    "x=100:y=50:w=110:h=60:color=white:t=fill",
    "x=125:y=65:w=60:h=30:color=black:t=fill",
)

Out = Callable[[str], None]


def _packages_present() -> bool:
    tools = (FFMPEG, FFPROBE, SYSTEM_PYTHON)
    if not all(os.access(tool, os.X_OK) for tool in tools):
        return False
    try:
        check = subprocess.run(
            [SYSTEM_PYTHON, "-c", _GI_CHECK], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0


def ensure_packages(out: Out) -> None:
    """Install Debian's FFmpeg and GStreamer RTSP server packages if any is missing."""
    if _packages_present():
        out("Debian packages present: ffmpeg (libx264), GStreamer RTSP server, python3-gi")
        return
    install = f"apt-get install -y --no-install-recommends {' '.join(DEBIAN_PACKAGES)}"
    if shutil.which("apt-get") is None:
        raise DemoError(
            "the demo needs Debian's ffmpeg and GStreamer RTSP server packages "
            f"({' '.join(DEBIAN_PACKAGES)}), and this machine has no apt-get"
        )
    if os.geteuid() != 0:
        raise DemoError(
            f"the demo needs Debian packages that are missing; install them with: sudo {install}"
        )
    out(f"installing Debian packages (once): {' '.join(DEBIAN_PACKAGES)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], install.split()):
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise DemoError(f"{' '.join(command[:2])} failed: {' / '.join(tail)}")
    if not _packages_present():
        raise DemoError("installed the Debian media packages, but the RTSP server still fails")
    out("installed")


def ffmpeg(*args: str, timeout: float = 300.0) -> None:
    """Run Debian's ffmpeg quietly; a failure is a DemoError with its last words."""
    command = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"ffmpeg took longer than {timeout:g} s: {' '.join(command)}") from exc
    if done.returncode != 0:
        raise DemoError(f"ffmpeg failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def make_camera_clip(path: Path, seconds: float) -> Path:
    """An H.264 elementary stream with moving content, like an IP camera's: 640x360 at
    25 fps, one keyframe a second, no B-frames (the RTSP server needs the SPS timing
    ``-f h264`` writes). Long enough that the camera never loops during the demo.

    The test pattern alone repeats its picture every 12 s (only its clock digits
    differ), which a re-encoded copy cannot tell apart; scrolling it at rates that do
    not divide 12 s makes every second of the clip look different from every other
    (at least 18 of 64 DCT-hash bits over 76 s), as a real scene does."""
    ffmpeg(
        *("-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={FPS},{SCROLL}"),
        *("-t", f"{seconds:g}"),
        *("-c:v", "libx264", "-preset", "veryfast", "-g", str(FPS), "-crf", "20", "-bf", "0"),
        *("-pix_fmt", "yuv420p", "-threads", "2", "-f", "h264", str(path)),
    )
    return path


def count_frames(path: Path) -> int:
    """Video packets in ``path`` (a ``-c copy`` recording holds one per frame)."""
    command = [
        *(FFPROBE, "-v", "error", "-select_streams", "v:0", "-count_packets"),
        *("-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    text = done.stdout.strip().rstrip(",")
    if done.returncode != 0 or not text.isdigit():
        raise DemoError(f"ffprobe cannot count the frames of {path}: {done.stderr.strip()}")
    return int(text)


def paint_box(source: Path, target: Path, frame: int) -> Path:
    """A copy of ``source`` with a box painted on frame ``frame`` only, re-encoded
    as an editor would export it (timestamps kept frame for frame)."""
    ffmpeg(
        *("-i", str(source), "-fps_mode", "passthrough"),
        *("-vf", ",".join(f"drawbox={box}:enable='eq(n,{frame})'" for box in BOX)),
        *("-c:v", "libx264", "-crf", "18", "-preset", "ultrafast", str(target)),
    )
    return target


def reencode_720p(source: Path, target: Path, bitrate: str = REENCODE_BITRATE) -> Path:
    """An honest re-encode: scaled to 1280x720 at another bitrate (what a video-sharing
    export does); no frame's content changes.

    800 kbit/s at 720p is about a seventh of the camera's bits per pixel. With x264's
    fastest preset, 300 kbit/s made the verifier call a few tiles at the picture's
    edges altered on a 24 s recording; 500 kbit/s and more did not."""
    ffmpeg(
        *("-i", str(source), "-fps_mode", "passthrough", "-vf", "scale=1280:720"),
        *("-c:v", "libx264", "-b:v", bitrate, "-preset", "ultrafast", str(target)),
    )
    return target


def _stop(process: subprocess.Popen[str] | subprocess.Popen[bytes], wait: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class RtspCamera:
    """The GStreamer RTSP server looping the camera clip (one shared pipeline)."""

    url: str
    clip: Path
    process: subprocess.Popen[str]
    log: Path

    def stop(self) -> None:
        _stop(self.process)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def start_rtsp_camera(clip: Path, log: Path, *, timeout: float = 30.0) -> RtspCamera:
    """Start the server on a free loopback port; its stderr goes to ``log``."""
    if not SERVER_SCRIPT.is_file():
        raise DemoError(
            f"the RTSP camera needs {SERVER_SCRIPT} (run the demo from a checkout of cctvchain)"
        )
    with log.open("ab") as err:
        process = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--clip", str(clip), "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    camera = RtspCamera("", clip, process, log)
    line = _first_line(process, timeout)
    if not line.startswith("ready "):
        camera.stop()
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise DemoError(
            f"the RTSP camera did not start (it said {line.strip()!r}): {' / '.join(tail)}"
        )
    camera.url = line.split()[1]
    return camera


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    found: list[str] = []

    def read() -> None:
        if process.stdout is not None:
            found.append(process.stdout.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else ""


class Recorder:
    """An NVR recording the camera: ``ffmpeg -rtsp_transport tcp -i URL -c copy FILE``,
    until :meth:`finish` presses ``q`` (ffmpeg then closes the file properly). Stopped
    by the clock rather than by ``-t``, so that a slow RTSP connection cannot push the
    recording's end past the ingest's."""

    def __init__(self, url: str, path: Path, log: Path) -> None:
        self.path = path
        self.log = log
        self.command = [
            *(FFMPEG, "-hide_banner", "-loglevel", "error", "-y"),
            *("-rtsp_transport", "tcp", "-i", url, "-c", "copy", str(path)),
        ]
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err
            )

    def finish(self, timeout: float = 30.0) -> None:
        """Stop recording now; a DemoError if ffmpeg failed or wrote no file."""
        if self.process.poll() is None and self.process.stdin is not None:
            try:
                self.process.stdin.write(b"q")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise DemoError(f"the NVR recording did not stop within {timeout:g} s") from exc
        if code != 0 or not self.path.is_file():
            tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
            raise DemoError(f"the NVR recording failed ({code}): {' / '.join(tail)}")

    def stop(self) -> None:
        _stop(self.process)
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
