"""One Raft node as a pure, deterministic state machine (after etcd's ``RawNode``).

Inputs:

* :meth:`RaftNode.tick` — the only clock;
* :meth:`RaftNode.step` — a message from a peer;
* :meth:`RaftNode.propose` — new data (leader only, else :class:`NotLeader`);
* :meth:`RaftNode.compact` — "my state up to here is captured in this snapshot";
* :meth:`RaftNode.report_snapshot` — whether an InstallSnapshot reached its follower.

Output: :meth:`RaftNode.ready` — what to persist, then send, then apply (see
:class:`~cctvchain.ordering.raft.ready.Ready`) — confirmed by :meth:`RaftNode.advance`.
The only randomness is the election timeout, drawn from the ``random.Random`` given.

This module is the leader's half; :mod:`~cctvchain.ordering.raft.core` has the rest.
"""

from __future__ import annotations

import random

from cctvchain.ordering.raft.config import RaftConfig
from cctvchain.ordering.raft.core import RaftCore
from cctvchain.ordering.raft.messages import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    RaftMessage,
    Snapshot,
)
from cctvchain.ordering.raft.progress import Progress, ProgressState
from cctvchain.ordering.raft.ready import NotLeader, RaftState, Role, SnapshotStatus


class RaftNode(RaftCore):
    """A Raft node. Construct with ``(config, state, rng, applied=None)``.

    ``state`` is what storage loaded (:class:`~cctvchain.ordering.raft.ready.RaftState`);
    ``applied`` is how far the application's own durable state has got (e.g. the index
    of the last block in the ledger), which must not exceed the stored commit index; by
    default the snapshot's index. If the stored snapshot is ahead of the application (a
    crash after saving a leader's snapshot, before its blocks were fetched), the shell
    catches up to it first: committed entries resume after the snapshot.

    Membership is fixed (``config.peers``); a member must keep its storage — one that
    lost it may not rejoin under the same name, since Raft counts on what it promised.
    A :class:`~cctvchain.ordering.raft.log.LogInvariantError` from ``step`` means that
    promise was broken (or a bug): stop the node rather than carry on.
    """

    def __init__(
        self,
        config: RaftConfig,
        state: RaftState,
        rng: random.Random,
        applied: int | None = None,
    ) -> None:
        super().__init__(config, state, rng, applied)
        self._progress: dict[str, Progress] = {}  # per peer, while leading

    # -- leader-only inputs ------------------------------------------------------------

    def propose(self, data: bytes) -> int:
        """Append ``data`` to the log; returns its index (it is committed, or not, later).

        Raises :class:`NotLeader` (with a hint where to go) on any other node.
        """
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        return self._append(EntryKind.NORMAL, data)

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Record that the application's state up to ``index`` is captured by ``data``.

        The log up to ``index`` (which must be applied) is dropped; the snapshot comes
        out in the next Ready to be persisted. Followers that need dropped entries are
        sent the snapshot instead.
        """
        return self._log.compact(index, data)

    def report_snapshot(self, peer: str, status: SnapshotStatus) -> None:
        """The shell's word on an InstallSnapshot it sent to ``peer`` (etcd's ReportSnapshot).

        FINISHED: the follower has it; probe just after it once the follower answers.
        FAILED: it was lost; probe again, which sends a fresh snapshot if still needed.
        Either way wait for the follower's next response before sending it more.
        """
        progress = self._progress.get(peer) if self._role is Role.LEADER else None
        if progress is None or progress.state is not ProgressState.SNAPSHOT:
            return
        if status is SnapshotStatus.FAILED:
            progress.pending_snapshot = 0
        progress.become_probe()
        progress.probe_sent = True

    def progress_of(self, peer: str) -> Progress | None:
        """The leader's view of ``peer``'s log (for inspection; do not modify)."""
        return self._progress.get(peer) if self._role is Role.LEADER else None

    # -- becoming and being the leader -------------------------------------------------

    def _become_leader(self) -> None:
        self._role = Role.LEADER
        self._leader_id = self.node_id
        self._votes = {}
        self._reset_timers()
        next_index = self._log.last_index + 1
        self._progress = {peer: Progress(next=next_index) for peer in self.config.peers}
        mine = self._progress[self.node_id]
        mine.match, mine.recent_active = self._log.last_index, True
        mine.become_replicate()
        # An entry of our own term: committing it commits everything before it, which
        # counting replicas of earlier terms' entries may not (Raft paper, Figure 8).
        self._append(EntryKind.NOOP, b"")

    def _append(self, kind: EntryKind, data: bytes) -> int:
        entry = Entry(self._term, self._log.last_index + 1, kind, data)
        self._log.append([entry])
        self._progress[self.node_id].acknowledge(entry.index)
        self._maybe_commit()
        self._broadcast_append()
        return entry.index

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self.config.election_tick:
            self._election_elapsed = 0
            if self.config.check_quorum and not self._quorum_recently_active():
                self._become_follower(self._term, None)
                return
        if self._heartbeat_elapsed >= self.config.heartbeat_tick:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_recently_active(self) -> bool:
        """Has a majority answered during the last election timeout? (resets the marks)"""
        active = 0
        for peer, progress in self._progress.items():
            if peer == self.node_id or progress.recent_active:
                active += 1
            progress.recent_active = peer == self.node_id
        return active >= self.config.quorum

    def _step_leader(self, message: RaftMessage) -> None:
        progress = self._progress.get(message.sender)
        if progress is None:
            return
        if isinstance(message, AppendResponse):
            progress.recent_active = True
            self._handle_append_response(message.sender, progress, message)
        elif isinstance(message, HeartbeatResponse):
            progress.recent_active = True
            progress.probe_sent = False  # the follower is reachable: probe again
            if len(progress.inflight) >= self.config.max_inflight:
                # Appends may have been lost; one more makes the follower answer (a
                # refusal if it missed some), which resets the window.
                progress.inflight.popleft()
            if progress.match < self._log.last_index:
                self._send_append(message.sender)

    def _handle_append_response(
        self, peer: str, progress: Progress, response: AppendResponse
    ) -> None:
        if not response.success:
            hint = response.hint_index
            if response.hint_term > 0:
                # Skip our entries of terms the follower does not have at that point.
                hint, _ = self._log.conflict_hint(response.hint_index, response.hint_term)
            if progress.reject(response.index, hint):
                self._send_append(peer)
            return
        advanced = progress.acknowledge(response.index)
        probed = progress.state is ProgressState.PROBE and response.index == progress.match
        if not (advanced or probed):
            return
        if progress.state is ProgressState.PROBE:
            progress.become_replicate()
        elif (
            progress.state is ProgressState.SNAPSHOT and progress.match + 1 >= self._log.first_index
        ):
            progress.become_replicate()  # caught up to where our log starts
        if self._maybe_commit():
            self._broadcast_append()
        while self._send_append(peer, allow_empty=False):
            pass

    def _maybe_commit(self) -> bool:
        """Commit the highest index a majority holds — only if it is of our term.

        An entry of an earlier term may be overwritten even on a majority (Figure 8);
        it becomes committed when an entry of the current term after it is.
        """
        matches = sorted((p.match for p in self._progress.values()), reverse=True)
        candidate = matches[self.config.quorum - 1]
        if candidate <= self._log.committed or self._log.term(candidate) != self._term:
            return False
        return self._log.commit_to(candidate)

    # -- sending -----------------------------------------------------------------------

    def _broadcast_append(self) -> None:
        for peer in self.config.others:
            self._send_append(peer)

    def _broadcast_heartbeat(self) -> None:
        for peer in self.config.others:
            commit = min(self._progress[peer].match, self._log.committed)
            self._send(Heartbeat(self._term, self.node_id, peer, commit=commit))

    def _send_append(self, peer: str, *, allow_empty: bool = True) -> bool:
        """Send ``peer`` what it lacks (or a snapshot); False if nothing was sent."""
        progress = self._progress[peer]
        if progress.is_paused(self.config.max_inflight):
            return False
        prev_index = progress.next - 1
        prev_term = self._log.term(prev_index)
        entries = self._log.slice(
            progress.next, self.config.max_entries_per_msg, self.config.max_bytes_per_msg
        )
        if prev_term is None or entries is None:
            snapshot = self._log.snapshot
            self._send(InstallSnapshot(self._term, self.node_id, peer, snapshot))
            progress.become_snapshot(snapshot.index)
            return True
        if not entries and not allow_empty:
            return False
        message = AppendEntries(
            self._term,
            self.node_id,
            peer,
            prev_log_index=prev_index,
            prev_log_term=prev_term,
            entries=entries,
            leader_commit=self._log.committed,
        )
        self._send(message)
        progress.sent_entries(prev_index + len(entries), len(entries))
        return True
