"""``cctvchain verify`` against peers: usage errors, peers that are down or fail, refusals,
and peers that disagree — each a real CLI run over real mutual TLS.

The evidence is real: a camera's clip anchored on an in-process network (real ledger,
orderer and camera signatures, :mod:`verify_world`), its bundle made from that ledger.
The peers are :class:`verify_peers.ServedPeer` s listening on the ports of a
:mod:`peer_cluster` network configuration with the peers' own TLS certificates, each
serving the evidence a test chooses: the honest bundle, one with the camera's last
anchor left out (a peer hiding evidence), or a refusal. The live cluster with the
peers' real verify routes is exercised by ``tests/test_verify_live.py``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from peer_cluster import PeerCluster, make_cluster
from verify_peers import Behaviour, ServedPeer, located_span
from verify_world import CAMERA, AnchoredCamera, anchored_camera, bundle_for, make_camera_clip

from cctvchain.cli import verify_net
from cctvchain.cli.errors import CliError
from cctvchain.cli.main import main
from cctvchain.cli.verify_net import (
    PeerRef,
    locate_body,
    parse_time,
    peer_plan,
    spread,
    witnesses,
)
from cctvchain.msp.wallet import Wallet
from cctvchain.network.material import enroll_identity
from cctvchain.node import tls
from cctvchain.verify.bundle import EvidenceBundle, read_bundle
from cctvchain.verify.clip import fingerprint_clip
from cctvchain.verify.crosscheck import compare_bundles

pytestmark = pytest.mark.timeout(600)


@dataclass
class Setup:
    root: Path
    cam: AnchoredCamera
    clip: Path
    honest: EvidenceBundle
    hiding: EvidenceBundle  # the camera's last anchor left out
    cluster: PeerCluster
    po: Path  # a police officer's wallet


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("verify-network")
    clip = make_camera_clip(root / "camera.mp4")
    cam = anchored_camera(root / "net", clip)
    assert len(cam.refs) >= 2
    hiding = bundle_for(cam.world, CAMERA, cam.refs[:-1], cam.sealed[:-1])
    (root / "cluster").mkdir()
    cluster = make_cluster(root / "cluster")
    po = enroll_identity(
        cluster.config, "Police", "po", "client", {"role": "PO"}, now=datetime.now(UTC)
    )
    try:
        yield Setup(root, cam, clip, cam.bundle(), hiding, cluster, po)
    finally:
        cam.world.net.close()


Serve = Callable[[str, Behaviour], ServedPeer]


@pytest.fixture
def serve(setup: Setup) -> Iterator[Serve]:
    """Start a served peer in place of the configuration's peer NAME."""
    started: list[ServedPeer] = []
    cluster = setup.cluster

    def start(name: str, behaviour: Behaviour) -> ServedPeer:
        wallet = Wallet(cluster.material.node_wallet(name))
        context = tls.node_server_context(wallet, cluster.material.channel_config())
        peer = ServedPeer(cluster.ports[name], context, behaviour).start()
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


def honest(setup: Setup) -> Behaviour:
    return Behaviour(setup.honest, located_span(setup.honest))


def verify(
    setup: Setup, *extra: str, clip: Path | None = None, name: str = "report"
) -> tuple[int, dict[str, Any] | None]:
    out = setup.root / f"{name}.json"
    out.unlink(missing_ok=True)
    code = main(
        [
            "verify",
            str(clip or setup.clip),
            *("--camera", CAMERA),
            *("--wallet", str(setup.po)),
            *("--config", str(setup.cluster.config_path)),
            *("--json", str(out)),
            "--quiet",
            *extra,
        ]
    )
    return code, json.loads(out.read_text()) if out.exists() else None


# -- through served peers ------------------------------------------------------------------


