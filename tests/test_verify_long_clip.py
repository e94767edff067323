"""A clip longer than a peer serves evidence for at once, verified on a real cluster.

The cluster is :mod:`ingest_world`'s (3 organisations, 3 Raft orderers, 4 peers, each a
process, mutual TLS), started with ``[peer] max_evidence_span_s = 12``. A generated
36 s H.264 clip is ingested as camera 5861 by the real ``cctvchain ingest`` process in
4-second segments (nine), its frame records stored at peer0.police and peer0.la. The
peers refuse one bundle for the whole clip (``range_too_large``, stating the limit), so
the real ``cctvchain verify`` CLI, as the police officer P-77, fetches the evidence in
windows of at most 12 s from both organisations, cross-checks each window and merges
them into one bundle: the clip is ``AUTHENTIC`` with full coverage, the merged bundle
re-checks offline with ``verify-bundle``, and a copy with one frame changed in the last
window is ``TAMPERED`` (``ALTERED``) at exactly that frame.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ingest_world import IngestWorld, ingest_world
from rtsp_camera import make_clip, transcode

from cctvchain.chaincode.cctv.model import Segment
from cctvchain.cli.main import main
from cctvchain.network.material import wallet_dir
from cctvchain.verify.bundle import check_bundle, read_bundle
from cctvchain.verify.clip import fingerprint_clip

pytestmark = pytest.mark.timeout(900)

CAMERA = "5861"
SPAN_S = 12
CLIP_S = 36
SEGMENT_S = 4
EDIT = 800  # the frame (32 s into the clip) changed in the tampered copy
BOX = f"drawbox=x=100:y=50:w=55:h=30:color=black:t=fill:enable='eq(n,{EDIT})'"
LOSSLESS = ("-c:v", "libx264", "-qp", "0")  # decodes to the very same planes
HOLDERS = ("peer0.police", "peer0.la")


@dataclass
class Setup:
    world: IngestWorld
    root: Path
    clips: dict[str, Path]
    segments: list[Segment]
    po: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("long-clip")
    (root / "net").mkdir()
    worlds = ingest_world(root / "net", f"\n[peer]\nmax_evidence_span_s = {SPAN_S}\n")
    world = next(worlds)
    try:
        camera = make_clip(
            root / "camera.mp4", size="320x180", seconds=float(CLIP_S), gop=25, bframes=0
        )
        origin = (int(time.time() * 1000) - 300_000) // 4000 * 4000
        segments = world.ingest_file(
            CAMERA,
            camera,
            root / "spool",
            segment_seconds=SEGMENT_S,
            capture_origin_ms=origin,
            records_peers=HOLDERS,
        )
        assert len(segments) == CLIP_S // SEGMENT_S
        clips = {
            "camera": camera,
            "box-exact": transcode(camera, root / "box.mkv", "-vf", BOX, *LOSSLESS),
        }
        po = wallet_dir(world.cluster.config, "Police", "po")
        yield Setup(world, root, clips, segments, po)
    finally:
        worlds.close()


def verify(setup: Setup, clip: str, *extra: str) -> tuple[int, dict[str, Any]]:
    out = setup.root / f"{clip}.json"
    code = main(
        [
            "verify",
            str(setup.clips[clip]),
            *("--camera", CAMERA),
            *("--wallet", str(setup.po)),
            *("--config", str(setup.world.cluster.config_path)),
            *("--json", str(out)),
            "--quiet",
            *extra,
        ]
    )
    report: dict[str, Any] = json.loads(out.read_text())
    return code, report


def test_the_peers_refuse_one_bundle_for_the_whole_clip_stating_their_limit(
    setup: Setup,
) -> None:
    start, end = setup.segments[0].capture_start_ms, setup.segments[-1].capture_end_ms
    assert end - start > 2 * SPAN_S * 1000  # three windows at least
    answer = setup.world.cluster.request(
        "peer0.police",
        "GET",
        f"/api/v1/cameras/{CAMERA}/evidence?from={start}&to={end}",
        user=setup.world.po,
    )
    assert (answer.status, answer.json()["code"]) == (400, "range_too_large")
    body = answer.json()
    assert body["max_span_ms"] == SPAN_S * 1000
    assert f"at most {SPAN_S} s ([peer] max_evidence_span_s)" in body["message"]


def test_a_long_clip_is_verified_in_windows_and_its_merged_bundle_rechecks_offline(
    setup: Setup,
) -> None:
    path = setup.root / "long.cvb"
    code, report = verify(setup, "camera", "--bundle", str(path))
    assert code == 0 and report["verdict"] == "AUTHENTIC", report.get("reason")
    total = CLIP_S * 25
    assert report["frames"]["EXACT"] == report["frames"]["total"] == total
    assert report["coverage"]["fraction"] == 1.0
    assert report["coverage"]["span_fraction"] == 1.0
    assert report["anomalies"] == []

    bundle = read_bundle(path.read_bytes())
    assert [a.segment.sequence for a in bundle.anchors] == [s.sequence for s in setup.segments]
    assert "cross-checked with peer0.la" in bundle.metadata.source
    windows = bundle.metadata.source.rsplit("(in ", 1)[1].split(" ")[0]
    assert int(windows) >= 3, bundle.metadata.source
    numbers = [h.number for h in bundle.headers]
    assert numbers == list(range(numbers[0], numbers[-1] + 1))
    verdict = check_bundle(bundle, fingerprint_clip(setup.clips["camera"]))
    assert verdict.ok, verdict.failures

    out = setup.root / "rechecked.json"
    again = main(["verify-bundle", str(path), str(setup.clips["camera"]), "--json", str(out)])
    rechecked = json.loads(out.read_text())
    assert again == 0 and rechecked["verdict"] == "AUTHENTIC", rechecked.get("reason")
    assert rechecked["frames"]["EXACT"] == total


def test_a_frame_changed_in_the_last_window_is_altered_there(setup: Setup) -> None:
    code, report = verify(setup, "box-exact")
    assert code == 3 and report["verdict"] == "TAMPERED", report.get("reason")
    assert [a["kind"] for a in report["anomalies"]] == ["ALTERED"]
    altered = report["anomalies"][0]
    assert abs(altered["clip_start_s"] - EDIT * 0.04) < 0.001
    assert abs(altered["clip_end_s"] - EDIT * 0.04) <= 0.041
    assert report["frames"]["EXACT"] == CLIP_S * 25 - 1
