"""Log replication, conflict resolution, the commit rule, persist-before-send."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from raft_sim import Cluster

from cctvchain.ordering.raft import (
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    RaftConfig,
    RaftMessage,
    RaftNode,
    RaftState,
    Role,
    Snapshot,
    VoteRequest,
    VoteResponse,
)


def state(terms: Sequence[int], term: int, *, vote: str | None = None) -> RaftState:
    """A stored state whose log has entries of ``terms``; commit at the first entry.

    An entry's data is its "index/term": one leader per term writes each index once, so
    equal (index, term) means equal entries, across all the logs of a scenario.
    """
    log = tuple(Entry(t, i, EntryKind.NORMAL, f"{i}/{t}".encode()) for i, t in enumerate(terms, 1))
    return RaftState(HardState(term, vote, 1 if log else 0), Snapshot(), log)


def terms_in(cluster: Cluster, node_id: str) -> list[int]:
    return [e.term for e in cluster.raft(node_id).log_entries()]


def elect(cluster: Cluster, candidate: str, max_ticks: int = 200) -> None:
    """Let only ``candidate``'s clock run until it leads, then freeze it too."""
    cluster.frozen = set(cluster.ids) - {candidate}
    for _ in range(max_ticks):
        cluster.tick()
        if cluster.raft(candidate).role is Role.LEADER:
            return
    raise AssertionError(f"{candidate} was not elected")


def test_proposals_are_replicated_committed_and_applied_in_order_everywhere() -> None:
    cluster = Cluster(5, seed=1)
    cluster.run(50)
    leader = cluster.stable_leader()
    assert leader is not None
    indices = [cluster.propose(leader, f"block-{i}".encode()) for i in range(30)]
    cluster.run(10)
    for node in cluster.nodes.values():
        applied = [e for e in node.history if e.kind is EntryKind.NORMAL]
        assert [e.data for e in applied] == [f"block-{i}".encode() for i in range(30)]
        assert [e.index for e in applied] == indices
        assert cluster.raft(node.node_id).commit_index == indices[-1]


def test_a_majority_suffices_to_commit_and_a_minority_does_not() -> None:
    cluster = Cluster(5, seed=2)
    cluster.run(50)
    leader = cluster.stable_leader()
    assert leader is not None
    others = [n for n in cluster.ids if n != leader]
    cluster.partition((leader, *others[:2]), tuple(others[2:]))
    index = cluster.propose(leader, b"with two followers")
    assert index is not None
    cluster.run(5)
    assert cluster.raft(leader).commit_index >= index  # 3 of 5
    cluster.partition((leader, others[0]), tuple(others[1:]))
    index = cluster.propose(leader, b"with one follower")
    assert index is not None
    cluster.run(8)
    assert cluster.raft(leader).commit_index < index  # 2 of 5: not committed