def test_two_peers_of_two_organisations_that_agree_give_the_verdict(
    setup: Setup, serve: Serve
) -> None:
    police = serve("peer0.police", honest(setup))
    city = serve("peer0.city", honest(setup))
    bundle_path = setup.root / "evidence.cvb"
    code, report = verify(setup, "--bundle", str(bundle_path))
    assert report is not None
    assert code == 0 and report["verdict"] == "AUTHENTIC", report["reason"]
    assert report["frames"]["EXACT"] == report["frames"]["total"] == 300
    assert report["evidence"]["ok"] and report["evidence"]["source"] == "network"
    # The wallet's own organisation located and served; the other cross-checked.
    kinds = [k for k, _, _ in police.requests]
    assert kinds == ["locate", "evidence"]
    _, camera, body = police.requests[0]
    assert camera == CAMERA and len(body["digests"]) == 300 and len(body["dct"]) == 300
    assert body["from"] is None and body["to"] is None
    start, end = located_span(setup.honest)
    assert police.requests[1][2] == {"from": str(start), "to": str(end)}
    # The witness located the clip itself and served the same span.
    assert [k for k, _, _ in city.requests] == ["locate", "evidence"]
    assert city.requests[0][2] == body and city.requests[1][2] == police.requests[1][2]
    # The bundle names both peers and re-checks offline.
    written = read_bundle(bundle_path.read_bytes())
    assert "peer0.police (Police)" in written.metadata.source
    assert "cross-checked with peer0.city (CityCCTV)" in written.metadata.source
    assert written.clip is not None and len(written.clip.pts_ms) == 300
    assert main(["verify-bundle", str(bundle_path), "--quiet"]) == 0


