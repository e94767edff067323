"""Raft consensus for the ordering service: a pure, deterministic core.

Ticks and messages go in; what to persist, what to send and what is committed come out
(:class:`Ready`), persistence first. No clock, no I/O, no threads: the network and disk
shell around it is another module. Modelled on etcd's raft and Ongaro's thesis (pre-vote,
check-quorum, snapshots that a follower completes by fetching blocks).
"""

from cctvchain.ordering.raft.config import RaftConfig
from cctvchain.ordering.raft.log import LogInvariantError
from cctvchain.ordering.raft.messages import (
    ALL_MESSAGE_TYPES,
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    RaftMessage,
    Snapshot,
    VoteRequest,
    VoteResponse,
)
from cctvchain.ordering.raft.node import RaftNode
from cctvchain.ordering.raft.progress import Progress, ProgressState
from cctvchain.ordering.raft.ready import (
    NotLeader,
    RaftState,
    Ready,
    Role,
    SnapshotStatus,
    SoftState,
)
from cctvchain.ordering.raft.storage import MemoryStorage, RaftStorage, StorageError, save_ready

__all__ = [
    "ALL_MESSAGE_TYPES",
    "AppendEntries",
    "AppendResponse",
    "Entry",
    "EntryKind",
    "HardState",
    "Heartbeat",
    "HeartbeatResponse",
    "InstallSnapshot",
    "LogInvariantError",
    "MemoryStorage",
    "NotLeader",
    "Progress",
    "ProgressState",
    "RaftConfig",
    "RaftMessage",
    "RaftNode",
    "RaftState",
    "RaftStorage",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotStatus",
    "SoftState",
    "StorageError",
    "VoteRequest",
    "VoteResponse",
    "save_ready",
]
