"""Durable Raft storage: what was saved survives reopening and SIGKILL, exactly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cctvchain.ledger.blockfile import HEADER_SIZE
from cctvchain.orderer.wal import WAL_DIR, DurableRaftStorage, WalCorruptError
from cctvchain.ordering.raft.messages import Entry, EntryKind, HardState, Snapshot
from cctvchain.ordering.raft.storage import MemoryStorage, StorageError

REPO = Path(__file__).resolve().parent.parent


def entry(term: int, index: int) -> Entry:
    return Entry(term, index, EntryKind.NORMAL, f"block {index}".encode())


def test_reopen_restores_hard_state_entries_and_overwrites(tmp_path: Path) -> None:
    storage = DurableRaftStorage(tmp_path)
    model = MemoryStorage()
    steps: list[tuple[Snapshot | None, list[Entry], HardState | None]] = [
        (None, [entry(1, 1), entry(1, 2), entry(1, 3)], HardState(1, "a", 0)),
        (None, [], HardState(1, "a", 2)),
        # A new leader overwrites the uncommitted entry 3 with its own.
        (None, [entry(2, 3), entry(2, 4)], HardState(2, "b", 2)),
        (None, [], HardState(2, "b", 4)),
    ]
    for snapshot, entries, hard in steps:
        storage.save(snapshot, entries, hard)
        model.save(snapshot, entries, hard)
    storage.close()
    reopened = DurableRaftStorage(tmp_path)
    assert reopened.load() == model.load()
    assert [e.term for e in reopened.load().entries] == [1, 1, 2, 2]
    assert reopened.load().hard_state == HardState(2, "b", 4)


def test_inconsistent_save_writes_nothing(tmp_path: Path) -> None:
    storage = DurableRaftStorage(tmp_path)
    storage.save(None, [entry(1, 1)], HardState(1, None, 1))
    with pytest.raises(StorageError):
        storage.save(None, [entry(1, 5)], None)  # a gap in the log
    with pytest.raises(StorageError):
        storage.save(None, [], HardState(1, None, 9))  # commit beyond the log
    storage.close()
    assert DurableRaftStorage(tmp_path).load().hard_state.commit == 1


def test_snapshot_compacts_the_log_and_survives_reopen(tmp_path: Path) -> None:
    storage = DurableRaftStorage(tmp_path)
    storage.save(None, [entry(1, i) for i in range(1, 11)], HardState(1, "a", 10))
    storage.save(Snapshot(8, 1, b"height=8"), [], None)
    storage.save(None, [entry(1, 11)], HardState(1, "a", 11))
    frames = sorted((tmp_path / WAL_DIR).iterdir())
    assert len(frames) == 1
    storage.close()
    state = DurableRaftStorage(tmp_path).load()
    assert state.snapshot == Snapshot(8, 1, b"height=8")
    assert [e.index for e in state.entries] == [9, 10, 11]
    assert state.hard_state.commit == 11


def test_interrupted_compaction_is_finished_or_undone(tmp_path: Path) -> None:
    storage = DurableRaftStorage(tmp_path)
    storage.save(None, [entry(1, 1), entry(1, 2)], HardState(1, "a", 2))
    storage.close()
    # A crash between the two renames leaves wal.old (the log) and wal.new (the rewrite).
    (tmp_path / WAL_DIR).rename(tmp_path / "wal.old")
    (tmp_path / "wal.old").rename(tmp_path / "wal.new")
    (tmp_path / "wal.old").mkdir()
    state = DurableRaftStorage(tmp_path).load()
    assert [e.index for e in state.entries] == [1, 2]
    assert not (tmp_path / "wal.old").exists() and not (tmp_path / "wal.new").exists()


def _last_file(tmp_path: Path) -> Path:
    return sorted((tmp_path / WAL_DIR).iterdir())[-1]


def test_torn_final_write_is_cut_and_the_log_continues(tmp_path: Path) -> None:
    storage = DurableRaftStorage(tmp_path)
    storage.save(None, [entry(1, 1)], HardState(1, "a", 1))
    storage.close()
    with _last_file(tmp_path).open("ab") as handle:
        handle.write(b"\x00\x00\x01\x00" + b"\x07" * 5)  # half a frame header
    reopened = DurableRaftStorage(tmp_path)
    assert [e.index for e in reopened.load().entries] == [1]
    reopened.save(None, [entry(1, 2)], HardState(1, "a", 2))
    reopened.close()
    assert [e.index for e in DurableRaftStorage(tmp_path).load().entries] == [1, 2]


def test_damage_inside_the_log_refuses_to_open(tmp_path: Path) -> None:
    storage = DurableRaftStorage(tmp_path)
    storage.save(None, [entry(1, 1)], HardState(1, "a", 1))
    storage.save(None, [entry(1, 2)], HardState(1, "a", 2))
    storage.close()
    path = _last_file(tmp_path)
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + 3] ^= 0xFF  # inside the first record's payload
    path.write_bytes(bytes(data))
    with pytest.raises(WalCorruptError, match="damaged"):
        DurableRaftStorage(tmp_path)


CHILD = """
import sys
from pathlib import Path
from cctvchain.orderer.wal import DurableRaftStorage
from cctvchain.ordering.raft.messages import Entry, EntryKind, HardState
storage = DurableRaftStorage(Path(sys.argv[1]))
index = len(storage.load().entries)
while True:
    index += 1
    storage.save(None, [Entry(1, index, EntryKind.NORMAL, b"x" * 300)], HardState(1, "a", index))
    print(index, flush=True)
"""


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.45])
def test_sigkill_never_loses_an_acknowledged_save(tmp_path: Path, delay: float) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, cwd=REPO
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # wait until it is running
    assert first.strip() == b"1"
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    rest = process.stdout.read().split()
    process.wait()
    acknowledged = int(rest[-1]) if rest else 1
    state = DurableRaftStorage(tmp_path).load()
    last = state.entries[-1].index
    assert acknowledged <= last <= acknowledged + 1
    assert [e.index for e in state.entries] == list(range(1, last + 1))
    assert state.hard_state.commit == last  # entries and hard state share one frame
