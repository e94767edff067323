"""Starting node processes detached from the terminal, signalling them, waiting for them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from cctvchain.supervisor.nodes import ManagedNode
from cctvchain.supervisor.pidfile import PidRecord, write_pidfile

POLL_INTERVAL: Final = 0.05
TAIL_BYTES: Final = 64 * 1024


class ProcessError(Exception):
    """A node process could not be started or signalled; the message is one line."""


def node_command(config_path: Path, name: str, *, log_level: str = "info") -> tuple[str, ...]:
    """How a node is started: this interpreter running ``cctvchain node start``."""
    return (
        sys.executable,
        "-m",
        "cctvchain",
        "node",
        "start",
        "--config",
        str(config_path),
        "--name",
        name,
        "--log-level",
        log_level,
    )


def spawn(node: ManagedNode, command: Sequence[str]) -> tuple[subprocess.Popen[bytes], PidRecord]:
    """Start ``command`` for ``node`` in a new session (its own process group, no
    terminal), stdin from /dev/null, stdout and stderr appended to the node's log; write
    its pid file. The returned Popen lets the caller notice an early exit."""
    node.directory.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        with node.log_path.open("ab") as log:
            log.write(
                f"--- {started.isoformat(timespec='seconds')} cctvchain network up: "
                f"{' '.join(command)}\n".encode()
            )
            log.flush()
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
            )
    except OSError as exc:
        raise ProcessError(f"{node.name}: cannot start {command[0]}: {exc}") from exc
    record = PidRecord.for_process(
        node.name, process.pid, tuple(command), started.isoformat(timespec="milliseconds")
    )
    write_pidfile(node.pid_path, record)
    return process, record


def send(record: PidRecord, sig: signal.Signals) -> bool:
    """Send ``sig`` to the node's process group (its session); False if it is gone."""
    if not record.is_running():
        return False
    try:
        # start_new_session made the node its group's leader: the group is its pid.
        os.killpg(record.pid, sig)
    except ProcessLookupError:
        try:
            os.kill(record.pid, sig)
        except ProcessLookupError:
            return False
    except PermissionError as exc:
        raise ProcessError(
            f"{record.node}: not allowed to signal pid {record.pid} ({exc.strerror})"
        ) from exc
    return True


def wait_gone(records: Iterable[PidRecord], timeout: float) -> list[PidRecord]:
    """Wait up to ``timeout`` s for the processes to exit; those still running."""
    pending = list(records)
    deadline = time.monotonic() + timeout
    while pending:
        pending = [record for record in pending if record.is_running()]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    return pending


def log_tail(path: Path, lines: int = 15) -> list[str]:
    """The last ``lines`` lines of a log file (none if it does not exist)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    return text[-lines:]
