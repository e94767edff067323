"""Child process of the crash test: commits workload blocks until killed.

    python ledger_crash_child.py LEDGER SEED STOP_HEIGHT MODE CRASH_AT MAX_FILE_SIZE

Prints ``ready <height>`` once the ledger is open, then each block number right after
``append_block`` returns (i.e. once the block is acknowledged). MODE chooses where the
process SIGKILLs itself while committing block CRASH_AT:

* ``none``: never (the parent kills it at a random moment, or it stops at STOP_HEIGHT);
* ``after_frame``: after the block frame is fsynced, before the LevelDB batch;
* ``half_frame``: after writing (and fsyncing) only the first half of the frame;
* ``after_batch``: after the LevelDB batch, before ``append_block`` returns.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from ledger_helpers import genesis, workload_block  # noqa: E402

from cctvchain.ledger.store import Ledger  # noqa: E402


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(ledger: Ledger, mode: str) -> None:
    """Patch this process's ledger so that the next commit dies at the chosen point."""
    blocks: Any = ledger._blocks
    if mode == "after_frame":
        append = blocks.append

        def append_then_die(payload: bytes) -> Any:
            append(payload)
            die()

        blocks.append = append_then_die
    elif mode == "half_frame":

        def write_half_then_die(frame: bytes) -> None:
            writer = blocks._writer
            writer.write(frame[: len(frame) // 2])
            writer.flush()
            os.fsync(writer.fileno())
            die()

        blocks._write = write_half_then_die
    elif mode == "after_batch":
        apply = ledger._apply

        def apply_then_die(*args: Any, **kwargs: Any) -> None:
            apply(*args, **kwargs)
            die()

        ledger._apply = apply_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown mode {mode}")


def main() -> None:
    path, seed, stop, mode, crash_at, max_file_size = sys.argv[1:7]
    with Ledger.open(path, create=True, max_file_size=int(max_file_size)) as ledger:
        print(f"ready {ledger.height}", flush=True)
        while ledger.height < int(stop):
            number = ledger.height
            if number == 0:
                block = genesis()
            else:
                block = workload_block(int(seed), number, ledger.head_hash)
            if mode != "none" and number == int(crash_at):
                arm(ledger, mode)
            ledger.append_block(block)
            print(number, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
