"""Segments: S seconds of frame records under one RFC 6962 root, chained per camera.

The :class:`Segmenter` takes every decoded frame in order (its pts, camera-clock capture
time and exact digest) and decides by the camera's :class:`SamplingPolicy` which frames
also get a perceptual fingerprint. Frames are grouped by capture time into windows
aligned to the camera clock: frame ``f`` belongs to window
``floor(capture_time_ms(f) / segment_ms)``; the first frame of a new window seals the
current segment (and :meth:`Segmenter.flush` seals it early, e.g. when the stream
stalls or stops, so a window may hold several segments but a segment never spans two
windows).

A sealed segment is

* the frame records (:class:`~cctvchain.ingest.fingerprint.FrameRecord`), indexed from
  0, kept off-chain by the peers — their canonical bytes are the Merkle leaves; a sampled
  frame's record carries its full perceptual fingerprint (DCT hash and tile signature);
* the :class:`~cctvchain.chaincode.cctv.model.Segment` the camera signs and anchors:
  camera id, sequence (0, 1, 2, ... per camera), ``capture_start_ms`` / ``capture_end_ms``
  (capture times of its first and last frame), frame count, the RFC 6962 root over the
  records, the hash of the camera's previous segment (32 zero bytes before the first),
  and the policy. Nothing per frame: the root binds every record, perceptual fingerprints
  included, so a copy of them on-chain would add ledger bytes (~150 per sampled frame)
  and no assurance.

Any record can then be shown to belong to an anchored segment by an inclusion proof
(:meth:`SealedSegment.inclusion_proof`, :func:`verify_frame_record`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cctvchain.chaincode.cctv.model import SamplingPolicy, Segment
from cctvchain.crypto import HASH_SIZE, MerkleTree, leaf_hash, verify_inclusion
from cctvchain.ingest.fingerprint import FramePerceptual, FrameRecord
from cctvchain.ingest.perceptual import Perceptual
from cctvchain.ingest.sampling import Sampler

DEFAULT_SEGMENT_MS = 10_000
GENESIS_HASH = bytes(HASH_SIZE)
HOUR_MS = 3_600_000


class CaptureClockError(ValueError):
    """Capture times that go backwards (the segment chain must move forward in time)."""


@dataclass(frozen=True)
class SealedSegment:
    """A finished segment: the anchorable :class:`Segment` and its frame records."""

    segment: Segment
    records: tuple[FrameRecord, ...]
    _tree: MerkleTree = field(repr=False, compare=False)

    @classmethod
    def build(cls, segment: Segment, records: tuple[FrameRecord, ...]) -> SealedSegment:
        """Re-create a sealed segment (e.g. read back from a spool), checking its root."""
        tree = MerkleTree.from_leaves(r.encode() for r in records)
        if tree.root != segment.merkle_root or len(records) != segment.frame_count:
            raise ValueError("the frame records do not match the segment's Merkle root")
        return cls(segment, records, tree)

    @property
    def sequence(self) -> int:
        return self.segment.sequence

    @property
    def segment_hash(self) -> bytes:
        return self.segment.hash()

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 6962 audit path of the frame record at ``index``."""
        return self._tree.inclusion_proof(index)


def verify_frame_record(record: FrameRecord, proof: list[bytes], segment: Segment) -> bool:
    """Whether ``record`` is leaf ``record.index`` of the segment's Merkle tree."""
    return verify_inclusion(
        leaf_hash(record.encode()), record.index, segment.frame_count, proof, segment.merkle_root
    )


class Segmenter:
    """Groups frames into chained segments for one camera (pure; no I/O).

    Resume after a restart by passing the last segment's ``sequence + 1`` as
    ``sequence``, its hash as ``previous_hash`` and its ``capture_end_ms`` as
    ``last_capture_ms``.
    """

    def __init__(
        self,
        camera_id: str,
        policy: SamplingPolicy,
        *,
        segment_ms: int = DEFAULT_SEGMENT_MS,
        sequence: int = 0,
        previous_hash: bytes = GENESIS_HASH,
        last_capture_ms: int | None = None,
    ) -> None:
        if segment_ms <= 0:
            raise ValueError("a segment lasts a positive number of milliseconds")
        if len(previous_hash) != HASH_SIZE:
            raise ValueError(f"a segment hash is {HASH_SIZE} bytes")
        self.camera_id = camera_id
        self.policy = policy
        self.segment_ms = segment_ms
        self._sampler = Sampler(policy)
        self._sequence = sequence
        self._previous_hash = previous_hash
        self._last_capture = last_capture_ms
        self._window: int | None = None
        self._records: list[FrameRecord] = []

    @property
    def next_sequence(self) -> int:
        """The sequence number the next sealed segment will have."""
        return self._sequence

    @property
    def previous_hash(self) -> bytes:
        """The hash the next sealed segment will chain to."""
        return self._previous_hash

    @property
    def pending_frames(self) -> int:
        return len(self._records)

    def add(
        self,
        pts_ms: int,
        capture_time_ms: int,
        digest: bytes,
        perceptual: Callable[[], Perceptual],
    ) -> SealedSegment | None:
        """Add the next frame; returns the segment it sealed, if it opened a new one.

        ``perceptual`` is called (once) only when the policy samples this frame, so the
        caller computes a thumbnail only when it is needed.
        """
        if self._last_capture is not None and capture_time_ms < self._last_capture:
            raise CaptureClockError(
                f"capture time {capture_time_ms} ms is before the previous frame's "
                f"{self._last_capture} ms"
            )
        if not self._records and capture_time_ms == self._last_capture:
            raise CaptureClockError(
                f"capture time {capture_time_ms} ms repeats the end of the previous segment"
            )
        sealed = None
        window = capture_time_ms // self.segment_ms
        if self._records and window != self._window:
            sealed = self.flush()
        self._window = window
        fingerprint: FramePerceptual | None = None
        if self._sampler.sample(pts_ms):
            p = perceptual()
            fingerprint = FramePerceptual(dct_hash=p.dct_hash, tiles=p.tiles)
        self._records.append(
            FrameRecord(
                index=len(self._records),
                pts_ms=pts_ms,
                capture_time_ms=capture_time_ms,
                digest=digest,
                perceptual=fingerprint,
            )
        )
        self._last_capture = capture_time_ms
        return sealed

    def flush(self) -> SealedSegment | None:
        """Seal the frames added so far (None if there are none)."""
        if not self._records:
            return None
        records = tuple(self._records)
        tree = MerkleTree.from_leaves(r.encode() for r in records)
        segment = Segment(
            camera_id=self.camera_id,
            sequence=self._sequence,
            capture_start_ms=records[0].capture_time_ms,
            capture_end_ms=records[-1].capture_time_ms,
            frame_count=len(records),
            merkle_root=tree.root,
            previous_hash=self._previous_hash,
            policy=self.policy,
        )
        self._records = []
        self._window = None
        self._sequence += 1
        self._previous_hash = segment.hash()
        return SealedSegment(segment, records, tree)


def ledger_bytes_per_hour(
    segment_bytes: int, segment_ms: int = DEFAULT_SEGMENT_MS, overhead_per_segment: int = 0
) -> int:
    """Ledger bytes one camera adds per hour: (segment + overhead) x segments per hour."""
    return (segment_bytes + overhead_per_segment) * HOUR_MS // segment_ms
