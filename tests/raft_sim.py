"""A deterministic network of Raft nodes for tests (not a test module).

Everything random comes from one ``random.Random(seed)`` (plus per-node ones derived
from the seed for election timeouts), so a seed replays a run exactly. The network
delays (so reorders), drops and duplicates messages, and partitions; nodes crash —
sometimes between persisting a Ready and sending its messages — and restart from what
their :class:`MemoryStorage` holds, losing the rest. Each node's application is a
durable list of applied entries (the "ledger"); its snapshots carry that list, so a
follower that installs one "transfers blocks" by taking the prefix and checking it.

While it runs, :class:`Cluster` checks Raft's safety properties and raises
:class:`SafetyViolation` naming the seed.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from cctvchain.codec import canonical, decode_message
from cctvchain.ordering.raft import (
    AppendResponse,
    Entry,
    EntryKind,
    InstallSnapshot,
    MemoryStorage,
    NotLeader,
    RaftConfig,
    RaftMessage,
    RaftNode,
    RaftState,
    Ready,
    Role,
    SnapshotStatus,
    VoteRequest,
    VoteResponse,
    save_ready,
)

EntryKey = tuple[int, EntryKind, bytes]  # term, kind, data


class SafetyViolation(AssertionError):
    pass


@dataclass
class Faults:
    drop: float = 0.0  # chance a message is lost
    duplicate: float = 0.0  # chance a message is delivered twice
    max_delay: int = 1  # ticks in transit: uniform in [1, max_delay] (so reordering)
    crash: float = 0.0  # chance per node per tick of crashing
    crash_mid_ready: float = 0.0  # chance of crashing after persisting, before sending
    down_ticks: tuple[int, int] = (5, 40)  # how long a crashed node stays down
    partition: float = 0.0  # chance per tick of a new partition (if none)
    partition_ticks: tuple[int, int] = (10, 80)


def encode_history(history: list[Entry]) -> bytes:
    return canonical.encode([[e.term, e.index, int(e.kind), e.data] for e in history])


def decode_history(data: bytes) -> list[Entry]:
    rows = canonical.decode(data)
    assert isinstance(rows, list)
    return [Entry(term, index, EntryKind(kind), payload) for term, index, kind, payload in rows]


@dataclass
class SimNode:
    node_id: str
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    history: list[Entry] = field(default_factory=list)  # the application's durable state
    raft: RaftNode | None = None
    incarnation: int = 0
    down_until: int = 0
    checked_commit: int = 0


@dataclass(order=True)
class _InFlight:
    deliver_at: int
    seq: int
    message: RaftMessage = field(compare=False)
    lost: bool = field(compare=False, default=False)


class Cluster:
    def __init__(
        self,
        size: int,
        seed: int,
        faults: Faults | None = None,
        *,
        compact_every: int | None = None,
        wire: bool = True,
        states: Mapping[str, RaftState] | None = None,
        **config: Any,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.compact_every = compact_every
        self.wire = wire  # send canonical bytes, as the real network will
        self.ids = tuple(f"n{i}" for i in range(1, size + 1))
        self.configs = {node_id: RaftConfig(node_id, self.ids, **config) for node_id in self.ids}
        states = states or {}
        self.nodes = {
            node_id: SimNode(node_id, MemoryStorage(states.get(node_id))) for node_id in self.ids
        }
        # For scripted scenarios: nodes whose clocks stand still, messages to lose.
        self.frozen: set[str] = set()
        self.drop_if: Callable[[RaftMessage], bool] = lambda message: False
        self.now = 0
        self._queue: list[_InFlight] = []
        self._seq = 0
        self.groups: dict[str, int] | None = None  # partition: node -> side
        self.heal_at = 0
        # Oracles.
        self.leaders: dict[int, str] = {}
        self.committed: dict[int, EntryKey] = {}
        self.seen: dict[tuple[int, int], tuple[EntryKind, bytes]] = {}
        self._completeness_checked: set[int] = set()
        self.refused_proposals = 0
        self.events: Counter[str] = Counter()  # what the chaos did, to show it did
        for node in self.nodes.values():
            self._start(node)

    # -- failures ----------------------------------------------------------------------

    def fail(self, what: str) -> NoReturn:
        raise SafetyViolation(f"seed={self.seed} tick={self.now}: {what}")

    def _start(self, node: SimNode) -> None:
        node.incarnation += 1
        stored = node.storage.load()
        if stored.snapshot.index > len(node.history):
            # Crashed after persisting a leader's snapshot, before fetching its blocks.
            self._catch_up(node, stored.snapshot.data, stored.snapshot.index)
        rng = random.Random(f"{self.seed}:{node.node_id}:{node.incarnation}")
        node.raft = RaftNode(self.configs[node.node_id], stored, rng, applied=len(node.history))
        node.checked_commit = stored.snapshot.index

    def crash(self, node_id: str, down_for: int | None = None) -> None:
        self.events["crash"] += 1
        node = self.nodes[node_id]
        node.raft = None
        low, high = self.faults.down_ticks
        node.down_until = self.now + (
            down_for if down_for is not None else self.rng.randint(low, high)
        )

    def restart(self, node_id: str) -> None:
        node = self.nodes[node_id]
        if node.raft is None:
            self._start(node)

    def partition(self, *sides: tuple[str, ...]) -> None:
        self.groups = {node_id: i for i, side in enumerate(sides) for node_id in side}

    def heal(self) -> None:
        self.groups = None

    def reachable(self, a: str, b: str) -> bool:
        return self.groups is None or self.groups.get(a, -1) == self.groups.get(b, -2)

    # -- running -----------------------------------------------------------------------

    def alive(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.raft is not None]

    def raft(self, node_id: str) -> RaftNode:
        raft = self.nodes[node_id].raft
        assert raft is not None, f"{node_id} is down"
        return raft

    def run(self, ticks: int, *, chaos: bool = False) -> None:
        for _ in range(ticks):
            self.tick(chaos=chaos)

    def tick(self, *, chaos: bool = False) -> None:
        self.now += 1
        if chaos:
            self._random_faults()
        for node in self.alive():
            assert node.raft is not None
            if node.node_id not in self.frozen:
                node.raft.tick()
                self._observe(node)
        while self._queue and self._queue[0].deliver_at <= self.now:
            self._deliver(heapq.heappop(self._queue))
        for node in self.alive():
            self._handle_ready(node)

    def _random_faults(self) -> None:
        faults = self.faults
        for node in self.nodes.values():
            if node.raft is None and self.now >= node.down_until:
                self._start(node)
            elif node.raft is not None and self.rng.random() < faults.crash:
                self.crash(node.node_id)
        if self.groups is not None and self.now >= self.heal_at:
            self.heal()
        elif self.groups is None and self.rng.random() < faults.partition:
            shuffled = list(self.ids)
            self.rng.shuffle(shuffled)
            cut = self.rng.randint(1, len(shuffled) - 1)
            self.partition(tuple(shuffled[:cut]), tuple(shuffled[cut:]))
            self.events["partition"] += 1
            self.heal_at = self.now + self.rng.randint(*faults.partition_ticks)

    def settle(self) -> None:
        """End every fault: heal, restart the crashed, stop losing messages."""
        self.heal()
        self.faults.drop = self.faults.duplicate = 0.0
        self.faults.crash = self.faults.crash_mid_ready = 0.0
        for node_id in self.ids:
            self.restart(node_id)

    def propose(self, node_id: str, data: bytes) -> int | None:
        """Propose at ``node_id``; None if refused (checking the refusal's hint)."""
        raft = self.raft(node_id)
        try:
            index = raft.propose(data)
        except NotLeader as refusal:
            if raft.role is Role.LEADER or refusal.leader_hint != raft.leader_id:
                self.fail(f"{node_id} refused a proposal with a wrong hint {refusal}")
            self.refused_proposals += 1
            return None
        self._observe(self.nodes[node_id])
        return index

    def stable_leader(self) -> str | None:
        """The leader every live node agrees on, if there is one."""
        leaders = {n.raft.leader_id for n in self.alive() if n.raft is not None}
        if len(leaders) != 1:
            return None
        leader = leaders.pop()
        if leader is None or self.nodes[leader].raft is None:
            return None
        return leader if self.raft(leader).role is Role.LEADER else None

    # -- the network -------------------------------------------------------------------

    def _send(self, message: RaftMessage) -> None:
        if self.wire:
            decoded = decode_message(message.encode())
            assert decoded == message
        copies = 2 if self.rng.random() < self.faults.duplicate else 1
        self.events["duplicate"] += copies - 1
        for _ in range(copies):
            lost = self.rng.random() < self.faults.drop
            self.events["drop"] += lost
            if lost and not isinstance(message, InstallSnapshot):
                continue  # (a lost snapshot is still "delivered" to report its failure)
            self._seq += 1
            delay = self.rng.randint(1, self.faults.max_delay)
            heapq.heappush(self._queue, _InFlight(self.now + delay, self._seq, message, lost))

    def _deliver(self, flight: _InFlight) -> None:
        message = flight.message
        recipient = self.nodes[message.recipient]
        delivered = (
            not flight.lost
            and recipient.raft is not None
            and self.reachable(message.sender, message.recipient)
            and not self.drop_if(message)
        )
        if delivered:
            assert recipient.raft is not None
            recipient.raft.step(message)
            self._observe(recipient)
        if isinstance(message, InstallSnapshot):
            sender = self.nodes[message.sender].raft
            if sender is not None:
                status = SnapshotStatus.FINISHED if delivered else SnapshotStatus.FAILED
                sender.report_snapshot(message.recipient, status)

    # -- a node's shell ----------------------------------------------------------------

    def _handle_ready(self, node: SimNode) -> None:
        assert node.raft is not None
        ready = node.raft.ready()
        if ready is None:
            return
        for entry in ready.entries:
            key = (entry.index, entry.term)
            if self.seen.setdefault(key, (entry.kind, entry.data)) != (entry.kind, entry.data):
                self.fail(f"two different entries at index {entry.index} in term {entry.term}")
        save_ready(node.storage, ready)
        self._check_persisted_before_send(node, ready)
        if self.rng.random() < self.faults.crash_mid_ready:
            self.crash(node.node_id)
            self.events["crash_before_send"] += 1
            return
        for message in ready.messages:
            self._send(message)
        if ready.snapshot is not None and ready.snapshot.index > len(node.history):
            self.events["snapshot_catch_up"] += 1
            self._catch_up(node, ready.snapshot.data, ready.snapshot.index)
        for entry in ready.committed_entries:
            if entry.index != len(node.history) + 1:
                self.fail(f"{node.node_id} applies {entry.index} after {len(node.history)}")
            self._check_committed(node.node_id, entry)
            node.history.append(entry)
        node.raft.advance(ready)
        if self.compact_every is not None:
            applied = node.raft.applied_index
            if applied - node.raft.snapshot.index >= self.compact_every:
                node.raft.compact(applied, encode_history(node.history[:applied]))

    def _catch_up(self, node: SimNode, data: bytes, index: int) -> None:
        """The "block transfer": take the snapshot's history, checking our prefix."""
        blocks = decode_history(data)
        if len(blocks) != index:
            self.fail(f"snapshot at {index} carries {len(blocks)} entries")
        if blocks[: len(node.history)] != node.history:
            self.fail(f"{node.node_id}'s applied history contradicts a snapshot")
        for entry in blocks[len(node.history) :]:
            self._check_committed(node.node_id, entry)
        node.history = blocks

    def _check_persisted_before_send(self, node: SimNode, ready: Ready) -> None:
        stored = node.storage.hard_state
        for message in ready.messages:
            pre_vote = isinstance(message, (VoteRequest, VoteResponse)) and message.pre_vote
            if not pre_vote and message.term > stored.term:
                self.fail(f"{node.node_id} sends term {message.term}, stored {stored.term}")
            if message.term != stored.term or pre_vote:
                continue
            if isinstance(message, VoteResponse) and message.granted:
                if stored.vote != message.recipient:
                    self.fail(f"{node.node_id} grants a vote it has not stored")
            elif isinstance(message, VoteRequest) and stored.vote != node.node_id:
                self.fail(f"{node.node_id} campaigns without storing its own vote")
            elif (
                isinstance(message, AppendResponse)
                and message.success
                and node.storage.last_index < message.index
            ):
                self.fail(f"{node.node_id} acknowledges {message.index} it has not stored")

    # -- oracles -----------------------------------------------------------------------

    def _check_committed(self, node_id: str, entry: Entry) -> None:
        key = (entry.term, entry.kind, entry.data)
        if self.committed.setdefault(entry.index, key) != key:
            self.fail(f"{node_id} commits a different entry at {entry.index}")

    def _observe(self, node: SimNode) -> None:
        raft = node.raft
        assert raft is not None
        if raft.role is Role.LEADER:
            first = self.leaders.setdefault(raft.term, node.node_id)
            if first != node.node_id:
                self.fail(f"two leaders in term {raft.term}: {first} and {node.node_id}")
            if raft.term not in self._completeness_checked:
                self._completeness_checked.add(raft.term)
                self._check_leader_completeness(node.node_id, raft)
        if raft.commit_index > node.checked_commit:
            base = raft.snapshot.index
            newly = raft.log_entries()[
                max(node.checked_commit - base, 0) : raft.commit_index - base
            ]
            for entry in newly:
                self._check_committed(node.node_id, entry)
            node.checked_commit = raft.commit_index

    def _check_leader_completeness(self, node_id: str, raft: RaftNode) -> None:
        base = raft.snapshot.index
        entries = raft.log_entries()
        for index, (term, kind, data) in self.committed.items():
            if index <= base:
                continue
            if index > base + len(entries):
                self.fail(f"leader {node_id} of term {raft.term} lacks committed {index}")
            entry = entries[index - base - 1]
            if (entry.term, entry.kind, entry.data) != (term, kind, data):
                self.fail(f"leader {node_id} of term {raft.term} differs at committed {index}")

    def check_log_matching(self) -> None:
        """Same index and term in two logs: same entry, and the same entries before it."""
        logs = {
            n.node_id: {e.index: e for e in n.raft.log_entries()}
            for n in self.alive()
            if n.raft is not None
        }
        names = sorted(logs)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                common = sorted(set(logs[a]) & set(logs[b]), reverse=True)
                agreed = next((x for x in common if logs[a][x].term == logs[b][x].term), None)
                if agreed is None:
                    continue
                for index in common:
                    if index <= agreed and logs[a][index] != logs[b][index]:
                        self.fail(f"{a} and {b} agree at {agreed} but differ at {index}")