def test_the_summary_says_where_the_evidence_came_from(
    setup: Setup, serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    serve("peer0.police", honest(setup))
    serve("peer0.city", honest(setup))
    argv = ["verify", str(setup.clip), "--camera", CAMERA, "--wallet", str(setup.po)]
    assert main([*argv, "--config", str(setup.cluster.config_path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("AUTHENTIC — every verified frame is bit-exact")
    police, city = setup.cluster.url("peer0.police"), setup.cluster.url("peer0.city")
    assert f"evidence from peer0.police (Police) {police}, cross-checked with " in err
    assert f"peer0.city (CityCCTV) {city}" in err


def test_a_span_longer_than_the_peers_serve_is_fetched_in_windows_and_merged(
    setup: Setup, serve: Serve
) -> None:
    start, end = located_span(setup.honest)
    limit = (end - start) // 2 + 1000  # two windows
    police = serve("peer0.police", replace(honest(setup), max_span_ms=limit))
    city = serve("peer0.city", replace(honest(setup), max_span_ms=limit + 5000))
    bundle_path = setup.root / "windows.cvb"
    code, report = verify(setup, "--bundle", str(bundle_path), name="windows")
    assert report is not None
    assert code == 0 and report["verdict"] == "AUTHENTIC", report["reason"]
    # Both peers were asked for the same consecutive windows, each within the lower limit.
    asked = [(int(q["from"]), int(q["to"])) for k, _, q in police.requests if k == "evidence"]
    assert [(int(q["from"]), int(q["to"])) for k, _, q in city.requests if k == "evidence"] == (
        asked
    )
    assert len(asked) >= 2 and asked[0][0] == start and asked[-1][1] == end
    assert all(b - a <= limit for a, b in asked)
    assert all(n[0] <= p[1] for p, n in itertools.pairwise(asked))  # no gap
    written = read_bundle(bundle_path.read_bytes())
    assert written.anchors == setup.honest.anchors  # each anchor once
    assert f"(in {len(asked)} windows of capture)" in written.metadata.source
    assert main(["verify-bundle", str(bundle_path), "--quiet"]) == 0


def test_windows_of_one_peer_that_disagree_are_unverifiable_naming_it(
    setup: Setup, serve: Serve
) -> None:
    start, end = located_span(setup.honest)
    limit = (end - start) // 2 + 1000
    first = setup.honest.anchors[0]
    # The second window's copy of the first anchor carries another validation code (a
    # part the witness comparison does not cover): only the merge can see it.
    doctored = replace(
        setup.honest, anchors=(replace(first, validation_code=11), *setup.honest.anchors[1:])
    )
    serve("peer0.police", replace(honest(setup), max_span_ms=limit, later=(doctored,)))
    serve("peer0.city", replace(honest(setup), max_span_ms=limit))
    code, report = verify(setup, name="windows-disagree")
    assert report is not None
    assert code == 4 and report["verdict"] == "UNVERIFIABLE"
    assert report["reason"].startswith(
        "peer0.police (Police) serves inconsistent evidence of camera CAM-V1 for consecutive "
        "windows of the clip: segment 0: validation code 0 in window 1, 11 in window 2"
    ), report["reason"]


def test_the_time_window_is_sent_to_locate(setup: Setup, serve: Serve) -> None:
    police = serve("peer0.police", honest(setup))
    serve("peer0.la", honest(setup))
    code, _ = verify(setup, "--from", "2026-01-01T00:00:00Z", "--to", "1999999999999")
    assert code == 0
    body = police.requests[0][2]
    assert body["from"] == 1_767_225_600_000 and body["to"] == 1_999_999_999_999


@pytest.mark.parametrize("liar", ["primary", "witness"])
def test_a_peer_hiding_an_anchor_is_unverifiable_naming_both_peers(
    setup: Setup, serve: Serve, liar: str
) -> None:
    hiding = Behaviour(setup.hiding, located_span(setup.hiding))
    serve("peer0.police", hiding if liar == "primary" else honest(setup))
    serve("peer0.city", hiding if liar == "witness" else honest(setup))
    code, report = verify(setup)
    assert report is not None
    assert code == 4 and report["verdict"] == "UNVERIFIABLE"
    reason = report["reason"]
    assert reason.startswith("the peers disagree: peer0.police (Police) and peer0.city (CityCCTV)")
    last = setup.cam.refs[-1]
    liar_label = "peer0.police (Police)" if liar == "primary" else "peer0.city (CityCCTV)"
    assert f"segment {last.segment.sequence} (block {last.block})" in reason
    assert f"missing at {liar_label}" in reason
    # Had the hiding peer been trusted alone, the clip's end would have been unanchored.
    assert report["anomalies"] == [] and report["evidence"] is None


def test_a_witness_that_denies_access_the_first_peer_granted_is_a_disagreement(
    setup: Setup, serve: Serve
) -> None:
    serve("peer0.police", honest(setup))
    serve("peer0.city", Behaviour(refuse=(403, "ACCESS_DENIED", "P-77 may not see CAM-V1")))
    code, report = verify(setup)
    assert report is not None and code == 4
    assert report["reason"] == (
        "the peers disagree on access: peer0.police (Police) served the evidence, "
        "peer0.city (CityCCTV) refused: ACCESS_DENIED: P-77 may not see CAM-V1"
    )


def test_a_witness_holding_the_block_but_no_anchors_is_a_disagreement(
    setup: Setup, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_net, "CATCH_UP_S", 1.0)  # how long a lagging peer may take
    serve("peer0.police", honest(setup))
    city = serve("peer0.city", Behaviour(None, None, chain=setup.honest))
    code, report = verify(setup)
    assert report is not None and code == 4
    last = setup.cam.refs[-1].block
    assert report["reason"] == (
        f"the peers disagree: peer0.police (Police) serves the anchors of camera {CAMERA} "
        f"in block {last}, peer0.city (CityCCTV) holds block {last} but serves no anchors "
        "for this time"
    )
    assert ("header", str(last), None) in city.requests


def test_a_peer_without_the_frame_records_sends_the_verifier_to_another(
    setup: Setup, serve: Serve
) -> None:
    not_stored = (404, "records_not_stored", "ask another peer")
    police = serve("peer0.police", replace(honest(setup), refuse_evidence=not_stored))
    serve("peer0.city", honest(setup))
    serve("peer0.la", honest(setup))
    code, report = verify(setup)
    assert report is not None
    assert code == 0, report["reason"]
    # Asked first (own organisation), then as a witness of peer0.city; peer0.la answered.
    assert [k for k, _, _ in police.requests] == ["locate", "evidence", "locate", "evidence"]


def test_no_access_is_unverifiable_with_the_contracts_code_and_message(
    setup: Setup, serve: Serve
) -> None:
    police = serve(
        "peer0.police", Behaviour(refuse=(403, "ACCESS_DENIED", "no grant for P-78 on CAM-V1"))
    )
    html = setup.root / "denied.html"
    code, report = verify(setup, "--report", str(html))
    assert report is not None
    assert code == 4 and report["verdict"] == "UNVERIFIABLE"
    assert report["reason"] == (
        f"no access to camera {CAMERA}: peer0.police (Police) refused: "
        "ACCESS_DENIED: no grant for P-78 on CAM-V1"
    )
    assert report["clip"]["frames"] == 300
    assert "ACCESS_DENIED" in html.read_text()
    assert [k for k, _, _ in police.requests] == ["locate"]  # asked nobody else


def test_a_clip_no_anchor_matches_at_two_organisations_is_unverifiable(
    setup: Setup, serve: Serve
) -> None:
    serve("peer0.police", Behaviour(setup.honest, None))
    serve("peer0.city", Behaviour(setup.honest, None))
    code, report = verify(setup)
    assert report is not None and code == 4
    assert report["reason"] == (
        f"no anchors of camera {CAMERA} match this clip (located at peer0.police (Police) "
        "and peer0.city (CityCCTV))"
    )


def test_a_first_peer_that_is_behind_gives_way_to_one_that_has_the_anchors(
    setup: Setup, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_net, "CATCH_UP_S", 1.0)
    behind = serve("peer0.police", Behaviour(None, None))  # no anchors, no blocks yet
    serve("peer0.city", honest(setup))
    serve("peer0.la", honest(setup))
    code, report = verify(setup, name="behind")
    assert report is not None
    assert code == 0, report["reason"]
    # First asked (nothing located, no evidence), then a witness still without the
    # anchoring block; peer0.la confirmed peer0.city's evidence.
    kinds = [k for k, _, _ in behind.requests]
    assert kinds[:3] == ["locate", "evidence", "locate"] and kinds[-1] == "header"


def test_peers_that_are_down_or_failing_are_skipped(setup: Setup, serve: Serve) -> None:
    failing = serve("peer1.city", Behaviour(refuse=(503, "not_ready", "catching up")))
    serve("peer0.la", honest(setup))
    serve("peer0.city", honest(setup))
    # peer2.city is not running; peer1.city fails; peer0.police is not running either.
    code, report = verify(setup, "--peer", "peer2.city", "--peer", "peer1.city")
    assert report is not None
    assert code == 0, report["reason"]
    assert [k for k, _, _ in failing.requests] == ["locate"]


def test_no_peer_answering_fails_with_each_peers_reason(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = verify(setup)
    assert code == 1 and report is None
    err = capsys.readouterr().err
    assert err.startswith("cctvchain: error: no peer could serve the evidence: ")
    for name in ("peer0.police", "peer0.city", "peer1.city", "peer0.la", "peer2.city"):
        url = setup.cluster.url(name)
        assert f"cannot reach peer {name} (" in err and f"at {url}: connection refused" in err
    assert "Traceback" not in err


def test_no_witness_answering_fails_rather_than_trusting_one_peer(
    setup: Setup, serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    serve("peer0.police", honest(setup))
    code, report = verify(setup, "--peer", "peer0.police")
    assert code == 1 and report is None
    err = capsys.readouterr().err
    assert "cannot cross-check the evidence of peer0.police (Police): no peer of another " in err
    assert "peer0.city (CityCCTV) at" in err and "connection refused" in err


def test_without_the_channels_tls_roots_other_organisations_cannot_be_asked(
    setup: Setup, serve: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same network configuration, but its nodes directory (and the genesis block
    with every organisation's TLS roots) is not on this machine: the Police wallet
    trusts Police's TLS root only, so peers of the other organisations fail the TLS
    handshake and the verifier says why rather than trusting one peer."""
    elsewhere = setup.root / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    config = elsewhere / "network.toml"
    config.write_text(setup.cluster.config_path.read_text())
    serve("peer0.police", honest(setup))
    serve("peer0.city", honest(setup))
    argv = ["verify", str(setup.clip), "--camera", CAMERA, "--wallet", str(setup.po)]
    assert main([*argv, "--config", str(config), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "cannot cross-check the evidence of peer0.police (Police)" in err
    assert "TLS with peer peer0.city (CityCCTV) at " in err
    assert "certificate verify failed" in err
    assert "this wallet trusts only its own organisation's TLS root" in err


def test_usage_errors(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    wallet = ("--wallet", str(setup.po), "--config", str(setup.cluster.config_path))
    cases: list[tuple[list[str], str]] = [
        (["verify", str(setup.root / "none.mp4"), "--camera", CAMERA, *wallet], "does not exist"),
        (
            ["verify", str(setup.clip), "--camera", CAMERA, "--from", "yesterday", *wallet],
            "--from 'yesterday' is not a time",
        ),
        (
            ["verify", str(setup.clip), "--camera", CAMERA, "--from", "2026-01-01T10:00", *wallet],
            "needs a UTC offset",
        ),
        (
            ["verify", str(setup.clip), "--camera", CAMERA, *wallet, "--from", "20", "--to", "10"],
            "--to is before --from",
        ),
        (["verify", str(setup.clip), "--camera", CAMERA, *wallet, "--peer", "peer9"], "peer9"),
        (
            ["verify", str(setup.clip), "--camera", CAMERA, *wallet, "--peer", "https://x:1/y"],
            "must not have a path",
        ),
        (["verify", str(setup.clip), "--camera", " ", *wallet], "is not a camera id"),
        (
            ["verify", str(setup.clip), "--camera", CAMERA, "--config", str(setup.root / "no")],
            "cannot read the network configuration",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CCTVCHAIN_WALLET", raising=False)
        argv = ["verify", str(setup.clip), "--camera", CAMERA]
        assert main([*argv, "--config", str(setup.cluster.config_path)]) == 2
        assert "--wallet DIR" in capsys.readouterr().err
    for argv in (["verify"], ["verify", str(setup.clip)]):
        with pytest.raises(SystemExit) as usage:
            main(argv)
        assert usage.value.code == 2


# -- the pure parts ----------------------------------------------------------------------------


def test_peer_plan_orders_named_peers_then_own_organisation_then_others(setup: Setup) -> None:
    config = setup.cluster.config
    plan = peer_plan([], config, "Police")
    assert [p.name for p in plan] == [
        "peer0.police",
        "peer0.city",
        "peer1.city",
        "peer0.la",
        "peer2.city",
    ]
    url = setup.cluster.url("peer0.la")
    plan = peer_plan(["peer1.city", url, "https://127.0.0.1:1"], config, "Police")
    names = [p.name for p in plan]
    assert names[:4] == ["peer1.city", "peer0.la", "https://127.0.0.1:1", "peer0.police"]
    unknown = plan[2]
    assert unknown.org == "" and unknown.label == "https://127.0.0.1:1"
    assert [w.name for w in witnesses(plan[0], plan)] == ["peer0.la", "peer0.police"]
    assert peer_plan(["https://127.0.0.1:9"], None, "Police") == [
        PeerRef("https://127.0.0.1:9", "https://127.0.0.1:9", "")
    ]
    with pytest.raises(CliError, match="neither an https:// URL"):
        peer_plan(["peer0.city"], None, "Police")


def test_compare_bundles_names_every_kind_of_difference(setup: Setup) -> None:
    a, b = "A", "B"
    assert compare_bundles(setup.honest, setup.honest, a, b) == []
    hidden = setup.cam.refs[-1]
    diffs = compare_bundles(setup.honest, setup.hiding, a, b)
    assert diffs == [
        f"segment {hidden.segment.sequence} (block {hidden.block}) is anchored at A, missing at B"
    ]
    # The hidden segment is only a neighbour of an earlier span: a peer may lack its
    # records and leave it out.
    first = setup.cam.refs[0].segment
    span = (first.capture_start_ms, first.capture_end_ms)
    assert compare_bundles(setup.honest, setup.hiding, a, b, span) == []
    # A peer that is behind (its ledger height below the anchoring block) is not accused.
    behind = replace(
        setup.hiding, metadata=replace(setup.hiding.metadata, ledger_height=hidden.block)
    )
    assert compare_bundles(setup.honest, behind, a, b) == []
    # A different header for a block both serve.
    headers = list(setup.honest.headers)
    last = headers[-1]
    headers[-1] = replace(last, data_hash=bytes(32))
    forked = replace(setup.honest, headers=tuple(headers))
    diffs = compare_bundles(setup.honest, forked, a, b)
    assert len(diffs) == 1 and diffs[0].startswith(f"block {last.number}: header hash ")
    other_genesis = replace(
        setup.honest,
        genesis=replace(
            setup.honest.genesis, header=replace(setup.honest.genesis.header, data_hash=bytes(32))
        ),
    )
    assert compare_bundles(setup.honest, other_genesis, a, b)[0].startswith(
        "different genesis blocks"
    )


def test_locate_body_spreads_a_long_clip(setup: Setup) -> None:
    assert spread(5, 10) == [0, 1, 2, 3, 4]
    picked = spread(1000, 7)
    assert picked[0] == 0 and picked[-1] == 999 and len(picked) == 7
    clip = fingerprint_clip(setup.clip)
    body = locate_body(clip, (1, 2), limit=50)
    assert len(body["digests"]) == len(body["dct"]) == 50
    assert body["digests"][0] == clip.frames[0].digest.hex()
    assert body["digests"][-1] == clip.frames[-1].digest.hex()
    assert all(len(d) == 16 for d in body["dct"]) and (body["from"], body["to"]) == (1, 2)
    assert parse_time("2026-01-01T01:00:00+01:00", "--from") == 1_767_225_600_000
    assert parse_time("1767225600000", "--from") == 1_767_225_600_000
