#!/usr/bin/python3
"""A test camera: a GStreamer RTSP server looping an H.264 elementary stream.

Run by Debian's ``/usr/bin/python3`` (it needs ``python3-gi`` and
``gir1.2-gst-rtsp-server-1.0``, which the project's virtualenv does not have)::

    /usr/bin/python3 scripts/rtsp_server.py --clip clip.h264 --port 8554 --path /cam

The clip must be an Annex-B H.264 stream without B-frames (as most IP cameras send)
whose SPS carries timing information (what ``ffmpeg -c:v libx264 -bf 0 -f h264``
writes). ``h264parse`` gives each access unit a decoding timestamp from that timing and
keeps counting across loops; without B-frames the presentation timestamp equals it, so
a pad probe copies it over (the payloader stamps RTP with the PTS) and the RTSP server's
sinks pace the stream in real time, as a camera would. The clip is looped for as long
as the server runs; every client shares one pipeline (like a camera's single encoder).

Prints ``ready rtsp://127.0.0.1:PORT/PATH`` on stdout once the server listens, and
stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def _pts_from_dts(pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    buffer = info.get_buffer()
    if buffer is not None and buffer.pts == Gst.CLOCK_TIME_NONE:
        buffer.pts = buffer.dts
    return Gst.PadProbeReturn.OK


def _on_media_configure(
    factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
) -> None:
    parse = media.get_element().get_by_name("parse")
    parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, _pts_from_dts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True, help="Annex-B H.264 file to loop")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8554, help="0 picks a free port")
    parser.add_argument("--path", default="/cam")
    args = parser.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))

    factory = GstRtspServer.RTSPMediaFactory()
    location = args.clip.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(
        f'( multifilesrc location="{location}" loop=true '
        "! h264parse name=parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.connect("media-configure", _on_media_configure)
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)

    if server.attach(None) == 0:
        print(f"error: cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 1
    port = server.get_bound_port()
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"ready rtsp://{args.host}:{port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
