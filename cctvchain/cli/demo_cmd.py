"""``cctvchain demo``: the whole story on real processes (see :mod:`cctvchain.demo.story`)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from cctvchain.cli.errors import CliError

DEFAULT_CONFIG = Path("configs") / "local.toml"
DEFAULT_SECONDS = 30.0
# The checkout the package runs from (an editable install), for `cctvchain demo` started
# outside the repository.
_REPO = Path(__file__).resolve().parent.parent.parent


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from cctvchain.demo.cluster import DEFAULT_PORT_OFFSET

    parser = sub.add_parser(
        "demo",
        help="run the whole story: cluster, RTSP camera, participants, ingest, verify",
        description="Start the default cluster (its own copy, on other ports) and a live "
        "RTSP camera, enrol the paper's participants, have an operator request the "
        "camera and the control room manager approve it, anchor its stream while an "
        "NVR records it, grant a police officer access, verify the recording, a tampered "
        "copy and a re-encoded copy as that officer (HTML reports, evidence bundle), show "
        "that users without access are refused, and stop everything again. Installs "
        "Debian's ffmpeg and GStreamer RTSP server if missing. Every run starts from an "
        "empty directory.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"network topology to copy (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--port-offset",
        type=int,
        default=DEFAULT_PORT_OFFSET,
        metavar="N",
        help="added to every port of the topology, so that the demo does not collide with "
        f"a cluster started from it (default {DEFAULT_PORT_OFFSET}; 0 keeps the ports)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        metavar="S",
        help=f"how long the camera is ingested (default {DEFAULT_SECONDS:g})",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="working directory (default: nodes/demo beside the configuration's nodes)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete DIR first even if an earlier demo did not make it",
    )
    parser.set_defaults(func=run)


def _config_path(given: Path | None) -> Path:
    if given is not None:
        return given
    for candidate in (DEFAULT_CONFIG, _REPO / DEFAULT_CONFIG):
        if candidate.is_file():
            return candidate
    raise CliError(f"no {DEFAULT_CONFIG} here; pass --config FILE")


def _failures() -> tuple[type[Exception], ...]:
    from cctvchain.codec import CodecError
    from cctvchain.demo import DemoError
    from cctvchain.ledger.errors import LedgerError
    from cctvchain.msp.errors import CAError, MSPError, StoreError
    from cctvchain.network.config import NetworkConfigError
    from cctvchain.network.genesis import GenesisError
    from cctvchain.network.material import MaterialError
    from cctvchain.supervisor.network import SupervisorError
    from cctvchain.supervisor.probe import ProbeSetupError
    from cctvchain.supervisor.process import ProcessError

    return (
        DemoError,
        NetworkConfigError,
        MaterialError,
        GenesisError,
        CAError,
        MSPError,
        StoreError,
        LedgerError,
        CodecError,
        SupervisorError,
        ProbeSetupError,
        ProcessError,
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so that the demo stops what it started.
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    # Imported here so that `cctvchain --help` does not load plyvel and the crypto stack.
    from cctvchain.demo import story, workspace
    from cctvchain.network.config import NetworkConfigError, load_network_config

    if args.seconds < story.MIN_SECONDS:
        # Time to connect, record a few seconds inside the ingest, and drain.
        raise CliError(f"--seconds must be at least {story.MIN_SECONDS:g}", exit_code=2)
    template = _config_path(args.config)
    failures = _failures()
    stream = sys.stdout  # not what a command run inside the demo redirects it to

    def say(line: str) -> None:
        # One write per line (print() writes the newline separately) so that a line
        # from another thread cannot land inside it; flushed so each step shows as it
        # happens.
        stream.write(line + "\n")
        stream.flush()

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        try:
            config = load_network_config(template)
        except NetworkConfigError as exc:
            raise CliError(f"demo failed: {exc}") from exc
        directory: Path = args.dir if args.dir is not None else config.nodes_dir / "demo"
        story.stop_leftovers(directory, say)
        workspace.prepare(directory, fresh=args.fresh, protect=[Path.cwd(), template])
        say(
            f"cctvchain demo: the whole story on network {config.name} "
            f"({story.display_path(template)}), working in {story.display_path(directory)}"
        )
        options = story.StoryOptions(
            directory=directory,
            template=template,
            port_offset=args.port_offset,
            seconds=args.seconds,
        )
        result = story.Story(options, say).run()
    except failures as exc:
        raise CliError(f"demo failed: {exc}") from exc
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise CliError(f"demo failed: {exc.strerror or exc}{where}") from exc
    finally:
        signal.signal(signal.SIGTERM, previous)
    verdicts = ", ".join(f"{v.label} {v.verdict}" for v in result.verifications[:3])
    say(f"demo finished in {result.elapsed_s:.0f} s: {verdicts}; users without a grant refused")
    return 0
