"""Raft's persistent records and wire messages, as typed codec messages.

Everything the Raft core persists (entries, hard state, snapshots) or sends (the RPCs
below) is a frozen :class:`~cctvchain.codec.Message`, so the durable storage and the
network shell handle canonical bytes without knowing the core.

Every RPC carries the sender's ``term``, the ``sender`` and the ``recipient``. A
pre-vote request carries the term the sender *would* campaign at (its term + 1) without
the sender having adopted it — that is the point of pre-vote.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cctvchain.codec import Message


class EntryKind(enum.IntEnum):
    NORMAL = 0  # application data (later: a serialized block)
    NOOP = 1  # appended by a new leader so it can commit entries of earlier terms


@dataclass(frozen=True)
class Entry(Message):
    TYPE = "raft.entry"
    term: int
    index: int
    kind: EntryKind
    data: bytes

    def __post_init__(self) -> None:
        if self.term < 1 or self.index < 1:
            raise ValueError("entry term and index start at 1")


@dataclass(frozen=True)
class HardState(Message):
    """What must survive a crash besides the log: the term, this term's vote, the commit."""

    TYPE = "raft.hard_state"
    term: int = 0
    vote: str | None = None
    commit: int = 0


@dataclass(frozen=True)
class Snapshot(Message):
    """The state up to ``index`` (of ``term``) as the application captured it.

    ``data`` is opaque to Raft; for the orderer it names a block height, and a follower
    that receives it fetches the blocks up to there instead of replaying the log.
    """

    TYPE = "raft.snapshot"
    index: int = 0
    term: int = 0
    data: bytes = b""


@dataclass(frozen=True)
class RaftMessage(Message):
    """Common header of every RPC (abstract: it has no wire TYPE of its own)."""

    term: int
    sender: str
    recipient: str


@dataclass(frozen=True)
class VoteRequest(RaftMessage):
    TYPE = "raft.vote_request"
    last_log_index: int
    last_log_term: int
    pre_vote: bool


@dataclass(frozen=True)
class VoteResponse(RaftMessage):
    TYPE = "raft.vote_response"
    granted: bool
    pre_vote: bool


@dataclass(frozen=True)
class AppendEntries(RaftMessage):
    TYPE = "raft.append_entries"
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int


@dataclass(frozen=True)
class AppendResponse(RaftMessage):
    """Answer to AppendEntries or InstallSnapshot.

    On success ``index`` is the last index now known to match the leader's log. On
    rejection ``index`` is the refused ``prev_log_index`` and (``hint_index``,
    ``hint_term``) the follower's last entry at or below it whose term is not above the
    leader's ``prev_log_term`` — the leader skips a whole divergent term per round trip.
    """

    TYPE = "raft.append_response"
    success: bool
    index: int
    hint_index: int = 0
    hint_term: int = 0


@dataclass(frozen=True)
class Heartbeat(RaftMessage):
    TYPE = "raft.heartbeat"
    # min(the follower's match, the leader's commit): a follower never commits an entry
    # it may not hold.
    commit: int


@dataclass(frozen=True)
class HeartbeatResponse(RaftMessage):
    TYPE = "raft.heartbeat_response"


@dataclass(frozen=True)
class InstallSnapshot(RaftMessage):
    TYPE = "raft.install_snapshot"
    snapshot: Snapshot


ALL_MESSAGE_TYPES: tuple[type[RaftMessage], ...] = (
    VoteRequest,
    VoteResponse,
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
)
