"""The block cutter's limits, by example and as properties over random streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cctvchain.ledger.config import BatchConfig
from cctvchain.ordering.blockcutter import BlockCutter, EnvelopeTooLarge

CONFIG = BatchConfig(
    max_message_count=4, absolute_max_bytes=100, preferred_max_bytes=40, batch_timeout_ms=250
)


def test_cuts_at_max_message_count() -> None:
    cutter = BlockCutter(CONFIG)
    outputs = [cutter.ordered(bytes([i]), now_ms=0) for i in range(4)]
    assert outputs[:3] == [[], [], []]
    assert outputs[3] == [(b"\x00", b"\x01", b"\x02", b"\x03")]
    assert cutter.pending_count == 0
    assert cutter.deadline_ms is None


def test_cuts_before_exceeding_preferred_bytes() -> None:
    cutter = BlockCutter(CONFIG)
    assert cutter.ordered(b"a" * 30, 0) == []
    assert cutter.ordered(b"b" * 20, 0) == [(b"a" * 30,)]
    assert cutter.pending_count == 1


def test_oversized_envelope_goes_alone_and_too_large_is_refused() -> None:
    cutter = BlockCutter(CONFIG)
    cutter.ordered(b"x", 0)
    assert cutter.ordered(b"y" * 60, 0) == [(b"x",), (b"y" * 60,)]
    with pytest.raises(EnvelopeTooLarge, match="101 bytes exceeds AbsoluteMaxBytes"):
        cutter.ordered(b"z" * 101, 0)
    assert cutter.pending_count == 0


def test_timeout_counts_from_the_first_pending_envelope() -> None:
    cutter = BlockCutter(CONFIG)
    assert cutter.tick(1000) is None
    cutter.ordered(b"a", now_ms=1000)
    cutter.ordered(b"b", now_ms=1200)
    assert cutter.deadline_ms == 1250
    assert cutter.tick(1249) is None
    assert cutter.tick(1250) == (b"a", b"b")
    assert cutter.tick(5000) is None


events = st.lists(
    st.one_of(
        st.tuples(st.just("env"), st.integers(1, 120)),
        st.tuples(st.just("tick"), st.integers(0, 400)),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_limits_hold_and_nothing_is_lost_or_reordered(stream: list[tuple[str, int]]) -> None:
    cutter = BlockCutter(CONFIG)
    now = 0
    accepted: list[bytes] = []
    batches: list[tuple[bytes, ...]] = []
    for n, (kind, value) in enumerate(stream):
        if kind == "tick":
            now += value
            cut = cutter.tick(now)
            if cut is not None:
                batches.append(cut)
            continue
        envelope = (n.to_bytes(2, "big") * 60)[:value]
        try:
            batches.extend(cutter.ordered(envelope, now))
        except EnvelopeTooLarge:
            assert value > CONFIG.absolute_max_bytes
            continue
        accepted.append(envelope)
        # The timer never lets a pending batch outlive its deadline unnoticed.
        deadline = cutter.deadline_ms
        assert deadline is None or deadline <= now + CONFIG.batch_timeout_ms
    batches.append(cutter.cut())
    flattened = [env for batch in batches for env in batch]
    assert flattened == accepted  # nothing lost, duplicated or reordered
    for batch in batches[:-1]:
        assert 1 <= len(batch) <= CONFIG.max_message_count
        if len(batch) > 1:
            assert sum(map(len, batch)) <= CONFIG.preferred_max_bytes
        assert all(len(env) <= CONFIG.absolute_max_bytes for env in batch)
