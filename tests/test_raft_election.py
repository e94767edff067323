"""Leader election: timeouts, vote rules, pre-vote, check-quorum, heartbeats."""

from __future__ import annotations

import random
from typing import Any

import pytest
from raft_sim import Cluster, Faults

from cctvchain.ordering.raft import (
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    MemoryStorage,
    NotLeader,
    RaftConfig,
    RaftMessage,
    RaftNode,
    RaftState,
    Ready,
    Role,
    Snapshot,
    VoteRequest,
    VoteResponse,
    save_ready,
)

PEERS = ("a", "b", "c")


def make(
    node_id: str = "b",
    *,
    log_terms: tuple[int, ...] = (),
    term: int = 0,
    vote: str | None = None,
    seed: int = 0,
    **config: Any,
) -> RaftNode:
    log = tuple(Entry(t, i, EntryKind.NORMAL, b"") for i, t in enumerate(log_terms, 1))
    state = RaftState(HardState(term, vote, 0), Snapshot(), log)
    return RaftNode(RaftConfig(node_id, PEERS, **config), state, random.Random(seed))


def drain(node: RaftNode) -> Ready:
    ready = node.ready()
    assert ready is not None
    node.advance(ready)
    return ready


def sent(node: RaftNode) -> list[RaftMessage]:
    ready = node.ready()
    if ready is None:
        return []
    node.advance(ready)
    return list(ready.messages)


def ask(term: int, sender: str, last: tuple[int, int] = (0, 0), pre: bool = False) -> VoteRequest:
    return VoteRequest(
        term, sender, "b", last_log_index=last[0], last_log_term=last[1], pre_vote=pre
    )


def answer(node: RaftNode, request: VoteRequest) -> bool:
    node.step(request)
    (response,) = sent(node)
    assert isinstance(response, VoteResponse) and response.recipient == request.sender
    return response.granted


# -- timeouts --------------------------------------------------------------------------


def ticks_until_campaign(node: RaftNode) -> int:
    for tick in range(1, 100):
        node.tick()
        if node.role is not Role.FOLLOWER:
            return tick
    raise AssertionError("never campaigned")


def test_election_timeout_is_random_in_range_and_replays_from_the_seed() -> None:
    timeouts = [ticks_until_campaign(make(seed=seed)) for seed in range(40)]
    assert all(10 <= t < 20 for t in timeouts)
    assert len(set(timeouts)) > 4  # spread, so split votes resolve
    assert timeouts == [ticks_until_campaign(make(seed=seed)) for seed in range(40)]


def test_a_single_node_elects_itself_and_commits_its_noop() -> None:
    node = RaftNode(RaftConfig("solo", ("solo",)), RaftState(), random.Random(3))
    ticks_until_campaign(node)
    assert (node.role, node.term, node.leader_id) == (Role.LEADER, 1, "solo")
    ready = drain(node)
    assert ready.hard_state == HardState(1, "solo", 1)
    assert [e.kind for e in ready.committed_entries] == [EntryKind.NOOP]
    assert node.propose(b"block-1") == 2
    assert [e.data for e in drain(node).committed_entries] == [b"block-1"]


@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("seed", range(5))
def test_a_cluster_elects_exactly_one_leader_all_follow(size: int, seed: int) -> None:
    cluster = Cluster(size, seed, Faults(max_delay=2))
    cluster.run(60)
    leader = cluster.stable_leader()
    assert leader is not None
    assert [n for n in cluster.ids if cluster.raft(n).role is Role.LEADER] == [leader]
    assert {cluster.raft(n).term for n in cluster.ids} == {cluster.raft(leader).term}
    # The oracle saw at most one leader in every term that had one.
    assert cluster.leaders[cluster.raft(leader).term] == leader


def test_heartbeats_keep_an_idle_cluster_from_electing_again() -> None:
    cluster = Cluster(3, seed=4)
    cluster.run(50)
    leader = cluster.stable_leader()
    assert leader is not None
    term = cluster.raft(leader).term
    cluster.run(1000)
    assert cluster.stable_leader() == leader and cluster.raft(leader).term == term
    assert set(cluster.leaders) == {term}


def test_a_heartbeat_resets_the_follower_election_timer() -> None:
    follower = make(term=1)
    for _ in range(100):
        for _ in range(5):
            follower.tick()
        follower.step(Heartbeat(1, "a", "b", commit=0))
        assert follower.role is Role.FOLLOWER and follower.leader_id == "a"
    assert isinstance(sent(follower)[-1], HeartbeatResponse)
    assert ticks_until_campaign(follower) >= 10


# -- vote rules ------------------------------------------------------------------------


def test_one_vote_per_term_first_come_first_served() -> None:
    node = make(term=1, pre_vote=False)
    assert answer(node, ask(2, "a"))
    assert not answer(node, ask(2, "c"))
    assert answer(node, ask(2, "a"))  # a repeated request gets the same answer
    assert (node.term, node.vote) == (2, "a")
    assert answer(node, ask(3, "c"))  # a new term, a new vote


def test_the_vote_survives_a_restart() -> None:
    node = make(term=1, pre_vote=False)
    storage = MemoryStorage()
    node.step(ask(2, "a"))
    save_ready(storage, drain(node))
    again = RaftNode(node.config, storage.load(), random.Random(9))
    assert (again.term, again.vote) == (2, "a")
    assert not answer(again, ask(2, "c"))


@pytest.mark.parametrize(
    ("candidate_last", "granted"),
    [((3, 2), True), ((9, 2), True), ((1, 3), True), ((2, 2), False), ((9, 1), False)],
)
def test_votes_only_for_a_log_at_least_as_up_to_date(
    candidate_last: tuple[int, int], granted: bool
) -> None:
    node = make(log_terms=(1, 2, 2), term=2, pre_vote=False)
    assert answer(node, ask(3, "a", candidate_last)) is granted
    assert node.term == 3  # the term is adopted either way


