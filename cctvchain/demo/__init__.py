"""``cctvchain demo``: the whole story on real processes, no mocks.

* :mod:`~cctvchain.demo.workspace`: the demo directory (fresh on every run);
* :mod:`~cctvchain.demo.cluster`: the demo's copy of the network configuration;
* :mod:`~cctvchain.demo.participants`: the paper's participants and the camera;
* :mod:`~cctvchain.demo.camera`: Debian's FFmpeg and GStreamer RTSP server, the clips;
* :mod:`~cctvchain.demo.story`: the nine steps, narrated.
"""


class DemoError(Exception):
    """A step did not behave as the story expects, or cannot run here."""
