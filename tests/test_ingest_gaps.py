"""Gaps: the contract's ReportGap/GetGaps through the real in-process network, and the
extractor's durable queue of gap reports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cctv_helpers import World, build_world, invoke, query, refuse

from cctvchain.client.transaction import ClientIdentity
from cctvchain.ingest.gapqueue import GapQueue, GapReport


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, ClientIdentity]]:
    built = build_world(tmp_path_factory.mktemp("gaps"))
    try:
        camera = built.approved_camera("G-1")
        invoke(built.net, built.crm_n, "GrantAccess", "G-1", "user", "P-77")
        yield built, camera
    finally:
        built.net.close()


def test_a_camera_reports_its_gaps_once_and_granted_users_read_them(
    world: tuple[World, ClientIdentity],
) -> None:
    w, camera = world
    net = w.net
    now = net.clock.now_ms
    start, end = now - 60_000, now - 52_500
    args = ("G-1", str(start), str(end), "4", "source lost: connection reset")
    reported = invoke(net, camera, "ReportGap", *args).result
    assert reported["durationMs"] == 7_500 and reported["afterSequence"] == 4
    refuse(net, camera, "ReportGap", *args, code="GAP_REPLAY", status=409)
    refuse(net, camera, "ReportGap", "G-1", str(start), str(end + 1), "4", "x", code="GAP_CONFLICT")
    for bad in (
        ("G-1", str(end), str(start), "4", "backwards"),
        ("G-1", str(start + 1), str(start + 1), "4", "empty"),
        ("G-1", str(start + 2), str(end), "-2", "bad sequence"),
        ("G-1", str(start + 3), str(end), "4", ""),
        ("G-1", str(start + 4), str(end), "4", "two\nlines"),
        ("G-1", "soon", str(end), "4", "not a number"),
    ):
        refuse(net, camera, "ReportGap", *bad, code="BAD_ARGUMENT")
    future = ("G-1", str(now), str(now + 5 * 60_000), "4", "ahead")
    refuse(net, camera, "ReportGap", *future, code="CAPTURE_IN_FUTURE")
    refuse(
        net, w.crm_n, "ReportGap", "G-1", str(now - 1000), str(now), "4", "x", code="WRONG_IDENTITY"
    )

    assert query(net, w.po, "GetGaps", "G-1") == [reported]
    assert query(net, w.po, "GetGaps", "G-1", str(end + 1), str(now)) == []
    assert query(net, w.po, "GetGaps", "G-1", str(end), str(now)) == [reported]
    refuse(net, w.las, "GetGaps", "G-1", code="ACCESS_DENIED")
    history = query(net, w.po, "GetHistoryRecord", reported["txId"])
    assert history["entryType"] == "ReportGap" and history["participant"] == "camera G-1"
    assert history["details"]["reason"] == "source lost: connection reset"


def test_the_gap_queue_keeps_reports_across_restarts_until_acknowledged(tmp_path: Path) -> None:
    queue = GapQueue(tmp_path)
    first = GapReport(1_000, 5_000, -1, "the extractor was not running")
    second = GapReport(9_000, 12_345, 3, "source lost: the stream ended")
    queue.put(second)
    queue.put(first)
    (tmp_path / f".tmp-00000000000000099999.gap.{os.getpid()}").write_bytes(b"{")  # a torn put
    (tmp_path / "00000000000000077777.gap").write_bytes(b"not json")
    reopened = GapQueue(tmp_path)
    assert reopened.pending() == [first, second]  # oldest first; damage set aside
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".torn")) == [
        "00000000000000077777.gap.torn"
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    reopened.ack(first)
    reopened.ack(first)  # twice is harmless
    assert GapQueue(tmp_path).pending() == [second] and len(reopened) == 1
    assert second.args("5859") == ["5859", "9000", "12345", "3", "source lost: the stream ended"]
