"""Snapshots: compaction, InstallSnapshot, and catching up by block transfer."""

from __future__ import annotations

import random

from raft_sim import Cluster, decode_history

from cctvchain.ordering.raft import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    InstallSnapshot,
    MemoryStorage,
    ProgressState,
    RaftConfig,
    RaftMessage,
    RaftNode,
    RaftState,
    Ready,
    Role,
    Snapshot,
    SnapshotStatus,
    VoteResponse,
    save_ready,
)

PEERS = ("a", "b", "c")


def drain(node: RaftNode, storage: MemoryStorage | None = None) -> Ready:
    ready = node.ready()
    assert ready is not None
    if storage is not None:
        save_ready(storage, ready)
    node.advance(ready)
    return ready


def leader_with_compacted_log() -> RaftNode:
    """Leader "a" with blocks 2..6 committed (acknowledged by "c") and compacted to 6."""
    leader = RaftNode(RaftConfig("a", PEERS, pre_vote=False), RaftState(), random.Random(0))
    while leader.role is Role.FOLLOWER:
        leader.tick()
    leader.step(VoteResponse(1, "c", "a", granted=True, pre_vote=False))
    for height in range(2, 7):
        leader.propose(f"block-{height}".encode())
    leader.step(AppendResponse(1, "c", "a", success=True, index=6))
    ready = drain(leader)
    assert leader.commit_index == 6 == ready.committed_entries[-1].index
    snapshot = leader.compact(6, b"height=6")
    assert drain(leader).snapshot == snapshot
    assert leader.snapshot == Snapshot(6, 1, b"height=6") and leader.log_entries() == ()
    return leader


def to_b(ready: Ready) -> list[RaftMessage]:
    return [m for m in ready.messages if m.recipient == "b"]


def test_a_follower_behind_the_snapshot_is_sent_it_and_paused() -> None:
    leader = leader_with_compacted_log()
    # b refuses the first probe: its log is empty.
    leader.step(AppendResponse(1, "b", "a", success=False, index=0, hint_index=0, hint_term=0))
    (install,) = to_b(drain(leader))
    assert install == InstallSnapshot(1, "a", "b", Snapshot(6, 1, b"height=6"))
    progress = leader.progress_of("b")
    assert progress is not None and progress.state is ProgressState.SNAPSHOT
    leader.propose(b"block-7")
    assert not any(isinstance(m, AppendEntries) for m in to_b(drain(leader)))


def test_a_failed_snapshot_is_sent_again_after_the_follower_answers() -> None:
    leader = leader_with_compacted_log()
    leader.step(AppendResponse(1, "b", "a", success=False, index=0, hint_index=0, hint_term=0))
    drain(leader)
    leader.report_snapshot("b", SnapshotStatus.FAILED)
    progress = leader.progress_of("b")
    assert progress is not None and progress.state is ProgressState.PROBE
    for _ in range(3):
        leader.tick()  # heartbeats; still paused until b answers one
    assert not any(isinstance(m, InstallSnapshot) for m in to_b(drain(leader)))
    leader.step(AppendResponse(1, "b", "a", success=False, index=0, hint_index=0, hint_term=0))
    assert any(isinstance(m, InstallSnapshot) for m in to_b(drain(leader)))


def test_a_finished_snapshot_resumes_replication_just_after_it() -> None:
    leader = leader_with_compacted_log()
    leader.step(AppendResponse(1, "b", "a", success=False, index=0, hint_index=0, hint_term=0))
    drain(leader)
    leader.report_snapshot("b", SnapshotStatus.FINISHED)
    progress = leader.progress_of("b")
    assert progress is not None and (progress.state, progress.next) == (ProgressState.PROBE, 7)
    leader.step(AppendResponse(1, "b", "a", success=True, index=6))  # b installed it
    assert progress.state is ProgressState.REPLICATE and progress.match == 6
    leader.propose(b"block-7")
    (append,) = to_b(drain(leader))
    assert isinstance(append, AppendEntries) and append.prev_log_index == 6
    assert [e.data for e in append.entries] == [b"block-7"]


