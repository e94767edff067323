"""Parameters of one Raft node, checked on construction."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class RaftConfig:
    """``peers`` lists every voting member of the cluster, this node included.

    Time is counted in ticks, whatever the shell makes a tick (etcd and Fabric use
    ~100 ms). A follower campaigns after a random timeout in
    ``[election_tick, 2 * election_tick)`` ticks without hearing from a leader; the
    leader heartbeats every ``heartbeat_tick`` ticks.
    """

    node_id: str
    peers: tuple[str, ...]
    election_tick: int = 10
    heartbeat_tick: int = 1
    # Ask "would you vote for me?" before raising the term, so a node that was cut off
    # cannot depose a healthy leader when it returns (Raft thesis §9.6).
    pre_vote: bool = True
    # A leader that has not heard from a majority for an election timeout steps down,
    # and followers that hear from a leader ignore vote requests for that long.
    check_quorum: bool = True
    max_entries_per_msg: int = 64
    max_bytes_per_msg: int = 1024 * 1024  # at least one entry is always sent
    max_inflight: int = 256  # AppendEntries in flight per follower while replicating

    def __post_init__(self) -> None:
        if not self.node_id:
            raise ValueError("node_id must not be empty")
        if self.node_id not in self.peers:
            raise ValueError(f"node {self.node_id!r} is not among the peers {self.peers}")
        if len(set(self.peers)) != len(self.peers):
            raise ValueError("peers must be distinct")
        if self.heartbeat_tick < 1:
            raise ValueError("heartbeat_tick must be at least 1")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election_tick must exceed heartbeat_tick")
        if self.max_entries_per_msg < 1 or self.max_bytes_per_msg < 1:
            raise ValueError("message limits must be positive")
        if self.max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")

    @cached_property
    def quorum(self) -> int:
        return len(self.peers) // 2 + 1

    @cached_property
    def others(self) -> tuple[str, ...]:
        return tuple(p for p in self.peers if p != self.node_id)
