"""The evidence window of ``cctvchain verify`` and the peer's ``max_evidence_span_s``
setting (pure parts: no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cctvchain.cli.verify_net import Located, _too_long, parse_located, window_limit
from cctvchain.network.config import NetworkConfigError, load_network_config
from cctvchain.node.errors import NodeProtocolError, NodeRefused
from cctvchain.peernode.evidence import EvidenceError, check_span

LOCAL = Path(__file__).resolve().parents[1] / "configs" / "local.toml"


def test_the_setting_defaults_to_two_hours_and_is_read_from_the_peer_table(
    tmp_path: Path,
) -> None:
    assert load_network_config(LOCAL).peer.max_evidence_span_s == 7200
    text = LOCAL.read_text().replace('acl = "acl.toml"', f'acl = "{LOCAL.parent / "acl.toml"}"')
    config = tmp_path / "net.toml"
    config.write_text(text + "\n[peer]\nmax_evidence_span_s = 15\n")
    assert load_network_config(config).peer.max_evidence_span_s == 15
    config.write_text(text + "\n[peer]\nmax_evidence_span_s = 0\n")
    with pytest.raises(NetworkConfigError, match="max_evidence_span_s must be at least 1"):
        load_network_config(config)


def test_the_peer_refuses_a_longer_span_stating_its_limit() -> None:
    check_span(0, 15_000, 15_000)
    with pytest.raises(EvidenceError) as refused:
        check_span(0, 15_001, 15_000)
    assert refused.value.code == "range_too_large" and refused.value.max_span_ms == 15_000
    assert "at most 15 s ([peer] max_evidence_span_s)" in refused.value.message
    with pytest.raises(EvidenceError, match="at most 7200 s"):
        check_span(0, 2 * 3_600_000 + 1)


def test_the_client_learns_the_limit_from_locate_or_halves_a_refused_window() -> None:
    answer = {"segments": [], "captureStart": None, "captureEnd": None}
    assert parse_located(answer, "p").max_span_ms is None  # an older peer: one window
    assert parse_located({**answer, "maxEvidenceSpanMs": 12_000}, "p").max_span_ms == 12_000
    with pytest.raises(NodeProtocolError, match="under 1 s"):
        parse_located({**answer, "maxEvidenceSpanMs": 10}, "p")
    a, b = Located((), None, None, 12_000), Located((), None, None, 9_000)
    assert window_limit(a, b) == 9_000 and window_limit(Located((), None, None)) is None
    too_long = NodeRefused("p", 400, "range_too_large", "at most 12 s")
    shorter = _too_long(too_long, (0, 30_000))
    assert shorter is not None and shorter.limit == 15_000
    assert _too_long(too_long, (0, 1_000)) is None  # no window under a second
    assert _too_long(NodeRefused("p", 404, "no_anchors", ""), (0, 30_000)) is None
