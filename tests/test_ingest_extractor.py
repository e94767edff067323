"""``cctvchain ingest`` against real peers and a real RTSP camera, with real faults.

The cluster is :mod:`peer_cluster`'s (3 organisations, 3 Raft orderers, 4 peers, each a
process); the cameras are Debian's GStreamer RTSP server looping a generated H.264 clip;
the extractor is the ``cctvchain ingest`` command, run as the camera's own identity.

* 60 s from the live camera while Debian's ffmpeg records the same stream with
  ``-c copy`` (as an NVR does), with the extractor's gateway peer killed for 30 s in the
  middle: every segment committed, in order, chained, each anchor the camera's; the
  frame records held by peers of two organisations and served with valid inclusion
  proofs; the exact fingerprints of the recording's frames, from Debian ffmpeg's own
  ``-f rawvideo`` decode, equal the anchored ones frame for frame. Prints the ledger
  bytes per camera-hour this cost.
* During a gateway outage, the extractor is SIGKILLed with segments in its spool and
  started again (it resumes from the spool without the network), then the camera's RTSP
  server is killed and restarted: the spooled segments drain once the gateway returns,
  nothing is lost or anchored twice, and both gaps are logged and on the ledger, at the
  segment boundaries around them.
* A wrong sampling policy is refused by the contract and stops the extractor with one
  line, its segments kept in the spool; user mistakes are one-line usage errors.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ingest_world import (
    REPO,
    IngestWorld,
    check_chain,
    ffmpeg_digests,
    ingest_world,
    serve_rtsp,
    start_ingest,
    wait_for,
)
from node_helpers import free_ports
from peer_cluster import RUNNING_PEERS, HttpAnswer, User
from rtsp_camera import FFMPEG, RtspCamera, make_clip, rtsp_camera

from cctvchain.chaincode.cctv.model import SamplingPolicy, Segment
from cctvchain.crypto import sha256
from cctvchain.ingest.perceptual import fingerprint
from cctvchain.ingest.records import SegmentRecords, verified_records
from cctvchain.ingest.records_client import upload_body
from cctvchain.ingest.segment import SealedSegment, Segmenter
from cctvchain.ingest.spool import Spool
from cctvchain.ledger.blockfile import HEADER_SIZE as FRAME_HEADER_SIZE
from cctvchain.ledger.stored import store_block_bytes
from cctvchain.msp.wallet import Wallet
from cctvchain.peernode.gateway_client import GatewayRefused

# The first media test may install Debian packages (apt) for the whole run.
pytestmark = pytest.mark.timeout(900)

__all__ = ["rtsp_camera"]  # the session fixture, imported for pytest

MB = 1_000_000
HOUR_MS = 3_600_000
PEER_ORG = {"peer0.city": "CityCCTV", "peer1.city": "CityCCTV", "peer0.police": "Police"}
PEER_ORG["peer0.la"] = "LocalAuthority"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestWorld]:
    yield from ingest_world(tmp_path_factory.mktemp("ingest"))


def metrics(spool: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((spool / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data


def finish(process: subprocess.Popen[bytes], log: Path, timeout: float) -> str:
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return log.read_text(errors="replace")


def holders(world: IngestWorld, camera: str, segment: Segment) -> dict[str, int]:
    """Organisation -> number of its peers serving the segment's records (proofs checked)."""
    found: Counter[str] = Counter()
    for peer in RUNNING_PEERS:
        answer = world.cluster.request(
            peer,
            "GET",
            f"/api/v1/cameras/{camera}/segments/{segment.sequence}/records?index=0",
            user=world.po,
        )
        if answer.status == 404:
            assert answer.code == "records_not_stored", answer.body
            continue
        assert answer.status == 200, answer.body
        found[PEER_ORG[peer]] += 1
    return dict(found)


def anchored_once(world: IngestWorld, camera: str, anchors: list[dict[str, Any]]) -> None:
    """Every anchor was committed once: the historian lists each sequence exactly once,
    by the transactions the anchors name, in increasing blocks."""
    history = [e for e in world.history(camera) if e["entryType"] == "AnchorSegment"]
    sequences = sorted(int(e["details"]["sequence"]) for e in history)
    assert sequences == list(range(len(anchors)))
    assert {e["txId"] for e in history} == {a["txId"] for a in anchors}
    assert all(e["participant"] == f"camera {camera}" for e in history)
    blocks = [a["block"] for a in anchors]
    assert blocks == sorted(blocks) and len(set(blocks)) == len(blocks)


