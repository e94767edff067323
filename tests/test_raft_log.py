"""The Raft log, storage, progress and messages on their own."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cctvchain.codec import DecodeError, decode_message
from cctvchain.ordering.raft import (
    ALL_MESSAGE_TYPES,
    AppendEntries,
    AppendResponse,
    Entry,
    EntryKind,
    HardState,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    LogInvariantError,
    MemoryStorage,
    Progress,
    ProgressState,
    RaftConfig,
    RaftState,
    Snapshot,
    StorageError,
    VoteRequest,
    VoteResponse,
)
from cctvchain.ordering.raft.log import RaftLog


def entries(*terms: int, start: int = 1, tag: str = "") -> list[Entry]:
    return [
        Entry(term, index, EntryKind.NORMAL, f"{tag}{index}/{term}".encode())
        for index, term in enumerate(terms, start)
    ]


def log_of(*terms: int, commit: int = 0) -> RaftLog:
    return RaftLog(Snapshot(), entries(*terms), commit=commit, applied=0)


def terms_of(log: RaftLog) -> list[int]:
    return [e.term for e in log.entries]


# -- the log ---------------------------------------------------------------------------


def test_up_to_date_compares_last_term_then_length() -> None:
    log = log_of(1, 2, 2)
    assert log.is_up_to_date(3, 2)
    assert log.is_up_to_date(1, 3)  # a later term wins even if shorter
    assert not log.is_up_to_date(2, 2)  # same term, shorter
    assert not log.is_up_to_date(9, 1)  # longer but of an older term
    assert RaftLog(Snapshot(), [], 0, 0).is_up_to_date(0, 0)


def test_append_replaces_a_conflicting_suffix_and_marks_it_unstable() -> None:
    log = log_of(1, 1, 2, 2, 2, commit=2)
    assert log.stable == 5 and log.unstable_entries() == []
    assert log.maybe_append(2, 1, entries(3, 3, start=3, tag="new")) == 4
    assert terms_of(log) == [1, 1, 3, 3]
    assert log.stable == 2
    assert [e.index for e in log.unstable_entries()] == [3, 4]


def test_a_stale_shorter_append_does_not_truncate() -> None:
    log = log_of(1, 1, 1, 1)
    assert log.maybe_append(1, 1, entries(1, start=2)) == 2
    assert terms_of(log) == [1, 1, 1, 1]
    assert log.stable == 4  # nothing rewritten


def test_append_refuses_a_mismatched_prev_and_overwriting_commits() -> None:
    log = log_of(1, 2, commit=2)
    assert log.maybe_append(2, 1, entries(3, start=3)) is None
    assert log.maybe_append(5, 2, entries(3, start=6)) is None
    with pytest.raises(LogInvariantError, match="overwrite committed"):
        log.maybe_append(1, 1, entries(3, start=2))
    with pytest.raises(LogInvariantError, match="beyond last index"):
        log.commit_to(3)


def test_conflict_hint_skips_a_whole_term() -> None:
    # Raft paper Figure 7 (f): 1 1 1 2 2 2 3 3 3 3 3 against a leader probing (10, 6).
    follower = log_of(1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3)
    assert follower.conflict_hint(10, 6) == (10, 3)
    leader = log_of(1, 1, 1, 4, 4, 5, 5, 6, 6, 6)
    assert leader.conflict_hint(10, 3) == (3, 1)  # the leader resumes at index 4
    assert log_of(5, 5).conflict_hint(2, 1) == (0, 0)


def test_slice_respects_count_and_bytes_but_sends_at_least_one() -> None:
    log = RaftLog(
        Snapshot(),
        [Entry(1, i, EntryKind.NORMAL, b"x" * 10) for i in range(1, 6)],
        commit=0,
        applied=0,
    )
    assert [e.index for e in log.slice(2, 2, 1000) or ()] == [2, 3]
    assert [e.index for e in log.slice(1, 9, 25) or ()] == [1, 2]
    assert [e.index for e in log.slice(1, 9, 1) or ()] == [1]
    assert log.slice(6, 9, 1000) == ()


def test_compact_and_restore() -> None:
    log = RaftLog(Snapshot(), entries(1, 1, 2, 2), commit=3, applied=3)
    with pytest.raises(ValueError, match="only 3 applied"):
        log.compact(4, b"")
    snapshot = log.compact(3, b"height=3")
    assert snapshot == Snapshot(3, 2, b"height=3")
    assert (log.first_index, log.last_index, log.term(3), log.term(2)) == (4, 4, 2, None)
    assert log.slice(3, 5, 100) is None  # compacted: a follower needs the snapshot
    with pytest.raises(ValueError, match="already compacted"):
        log.compact(3, b"")
    log.restore(Snapshot(10, 5, b"height=10"))
    assert (log.last_index, log.last_term, log.committed, log.applied) == (10, 5, 10, 10)
    assert log.unstable_entries() == []


@settings(max_examples=150, deadline=None)
@given(
    # Even terms for the leader, odd for the follower's stale entries: by Log Matching
    # no (index, term) can hold two different entries.
    leader_terms=st.lists(st.sampled_from([2, 4, 6, 8]), min_size=1, max_size=20).map(sorted),
    fragments=st.lists(st.tuples(st.integers(0, 19), st.integers(0, 6)), max_size=25),
    stale_terms=st.lists(st.sampled_from([3, 5, 7]), max_size=8).map(sorted),
)
def test_any_order_of_appends_leaves_a_prefix_of_the_leader_log(
    leader_terms: list[int], fragments: list[tuple[int, int]], stale_terms: list[int]
) -> None:
    """AppendEntries from one leader, delayed, duplicated, reordered: no harm done."""
    leader = entries(*leader_terms, tag="L")
    # The follower starts with the first entry, then a stale suffix of its own.
    follower = RaftLog(Snapshot(), leader[:1] + entries(*stale_terms, start=2), 1, 0)
    acknowledged = 0
    for prev, count in fragments:
        prev = min(prev, len(leader) - 1)
        prev_term = leader[prev - 1].term if prev else 0
        last = follower.maybe_append(prev, prev_term, leader[prev : prev + count])
        if last is not None:
            acknowledged = max(acknowledged, last)
    # Whatever the follower ever acknowledged is still the leader's prefix ...
    assert follower.entries[:acknowledged] == leader[:acknowledged]
    # ... and one full append makes it hold the whole leader log.
    assert follower.maybe_append(0, 0, leader) == len(leader)
    assert follower.entries[: len(leader)] == leader


# -- storage ---------------------------------------------------------------------------


def test_memory_storage_overwrites_and_keeps_the_suffix_of_a_matching_snapshot() -> None:
    storage = MemoryStorage()
    storage.save(None, entries(1, 1, 1), HardState(1, "a", 2))
    storage.save(None, entries(2, 2, start=3, tag="x"), None)
    assert [e.term for e in storage.entries] == [1, 1, 2, 2]
    storage.save(Snapshot(2, 1, b"s"), (), None)  # compaction: keep 3, 4
    assert [e.index for e in storage.entries] == [3, 4]
    storage.save(Snapshot(4, 9, b"other"), (), None)  # a leader's snapshot we lack
    assert storage.entries == [] and storage.last_index == 4
    assert storage.load() == RaftState(HardState(1, "a", 2), Snapshot(4, 9, b"other"), ())


def test_memory_storage_refuses_gaps_and_dangling_commits() -> None:
    storage = MemoryStorage()
    with pytest.raises(StorageError, match="do not join"):
        storage.save(None, entries(1, start=2), None)
    with pytest.raises(StorageError, match="beyond stored log end"):
        storage.save(None, entries(1), HardState(1, None, 2))


# -- progress --------------------------------------------------------------------------


def test_progress_probe_pauses_until_answered_and_backs_off_by_hint() -> None:
    progress = Progress(next=11)
    progress.sent_entries(last_index=11, count=1)
    assert progress.is_paused(max_inflight=4)
    assert not progress.reject(rejected=7, hint_index=3)  # not our probe: stale
    assert progress.reject(rejected=10, hint_index=3)
    assert (progress.next, progress.is_paused(4)) == (4, False)
    assert progress.acknowledge(6)
    progress.become_replicate()
    assert (progress.state, progress.next) == (ProgressState.REPLICATE, 7)


def test_progress_replicate_window_fills_and_frees() -> None:
    progress = Progress(next=1)
    progress.become_replicate()
    for last in (2, 4):
        progress.sent_entries(last, 2)
    assert progress.is_paused(max_inflight=2) and progress.next == 5
    assert progress.acknowledge(2)
    assert not progress.is_paused(max_inflight=2)
    assert not progress.reject(rejected=1, hint_index=0)  # answered before the match
    assert progress.reject(rejected=4, hint_index=0)
    assert (progress.state, progress.next) == (ProgressState.PROBE, 3)


# -- messages and config ---------------------------------------------------------------


def _sample_messages() -> list[object]:
    entry = Entry(3, 7, EntryKind.NOOP, b"")
    return [
        VoteRequest(4, "a", "b", last_log_index=7, last_log_term=3, pre_vote=True),
        VoteResponse(4, "b", "a", granted=False, pre_vote=True),
        AppendEntries(4, "a", "b", 6, 3, (entry, Entry(4, 8, EntryKind.NORMAL, b"blk")), 5),
        AppendResponse(4, "b", "a", success=False, index=6, hint_index=5, hint_term=2),
        Heartbeat(4, "a", "b", commit=5),
        HeartbeatResponse(4, "b", "a"),
        InstallSnapshot(4, "a", "b", Snapshot(100, 3, b"height=100")),
    ]


def test_every_message_round_trips_through_canonical_bytes() -> None:
    samples = _sample_messages()
    assert {type(m) for m in samples} == set(ALL_MESSAGE_TYPES)
    for message in samples:
        assert message.TYPE.startswith("raft.")  # type: ignore[attr-defined]
        assert decode_message(message.encode()) == message  # type: ignore[attr-defined]
    for record in (HardState(3, None, 2), HardState(3, "a", 2), Snapshot(1, 1, b"d")):
        assert decode_message(record.encode()) == record


def test_decoding_refuses_a_mistyped_field() -> None:
    wire = Heartbeat(1, "a", "b", commit=0).to_wire()
    wire["commit"] = "0"
    with pytest.raises(DecodeError, match="commit"):
        Heartbeat.from_wire(wire)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"node_id": "z"}, "not among the peers"),
        ({"peers": ("a", "a")}, "distinct"),
        ({"election_tick": 1, "heartbeat_tick": 1}, "exceed heartbeat_tick"),
        ({"max_inflight": 0}, "max_inflight"),
    ],
)
def test_config_is_checked(kwargs: dict[str, object], error: str) -> None:
    base: dict[str, object] = {"node_id": "a", "peers": ("a", "b", "c")}
    with pytest.raises(ValueError, match=error):
        RaftConfig(**(base | kwargs))  # type: ignore[arg-type]


def test_quorum_sizes() -> None:
    sizes = {n: RaftConfig("p0", tuple(f"p{i}" for i in range(n))).quorum for n in range(1, 8)}
    assert sizes == {1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 6: 4, 7: 4}
