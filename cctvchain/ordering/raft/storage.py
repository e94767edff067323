"""Where a node's Raft state survives crashes: the interface, and an in-memory model.

The core never reads storage after it starts: it keeps its own copy of the log and
hands out, in each :class:`~cctvchain.ordering.raft.ready.Ready`, exactly what must be
written. So a storage is two calls — ``load`` once at start, ``save`` once per Ready
— and :class:`MemoryStorage` is the reference a durable store must behave like.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from cctvchain.ordering.raft.messages import Entry, HardState, Snapshot
from cctvchain.ordering.raft.ready import RaftState, Ready


class StorageError(RuntimeError):
    """A save that would leave the stored log inconsistent (a caller bug)."""


class RaftStorage(Protocol):
    def load(self) -> RaftState:
        """Everything saved so far (an empty state for a new node)."""
        ...

    def save(
        self, snapshot: Snapshot | None, entries: Sequence[Entry], hard_state: HardState | None
    ) -> None:
        """Durably store, in this order: the snapshot, the entries, the hard state.

        The order keeps every crash point consistent: a stored commit index never
        points past the stored log. Semantics as :class:`MemoryStorage`.
        """
        ...


def save_ready(storage: RaftStorage, ready: Ready) -> None:
    """Step 1 of handling a Ready."""
    if ready.must_sync:
        storage.save(ready.snapshot, ready.entries, ready.hard_state)


class MemoryStorage:
    """A :class:`RaftStorage` held in memory: for tests, and as the specification."""

    def __init__(self, initial: RaftState | None = None) -> None:
        state = initial or RaftState()
        self.hard_state = state.hard_state
        self.snapshot = state.snapshot
        self.entries: list[Entry] = list(state.entries)
        self.saves = 0

    @property
    def last_index(self) -> int:
        return self.snapshot.index + len(self.entries)

    def term(self, index: int) -> int | None:
        if index == self.snapshot.index:
            return self.snapshot.term
        if self.snapshot.index < index <= self.last_index:
            return self.entries[index - self.snapshot.index - 1].term
        return None

    def load(self) -> RaftState:
        return RaftState(self.hard_state, self.snapshot, tuple(self.entries))

    def save(
        self, snapshot: Snapshot | None, entries: Sequence[Entry], hard_state: HardState | None
    ) -> None:
        self.saves += 1
        if snapshot is not None:
            self._apply_snapshot(snapshot)
        if entries:
            self._append(entries)
        if hard_state is not None:
            if hard_state.commit > self.last_index:
                raise StorageError(
                    f"commit {hard_state.commit} beyond stored log end {self.last_index}"
                )
            self.hard_state = hard_state

    def _apply_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.index <= self.snapshot.index:
            return  # older than what we hold: nothing to gain
        if self.term(snapshot.index) == snapshot.term:
            # Compaction, or a leader's snapshot of a prefix we hold: keep what follows
            # (Raft paper §7).
            kept = self.entries[snapshot.index - self.snapshot.index :]
        else:
            kept = []
        self.snapshot = snapshot
        self.entries = kept

    def _append(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        if first <= self.snapshot.index or first > self.last_index + 1:
            raise StorageError(
                f"entries from {first} do not join the stored log "
                f"({self.snapshot.index}, {self.last_index}]"
            )
        del self.entries[first - self.snapshot.index - 1 :]
        self.entries.extend(entries)