def best_offset(anchored: list[bytes], recorded: list[bytes]) -> tuple[int, int]:
    """The offset (anchored index - recorded index) most digests agree on, and how many."""
    positions: dict[bytes, list[int]] = {}
    for i, digest in enumerate(anchored):
        positions.setdefault(digest, []).append(i)
    votes = Counter(i - j for j, d in enumerate(recorded) for i in positions.get(d, []))
    assert votes, "no recorded frame is anchored"
    return votes.most_common(1)[0]


def test_sixty_seconds_from_a_live_camera_beside_an_nvr_recording_through_a_gateway_outage(
    world: IngestWorld, rtsp_camera: RtspCamera, tmp_path: Path
) -> None:
    cluster, camera = world.cluster, "5859"
    spool, log = tmp_path / "spool", tmp_path / "ingest.log"
    args = world.ingest_args(
        camera, rtsp_camera.url, spool, "--duration", "60", "--metrics-interval", "2"
    )
    started = time.time()
    ingest = start_ingest(args, log)
    recording = tmp_path / "nvr.mp4"
    recorder = subprocess.Popen(
        [
            *(FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
            *("-rtsp_transport", "tcp", "-i", rtsp_camera.url, "-c", "copy", "-t", "50"),
            str(recording),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: metrics(spool).get("segments_uploaded", 0) >= 1, 30, "a first anchor")
        time.sleep(max(0.0, started + 12 - time.time()))
        cluster.kill("peer1.city")  # the extractor's only gateway
        outage = (time.time(), time.time() + 30)
        time.sleep(28)
        during = metrics(spool)
        cluster.start("peer1.city")
        output = finish(ingest, log, timeout=150)
    finally:
        if ingest.poll() is None:
            ingest.kill()
        _, err = recorder.communicate(timeout=90)
    assert recorder.returncode == 0, err.decode()[-2000:]
    assert ingest.returncode == 0, output[-4000:]
    assert "spool empty" in output and "Traceback" not in output

    # While the gateway was down, segments queued in the spool; none was lost.
    assert during["spool_pending"] >= 2, during
    assert "not anchored yet" in output
    anchors = world.anchors(camera)
    segments = check_chain(anchors)
    anchored_once(world, camera, anchors)
    final = metrics(spool)
    assert final["segments_sealed"] == len(segments) == final["segments_uploaded"]
    assert final["frames_fingerprinted"] == sum(s.frame_count for s in segments)
    # The camera never went away (a stall inside the stream would be a recorded gap).
    assert final["reconnects"] == 0 and final["frames_dropped"] == 0
    assert final["gaps_seen"] == final["gaps_reported"] == len(world.gaps(camera))
    assert "source lost" not in output
    # Segments sealed while the gateway was down committed only after it came back, so
    # they waited far longer than a segment's usual second or two. (Judged by that wait,
    # not by capture times against this host's clock: the camera's RTCP clock may be a
    # few seconds off it.)
    drained = [a for a in anchors if a["received"] - a["captureEnd"] > 10_000]
    assert len(drained) >= 2 and all(a["received"] > outage[1] * 1000 - 5000 for a in drained)
    # Every segment's records are held by peers of at least two organisations; the
    # anchored frames, in order, are their records (each with a checked proof).
    anchored: list[bytes] = []
    for segment in segments:
        orgs = holders(world, camera, segment)
        assert len(orgs) >= 2, (segment.sequence, orgs)
        peer = next(p for p in ("peer0.police", "peer0.la", "peer0.city") if PEER_ORG[p] in orgs)
        anchored += [r.digest for r in world.records(camera, segment, peer)]

    # Frame for frame: the NVR's copy decodes (by Debian ffmpeg) to the anchored frames.
    recorded = ffmpeg_digests(recording, 640, 360)
    offset, _ = best_offset(anchored, recorded)
    matched = [j for j in range(len(recorded)) if 0 <= j + offset < len(anchored)]
    equal = [j for j in matched if anchored[j + offset] == recorded[j]]
    print(
        f"\nanchored {len(anchored)} frames in {len(segments)} segments; recorded "
        f"{len(recorded)}; offset {offset}; equal {len(equal)} of {len(matched)} overlapping"
    )
    assert len(recorded) >= 45 * 25
    assert len(matched) == len(recorded)  # the recording lies within the ingest
    assert equal == matched

    # Ledger bytes per camera-hour at the normal policy, end to end.
    covered = segments[-1].capture_end_ms - segments[0].capture_start_ms + 40
    segment_bytes = sum(len(s.encode()) for s in segments)
    tx_bytes = 0
    block_bytes = 0
    stored_bytes = 0
    for anchor in anchors:
        tx = cluster.get_json("peer0.city", f"/api/v1/transactions/{anchor['txId']}", cluster.admin)
        tx_bytes += len(tx["data_b64"]) * 3 // 4
        block = cluster.get_json(
            "peer0.city", f"/api/v1/blocks/{anchor['block']}?raw=1", cluster.admin
        )
        canonical = base64.b64decode(block["block_b64"])
        block_bytes += len(canonical)
        # What the ledger writes to its block files for this block: the frame header and
        # the stored form (cctvchain.ledger.stored, the function Ledger.append_block uses).
        stored_bytes += FRAME_HEADER_SIZE + len(store_block_bytes(canonical))
    per_hour = {
        "segments": segment_bytes * HOUR_MS // covered,
        "transactions": tx_bytes * HOUR_MS // covered,
        "blocks": block_bytes * HOUR_MS // covered,
        "block files": stored_bytes * HOUR_MS // covered,
    }
    print(
        "ledger bytes per camera-hour (normal policy): "
        + ", ".join(f"{k} {v / MB:.2f} MB" for k, v in per_hour.items())
    )
    # The product's bound: at most 1 MB of ledger (block files) per camera-hour.
    assert per_hour["block files"] <= MB


def test_extractor_killed_in_an_outage_and_camera_restarted_lose_nothing_and_record_gaps(
    world: IngestWorld, tmp_path: Path
) -> None:
    cluster, camera = world.cluster, "5860"
    clip = make_clip(tmp_path / "camera.h264", seconds=8.0, bframes=0, extra=("-f", "h264"))
    (port,) = free_ports(1)
    server, url = serve_rtsp(clip, port)
    spool = tmp_path / "spool"
    args = world.ingest_args(
        camera,
        url,
        spool,
        "--segment-seconds",
        "2",
        "--metrics-interval",
        "1",
        gateway="peer0.la",
    )
    first = start_ingest(args, tmp_path / "first.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: metrics(spool).get("segments_uploaded", 0) >= 1, 30, "a first anchor")
        cluster.kill("peer0.la")  # the gateway: segments queue up
        wait_for(lambda: len(list(spool.glob("*.seg"))) >= 2, 20, "segments spooled", 0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # Stay down a few seconds: a session's capture clock can run ~1 s ahead (the
        # server's cached keyframe), and an immediate restart would then leave no gap.
        time.sleep(3)
        left = Spool(spool)
        spooled = {s: left.get(s).segment_hash for s in left.pending()}
        second = start_ingest([*args, "--duration", "22"], tmp_path / "second.log")
        time.sleep(5)
        server.kill()  # the camera goes away ...
        server.wait(timeout=10)
        time.sleep(3)
        server, again = serve_rtsp(clip, port)  # ... and comes back
        assert again == url
        time.sleep(3)
        cluster.start("peer0.la")
        output = finish(second, tmp_path / "second.log", timeout=120)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
        server.terminate()
        server.wait(timeout=10)
    assert second.returncode == 0, output[-4000:]
    assert "spool empty" in output and "Traceback" not in output
    assert "resuming from the spool's head" in output  # the network was down at start

    anchors = world.anchors(camera)
    segments = check_chain(anchors)
    anchored_once(world, camera, anchors)
    # What the killed extractor left in its spool was anchored as it was.
    assert len(spooled) >= 2
    for sequence, segment_hash in spooled.items():
        assert segments[sequence].hash() == segment_hash
    for segment in segments:
        assert len(holders(world, camera, segment)) >= 2, segment.sequence

    # Both gaps: logged, on the ledger by the camera, between the segments around them.
    logged = [line for line in output.splitlines() if "gap: no frames from" in line]
    assert len(logged) == 2, logged
    assert "the extractor restarted after an unclean stop" in logged[0]
    assert "source lost" in logged[1]
    gaps = wait_for(lambda: len(world.gaps(camera)) == 2 and world.gaps(camera), 30, "gaps")
    for gap in gaps:
        before, after = segments[gap["afterSequence"]], segments[gap["afterSequence"] + 1]
        assert (gap["from"], gap["to"]) == (before.capture_end_ms, after.capture_start_ms)
    # The camera was away for 3 s and more; the capture clocks of the sessions on either
    # side (the host's, then RTCP's) may disagree by up to a second.
    assert gaps[1]["durationMs"] >= 1000
    history = [e for e in world.history(camera) if e["entryType"] == "ReportGap"]
    assert len(history) == 2 and all(e["participant"] == f"camera {camera}" for e in history)
    final = metrics(spool)
    assert final["reconnects"] >= 1 and final["gaps_reported"] == 2
    print(
        f"\n{len(segments)} segments, {len(spooled)} left spooled by the killed extractor, "
        f"gaps {[(g['durationMs'], g['reason']) for g in gaps]}"
    )


def test_a_wrong_policy_stops_the_extractor_with_one_line_and_keeps_the_segment(
    world: IngestWorld, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0)
    spool = tmp_path / "spool"
    args = world.ingest_args("5860", str(clip), spool, "--policy", "high:5")
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("cctvchain: error: segment ") and "POLICY_MISMATCH" in last
    assert "kept in the spool" in last and "Traceback" not in done.stderr
    assert len(Spool(spool)) >= 1

    def usage(*extra: str) -> str:
        run = subprocess.run(
            [sys.executable, "-m", "cctvchain", "ingest", *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode in (1, 2) and "Traceback" not in run.stderr
        return run.stderr.strip().splitlines()[-1]

    base = ["--camera", "5860", "--config", str(world.cluster.config_path)]
    source = ["--source", str(clip)]
    assert "no such file" in usage(*base, "--source", str(tmp_path / "none.mp4"))
    assert "use normal, high:N or all" in usage(*base, *source, "--policy", "fast")
    assert "--wallet" in usage(*base, *source)
    client = world.cluster.config.nodes_dir / "wallets" / "crm@CityCCTV"
    assert "a client identity" in usage(*base, *source, "--wallet", str(client))


def sealed_segment(camera: str, frames: int = 30) -> SealedSegment:
    """A segment of synthetic frames captured a minute ago (digests need no video)."""
    segmenter = Segmenter(camera, SamplingPolicy("normal", 1), segment_ms=3_600_000)
    start = (int(time.time()) - 60) * 1000
    rng = np.random.default_rng(7)
    for i in range(frames):
        thumb = rng.random((64, 64)) * 255
        segmenter.add(
            40 * i, start + 40 * i, sha256(b"frame %d" % i), lambda t=thumb: fingerprint(t)
        )
    sealed = segmenter.flush()
    assert sealed is not None
    return sealed


def test_peers_store_only_the_anchored_records_of_the_camera_and_serve_them_with_proofs(
    world: IngestWorld, tmp_path: Path
) -> None:
    cluster, camera = world.cluster, "5861"
    owner = cluster.user_from_wallet(Wallet(world.wallets[camera]), "CityCCTV")
    other = cluster.user_from_wallet(Wallet(world.wallets["5859"]), "CityCCTV")
    sealed = sealed_segment(camera)
    body = upload_body(sealed)
    path = f"/api/v1/cameras/{camera}/segments/0/records"

    def put(user: User, data: bytes, peer: str = "peer0.police") -> HttpAnswer:
        return cluster.request(
            peer, "PUT", path, user=user, body=data, content_type="application/octet-stream"
        )

    # Not anchored yet: nothing to check the records against.
    assert put(owner, body).code == "not_anchored"
    segment_b64 = base64.b64encode(sealed.segment.encode()).decode()
    anchored = cluster.submit(owner, "AnchorSegment", segment_b64)
    cluster.seen_height = max(cluster.seen_height, anchored.block + 1)
    wait_for(lambda: cluster.height("peer0.police") > anchored.block, 10, "the block")

    # Only the camera's own identity, only the anchored leaves, only octet-stream.
    assert put(world.po, body).code == "WRONG_IDENTITY"
    assert put(other, body).code == "WRONG_IDENTITY"
    changed = replace(sealed.records[3], digest=sha256(b"another frame"))
    forged = SegmentRecords(camera, 0, (*sealed.records[:3], changed, *sealed.records[4:]))
    assert put(owner, forged.encode()).code == "records_mismatch"
    assert put(owner, SegmentRecords(camera, 0, sealed.records[:-1]).encode()).code == (
        "records_mismatch"
    )
    assert put(owner, SegmentRecords(camera, 1, sealed.records).encode()).code == (
        "records_mismatch"
    )
    assert put(owner, b"not a message").code == "malformed_records"
    wrong_type = cluster.request(
        "peer0.police", "PUT", path, user=owner, body=body, content_type="application/json"
    )
    assert (wrong_type.status, wrong_type.code) == (415, "unsupported_media_type")
    stored = put(owner, body)
    assert stored.status == 201 and stored.json()["msp_id"] == "Police"
    again = put(owner, body)
    assert again.status == 200 and again.json()["created"] is False

    # Served under Algorithm 1, each record with a proof that checks; one frame on its own.
    records = world.records(camera, sealed.segment, "peer0.police")
    assert records == list(sealed.records)
    one = cluster.get_json("peer0.police", f"{path}?index=3", world.po)
    assert verified_records(one["records"], sealed.segment) == [sealed.records[3]]
    assert one["block"] == anchored.block and one["txId"] == anchored.tx_id
    denied = cluster.request("peer0.police", "GET", path, user=world.po2)
    assert (denied.status, denied.code) == (403, "ACCESS_DENIED")
    elsewhere = cluster.request("peer0.la", "GET", path, user=world.po)
    assert (elsewhere.status, elsewhere.code) == (404, "records_not_stored")
    beyond = cluster.request("peer0.police", "GET", f"{path}?index=30", user=world.po)
    assert beyond.code == "unknown_frame"

    # Gaps: the camera's own, once; read under Algorithm 1.
    start = sealed.segment.capture_end_ms
    gap = (camera, str(start), str(start + 5000), "0", "source lost: test")
    reported = cluster.submit(owner, "ReportGap", *gap).json()
    assert (reported["durationMs"], reported["afterSequence"]) == (5000, 0)
    with pytest.raises(GatewayRefused) as replayed:
        cluster.submit(owner, "ReportGap", *gap)
    assert replayed.value.code == "GAP_REPLAY"
    with pytest.raises(GatewayRefused) as impostor:
        cluster.submit(other, "ReportGap", *gap)
    assert impostor.value.code == "WRONG_IDENTITY"
    assert [g["txId"] for g in world.gaps(camera)] == [reported["txId"]]
    assert cluster.request(
        "peer0.la", "GET", f"/api/v1/cameras/{camera}/gaps", user=world.po2
    ).code == ("ACCESS_DENIED")

    # An extractor whose spool still holds that (committed) segment, started while its
    # first gateway is down, resumes from the spool; the next gateway answers
    # SEQUENCE_REPLAY, which the chain head shows to be this very segment: done, and
    # its records go to a second organisation before the spool lets it go.
    Spool(tmp_path / "replay").put(sealed)
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    (dead,) = free_ports(1)
    args = world.ingest_args(camera, str(clip), tmp_path / "replay", "--segment-seconds", "1")
    args[args.index("--peer") : args.index("--peer")] = ["--peer", f"https://127.0.0.1:{dead}"]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from the spool's head, segment 0" in done.stderr
    assert "segment 0 was already anchored" in done.stderr
    assert metrics(tmp_path / "replay")["segments_already_anchored"] == 1
    anchors = world.anchors(camera)
    check_chain(anchors)
    anchored_once(world, camera, anchors)
    assert anchors[0]["txId"] == anchored.tx_id
    assert len(holders(world, camera, sealed.segment)) >= 2


def test_a_new_spool_continues_the_ledger_chain_and_a_stale_one_is_refused(
    world: IngestWorld, tmp_path: Path
) -> None:
    camera = "5861"
    before = len(world.anchors(camera))
    clip = make_clip(tmp_path / "clip.mp4", seconds=2.0)

    def ingest(spool: str) -> subprocess.CompletedProcess[str]:
        args = world.ingest_args(camera, str(clip), tmp_path / spool, "--segment-seconds", "1")
        return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)

    first = ingest("a")
    assert first.returncode == 0, first.stderr[-3000:]
    middle = len(world.anchors(camera))
    assert middle >= before + 2
    second = ingest("b")  # a new spool: continues where the ledger's chain stands
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"continues its chain after segment {middle - 1}" in second.stderr
    anchors = world.anchors(camera)
    assert len(anchors) >= middle + 2
    check_chain(anchors)
    anchored_once(world, camera, anchors)
    stale = ingest("a")  # its chain ends where b's began: another extractor went on
    assert stale.returncode == 1
    last = stale.stderr.strip().splitlines()[-1]
    assert "another extractor anchors this camera" in last and "Traceback" not in stale.stderr
    assert len(world.anchors(camera)) == len(anchors)