def test_a_follower_installs_a_snapshot_instead_of_its_log() -> None:
    entries = tuple(Entry(1, i, EntryKind.NORMAL, b"") for i in (1, 2))
    stored = RaftState(HardState(1, None, 1), Snapshot(), entries)
    follower = RaftNode(RaftConfig("b", PEERS), stored, random.Random(0))
    storage = MemoryStorage(stored)
    follower.step(InstallSnapshot(2, "a", "b", Snapshot(9, 2, b"height=9")))
    ready = drain(follower, storage)
    assert ready.snapshot == Snapshot(9, 2, b"height=9")
    assert ready.hard_state == HardState(2, None, 9)
    assert ready.messages == (AppendResponse(2, "b", "a", success=True, index=9),)
    assert ready.committed_entries == ()  # the application catches up from the snapshot
    assert (follower.commit_index, follower.last_index, follower.applied_index) == (9, 9, 9)
    assert storage.load() == RaftState(HardState(2, None, 9), Snapshot(9, 2, b"height=9"), ())
    # It restarts from there.
    again = RaftNode(RaftConfig("b", PEERS), storage.load(), random.Random(1))
    assert (again.snapshot.index, again.commit_index, again.applied_index) == (9, 9, 9)


def test_a_snapshot_of_entries_the_follower_holds_only_commits_them() -> None:
    entries = tuple(Entry(1, i, EntryKind.NORMAL, b"") for i in (1, 2, 3))
    follower = RaftNode(
        RaftConfig("b", PEERS),
        RaftState(HardState(1, None, 0), Snapshot(), entries),
        random.Random(0),
    )
    follower.step(InstallSnapshot(1, "a", "b", Snapshot(2, 1, b"height=2")))
    ready = drain(follower)
    assert ready.snapshot is None and follower.last_index == 3
    assert [e.index for e in ready.committed_entries] == [1, 2]
    assert ready.messages == (AppendResponse(1, "b", "a", success=True, index=2),)


# -- in a cluster ----------------------------------------------------------------------


def watch_snapshots(cluster: Cluster, log: list[InstallSnapshot], lose_first: int = 0) -> None:
    def hook(message: RaftMessage) -> bool:
        if isinstance(message, InstallSnapshot):
            log.append(message)
            return len(log) <= lose_first
        return False

    cluster.drop_if = hook


def fill(cluster: Cluster, leader: str, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        assert cluster.propose(leader, f"block-{i}".encode()) is not None
        cluster.tick()


def assert_converged(cluster: Cluster) -> None:
    histories = [n.history for n in cluster.nodes.values()]
    assert all(h == histories[0] for h in histories)
    assert len(histories[0]) > 20
    assert [cluster.raft(n).applied_index for n in cluster.ids] == [len(histories[0])] * 3


def test_a_long_crashed_follower_catches_up_from_a_snapshot_and_converges() -> None:
    cluster = Cluster(3, seed=5, compact_every=5)
    cluster.run(50)
    leader = cluster.stable_leader()
    assert leader is not None
    lagging = next(n for n in cluster.ids if n != leader)
    fill(cluster, leader, 3)
    cluster.crash(lagging, down_for=10_000)
    fill(cluster, leader, 30, start=3)
    assert cluster.raft(leader).snapshot.index > len(cluster.nodes[lagging].history)
    sent: list[InstallSnapshot] = []
    watch_snapshots(cluster, sent)
    cluster.restart(lagging)
    cluster.run(30)
    assert [m.recipient for m in sent] == [lagging]
    assert (
        decode_history(sent[0].snapshot.data)
        == cluster.nodes[lagging].history[: sent[0].snapshot.index]
    )
    fill(cluster, leader, 5, start=33)  # and it keeps up afterwards, by AppendEntries
    cluster.run(10)
    assert_converged(cluster)
    assert len(sent) == 1


def test_a_late_joining_follower_is_brought_up_by_snapshot_even_if_one_is_lost() -> None:
    """A member whose machine arrives after the others have compacted their logs.

    (Its storage is empty because it never took part; a member that *lost* its storage
    must not rejoin under its old name — Raft relies on what it acknowledged.)
    """
    cluster = Cluster(3, seed=6, compact_every=4)
    late = "n3"
    cluster.crash(late, down_for=10_000)
    cluster.run(50)
    leader = cluster.stable_leader()
    assert leader is not None
    fill(cluster, leader, 20)
    sent: list[InstallSnapshot] = []
    watch_snapshots(cluster, sent, lose_first=1)
    cluster.restart(late)
    cluster.run(60)
    assert len(sent) >= 2  # the first was lost, reported FAILED, and sent again
    assert {m.recipient for m in sent} == {late}
    assert_converged(cluster)
    assert cluster.raft(late).snapshot.index >= sent[-1].snapshot.index
