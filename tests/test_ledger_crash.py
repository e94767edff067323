"""kill -9 in the middle of committing: no acknowledged block lost, nothing corrupted.

A child process (``ledger_crash_child.py``) commits deterministic random blocks and
prints each block number once ``append_block`` has returned. It is killed with SIGKILL
at chosen points inside the commit and at random moments. After each kill the parent
checks that the reopened ledger

* holds every acknowledged block (and at most the one block that was in flight),
* passes ``verify_chain``,
* holds exactly the state computed independently from the workload,
* and equals, key for key, a ledger rebuilt from a copy of the crashed block files.
"""

from __future__ import annotations

import logging
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from ledger_helpers import expected_state

from cctvchain.ledger.store import Ledger

CHILD = Path(__file__).with_name("ledger_crash_child.py")
SEED = 20261127
MAX_FILE_SIZE = 256 * 1024  # small, so that crashes also hit file roll-overs


@dataclass
class ChildRun:
    start_height: int
    printed: list[int]
    returncode: int
    stderr: str

    @property
    def last_acknowledged(self) -> int:
        return self.printed[-1] if self.printed else self.start_height - 1


def run_child(
    path: Path, stop: int, mode: str = "none", crash_at: int = -1, kill_after: float | None = None
) -> ChildRun:
    args = [
        sys.executable,
        str(CHILD),
        str(path),
        str(SEED),
        str(stop),
        mode,
        str(crash_at),
        str(MAX_FILE_SIZE),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready = proc.stdout.readline().split()
    assert ready and ready[0] == "ready", proc.communicate(timeout=60)
    if kill_after is not None:
        # Sleep in the child's lifetime, then kill it wherever it is.
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    # Read the rest through the buffer readline used: communicate() reads the pipe's fd
    # directly, so block numbers already buffered with the "ready" line would be lost
    # (seen under load, when the child writes both before the parent reads).
    out = proc.stdout.read()
    _, err = proc.communicate(timeout=120)
    printed = [int(line) for line in out.split() if line.isdigit()]
    assert printed == list(range(int(ready[1]), int(ready[1]) + len(printed)))
    return ChildRun(int(ready[1]), printed, proc.returncode, err)


def as_plain(state: dict) -> dict:  # type: ignore[type-arg]
    return {key: (v.value, (v.version.block, v.version.tx)) for key, v in state.items()}


def check_recovery(path: Path, run: ChildRun, copy_dir: Path) -> int:
    """Reopen after a crash; compare with a rebuild from a copy of the crashed files."""
    shutil.copytree(path / "blocks", copy_dir / "blocks")  # before any repair
    with Ledger.open(path) as ledger:
        height = ledger.height
        assert run.last_acknowledged + 1 <= height <= run.last_acknowledged + 2
        report = ledger.verify_chain()
        assert (report.height, report.head_hash) == (height, ledger.head_hash)
        index = ledger.dump_index()
        state = ledger.dump_state()
        assert as_plain(state) == expected_state(SEED, height)
        histories = {key: ledger.get_history(*key) for key in list(state)[:20]}
        txs = {f"tx-{n}-0": ledger.get_tx(f"tx-{n}-0") for n in range(1, height)}
        assert all(
            tx is not None and tx.block_number == int(tx_id.split("-")[1])
            for tx_id, tx in txs.items()
        )
    with Ledger.rebuild(copy_dir, max_file_size=MAX_FILE_SIZE) as rebuilt:
        assert rebuilt.height == height
        assert rebuilt.dump_state() == state
        assert {key: rebuilt.get_history(*key) for key in histories} == histories
        assert {tx_id: rebuilt.get_tx(tx_id) for tx_id in txs} == txs
        assert rebuilt.dump_index() == index  # every key: blocks, tx ids, state, history, savepoint
    recovered = sorted(p.name for p in (path / "blocks").iterdir())
    assert recovered == sorted(p.name for p in (copy_dir / "blocks").iterdir())
    for name in recovered:
        assert (path / "blocks" / name).read_bytes() == (copy_dir / "blocks" / name).read_bytes()
    return height


def test_sigkill_while_committing_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ledger"
    copies = iter(tmp_path / f"copy{i}" for i in range(100))
    never = 10**6

    # (a) killed after the block frame is fsynced, before the LevelDB batch: the block
    # was not acknowledged, its frame is complete, and recovery replays it.
    run = run_child(path, never, "after_frame", crash_at=5)
    assert (run.returncode, run.printed) == (-signal.SIGKILL, [0, 1, 2, 3, 4])
    with caplog.at_level(logging.INFO, logger="cctvchain.ledger.store"):
        height = check_recovery(path, run, next(copies))
    assert height == 6
    assert "replayed blocks 5 to 5" in caplog.text

    # (b) killed after writing half a frame: a torn tail, truncated on open.
    caplog.clear()
    run = run_child(path, never, "half_frame", crash_at=height + 3)
    assert (run.returncode, run.printed[-1]) == (-signal.SIGKILL, height + 2)
    with caplog.at_level(logging.WARNING, logger="cctvchain.ledger.store"):
        height = check_recovery(path, run, next(copies))
    assert height == run.printed[-1] + 1
    assert "truncating a torn write" in caplog.text

    # (c) killed after the batch, before append_block returns: committed, not acknowledged.
    run = run_child(path, never, "after_batch", crash_at=height + 2)
    assert (run.returncode, run.printed[-1]) == (-signal.SIGKILL, height + 1)
    height = check_recovery(path, run, next(copies))
    assert height == run.printed[-1] + 2

    # Random moments: mid-frame, mid-batch, between blocks, during roll-over.
    rng = random.Random(SEED)
    progressed = 0
    for _ in range(6):
        run = run_child(path, never, kill_after=rng.uniform(0.05, 0.4))
        assert run.returncode == -signal.SIGKILL, run.stderr
        new_height = check_recovery(path, run, next(copies))
        progressed += new_height > height
        height = new_height
    assert progressed >= 3  # the kills did land while blocks were being committed

    # After all that, the ledger carries on normally.
    run = run_child(path, height + 5)
    assert run.returncode == 0, run.stderr
    assert run.printed == list(range(height, height + 5))
    with Ledger.open(path) as ledger:
        assert ledger.verify_chain().height == height + 5
        assert as_plain(ledger.dump_state()) == expected_state(SEED, height + 5)
