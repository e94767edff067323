"""What a leader knows about one follower's log, and how it paces sending to it.

Three states, as in etcd:

* PROBE — we do not know where the follower's log matches ours; send one
  AppendEntries and wait for its answer (or a heartbeat response) before the next;
* REPLICATE — the follower keeps up; stream entries optimistically, at most
  ``max_inflight`` unanswered messages;
* SNAPSHOT — the follower needs entries we compacted; an InstallSnapshot is out and
  nothing more is sent until the follower answers or the shell reports the snapshot's
  fate (:meth:`RaftNode.report_snapshot`).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@dataclass
class Progress:
    next: int
    match: int = 0
    state: ProgressState = ProgressState.PROBE
    probe_sent: bool = False
    pending_snapshot: int = 0
    recent_active: bool = False
    # Last index of each unanswered AppendEntries, oldest first (REPLICATE only).
    inflight: deque[int] = field(default_factory=deque)

    def is_paused(self, max_inflight: int) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflight) >= max_inflight
        return True

    def become_probe(self) -> None:
        # After a snapshot, resume just past it (the follower's answer may be lost).
        resume = max(self.match + 1, self.pending_snapshot + 1)
        self._reset(ProgressState.PROBE)
        self.next = resume

    def become_replicate(self) -> None:
        self._reset(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflight.clear()

    def sent_entries(self, last_index: int, count: int) -> None:
        """Record an AppendEntries carrying ``count`` entries up to ``last_index``."""
        if self.state is ProgressState.REPLICATE and count:
            self.next = last_index + 1
            self.inflight.append(last_index)
        elif self.state is ProgressState.PROBE and count:
            self.probe_sent = True

    def acknowledge(self, index: int) -> bool:
        """The follower matches up to ``index``; False if that is old news."""
        self.inflight_free_to(index)
        if index <= self.match:
            return False
        self.match = index
        self.next = max(self.next, index + 1)
        self.probe_sent = False
        return True

    def inflight_free_to(self, index: int) -> None:
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()

    def reject(self, rejected: int, hint_index: int) -> bool:
        """The follower refused prev index ``rejected``; back off. False if stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False  # an answer to a message sent before the last success
            self.become_probe()
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False  # not the answer to our current probe
        self.next = max(min(rejected, hint_index + 1), self.match + 1)
        self.probe_sent = False
        return True
