"""Network verification on real peers: locate, evidence, block headers, the HTTP verify.

The cluster is :mod:`ingest_world`'s (3 organisations, 3 Raft orderers, 4 peers, each a
process, mutual TLS), started once for the module with ``[peer] max_clip_bytes`` set
to 4 MB. A generated H.264 clip (12 s, 25 fps) is ingested as camera 5860 by the real
``cctvchain ingest`` process in 4-second segments, its frame records stored at
peer0.police and peer0.la (two organisations; peer0.city holds none). The police
officer P-77 was granted access to the camera, P-78 was not. Every request below goes
over HTTPS with the caller's own TLS certificate; every bundle is checked with the
offline checker, every clip decoded for real.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ingest_world import REPO, IngestWorld, ingest_world, wait_for
from peer_cluster import HttpAnswer, PeerCluster, User
from rtsp_camera import make_clip, transcode
from verify_world import make_camera_clip

from cctvchain.chaincode.cctv.model import Segment
from cctvchain.ingest.records import SegmentRecords
from cctvchain.verify.bundle import EvidenceBundle, check_bundle, read_bundle
from cctvchain.verify.clip import fingerprint_clip
from cctvchain.verify.fingerprints import ClipFingerprints

pytestmark = pytest.mark.timeout(900)

CAMERA = "5860"
MAX_CLIP_BYTES = 4_000_000
HOLDERS = ("peer0.police", "peer0.la")
BOX = "drawbox=x=100:y=50:w=55:h=30:color=black:t=fill:enable='eq(n,137)'"
LOSSLESS = ("-c:v", "libx264", "-qp", "0")  # decodes to the very same planes


@dataclass
class Setup:
    world: IngestWorld
    clips: dict[str, Path]
    segments: list[Segment]
    root: Path

    @property
    def cluster(self) -> PeerCluster:
        return self.world.cluster


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("evidence")
    (root / "net").mkdir()
    worlds = ingest_world(root / "net", f"\n[peer]\nmax_clip_bytes = {MAX_CLIP_BYTES}\n")
    world = next(worlds)
    try:
        camera = make_camera_clip(root / "camera.mp4")
        # Capture time of pts 0 on the 4-second grid: segments of exactly 100 frames.
        origin = (int(time.time() * 1000) - 120_000) // 4000 * 4000
        segments = world.ingest_file(
            CAMERA,
            camera,
            root / "spool",
            segment_seconds=4,
            capture_origin_ms=origin,
            records_peers=HOLDERS,
            timeout=300,
        )
        assert len(segments) == 3
        clips = {
            "camera": camera,
            "reencode": transcode(
                camera,
                root / "reencode.mp4",
                *("-vf", "scale=640:360", "-c:v", "libx264", "-b:v", "300k"),
            ),
            "box-exact": transcode(camera, root / "box.mkv", "-vf", BOX, *LOSSLESS),
            "other": make_clip(
                root / "other.mp4", source="mandelbrot", size="320x180", seconds=4.0, bframes=0
            ),
        }
        yield Setup(world, clips, segments, root)
    finally:
        worlds.close()


def fingerprints(setup: Setup, clip: str) -> ClipFingerprints:
    return fingerprint_clip(setup.clips[clip])


def locate(
    setup: Setup, body: dict[str, Any], *, user: User | None = None, peer: str = "peer0.police"
) -> HttpAnswer:
    return setup.cluster.request(
        peer,
        "POST",
        f"/api/v1/cameras/{CAMERA}/locate",
        user=user or setup.world.po,
        body=json.dumps(body).encode(),
        content_type="application/json",
    )


def evidence(
    setup: Setup, start: int, end: int, *, user: User | None = None, peer: str = "peer0.police"
) -> HttpAnswer:
    return setup.cluster.request(
        peer,
        "GET",
        f"/api/v1/cameras/{CAMERA}/evidence?from={start}&to={end}",
        user=user or setup.world.po,
    )


def verify(
    setup: Setup,
    data: bytes,
    *,
    query: str = "",
    user: User | None = None,
    peer: str = "peer0.la",
    content_type: str = "video/mp4",
) -> HttpAnswer:
    return setup.cluster.request(
        peer,
        "POST",
        f"/api/v1/cameras/{CAMERA}/verify{query}",
        user=user or setup.world.po,
        body=data,
        content_type=content_type,
        timeout=300,
    )


def bundle_of(answer: HttpAnswer) -> EvidenceBundle:
    assert answer.status == 200, answer.body[:500]
    assert answer.headers["content-type"].startswith("application/cbor")
    return read_bundle(answer.body)


def span(setup: Setup) -> tuple[int, int]:
    return setup.segments[0].capture_start_ms, setup.segments[-1].capture_end_ms


# -- locate ----------------------------------------------------------------------------------


def test_locate_finds_the_segments_by_exact_digests_and_a_reencoded_copy_by_dct(
    setup: Setup,
) -> None:
    camera = fingerprints(setup, "camera")
    found = locate(setup, {"digests": [f.digest.hex() for f in camera.frames]})
    assert found.status == 200, found.body
    answer = found.json()
    sequences = [s["sequence"] for s in answer["segments"]]
    assert sequences == [0, 1, 2]
    # Every frame of the camera's clip is one of the anchored records, each segment's own.
    assert sum(s["exact"] for s in answer["segments"]) == len(camera.frames) == 300
    assert [s["exact"] for s in answer["segments"]] == [
        segment.frame_count for segment in setup.segments
    ]
    assert all(s["perceptual"] == 0 for s in answer["segments"])
    assert (answer["captureStart"], answer["captureEnd"]) == span(setup)
    for s, segment in zip(answer["segments"], setup.segments, strict=True):
        assert (s["captureStart"], s["captureEnd"]) == (
            segment.capture_start_ms,
            segment.capture_end_ms,
        )

    # The same answer from the other organisation's peer; none from a peer holding no
    # records (it has the anchors, not the records).
    elsewhere = locate(setup, {"digests": [f.digest.hex() for f in camera.frames]}, peer="peer0.la")
    assert elsewhere.json() == found.json()
    city = locate(setup, {"digests": [camera.frames[0].digest.hex()]}, peer="peer0.city")
    assert city.status == 200 and city.json() == {
        "segments": [],
        "captureStart": None,
        "captureEnd": None,
        "maxEvidenceSpanMs": 7_200_000,
    }

    # Two seconds from the middle: exactly the segment(s) they come from.
    middle = camera.frames[110:160]
    part = locate(setup, {"digests": [f.digest.hex() for f in middle]}).json()
    assert [(s["sequence"], s["exact"]) for s in part["segments"]] == [(1, 50)]
    assert (part["captureStart"], part["captureEnd"]) == (
        setup.segments[1].capture_start_ms,
        setup.segments[1].capture_end_ms,
    )

    # A re-encoded, rescaled copy: no digest matches, the DCT hashes do.
    reencoded = fingerprints(setup, "reencode")
    body = {
        "digests": [f.digest.hex() for f in reencoded.frames],
        "dct": [f.dct_hash.hex() for f in reencoded.frames if f.dct_hash is not None],
    }
    answer = locate(setup, body).json()
    assert [s["sequence"] for s in answer["segments"]] == [0, 1, 2]
    assert all(s["exact"] == 0 and s["perceptual"] >= 1 for s in answer["segments"])
    assert (answer["captureStart"], answer["captureEnd"]) == span(setup)
    # Only frames captured in the window are compared when one is given.
    inside = {**body, "from": setup.segments[2].capture_start_ms, "to": None}
    assert [s["sequence"] for s in locate(setup, inside).json()["segments"]] == [2]

    # Another scene matches nothing.
    other = fingerprints(setup, "other")
    body = {
        "digests": [f.digest.hex() for f in other.frames],
        "dct": [f.dct_hash.hex() for f in other.frames if f.dct_hash is not None],
    }
    assert locate(setup, body).json() == {
        "segments": [],
        "captureStart": None,
        "captureEnd": None,
        "maxEvidenceSpanMs": 7_200_000,
    }


def test_locate_refuses_bad_and_oversized_requests(setup: Setup) -> None:
    digest = "ab" * 32
    for body, code in (
        ({"digests": ["xyz"]}, "bad_locate"),
        ({"digests": [digest], "dct": ["abc"]}, "bad_locate"),
        ({"digests": digest}, "bad_locate"),
        ({"digests": [digest], "extra": 1}, "bad_locate"),
        ({"digests": [digest], "from": 10, "to": 5}, "bad_locate"),
        ({"digests": [digest], "from": "10"}, "bad_locate"),
        ({}, "bad_locate"),
    ):
        answer = locate(setup, body)
        assert (answer.status, answer.code) == (400, code), (body, answer.body)
    too_many = locate(setup, {"digests": [digest] * 200_001})
    assert (too_many.status, too_many.code) == (413, "too_many_frames")
    assert "200000" in too_many.json()["message"]
    assert (locate(setup, {"dct": ["00" * 8] * 20_001}).code) == "too_many_frames"


# -- evidence --------------------------------------------------------------------------------


def test_evidence_checks_offline_and_is_the_same_at_two_organisations(setup: Setup) -> None:
    cluster = setup.cluster
    start, end = span(setup)
    police = bundle_of(evidence(setup, start, end))
    local = bundle_of(evidence(setup, start, end, peer="peer0.la"))
    for bundle in (police, local):
        verdict = check_bundle(bundle)
        assert verdict.ok, verdict.failures
        assert [a.segment for a in bundle.anchors] == setup.segments
        assert bundle.clip is None
    assert police.metadata.source.startswith("peer0.police")
    assert local.metadata.source.startswith("peer0.la")
    # Segment for segment the same evidence: anchor transactions, positions, records
    # with their proofs, block headers and configurations. (Not the orderer signatures:
    # each peer keeps those of the orderer that delivered the block to it, and both
    # sets were checked above.)
    assert police.anchors == local.anchors
    assert police.headers == local.headers
    assert [s.number for s in police.block_signatures] == [s.number for s in local.block_signatures]
    assert (police.genesis, police.config_updates) == (local.genesis, local.config_updates)
    # The records are the ones each peer was sent by the camera.
    for anchor in police.anchors:
        stored = setup.world.records(CAMERA, anchor.segment, "peer0.la")
        assert [r.record for r in anchor.records] == [r.encode() for r in stored]

    # Trusting no single peer: the bundled headers are the chain of a third peer, of
    # another organisation, which any channel reader may ask for.
    for header in police.headers:
        answer = cluster.get_json(
            "peer0.city", f"/api/v1/blocks/{header.number}/header", setup.world.po2
        )
        assert answer == {
            "number": header.number,
            "hash": header.hash().hex(),
            "previousHash": header.previous_hash.hex(),
            "dataHash": header.data_hash.hex(),
        }
    height = cluster.height("peer0.city")
    missing = cluster.request(
        "peer0.city", "GET", f"/api/v1/blocks/{height + 5}/header", user=setup.world.po2
    )
    assert (missing.status, missing.code) == (404, "unknown_block")

    # With the clip, offline: the camera's own clip is authentic frame for frame.
    clip = fingerprints(setup, "camera")
    checked = check_bundle(police, clip)
    assert checked.ok and checked.alignment is not None
    assert checked.alignment.verdict.value == "AUTHENTIC"

    # The middle segment alone comes with one neighbour on each side.
    middle = setup.segments[1]
    around = bundle_of(evidence(setup, middle.capture_start_ms + 100, middle.capture_end_ms - 100))
    assert [a.segment.sequence for a in around.anchors] == [0, 1, 2]
    first = bundle_of(evidence(setup, start, start + 10))
    assert [a.segment.sequence for a in first.anchors] == [0, 1]
    assert check_bundle(first).ok


def test_evidence_refusals(setup: Setup) -> None:
    cluster = setup.cluster
    start, end = span(setup)
    city = evidence(setup, start, end, peer="peer0.city")
    assert (city.status, city.code) == (404, "records_not_stored")
    nothing = evidence(setup, end + 3_600_000, end + 3_700_000)
    assert (nothing.status, nothing.code) == (404, "no_anchors")
    wide = evidence(setup, start, start + 2 * 3_600_000 + 1)
    assert (wide.status, wide.json()["code"]) == (400, "range_too_large")
    assert "at most 7200 s" in wide.json()["message"]
    assert wide.json()["max_span_ms"] == 7_200_000
    backwards = evidence(setup, end, start)
    assert (backwards.status, backwards.code) == (400, "bad_query")
    for query in ("", f"?from={start}", f"?to={end}", f"?from={start}&to={end}&x=1"):
        answer = cluster.request(
            "peer0.police", "GET", f"/api/v1/cameras/{CAMERA}/evidence{query}", user=setup.world.po
        )
        assert answer.status == 400, (query, answer.body)


def test_an_identity_without_access_learns_nothing(setup: Setup) -> None:
    start, end = span(setup)
    camera = setup.clips["camera"].read_bytes()
    digest = fingerprints(setup, "camera").frames[0].digest.hex()
    for answer in (
        locate(setup, {"digests": [digest]}, user=setup.world.po2),
        evidence(setup, start, end, user=setup.world.po2),
        verify(setup, camera, user=setup.world.po2),
    ):
        assert (answer.status, answer.code) == (403, "ACCESS_DENIED"), answer.body
        message = answer.json()["message"]
        assert message.startswith(f"access to camera {CAMERA} denied: ")
        assert len(message) > len(f"access to camera {CAMERA} denied: ")  # and why
    # An unknown camera is denied the same way (no existence oracle).
    unknown = setup.cluster.request(
        "peer0.police",
        "GET",
        f"/api/v1/cameras/NO-SUCH-CAMERA/evidence?from={start}&to={end}",
        user=setup.world.po,
    )
    assert (unknown.status, unknown.code) == (403, "ACCESS_DENIED")


# -- the HTTP verify -------------------------------------------------------------------------


def test_verify_an_authentic_clip_a_reencoded_copy_and_a_tampered_one(setup: Setup) -> None:
    authentic = verify(setup, setup.clips["camera"].read_bytes(), query="?name=camera.mp4")
    assert authentic.status == 200, authentic.body[:1000]
    report = authentic.json()
    assert report["verdict"] == "AUTHENTIC", report["reason"]
    assert report["camera"] == CAMERA
    assert report["anomalies"] == []
    assert report["frames"]["EXACT"] == report["frames"]["total"] == 300
    assert report["coverage"]["clip_fraction"] == pytest.approx(1.0)
    assert report["coverage"]["capture_start_ms"] == setup.segments[0].capture_start_ms
    assert report["clip"]["name"] == "camera.mp4"
    assert report["clip"]["path"] == ""  # not the peer's temporary file
    assert report["evidence"]["ok"] is True
    assert [a["sequence"] for a in report["anchors"]] == [0, 1, 2]

    reencoded = verify(
        setup, setup.clips["reencode"].read_bytes(), content_type="application/octet-stream"
    ).json()
    assert reencoded["verdict"] == "AUTHENTIC_REENCODED", reencoded["reason"]

    tampered = verify(setup, setup.clips["box-exact"].read_bytes(), peer="peer0.police").json()
    assert tampered["verdict"] == "TAMPERED", tampered["reason"]
    kinds = [a["kind"] for a in tampered["anomalies"]]
    assert kinds == ["ALTERED"], tampered["anomalies"]
    altered = tampered["anomalies"][0]
    assert altered["first_frame"] == altered["last_frame"] == 137
    assert altered["clip_start_s"] == pytest.approx(5.48)

    # A clip of something else: nothing to verify it against.
    other = verify(setup, setup.clips["other"].read_bytes()).json()
    assert other["verdict"] == "UNVERIFIABLE" and other["anomalies"] == []

    # ?bundle=1: the evidence with the clip's fingerprints, re-checkable offline.
    answer = verify(setup, setup.clips["box-exact"].read_bytes(), query="?bundle=1")
    bundle = bundle_of(answer)
    assert bundle.clip is not None and len(bundle.clip.pts_ms) == 300
    offline = check_bundle(bundle)
    assert offline.ok and offline.alignment is not None
    assert offline.alignment.verdict.value == "TAMPERED"


def _chunks(total: int, size: int = 256 * 1024) -> Iterable[bytes]:
    block = os.urandom(size)
    sent = 0
    while sent < total:
        yield block[: min(size, total - sent)]
        sent += size


def _chunked_upload(cluster: PeerCluster, user: User, total: int) -> HttpAnswer:
    """A streamed upload of unknown length (Transfer-Encoding: chunked)."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1", cluster.ports["peer0.la"], context=user.ssl_context, timeout=60
    )
    try:
        connection.request(
            "POST",
            f"/api/v1/cameras/{CAMERA}/verify",
            body=_chunks(total),
            headers={"Content-Type": "application/octet-stream"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return HttpAnswer(response.status, response.read(), dict(response.getheaders()))
    finally:
        connection.close()


def test_oversized_empty_and_undecodable_uploads_are_refused_and_the_peer_keeps_serving(
    setup: Setup,
) -> None:
    cluster = setup.cluster
    uploads = cluster.material.node_dirs["peer0.la"] / "verify-uploads"
    big = verify(setup, os.urandom(MAX_CLIP_BYTES + 1))
    assert (big.status, big.code) == (413, "clip_too_large"), big.body
    assert str(MAX_CLIP_BYTES) in big.json()["message"]
    streamed = _chunked_upload(cluster, setup.world.po, 3 * MAX_CLIP_BYTES)
    assert (streamed.status, streamed.code) == (413, "clip_too_large"), streamed.body
    assert list(uploads.iterdir()) == []  # the partial upload was removed

    garbage = verify(setup, os.urandom(100_000))
    assert (garbage.status, garbage.code) == (422, "bad_clip"), garbage.body
    empty = verify(setup, b"")
    assert (empty.status, empty.code) == (400, "empty_body")
    assert list(uploads.iterdir()) == []

    # Still serving, verification included.
    assert cluster.height("peer0.la") >= 1
    again = verify(setup, setup.clips["camera"].read_bytes())
    assert again.status == 200 and again.json()["verdict"] == "AUTHENTIC"

    # An upload left behind by a peer stopped mid-verification is removed at its next
    # start; the record store and its indexes come back as they were.
    (uploads / "clip-left-behind").write_bytes(b"partial")
    cluster.kill("peer0.la", signal.SIGTERM)
    cluster.start("peer0.la")
    cluster.wait_ready("peer0.la")
    assert list(uploads.iterdir()) == []
    after = verify(setup, setup.clips["camera"].read_bytes())
    assert after.status == 200 and after.json()["verdict"] == "AUTHENTIC"


def test_the_record_store_indexes_records_stored_before_the_indexes_existed(
    tmp_path: Path, setup: Setup
) -> None:
    """A store written without the indexes (an older peer) is indexed when opened."""
    import plyvel

    from cctvchain.peernode.records import RecordStore

    clip = fingerprints(setup, "camera")
    records = setup.world.records(CAMERA, setup.segments[1], "peer0.la")
    raw = plyvel.DB(str(tmp_path / "records"), create_if_missing=True)
    body = SegmentRecords(CAMERA, 1, tuple(records)).encode()
    raw.put(f"{CAMERA}\x00{1:020d}".encode(), body)
    raw.close()
    store = RecordStore(tmp_path / "records")
    assert store.open() == 1  # the one stored segment indexed
    try:
        hits = store.find_digests(CAMERA, [f.digest for f in clip.frames])
        assert {h.sequence for h in hits} == {1}
        assert sorted(h.index for h in hits) == list(range(len(records)))
        table = store.perceptual_table(CAMERA)
        assert len(table) == sum(1 for r in records if r.perceptual is not None) >= 4
        assert set(table.sequences.tolist()) == {1}
        # A segment stored now extends the loaded table and the digest index at once.
        later = setup.world.records(CAMERA, setup.segments[2], "peer0.la")
        assert store.put(CAMERA, 2, SegmentRecords(CAMERA, 2, tuple(later)).encode())
        assert not store.put(CAMERA, 2, SegmentRecords(CAMERA, 2, tuple(later)).encode())
        assert set(store.perceptual_table(CAMERA).sequences.tolist()) == {1, 2}
        assert {h.sequence for h in store.find_digests(CAMERA, [later[0].digest])} == {2}
    finally:
        store.close()
    assert store.open() is None  # indexed already: nothing to do
    try:
        assert set(store.perceptual_table(CAMERA).sequences.tolist()) == {1, 2}
    finally:
        store.close()


# -- the CLI against these peers ---------------------------------------------------------------


def test_cctvchain_verify_against_the_real_peers(setup: Setup) -> None:
    """``cctvchain verify`` (the network half of the CLI) through these routes: it
    locates at one peer, fetches the bundle there, cross-checks it with a peer of
    another organisation and finishes offline."""
    from cctvchain.network.material import wallet_dir

    cluster = setup.cluster

    def run(clip: str, wallet: Path, name: str) -> tuple[int, dict[str, Any], str]:
        out = setup.root / f"cli-{name}.json"
        done = subprocess.run(
            [
                *(sys.executable, "-m", "cctvchain", "verify", str(setup.clips[clip])),
                *("--camera", CAMERA, "--wallet", str(wallet)),
                *("--config", str(cluster.config_path), "--json", str(out), "--quiet"),
                *("--peer", "peer0.police", "--peer", "peer0.la"),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        report = json.loads(out.read_text()) if out.exists() else {}
        return done.returncode, report, done.stderr

    po = wallet_dir(cluster.config, "Police", "po")
    code, report, stderr = run("camera", po, "camera")
    assert (code, report.get("verdict")) == (0, "AUTHENTIC"), stderr[-2000:]
    assert report["frames"]["EXACT"] == 300
    code, report, stderr = run("box-exact", po, "box")
    assert (code, report.get("verdict")) == (3, "TAMPERED"), stderr[-2000:]
    assert [a["kind"] for a in report["anomalies"]] == ["ALTERED"]
    code, report, stderr = run("camera", wallet_dir(cluster.config, "Police", "po2"), "denied")
    assert (code, report.get("verdict")) == (4, "UNVERIFIABLE"), stderr[-2000:]
    assert "ACCESS_DENIED" in report["reason"] or "denied" in report["reason"], report["reason"]


# -- the DCT search on its own -----------------------------------------------------------------


def _walk(n: int, seed: int, bits: int = 20) -> Any:
    """Sampled frames a second apart: each hash ~``bits`` flips from the one before."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=np.uint64)
    value = int(rng.integers(0, 2**63))
    for i, flips in enumerate(rng.integers(0, 64, (n, bits))):
        for bit in flips:
            value ^= 1 << int(bit)
        out[i] = value
    return out


def test_the_dct_search_grows_from_seeds_when_an_exhaustive_one_is_over_budget() -> None:
    import numpy as np

    from cctvchain.peernode.evidence import perceptual_hits
    from cctvchain.peernode.records import PerceptualTable

    n, per_segment = 20_000, 10
    hashes = _walk(n, 7)
    table = PerceptualTable(
        np.arange(n, dtype=np.int64) * 1000,
        np.arange(n, dtype=np.int64) // per_segment,
        hashes,
    )
    rng = np.random.default_rng(8)
    rows = np.arange(12_345, 12_345 + 600)  # ten minutes of a re-encoded copy
    queries = hashes[rows].copy()
    for i, flips in enumerate(rng.integers(0, 64, (len(rows), 3))):
        for bit in flips:
            queries[i] ^= np.uint64(1 << int(bit))
    exhaustive = perceptual_hits(table, queries, budget=10**12)
    staged = perceptual_hits(table, queries, budget=2_000_000)  # 100 queries' worth
    expected = set(range(rows[0] // per_segment, rows[-1] // per_segment + 1))
    # Every segment of the copy; at most a stray 10-bit coincidence besides, with one hit.
    assert expected <= set(exhaustive)
    assert all(exhaustive[s] == 1 for s in set(exhaustive) - expected)
    assert len(set(exhaustive) - expected) <= 2
    # Growing from the seeds finds every segment of the copy, with the same counts.
    assert {s: staged[s] for s in expected if s in staged} == {s: exhaustive[s] for s in expected}
    # A window of time limits the search to the frames captured in it.
    windowed = perceptual_hits(table, queries, start_ms=12_500_000, end_ms=12_599_999)
    assert set(windowed) == set(range(1250, 1260))
    # Hashes of another scene: nothing within 10 bits.
    assert perceptual_hits(table, _walk(600, 9), budget=2_000_000) == {}


def test_uploads_beyond_the_pending_limit_are_refused_and_abandoned_ones_cleaned_up(
    setup: Setup,
) -> None:
    from cctvchain.peernode.verify_api import MAX_PENDING_VERIFICATIONS

    cluster = setup.cluster
    uploads = cluster.material.node_dirs["peer0.police"] / "verify-uploads"
    held: list[http.client.HTTPSConnection] = []
    try:
        for _ in range(MAX_PENDING_VERIFICATIONS):
            connection = http.client.HTTPSConnection(
                "127.0.0.1",
                cluster.ports["peer0.police"],
                context=setup.world.po.ssl_context,
                timeout=60,
            )
            connection.putrequest("POST", f"/api/v1/cameras/{CAMERA}/verify")
            connection.putheader("Content-Type", "video/mp4")
            connection.putheader("Transfer-Encoding", "chunked")
            connection.endheaders()
            connection.send(b"%x\r\n%s\r\n" % (1000, b"x" * 1000))  # and then nothing
            held.append(connection)
        wait_for(
            lambda: len(list(uploads.iterdir())) == MAX_PENDING_VERIFICATIONS,
            30,
            "the uploads to arrive",
            step=0.1,
        )
        busy = verify(setup, setup.clips["camera"].read_bytes(), peer="peer0.police")
        assert (busy.status, busy.code) == (503, "too_many_verifications"), busy.body
        assert busy.headers["retry-after"] == "10"
    finally:
        for connection in held:
            connection.close()  # the clients go away mid-upload
    wait_for(lambda: not list(uploads.iterdir()), 30, "the abandoned uploads removed", step=0.1)
    answer = verify(setup, setup.clips["camera"].read_bytes(), peer="peer0.police")
    assert answer.status == 200 and answer.json()["verdict"] == "AUTHENTIC"
