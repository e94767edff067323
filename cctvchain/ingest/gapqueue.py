"""Durable queue of gap reports: written when a gap is seen, removed once on the ledger.

A gap (the extractor has no frames from ``from_ms`` to ``to_ms`` of capture time, see
:mod:`cctvchain.chaincode.cctv.gaps`) must survive the same faults as the segments
around it — the network being down when it happens, the extractor being killed before
it is reported — so each one is a small file in the spool's ``gaps/`` directory, named
by its start time and written like the spool's entries (temporary name, fsync, rename,
fsync of the directory). :meth:`GapQueue.ack` removes it after ``ReportGap`` committed
(or was refused as a replay: it was committed before a crash).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".gap"
TMP_PREFIX = ".tmp-"
_DIGITS = 20


@dataclass(frozen=True)
class GapReport:
    from_ms: int  # capture time of the last frame before the gap
    to_ms: int  # capture time of the first frame after it
    after_sequence: int  # the last segment sealed before the gap, -1 if none
    reason: str

    def args(self, camera_id: str) -> list[str]:
        """The arguments of the contract's ``ReportGap``."""
        return [
            camera_id,
            str(self.from_ms),
            str(self.to_ms),
            str(self.after_sequence),
            self.reason,
        ]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GapQueue:
    """Gap reports waiting for the ledger, oldest first (one file each)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.iterdir():
            if path.name.startswith(TMP_PREFIX):
                path.unlink()  # an interrupted put

    def _path(self, from_ms: int) -> Path:
        return self.directory / f"{from_ms:0{_DIGITS}d}{SUFFIX}"

    def put(self, gap: GapReport) -> None:
        data = json.dumps(
            {
                "from": gap.from_ms,
                "to": gap.to_ms,
                "afterSequence": gap.after_sequence,
                "reason": gap.reason,
            }
        ).encode()
        final = self._path(gap.from_ms)
        tmp = self.directory / f"{TMP_PREFIX}{final.name}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        _fsync_dir(self.directory)

    def pending(self) -> list[GapReport]:
        found: list[GapReport] = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                data = json.loads(path.read_bytes())
                found.append(
                    GapReport(
                        int(data["from"]),
                        int(data["to"]),
                        int(data["afterSequence"]),
                        str(data["reason"]),
                    )
                )
            except (OSError, ValueError, KeyError, TypeError):
                path.rename(path.with_name(path.name + ".torn"))  # never retried blindly
        return found

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob(f"*{SUFFIX}"))

    def ack(self, gap: GapReport) -> None:
        path = self._path(gap.from_ms)
        if path.exists():
            path.unlink()
            _fsync_dir(self.directory)
