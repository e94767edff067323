"""The orderer's window of recently broadcast tx ids (cctvchain/ordering/recent.py)."""

from __future__ import annotations

import pytest

from cctvchain.ordering.recent import RecentTxIds


def test_an_id_is_recent_for_the_window_and_then_forgotten() -> None:
    recent = RecentTxIds(120.0)
    recent.add("a", 10.0)
    recent.add("b", 70.0)
    recent.expire(130.0)  # exactly the window after "a": still recent
    assert "a" in recent and "b" in recent
    recent.expire(130.5)
    assert "a" not in recent and "b" in recent and len(recent) == 1
    recent.expire(10_000.0)
    assert len(recent) == 0


def test_expiry_stops_at_the_first_id_still_in_the_window() -> None:
    recent = RecentTxIds(5.0)
    for k in range(1000):
        recent.add(f"tx{k}", float(k))
    recent.expire(999.0)
    assert len(recent) == 6  # seen at 994..999
    assert "tx993" not in recent and all(f"tx{k}" in recent for k in range(994, 1000))


def test_a_forgotten_id_may_come_again_and_counts_from_its_new_time() -> None:
    recent = RecentTxIds(5.0)
    recent.add("a", 0.0)
    recent.add("b", 1.0)
    recent.forget("a")
    assert "a" not in recent
    recent.forget("never seen")  # nothing to do
    recent.add("a", 4.0)  # again, behind "b"
    recent.expire(7.0)
    assert "a" in recent and "b" not in recent


def test_a_clock_that_goes_backwards_or_an_empty_window_is_refused() -> None:
    recent = RecentTxIds(5.0)
    recent.add("a", 3.0)
    with pytest.raises(ValueError, match="backwards"):
        recent.add("b", 2.0)
    with pytest.raises(ValueError, match="positive"):
        RecentTxIds(0)
