"""Segments of a real clip: windows by capture time, RFC 6962 roots over the frame
records, the hash chain, inclusion proofs, and the ledger bytes they cost."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace

import numpy as np
import pytest
from rtsp_camera import make_clip

from cctvchain.chaincode.cctv.anchors import MAX_SEGMENT_BYTES, decode_segment
from cctvchain.chaincode.cctv.model import SamplingPolicy, Segment
from cctvchain.crypto import MerkleTree
from cctvchain.ingest import perceptual as P
from cctvchain.ingest.segment import (
    GENESIS_HASH,
    CaptureClockError,
    SealedSegment,
    Segmenter,
    ledger_bytes_per_hour,
    verify_frame_record,
)
from cctvchain.media import decode_frames

# The first test may install Debian packages (apt) for the whole run.
pytestmark = pytest.mark.timeout(900)

NORMAL = SamplingPolicy("normal", 1)
HIGH = SamplingPolicy("high", 5)
ALL = SamplingPolicy("all", 0)
CAMERA = "CAM-0001"
# pts 0 is captured 5 s into a 10 s window: the first segment holds 5 s, the next 10 s.
ORIGIN_MS = 1_767_225_605_000
MB = 1_000_000


@dataclass(frozen=True)
class Frame:
    pts_ms: int
    digest: bytes
    perceptual: P.Perceptual


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[Frame]:
    clip = make_clip(tmp_path_factory.mktemp("segment") / "clip.mp4", seconds=15.0)
    return [Frame(f.pts_ms, f.digest, P.fingerprint(f.thumbnail())) for f in decode_frames(clip)]


def segment_all(frames: list[Frame], policy: SamplingPolicy) -> list[SealedSegment]:
    segmenter = Segmenter(CAMERA, policy)
    sealed = []
    for f in frames:
        done = segmenter.add(f.pts_ms, ORIGIN_MS + f.pts_ms, f.digest, lambda f=f: f.perceptual)
        if done is not None:
            sealed.append(done)
    last = segmenter.flush()
    assert last is not None and segmenter.flush() is None
    sealed.append(last)
    return sealed


def test_a_clip_becomes_chained_segments_that_cover_every_frame(frames: list[Frame]) -> None:
    assert len(frames) == 375
    first, second = segment_all(frames, NORMAL)
    a, b = first.segment, second.segment
    assert (a.sequence, b.sequence) == (0, 1)
    assert (a.frame_count, b.frame_count) == (125, 250)
    assert (a.capture_start_ms, a.capture_end_ms) == (ORIGIN_MS, ORIGIN_MS + 4960)
    assert (b.capture_start_ms, b.capture_end_ms) == (ORIGIN_MS + 5000, ORIGIN_MS + 14960)
    assert a.previous_hash == GENESIS_HASH
    assert b.previous_hash == a.hash() == first.segment_hash
    assert (a.camera_id, a.policy) == (CAMERA, NORMAL)
    records = first.records + second.records
    assert [r.digest for r in records] == [f.digest for f in frames]
    assert [r.index for r in first.records] == list(range(125))
    assert [r.capture_time_ms - r.pts_ms for r in records] == [ORIGIN_MS] * 375
    for sealed in (first, second):
        tree = MerkleTree.from_leaves(r.encode() for r in sealed.records)
        assert sealed.segment.merkle_root == tree.root
        # The contract accepts what the segmenter produces.
        assert decode_segment(_b64(sealed.segment)) == sealed.segment


def sampled(sealed: SealedSegment) -> list[int]:
    return [r.index for r in sealed.records if r.perceptual is not None]


def test_sampled_frames_carry_full_signatures_in_their_records_bound_by_the_root(
    frames: list[Frame],
) -> None:
    first, second = segment_all(frames, NORMAL)
    # One sample per second of pts: seconds 0-4 in the first segment, 5-14 in the second.
    assert [first.records[i].pts_ms for i in sampled(first)] == [0, 1000, 2000, 3000, 4000]
    assert sampled(second) == [25 * k for k in range(10)]
    for sealed in (first, second):
        for record in sealed.records:
            if record.perceptual is None:
                continue
            assert len(record.perceptual.tiles) == P.TILE_SIGNATURE_SIZE
            frame = frames[record.pts_ms // 40]
            assert record.perceptual.dct_hash == frame.perceptual.dct_hash
            # A fingerprint taken off a record, or changed, breaks its inclusion proof.
            proof = sealed.inclusion_proof(record.index)
            assert verify_frame_record(record, proof, sealed.segment)
            dropped = replace(record, perceptual=None)
            assert not verify_frame_record(dropped, proof, sealed.segment)
            hash_bits = bytes([record.perceptual.dct_hash[0] ^ 1]) + record.perceptual.dct_hash[1:]
            changed = replace(record, perceptual=replace(record.perceptual, dct_hash=hash_bits))
            assert not verify_frame_record(changed, proof, sealed.segment)
    (high,) = segment_all(frames[125:150], HIGH)  # one second at 5 per second
    assert sampled(high) == [0, 5, 10, 15, 20]


def test_every_record_has_an_inclusion_proof_and_a_changed_record_has_none(
    frames: list[Frame],
) -> None:
    first, second = segment_all(frames, NORMAL)
    segment = first.segment
    for record in first.records:
        proof = first.inclusion_proof(record.index)
        assert verify_frame_record(record, proof, segment)
    record = first.records[37]
    proof = first.inclusion_proof(37)
    forged = [
        replace(record, digest=bytes(32)),
        replace(record, capture_time_ms=record.capture_time_ms + 1),
        replace(record, index=38),
        replace(first.records[0], perceptual=None),
    ]
    assert not any(verify_frame_record(r, proof, segment) for r in forged)
    assert not verify_frame_record(record, proof, second.segment)


def test_ledger_bytes_per_camera_hour(frames: list[Frame]) -> None:
    """A full 10 s segment at 25 fps, encoded as the camera anchors it.

    The segment holds nothing per frame (the records, perceptual fingerprints included,
    stay with the peers under its Merkle root), so its size does not depend on the
    sampling policy: fixed fields, two 32-byte hashes, ~260 bytes with this camera id.
    The whole transaction's bound is in tests/test_cctv_anchors.py."""
    sizes = {}
    for name, policy in (("normal", NORMAL), ("high-5", HIGH), ("all", ALL)):
        full = segment_all(frames, policy)[1].segment
        assert full.frame_count == 250
        sizes[name] = len(full.encode())
        assert sizes[name] <= MAX_SEGMENT_BYTES
    per_hour = {name: ledger_bytes_per_hour(size) for name, size in sizes.items()}
    print(f"segment bytes {sizes}; segment bytes per camera-hour {per_hour}")
    assert max(sizes.values()) - min(sizes.values()) <= 3  # the mode: "normal" vs "all"
    assert all(size <= 100_000 for size in per_hour.values())  # 360 x <= 277 bytes


