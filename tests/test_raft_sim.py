"""Raft under a hostile network, over many seeds: safety throughout, liveness after.

Each run: ``CHAOS_TICKS`` ticks of lost, duplicated, delayed (so reordered) messages,
partitions that come and go, crashes (some between persisting and sending) and
restarts from storage, with proposals at random nodes; then the network heals and every
node comes back. The cluster must then settle on one leader within ``SETTLE_BOUND``
ticks, and everything proposed to it from then on must be applied on every node within
``COMMIT_BOUND`` ticks. Safety (see ``raft_sim``) is checked at every step. A failure
names its seed; replay it with ``run_scenario(seed, size, ...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from raft_sim import Cluster, Faults, SafetyViolation

from cctvchain.ordering.raft import EntryKind, Role

CHAOS_TICKS = 300
SETTLE_BOUND = 400  # ticks for a leader everyone follows, for 2 election timeouts
COMMIT_BOUND = 100  # ticks for a healthy cluster to apply proposals everywhere
HEALTHY_PROPOSALS = 5


def chaos() -> Faults:
    return Faults(
        drop=0.1,
        duplicate=0.05,
        max_delay=3,
        crash=0.005,
        crash_mid_ready=0.01,
        partition=0.02,
    )


@dataclass
class Outcome:
    leaders: dict[int, str]
    histories: dict[str, list[tuple[int, int, bytes]]]
    refused: int
    events: dict[str, int]
    settle_ticks: int
    commit_ticks: int


def run_scenario(seed: int, size: int, **config: Any) -> Outcome:
    cluster = Cluster(
        size,
        seed,
        chaos(),
        compact_every=5 if seed % 2 else None,
        election_tick=10,
        heartbeat_tick=2,
        max_entries_per_msg=4,
        max_inflight=4,
        **config,
    )
    for tick in range(CHAOS_TICKS):
        cluster.tick(chaos=True)
        if cluster.rng.random() < 0.2 and (alive := cluster.alive()):
            cluster.propose(cluster.rng.choice(alive).node_id, f"chaos-{tick}".encode())
        if tick % 50 == 0:
            cluster.check_log_matching()
    cluster.settle()
    settle_ticks = wait_for_a_steady_leader(cluster)
    leader = cluster.stable_leader()
    assert leader is not None
    wanted = [f"healthy-{i}".encode() for i in range(HEALTHY_PROPOSALS)]
    for data in wanted:
        if cluster.propose(leader, data) is None:
            cluster.fail(f"the steady leader {leader} refused a proposal")
        cluster.tick()
    commit_ticks = 0
    while not all(set(wanted) <= {e.data for e in n.history} for n in cluster.nodes.values()):
        commit_ticks += 1
        if commit_ticks > COMMIT_BOUND:
            cluster.fail(f"proposals not applied everywhere within {COMMIT_BOUND} ticks")
        cluster.tick()
    cluster.check_log_matching()
    for node in cluster.nodes.values():
        # No committed entry was lost: every node applied all of them, identically.
        if [cluster.committed.get(e.index) for e in node.history] != [
            (e.term, e.kind, e.data) for e in node.history
        ] or len(node.history) < max(cluster.committed):
            cluster.fail(f"{node.node_id}'s applied history differs from what was committed")
    return Outcome(
        leaders=dict(cluster.leaders),
        histories={
            n.node_id: [(e.index, e.term, e.data) for e in n.history]
            for n in cluster.nodes.values()
        },
        refused=cluster.refused_proposals,
        events=dict(cluster.events),
        settle_ticks=settle_ticks,
        commit_ticks=commit_ticks,
    )


def wait_for_a_steady_leader(cluster: Cluster) -> int:
    steady_for, previous = 0, None
    for tick in range(1, SETTLE_BOUND + 1):
        cluster.tick()
        leader = cluster.stable_leader()
        steady_for = steady_for + 1 if leader is not None and leader == previous else 0
        previous = leader
        if steady_for >= 20:
            return tick
    cluster.fail(f"no steady leader within {SETTLE_BOUND} ticks of healing")


@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("seed", range(100))
def test_safe_under_chaos_and_live_once_healed(seed: int, size: int) -> None:
    outcome = run_scenario(seed, size)
    assert outcome.commit_ticks <= COMMIT_BOUND
    for history in outcome.histories.values():
        healthy = [data for _, _, data in history if data.startswith(b"healthy-")]
        assert healthy == [f"healthy-{i}".encode() for i in range(HEALTHY_PROPOSALS)]


@pytest.mark.parametrize(
    "config",
    [{"pre_vote": False}, {"check_quorum": False}, {"pre_vote": False, "check_quorum": False}],
    ids=["no-pre-vote", "no-check-quorum", "neither"],
)
@pytest.mark.parametrize("seed", range(1000, 1020))
def test_safety_does_not_rest_on_pre_vote_or_check_quorum(
    seed: int, config: dict[str, bool]
) -> None:
    run_scenario(seed, 5, **config)


def test_runs_replay_exactly_from_their_seed() -> None:
    first, again, other = run_scenario(7, 5), run_scenario(7, 5), run_scenario(8, 5)
    assert first == again
    assert first != other


def test_the_chaos_is_real() -> None:
    """Guard against a simulator too gentle to prove anything."""
    outcomes = [run_scenario(seed, 5) for seed in range(10)]
    assert all(len(o.leaders) >= 2 for o in outcomes)  # leadership changed in every run
    assert sum(len(o.leaders) for o in outcomes) >= 30
    assert all(o.refused > 0 for o in outcomes)  # non-leaders were asked, and said no
    total = {kind: sum(o.events.get(kind, 0) for o in outcomes) for kind in EVENTS}
    assert all(count > 0 for count in total.values()), total
    assert total["crash"] >= 10 and total["partition"] >= 10


EVENTS = ("crash", "crash_before_send", "partition", "drop", "duplicate", "snapshot_catch_up")


def test_a_safety_violation_names_its_seed() -> None:
    cluster = Cluster(3, seed=42)
    cluster.run(40)
    leader = cluster.stable_leader()
    assert leader is not None and cluster.raft(leader).role is Role.LEADER
    with pytest.raises(SafetyViolation, match="seed=42"):
        cluster.fail("for the test")
    assert EntryKind.NOOP in {e.kind for e in cluster.nodes[leader].history}
