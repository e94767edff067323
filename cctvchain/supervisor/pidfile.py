"""Pid files that cannot be fooled by a reused pid.

A node's pid file is a small JSON object: the pid, the command it was started with, the
wall-clock start time, and -- on Linux -- the process's start time in clock ticks since
boot (``/proc/<pid>/stat`` field 22) and the boot id. A process counts as the recorded
node only while a process with that pid exists, is not a zombie, started at that same
tick, and the machine has not rebooted since. Without ``/proc`` only the pid's existence
can be checked.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

PROC: Final = Path("/proc")
BOOT_ID: Final = PROC / "sys" / "kernel" / "random" / "boot_id"
_START_FIELD: Final = 19  # index of starttime among the fields after "(comm)"

T = TypeVar("T")


class PidFileError(Exception):
    """A pid file exists but cannot be read as one."""


@dataclass(frozen=True)
class ProcessIdentity:
    """What tells one process from a later one that got the same pid."""

    pid: int
    start_ticks: int | None  # None where /proc is not available
    boot_id: str | None


def boot_id() -> str | None:
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def process_identity(pid: int) -> ProcessIdentity | None:
    """The live process ``pid`` (None if there is none, or only its zombie)."""
    if pid <= 0:
        return None
    stat_file = PROC / str(pid) / "stat"
    if PROC.is_dir():
        try:
            stat = stat_file.read_text()
        except (FileNotFoundError, ProcessLookupError):
            return None
        except OSError:
            return _without_proc(pid)
        # "pid (comm) state ppid ... starttime ...": comm may hold spaces and parentheses.
        fields = stat.rpartition(")")[2].split()
        if len(fields) <= _START_FIELD or fields[0] in ("Z", "X", "x"):
            return None
        return ProcessIdentity(pid, int(fields[_START_FIELD]), boot_id())
    return _without_proc(pid)


def _without_proc(pid: int) -> ProcessIdentity | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, under another user
    return ProcessIdentity(pid, None, None)


@dataclass(frozen=True)
class PidRecord:
    """A node process as ``network up`` started it."""

    node: str
    pid: int
    command: tuple[str, ...]
    started_at: str  # ISO 8601, UTC
    start_ticks: int | None
    boot_id: str | None

    @classmethod
    def for_process(
        cls, node: str, pid: int, command: tuple[str, ...], started_at: str
    ) -> PidRecord:
        identity = process_identity(pid)
        return cls(
            node=node,
            pid=pid,
            command=command,
            started_at=started_at,
            start_ticks=identity.start_ticks if identity is not None else None,
            boot_id=identity.boot_id if identity is not None else boot_id(),
        )

    def is_running(self) -> bool:
        """Whether the recorded process still runs (not a later process with its pid)."""
        identity = process_identity(self.pid)
        if identity is None:
            return False
        if None not in (self.boot_id, identity.boot_id) and self.boot_id != identity.boot_id:
            return False  # the machine rebooted since
        if self.start_ticks is not None and identity.start_ticks is not None:
            return self.start_ticks == identity.start_ticks
        return True

    def why_not_running(self) -> str:
        """For a record that is not running: "pid N is gone" or names the impostor."""
        if process_identity(self.pid) is None:
            return f"pid {self.pid} is gone"
        return f"pid {self.pid} is now another process"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["command"] = list(self.command)
        return data


def write_pidfile(path: Path, record: PidRecord) -> None:
    """Write ``record`` atomically (a reader sees the old file or the whole new one)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(record.to_json(), indent=2) + "\n")
    os.replace(temporary, path)


def read_pidfile(path: Path) -> PidRecord | None:
    """The record in ``path``; None if there is no pid file; PidFileError if unreadable."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PidFileError(f"cannot read pid file {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        record = PidRecord(
            node=_typed(data, "node", str),
            pid=_typed(data, "pid", int),
            command=tuple(_typed(data, "command", list)),
            started_at=_typed(data, "started_at", str),
            start_ticks=_optional(data, "start_ticks", int),
            boot_id=_optional(data, "boot_id", str),
        )
    except (ValueError, TypeError) as exc:
        raise PidFileError(f"pid file {path} is not one written by cctvchain: {exc}") from exc
    if not all(isinstance(part, str) for part in record.command):
        raise PidFileError(f"pid file {path}: 'command' must be a list of strings")
    return record


def remove_pidfile(path: Path) -> bool:
    """Remove ``path``; whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _typed(data: dict[str, Any], key: str, kind: type[T]) -> T:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"'{key}' must be {kind.__name__}")
    return value


def _optional(data: dict[str, Any], key: str, kind: type[T]) -> T | None:
    return None if data.get(key) is None else _typed(data, key, kind)
