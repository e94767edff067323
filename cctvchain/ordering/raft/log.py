"""The in-memory Raft log: a snapshot, the entries after it, and three watermarks.

Indices are 1-based and contiguous; ``snapshot.index`` (0 for none) stands for every
entry it replaced. Watermarks, always ``applied <= committed <= last_index``:

* ``stable`` — entries up to here are in durable storage; later ones are handed out by
  :meth:`unstable_entries` until the caller confirms they are persisted;
* ``committed`` — known to be replicated on a majority, never to be rolled back;
* ``applied`` — handed to the application.
"""

from __future__ import annotations

from collections.abc import Sequence

from cctvchain.ordering.raft.messages import Entry, Snapshot


class LogInvariantError(RuntimeError):
    """Raft was asked to do something that would break its own safety (a bug)."""


class RaftLog:
    def __init__(
        self, snapshot: Snapshot, entries: Sequence[Entry], commit: int, applied: int
    ) -> None:
        for offset, entry in enumerate(entries):
            if entry.index != snapshot.index + 1 + offset:
                raise ValueError(f"log entries not contiguous after snapshot at {entry.index}")
        self.snapshot = snapshot
        self.entries: list[Entry] = list(entries)
        if not snapshot.index <= commit <= self.last_index:
            raise ValueError(f"commit {commit} outside [{snapshot.index}, {self.last_index}]")
        if not applied <= commit:
            raise ValueError(f"applied {applied} is beyond commit {commit}")
        self.stable = self.last_index
        self.committed = commit
        # Entries at or below the snapshot reach the application by the snapshot itself.
        self.applied = max(applied, snapshot.index)
        # A snapshot the caller has yet to persist (local compaction or leader's install).
        self.unstable_snapshot: Snapshot | None = None

    # -- reading -----------------------------------------------------------------------

    @property
    def first_index(self) -> int:
        return self.snapshot.index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot.index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot.term

    def term(self, index: int) -> int | None:
        """The term of the entry at ``index``; None if compacted away or not there yet."""
        if index == self.snapshot.index:
            return self.snapshot.term
        if self.snapshot.index < index <= self.last_index:
            return self.entries[index - self.first_index].term
        return None

    def matches(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft's election restriction: is a candidate's log at least as current as ours?"""
        if last_term != self.last_term:
            return last_term > self.last_term
        return last_index >= self.last_index

    def slice(self, low: int, max_count: int, max_bytes: int) -> tuple[Entry, ...] | None:
        """Entries from ``low`` on, within the limits (at least one); None if compacted."""
        if low < self.first_index:
            return None
        start = low - self.first_index
        picked: list[Entry] = []
        size = 0
        for entry in self.entries[start : start + max_count]:
            size += len(entry.data)
            if picked and size > max_bytes:
                break
            picked.append(entry)
        return tuple(picked)

    def entries_between(self, low: int, high: int) -> list[Entry]:
        """Entries with ``low <= index <= high`` (both inside the uncompacted log)."""
        if high < low:
            return []
        return self.entries[low - self.first_index : high - self.first_index + 1]

    def unstable_entries(self) -> list[Entry]:
        return self.entries[self.stable - self.snapshot.index :]

    def entries_to_apply(self) -> list[Entry]:
        return self.entries_between(self.applied + 1, self.committed)

    def conflict_hint(self, index: int, term: int) -> tuple[int, int]:
        """The last of our entries at or below ``index`` whose term is at most ``term``.

        A follower that refuses AppendEntries(prev=index, prev_term=term) returns this so
        the leader can skip every entry of a term the follower cannot match.
        """
        index = min(index, self.last_index)
        while index > self.snapshot.index:
            entry_term = self.entries[index - self.first_index].term
            if entry_term <= term:
                return index, entry_term
            index -= 1
        return self.snapshot.index, self.snapshot.term

    # -- changing ----------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        """Add entries that follow on from ``entries[0].index - 1``, dropping what is after."""
        if not entries:
            return
        first = entries[0].index
        if first <= self.committed:
            raise LogInvariantError(f"would overwrite committed entry {first}")
        if first > self.last_index + 1:
            raise LogInvariantError(f"gap: appending {first} after {self.last_index}")
        del self.entries[first - self.first_index :]
        self.entries.extend(entries)
        # Storage must rewrite from ``first`` on.
        self.stable = min(self.stable, first - 1)

    def maybe_append(self, prev_index: int, prev_term: int, entries: Sequence[Entry]) -> int | None:
        """A follower's AppendEntries: the last matching index, or None if prev mismatches.

        Entries we already hold are left alone, so that a delayed, shorter AppendEntries
        does not cut off entries a later one brought.
        """
        if not self.matches(prev_index, prev_term):
            return None
        for position, entry in enumerate(entries):
            if not self.matches(entry.index, entry.term):
                self.append(entries[position:])
                break
        return prev_index + len(entries)

    def commit_to(self, index: int) -> bool:
        if index <= self.committed:
            return False
        if index > self.last_index:
            raise LogInvariantError(f"commit {index} beyond last index {self.last_index}")
        self.committed = index
        return True

    def stable_to(self, index: int, term: int) -> None:
        """The caller persisted entries up to ``index`` (if it still holds ``term``)."""
        if index > self.stable and self.matches(index, term):
            self.stable = index

    def applied_to(self, index: int) -> None:
        if index > self.committed:
            raise LogInvariantError(f"applied {index} beyond commit {self.committed}")
        self.applied = max(self.applied, index)

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log by a leader's snapshot (ours does not contain its index)."""
        if snapshot.index <= self.committed:
            raise LogInvariantError("restoring a snapshot that is not ahead of the commit")
        self.snapshot = snapshot
        self.entries = []
        self.committed = self.applied = self.stable = snapshot.index
        self.unstable_snapshot = snapshot

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Drop entries up to ``index`` (already applied), recording a snapshot of them."""
        if index <= self.snapshot.index:
            raise ValueError(f"index {index} is already compacted (at {self.snapshot.index})")
        if index > self.applied:
            raise ValueError(f"cannot compact to {index}: only {self.applied} applied")
        term = self.term(index)
        assert term is not None  # snapshot.index < index <= applied <= last_index
        snapshot = Snapshot(index=index, term=term, data=data)
        del self.entries[: index - self.snapshot.index]
        self.snapshot = snapshot
        self.stable = max(self.stable, index)
        self.unstable_snapshot = snapshot
        return snapshot