def test_figure_7_every_kind_of_follower_log_is_repaired_quickly() -> None:
    """Raft paper Figure 7: a term-8 leader and followers (a)-(f) with every divergence."""
    leader = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
    followers = {
        "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
        "b": [1, 1, 1, 4],
        "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        "e": [1, 1, 1, 4, 4, 4, 4],
        "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    }
    states = {"n1": state(leader, 7)}
    names = {}
    for i, (name, terms) in enumerate(followers.items(), 2):
        states[f"n{i}"] = state(terms, max(terms))
        names[f"n{i}"] = name
    cluster = Cluster(7, seed=3, states=states)
    refusals: dict[str, int] = {n: 0 for n in names}
    lowest_prev: dict[str, int] = {n: 99 for n in names}
    cluster.drop_if = lambda m: _watch(m, refusals, lowest_prev)
    elect(cluster, "n1")
    cluster.run(40)
    expected = [*leader, cluster.raft("n1").term]  # plus the new leader's noop
    for node_id in names:
        assert terms_in(cluster, node_id) == expected, names[node_id]
        assert cluster.raft(node_id).log_entries() == cluster.raft("n1").log_entries()
    # Backing off by whole terms, straight to the last matching entry: (f) is repaired
    # after one refusal (not seven), and no follower is sent entries it already has.
    by_name = {name: node_id for node_id, name in names.items()}
    assert refusals[by_name["f"]] == 1
    last_match = {"a": 9, "b": 4, "c": 10, "d": 10, "e": 5, "f": 3}
    assert {name: lowest_prev[by_name[name]] for name in last_match} == last_match


def _watch(message: RaftMessage, refusals: dict[str, int], lowest_prev: dict[str, int]) -> bool:
    if isinstance(message, AppendResponse) and not message.success:
        refusals[message.sender] += 1
    if isinstance(message, AppendEntries):
        lowest_prev[message.recipient] = min(lowest_prev[message.recipient], message.prev_log_index)
    return False  # lose nothing


# The paper's algorithm, without pre-vote or leases (frozen clocks would keep leases).
BASIC_RAFT = {"pre_vote": False, "check_quorum": False}


def test_figure_8_an_old_term_entry_on_a_majority_is_not_committed_by_counting() -> None:
    """Raft paper Figure 8, (c) then (d): why only current-term entries are counted."""
    states = {
        "n1": state([1, 2], 2, vote="n1"),  # leader of term 2, wrote index 2
        "n2": state([1, 2], 2),  # ... and replicated it to n2 only
        "n3": state([1], 3, vote="n5"),
        "n4": state([1], 3, vote="n5"),
        "n5": state([1, 3], 3, vote="n5"),  # leader of term 3, wrote index 2
    }
    cluster = Cluster(5, seed=8, states=states, max_entries_per_msg=1, **BASIC_RAFT)
    old_entry = cluster.raft("n1").log_entries()[1]
    cluster.crash("n5", down_for=10_000)
    # (c) n1 leads term 4 and copies index 2 to a majority, but its own term-4 entry
    # at index 3 is lost on the way to anyone who holds index 2.
    cluster.drop_if = lambda m: (
        isinstance(m, AppendEntries)
        and any(e.index >= 3 for e in m.entries)
        and old_entry in cluster.raft(m.recipient).log_entries()
    )
    elect(cluster, "n1")
    cluster.run(30)
    holders = [n for n in ("n1", "n2", "n3", "n4") if old_entry in cluster.raft(n).log_entries()]
    assert len(holders) >= 3  # on a majority of five ...
    assert cluster.raft("n1").commit_index == 1  # ... yet not committed
    assert all(cluster.raft(n).commit_index == 1 for n in holders)
    # (d) n1 crashes; n5 returns and can win with votes from n2, n3, n4 (its last term,
    # 3, beats their 2) and overwrites index 2: committing it would have been unsafe.
    cluster.crash("n1", down_for=10_000)
    cluster.run(5)  # what n1 had in flight is lost too
    cluster.drop_if = lambda m: False
    cluster.restart("n5")
    elect(cluster, "n5")
    cluster.run(30)
    for node_id in ("n2", "n3", "n4", "n5"):
        entry_2 = cluster.nodes[node_id].history[1]
        assert (entry_2.term, entry_2.data) == (3, b"2/3")


def test_figure_8_once_a_current_term_entry_commits_the_old_one_is_safe() -> None:
    """Figure 8 (e): n1 replicates its term-4 entry to a majority; n5 can never win."""
    states = {
        "n1": state([1, 2], 2, vote="n1"),
        "n2": state([1, 2], 2),
        "n3": state([1], 3, vote="n5"),
        "n4": state([1], 3, vote="n5"),
        "n5": state([1, 3], 3, vote="n5"),
    }
    cluster = Cluster(5, seed=8, states=states, **BASIC_RAFT)
    cluster.crash("n5", down_for=10_000)
    elect(cluster, "n1")
    cluster.run(20)
    assert cluster.raft("n1").commit_index == 3  # the noop, and index 2 with it
    cluster.crash("n1", down_for=10_000)
    cluster.restart("n5")
    cluster.frozen = {"n1", "n2", "n3", "n4"}
    cluster.run(200)  # n5 campaigns again and again
    assert cluster.raft("n5").role is not Role.LEADER
    assert all(cluster.nodes[n].history[1].data == b"2/2" for n in ("n2", "n3", "n4"))


# -- persist before send ---------------------------------------------------------------


def three(node_id: str, terms: Sequence[int] = (), term: int = 1, **config: object) -> RaftNode:
    config_ = RaftConfig(node_id, ("a", "b", "c"), **config)  # type: ignore[arg-type]
    return RaftNode(config_, state(terms, term), random.Random(0))


def test_a_vote_goes_out_with_the_hard_state_that_records_it() -> None:
    voter = three("b", pre_vote=False)
    voter.step(VoteRequest(2, "a", "b", last_log_index=0, last_log_term=0, pre_vote=False))
    ready = voter.ready()
    assert ready is not None
    assert ready.messages == (VoteResponse(2, "b", "a", granted=True, pre_vote=False),)
    assert ready.hard_state == HardState(2, "a", 0)


def test_a_campaign_goes_out_with_the_raised_term_and_self_vote() -> None:
    candidate = three("a", pre_vote=False)
    while candidate.role is Role.FOLLOWER:
        candidate.tick()
    ready = candidate.ready()
    assert ready is not None
    assert ready.hard_state == HardState(2, "a", 0)
    assert {type(m) for m in ready.messages} == {VoteRequest}


def test_an_acknowledgement_goes_out_with_the_entries_it_acknowledges() -> None:
    follower = three("b", terms=[1], term=1)
    new = (Entry(1, 2, EntryKind.NORMAL, b"x"), Entry(1, 3, EntryKind.NORMAL, b"y"))
    follower.step(AppendEntries(1, "a", "b", 1, 1, new, leader_commit=2))
    ready = follower.ready()
    assert ready is not None
    assert ready.entries == new
    assert ready.hard_state == HardState(1, None, 2)
    assert ready.messages == (AppendResponse(1, "b", "a", success=True, index=3),)
    assert [e.index for e in ready.committed_entries] == [1, 2]  # applied after saving
    follower.advance(ready)
    assert follower.ready() is None  # nothing is handed out twice


def test_a_follower_commits_only_what_it_knows_matches_the_leader() -> None:
    # Entries 2 and 3 of term 1 are stale here: the leader of term 2 has others at 3.
    follower = three("b", terms=[1, 1, 1], term=2)
    one = (Entry(1, 2, EntryKind.NORMAL, b"2/1"),)
    follower.step(AppendEntries(2, "a", "b", 1, 1, one, leader_commit=3))
    assert follower.commit_index == 2  # not 3: its entry 3 may not be the leader's
    follower.step(AppendEntries(2, "a", "b", 2, 1, (Entry(2, 3, EntryKind.NORMAL, b""),), 3))
    assert follower.commit_index == 3 and follower.log_entries()[2].term == 2


def test_a_leader_sends_entries_only_alongside_persisting_them() -> None:
    config = RaftConfig("a", ("a", "b"), pre_vote=False)
    leader = RaftNode(config, RaftState(), random.Random(0))
    while leader.role is not Role.CANDIDATE:
        leader.tick()
    first = leader.ready()
    assert first is not None
    leader.advance(first)
    leader.step(VoteResponse(1, "b", "a", granted=True, pre_vote=False))
    ready = leader.ready()
    assert ready is not None and leader.role is Role.LEADER
    sent = [e for m in ready.messages if isinstance(m, AppendEntries) for e in m.entries]
    assert sent and set(sent) <= set(ready.entries)


def test_ready_and_advance_are_paired_and_steps_in_between_wait() -> None:
    follower = three("b", terms=[1], term=1)
    follower.step(AppendEntries(1, "a", "b", 1, 1, (Entry(1, 2, EntryKind.NORMAL, b""),), 0))
    ready = follower.ready()
    assert ready is not None
    with pytest.raises(RuntimeError, match="not been advanced"):
        follower.ready()
    follower.step(AppendEntries(1, "a", "b", 2, 1, (Entry(1, 3, EntryKind.NORMAL, b""),), 3))
    follower.advance(ready)
    later = follower.ready()
    assert later is not None
    assert [e.index for e in later.entries] == [3]
    assert later.messages == (AppendResponse(1, "b", "a", success=True, index=3),)
    with pytest.raises(RuntimeError, match="last returned"):
        follower.advance(ready)


def test_a_restart_resumes_from_storage_and_reapplies_past_the_applied_index() -> None:
    stored = state([1, 1, 2, 2], 2, vote="a")
    stored = RaftState(HardState(2, "a", 3), stored.snapshot, stored.entries)
    node = RaftNode(RaftConfig("b", ("a", "b", "c")), stored, random.Random(0), applied=1)
    assert (node.term, node.vote, node.last_index, node.commit_index) == (2, "a", 4, 3)
    ready = node.ready()
    assert ready is not None
    assert [e.index for e in ready.committed_entries] == [2, 3]
    assert ready.hard_state is None and ready.entries == ()  # nothing new to save
    with pytest.raises(ValueError, match="beyond commit"):
        RaftNode(RaftConfig("b", ("a", "b", "c")), stored, random.Random(0), applied=4)
