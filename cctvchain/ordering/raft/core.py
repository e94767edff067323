"""The role-independent half of a Raft node: terms, elections, votes, the follower's log.

:class:`~cctvchain.ordering.raft.node.RaftNode` adds the leader's half (progress
tracking, replication, commit) and the leader-only inputs; see there for the whole API.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod

from cctvchain.ordering.raft.config import RaftConfig
from cctvchain.ordering.raft.log import RaftLog
from cctvchain.ordering.raft.messages import (
    AppendEntries,
    AppendResponse,
    Entry,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    RaftMessage,
    Snapshot,
    VoteRequest,
    VoteResponse,
)
from cctvchain.ordering.raft.ready import RaftState, Ready, Role, SoftState

_FROM_LEADER = (AppendEntries, Heartbeat, InstallSnapshot)


class RaftCore(ABC):
    """Terms, elections, votes and the follower's log handling."""

    def __init__(
        self,
        config: RaftConfig,
        state: RaftState,
        rng: random.Random,
        applied: int | None = None,
    ) -> None:
        self.config = config
        self._rng = rng
        hard = state.hard_state
        # A crash between saving a snapshot and the hard state leaves commit behind it.
        commit = max(hard.commit, state.snapshot.index)
        self._log = RaftLog(
            state.snapshot,
            state.entries,
            commit=commit,
            applied=state.snapshot.index if applied is None else applied,
        )
        self._term = hard.term
        self._vote = hard.vote
        self._role = Role.FOLLOWER
        self._leader_id: str | None = None
        self._votes: dict[str, bool] = {}
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._timeout = self._random_timeout()
        self._outbox: list[RaftMessage] = []
        self._saved_hard_state = HardState(self._term, self._vote, commit)
        self._told_soft_state = SoftState(Role.FOLLOWER, None)
        self._pending_ready: Ready | None = None

    # -- what the shell may look at ----------------------------------------------------

    @property
    def node_id(self) -> str:
        return self.config.node_id

    @property
    def role(self) -> Role:
        return self._role

    @property
    def term(self) -> int:
        return self._term

    @property
    def vote(self) -> str | None:
        return self._vote

    @property
    def leader_id(self) -> str | None:
        return self._leader_id

    @property
    def commit_index(self) -> int:
        return self._log.committed

    @property
    def applied_index(self) -> int:
        return self._log.applied

    @property
    def last_index(self) -> int:
        return self._log.last_index

    @property
    def snapshot(self) -> Snapshot:
        """The latest snapshot: the log starts just after it."""
        return self._log.snapshot

    def log_entries(self) -> tuple[Entry, ...]:
        """The entries after the snapshot (a copy, for inspection)."""
        return tuple(self._log.entries)

    # -- ready / advance ---------------------------------------------------------------

    def ready(self) -> Ready | None:
        """The next batch of work for the shell, or None if there is none.

        Call :meth:`advance` with it before asking again; ticks and messages may be
        stepped in between (their effects wait for the next Ready).
        """
        if self._pending_ready is not None:
            raise RuntimeError("the previous Ready has not been advanced")
        hard = HardState(self._term, self._vote, self._log.committed)
        soft = SoftState(self._role, self._leader_id)
        ready = Ready(
            hard_state=None if hard == self._saved_hard_state else hard,
            entries=tuple(self._log.unstable_entries()),
            snapshot=self._log.unstable_snapshot,
            committed_entries=tuple(self._log.entries_to_apply()),
            messages=tuple(self._outbox),
            soft_state=None if soft == self._told_soft_state else soft,
        )
        if not (ready.must_sync or ready.committed_entries or ready.messages or ready.soft_state):
            return None
        self._outbox.clear()
        self._pending_ready = ready
        return ready

    def advance(self, ready: Ready) -> None:
        """The shell has persisted, sent and applied ``ready``."""
        if ready is not self._pending_ready:
            raise RuntimeError("advance() must be given the Ready last returned")
        self._pending_ready = None
        if ready.hard_state is not None:
            self._saved_hard_state = ready.hard_state
        if ready.soft_state is not None:
            self._told_soft_state = ready.soft_state
        if ready.snapshot is not None and self._log.unstable_snapshot == ready.snapshot:
            self._log.unstable_snapshot = None
        if ready.entries:
            self._log.stable_to(ready.entries[-1].index, ready.entries[-1].term)
        if ready.committed_entries:
            self._log.applied_to(ready.committed_entries[-1].index)

    # -- time --------------------------------------------------------------------------

    def tick(self) -> None:
        """One unit of logical time."""
        if self._role is Role.LEADER:
            self._tick_leader()
            return
        self._election_elapsed += 1
        if self._election_elapsed >= self._timeout:
            self._campaign(pre_vote=self.config.pre_vote)

    def _random_timeout(self) -> int:
        # Spread in [election_tick, 2 * election_tick) so split votes resolve.
        return self.config.election_tick + self._rng.randrange(self.config.election_tick)

    def _reset_timers(self) -> None:
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._timeout = self._random_timeout()

    def _in_lease(self) -> bool:
        """Heard from a live leader within the election timeout (or is that leader)."""
        return self._leader_id is not None and self._election_elapsed < self.config.election_tick

    # -- messages ----------------------------------------------------------------------

    def step(self, message: RaftMessage) -> None:
        """Take one message from a peer. Stale, duplicated or reordered ones are harmless."""
        if message.recipient != self.node_id:
            raise ValueError(f"message for {message.recipient!r} stepped into {self.node_id!r}")
        if message.sender not in self.config.others:
            return  # not a member (or ourselves): nothing it says can count
        if message.term > self._term and not self._adopt_higher_term(message):
            return
        if message.term < self._term:
            self._answer_stale(message)
            return
        if isinstance(message, VoteRequest):
            self._handle_vote_request(message)
        elif self._role is Role.LEADER:
            self._step_leader(message)
        elif isinstance(message, VoteResponse):
            self._handle_vote_response(message)
        elif isinstance(message, _FROM_LEADER):
            if self._role is not Role.FOLLOWER:
                self._become_follower(message.term, message.sender)
            self._election_elapsed = 0
            self._leader_id = message.sender
            self._step_follower(message)

    def _adopt_higher_term(self, message: RaftMessage) -> bool:
        """Apply the rule "a higher term wins"; False if the message is to be ignored."""
        if isinstance(message, VoteRequest):
            if (self.config.check_quorum or message.pre_vote) and self._in_lease():
                # We have a live leader: whoever asks is the one out of touch (§9.6).
                return False
            if message.pre_vote:
                return True  # asking costs nothing: answer without changing our term
        if isinstance(message, VoteResponse) and message.pre_vote and message.granted:
            return True  # a pre-vote grant carries the term we asked about
        leader = message.sender if isinstance(message, _FROM_LEADER) else None
        self._become_follower(message.term, leader)
        return True

    def _answer_stale(self, message: RaftMessage) -> None:
        lease_rules = self.config.check_quorum or self.config.pre_vote
        if lease_rules and isinstance(message, _FROM_LEADER):
            # A deposed leader, or one whose followers ignore it because a vote raised
            # our term while it led: tell it our term so it steps down and a new
            # election (which we can now join) takes place.
            self._send(HeartbeatResponse(self._term, self.node_id, message.sender))
        elif isinstance(message, VoteRequest) and message.pre_vote:
            # Let a pre-candidate that is behind on terms learn ours.
            self._send(self._vote_response(message.sender, self._term, False, True))

    # -- elections ---------------------------------------------------------------------

    def _campaign(self, *, pre_vote: bool) -> None:
        self._reset_timers()
        self._leader_id = None
        if pre_vote:
            self._role = Role.PRE_CANDIDATE
            term = self._term + 1  # proposed, not adopted
        else:
            self._role = Role.CANDIDATE
            self._term += 1
            self._vote = self.node_id
            term = self._term
        self._votes = {self.node_id: True}
        if self._count_votes(granted=True) >= self.config.quorum:
            self._won(pre_vote=pre_vote)
            return
        last_index, last_term = self._log.last_index, self._log.last_term
        for peer in self.config.others:
            self._send(VoteRequest(term, self.node_id, peer, last_index, last_term, pre_vote))

    def _handle_vote_request(self, request: VoteRequest) -> None:
        can_vote = (
            self._vote == request.sender
            or (self._vote is None and self._leader_id is None)
            or (request.pre_vote and request.term > self._term)
        )
        up_to_date = self._log.is_up_to_date(request.last_log_index, request.last_log_term)
        if can_vote and up_to_date:
            if request.pre_vote:
                reply_term = request.term
            else:
                self._vote = request.sender
                self._election_elapsed = 0
                reply_term = self._term
            self._send(self._vote_response(request.sender, reply_term, True, request.pre_vote))
        else:
            self._send(self._vote_response(request.sender, self._term, False, request.pre_vote))

    def _vote_response(self, to: str, term: int, granted: bool, pre_vote: bool) -> VoteResponse:
        return VoteResponse(term, self.node_id, to, granted=granted, pre_vote=pre_vote)

    def _handle_vote_response(self, response: VoteResponse) -> None:
        campaigning = Role.PRE_CANDIDATE if response.pre_vote else Role.CANDIDATE
        asked_term = self._term + 1 if response.pre_vote else self._term
        if self._role is not campaigning:
            return
        if response.granted and response.term != asked_term:
            return  # a grant from an earlier campaign
        self._votes.setdefault(response.sender, response.granted)
        if self._count_votes(granted=True) >= self.config.quorum:
            self._won(pre_vote=response.pre_vote)
        elif self._count_votes(granted=False) >= self.config.quorum:
            self._become_follower(self._term, None)

    def _count_votes(self, *, granted: bool) -> int:
        return sum(1 for vote in self._votes.values() if vote is granted)

    def _won(self, *, pre_vote: bool) -> None:
        if pre_vote:
            self._campaign(pre_vote=False)
        else:
            self._become_leader()

    def _become_follower(self, term: int, leader: str | None) -> None:
        if term != self._term:
            self._term = term
            self._vote = None
        self._role = Role.FOLLOWER
        self._leader_id = leader
        self._votes = {}
        self._reset_timers()

    # -- the follower's side of the log --------------------------------------------------

    def _step_follower(self, message: RaftMessage) -> None:
        if isinstance(message, AppendEntries):
            self._handle_append(message)
        elif isinstance(message, Heartbeat):
            self._log.commit_to(message.commit)
            self._send(HeartbeatResponse(self._term, self.node_id, message.sender))
        elif isinstance(message, InstallSnapshot):
            self._handle_snapshot(message)

    def _handle_append(self, message: AppendEntries) -> None:
        committed = self._log.committed
        if message.prev_log_index < committed:
            # All of that is settled here already; say how far, and the leader moves on.
            self._acknowledge(message.sender, committed)
            return
        last_new = self._log.maybe_append(
            message.prev_log_index, message.prev_log_term, message.entries
        )
        if last_new is None:
            hint_index, hint_term = self._log.conflict_hint(
                message.prev_log_index, message.prev_log_term
            )
            refusal = AppendResponse(
                self._term,
                self.node_id,
                message.sender,
                success=False,
                index=message.prev_log_index,
                hint_index=hint_index,
                hint_term=hint_term,
            )
            self._send(refusal)
            return
        self._log.commit_to(min(message.leader_commit, last_new))
        self._acknowledge(message.sender, last_new)

    def _handle_snapshot(self, message: InstallSnapshot) -> None:
        snapshot = message.snapshot
        if snapshot.index <= self._log.committed:
            pass  # old news: we are past it
        elif self._log.matches(snapshot.index, snapshot.term):
            self._log.commit_to(snapshot.index)  # we hold its entries: just commit them
        else:
            self._log.restore(snapshot)
        self._acknowledge(message.sender, max(self._log.committed, snapshot.index))

    def _acknowledge(self, leader: str, index: int) -> None:
        self._send(AppendResponse(self._term, self.node_id, leader, success=True, index=index))

    def _send(self, message: RaftMessage) -> None:
        self._outbox.append(message)

    # -- the leader's side, supplied by RaftNode ----------------------------------------

    @abstractmethod
    def _tick_leader(self) -> None: ...

    @abstractmethod
    def _step_leader(self, message: RaftMessage) -> None: ...

    @abstractmethod
    def _become_leader(self) -> None: ...