def test_resuming_flushing_and_clock_errors() -> None:
    digest = bytes(range(32))
    thumb = P.fingerprint(np.arange(64 * 64, dtype=np.float64).reshape(64, 64) % 255)
    seg = Segmenter(CAMERA, NORMAL, segment_ms=1000)
    assert seg.add(0, 10_000, digest, lambda: thumb) is None
    assert seg.add(40, 10_040, digest, lambda: thumb) is None
    first = seg.flush()  # early: the stream stalled
    assert first is not None and first.segment.frame_count == 2
    # The same window continues in a new segment, chained to the first.
    assert seg.add(80, 10_080, digest, lambda: thumb) is None
    sealed = seg.add(1000, 11_000, digest, lambda: thumb)
    assert sealed is not None
    assert sealed.segment.previous_hash == first.segment_hash
    assert (sealed.segment.sequence, sealed.segment.frame_count) == (1, 1)
    with pytest.raises(CaptureClockError):
        seg.add(1040, 10_999, digest, lambda: thumb)
    # A restarted extractor resumes the chain from where its spool says it was.
    resumed = Segmenter(
        CAMERA,
        NORMAL,
        segment_ms=1000,
        sequence=seg.next_sequence,
        previous_hash=seg.previous_hash,
        last_capture_ms=11_000,
    )
    with pytest.raises(CaptureClockError):
        resumed.add(0, 11_000, digest, lambda: thumb)
    resumed.add(0, 11_040, digest, lambda: thumb)
    third = resumed.flush()
    assert third is not None and third.segment.sequence == 2
    assert third.segment.previous_hash == seg.previous_hash
    # Perceptual fingerprints are computed only for sampled frames.
    calls: list[int] = []

    def counted() -> P.Perceptual:
        calls.append(1)
        return thumb

    lazy = Segmenter(CAMERA, NORMAL)
    for i in range(50):
        lazy.add(40 * i, 40 * i, digest, counted)
    assert len(calls) == 2
    with pytest.raises(ValueError, match="Merkle root"):
        SealedSegment.build(third.segment, third.records + third.records)


def _b64(segment: Segment) -> str:
    return base64.b64encode(segment.encode()).decode()