def test_a_pre_vote_changes_neither_term_nor_vote() -> None:
    node = make(log_terms=(1,), term=1)
    assert answer(node, ask(2, "a", (1, 1), pre=True))
    assert answer(node, ask(2, "c", (1, 1), pre=True))  # may say yes to several
    assert (node.term, node.vote) == (1, None)
    assert not answer(node, ask(2, "a", (0, 0), pre=True))  # still up-to-date rule


def test_a_pre_candidate_raises_its_term_only_after_winning() -> None:
    node = make("a", log_terms=(1,), term=1)
    ticks_until_campaign(node)
    assert (node.role, node.term) == (Role.PRE_CANDIDATE, 1)
    requests = sent(node)
    assert {(m.term, m.pre_vote) for m in requests if isinstance(m, VoteRequest)} == {(2, True)}
    node.step(VoteResponse(2, "b", "a", granted=True, pre_vote=True))
    assert (node.role, node.term, node.vote) == (Role.CANDIDATE, 2, "a")
    node.step(VoteResponse(2, "c", "a", granted=True, pre_vote=False))
    assert (node.role, node.leader_id) == (Role.LEADER, "a")


def test_rejections_from_a_majority_end_a_campaign() -> None:
    node = make("a", term=1, pre_vote=False)
    ticks_until_campaign(node)
    assert node.role is Role.CANDIDATE
    node.step(VoteResponse(2, "b", "a", granted=False, pre_vote=False))
    assert node.role is Role.CANDIDATE
    node.step(VoteResponse(2, "c", "a", granted=False, pre_vote=False))
    assert (node.role, node.term) == (Role.FOLLOWER, 2)


def test_a_follower_with_a_live_leader_ignores_vote_requests() -> None:
    node = make(term=3)
    node.step(Heartbeat(3, "a", "b", commit=0))
    sent(node)
    node.step(ask(9, "c", (5, 3)))
    assert sent(node) == [] and node.term == 3 and node.leader_id == "a"


def test_a_deposed_leader_learns_the_new_term_from_any_follower() -> None:
    node = make(term=5)
    node.step(Heartbeat(4, "a", "b", commit=0))
    (reply,) = sent(node)
    assert isinstance(reply, HeartbeatResponse) and reply.term == 5


def test_proposals_to_non_leaders_are_refused_with_a_hint() -> None:
    node = make(term=1)
    with pytest.raises(NotLeader) as no_leader:
        node.propose(b"x")
    assert no_leader.value.leader_hint is None
    node.step(Heartbeat(1, "a", "b", commit=0))
    with pytest.raises(NotLeader, match="leader is a") as refused:
        node.propose(b"x")
    assert refused.value.leader_hint == "a"


# -- pre-vote and check-quorum in a cluster --------------------------------------------


def isolate_then_return(cluster: Cluster, ticks: int) -> tuple[str, int, str, int]:
    cluster.run(60)
    leader = cluster.stable_leader()
    assert leader is not None
    term = cluster.raft(leader).term
    outcast = next(n for n in cluster.ids if n != leader)
    others = tuple(n for n in cluster.ids if n != outcast)
    cluster.partition((outcast,), others)
    cluster.run(ticks)
    outcast_term = cluster.raft(outcast).term
    cluster.heal()
    cluster.run(100)
    assert cluster.stable_leader() is not None
    return leader, term, outcast, outcast_term


@pytest.mark.parametrize("seed", range(3))
def test_with_pre_vote_a_returning_node_does_not_depose_the_leader(seed: int) -> None:
    cluster = Cluster(5, seed)
    leader, term, outcast, outcast_term = isolate_then_return(cluster, ticks=300)
    assert outcast_term == term  # it never won a pre-vote, so never raised its term
    assert cluster.stable_leader() == leader and cluster.raft(leader).term == term
    assert cluster.raft(outcast).leader_id == leader


@pytest.mark.parametrize("seed", range(3))
def test_without_pre_vote_a_returning_node_disrupts(seed: int) -> None:
    cluster = Cluster(5, seed, pre_vote=False, check_quorum=False)
    _, term, _, outcast_term = isolate_then_return(cluster, ticks=300)
    assert outcast_term > term + 5  # its term inflated while away ...
    new_leader = cluster.stable_leader()
    assert new_leader is not None and cluster.raft(new_leader).term > outcast_term  # ... and won


@pytest.mark.parametrize("check_quorum", [True, False])
def test_check_quorum_makes_a_cut_off_leader_step_down(check_quorum: bool) -> None:
    cluster = Cluster(5, seed=7, check_quorum=check_quorum)
    cluster.run(60)
    leader = cluster.stable_leader()
    assert leader is not None
    majority = tuple(n for n in cluster.ids if n != leader)
    cluster.partition((leader, majority[0]), majority[1:])
    led_for = 0
    while cluster.raft(leader).role is Role.LEADER and led_for < 100:
        cluster.tick()
        led_for += 1
    cluster.run(max(0, 60 - led_for))
    new_leader = next(n for n in majority[1:] if cluster.raft(n).role is Role.LEADER)
    assert cluster.raft(new_leader).term > cluster.raft(leader).term
    if check_quorum:
        assert led_for <= 2 * 10  # at most two election timeouts of silence
        with pytest.raises(NotLeader):
            cluster.raft(leader).propose(b"lost")
    else:
        assert led_for == 100  # a stale leader, accepting proposals in vain
