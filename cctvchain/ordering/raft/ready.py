"""The values that cross the boundary between the Raft core and its shell."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cctvchain.ordering.raft.messages import Entry, HardState, RaftMessage, Snapshot


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class SnapshotStatus(enum.Enum):
    """What the shell learnt about an InstallSnapshot it was asked to send."""

    FINISHED = "finished"  # delivered (the follower will fetch blocks up to it)
    FAILED = "failed"  # not delivered; the leader will probe and try again


class NotLeader(Exception):
    """A proposal reached a node that is not the leader; retry at ``leader_hint``."""

    def __init__(self, leader_hint: str | None) -> None:
        where = f"leader is {leader_hint}" if leader_hint else "no leader known"
        super().__init__(f"not the leader ({where})")
        self.leader_hint = leader_hint


@dataclass(frozen=True)
class SoftState:
    """Volatile state worth telling the shell about (e.g. to start or stop cutting blocks)."""

    role: Role
    leader_id: str | None


@dataclass(frozen=True)
class RaftState:
    """What a node restarts from: everything its storage made durable."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot = field(default_factory=Snapshot)
    entries: tuple[Entry, ...] = ()


@dataclass(frozen=True)
class Ready:
    """Work for the shell, to be done in this order, then confirmed with ``advance``.

    1. Persist, durably (fsync), ``snapshot`` (if any), then ``entries`` (overwriting
       any stored entries from ``entries[0].index`` on), then ``hard_state`` (if any).
       A snapshot replaces the stored log up to its index; stored entries after it are
       kept only if the stored entry at its index has its term.
    2. Only then send ``messages``: they may promise what step 1 stored (a vote, an
       acknowledged entry), and a promise must not be lost in a crash.
    3. If ``snapshot`` is ahead of the application's own state (it came from the
       leader), bring the application up to ``snapshot.index`` — for the orderer, fetch
       the blocks up to the height it names — then apply ``committed_entries`` in order.
    4. Call :meth:`RaftNode.advance` with this Ready.
    """

    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    committed_entries: tuple[Entry, ...]
    messages: tuple[RaftMessage, ...]
    soft_state: SoftState | None

    @property
    def must_sync(self) -> bool:
        """Whether step 1 has anything to persist."""
        return self.hard_state is not None or bool(self.entries) or self.snapshot is not None
