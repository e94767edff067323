"""Frame records at the peers: what the extractor uploads and what a peer serves (pure).

A segment's frame records stay off-chain; the anchored
:class:`~cctvchain.chaincode.cctv.model.Segment` holds only their RFC 6962 root. After
the anchor commits, the camera's extractor sends the records to peers of at least two
organisations as one :class:`SegmentRecords` message (canonical bytes,
``PUT /api/v1/cameras/{id}/segments/{seq}/records``). A peer stores them only if they
are exactly the leaves of the root anchored in its own ledger, and serves them with an
inclusion proof each (``GET .../records[?index=i]``) under Algorithm 1.

The JSON a peer answers (:func:`records_answer`) carries each record's canonical bytes
(``record``, base64) — the Merkle leaf — and its audit path (``proof``, hex, deepest
sibling first), beside decoded fields for people; :func:`verified_records` checks an
answer against a segment its caller trusts (e.g. one fetched with a block proof) and
returns the records, so a client never has to trust the peer it asked.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cctvchain.chaincode.cctv.model import Segment
from cctvchain.codec import CodecError, Message
from cctvchain.crypto import MerkleTree, leaf_hash, verify_inclusion
from cctvchain.ingest.fingerprint import FrameRecord

# A segment spans at most 5 minutes (the contract's limit); at 60 fps with every frame
# sampled that is 18 000 records of ~330 bytes.
MAX_RECORDS_BYTES = 8 * 1024 * 1024


class RecordsError(ValueError):
    """Frame records that are not the leaves of the anchored segment, or a bad answer."""


@dataclass(frozen=True)
class SegmentRecords(Message):
    """Every frame record of one segment, in index order (the upload's body)."""

    TYPE = "ingest.segment_records"
    camera_id: str
    sequence: int
    records: tuple[FrameRecord, ...]


def check_records(records: Sequence[FrameRecord], merkle_root: bytes, frame_count: int) -> None:
    """Raise :class:`RecordsError` unless ``records`` are the leaves of ``merkle_root``."""
    if len(records) != frame_count:
        raise RecordsError(f"the segment has {frame_count} frames, got {len(records)} records")
    for position, record in enumerate(records):
        if record.index != position:
            raise RecordsError(f"record {position} carries index {record.index}")
    if MerkleTree.from_leaves(r.encode() for r in records).root != merkle_root:
        raise RecordsError("the records are not the leaves of the anchored Merkle root")


def record_json(record: FrameRecord, proof: Sequence[bytes]) -> dict[str, Any]:
    perceptual = record.perceptual
    return {
        "index": record.index,
        "ptsMs": record.pts_ms,
        "captureTime": record.capture_time_ms,
        "digest": record.digest.hex(),
        "sampled": perceptual is not None,
        "dctHash": perceptual.dct_hash.hex() if perceptual is not None else None,
        "record": base64.b64encode(record.encode()).decode("ascii"),
        "proof": [p.hex() for p in proof],
    }


def records_answer(
    records: Sequence[FrameRecord], indices: Iterable[int] | None = None
) -> list[dict[str, Any]]:
    """The JSON of the records at ``indices`` (all by default), each with its proof."""
    tree = MerkleTree.from_leaves(r.encode() for r in records)
    chosen = range(len(records)) if indices is None else indices
    return [record_json(records[i], tree.inclusion_proof(i)) for i in chosen]


def verified_records(answer: Sequence[Any], segment: Segment) -> list[FrameRecord]:
    """The records of a peer's answer, each checked by its proof against ``segment``."""
    found: list[FrameRecord] = []
    for item in answer:
        if not isinstance(item, dict):
            raise RecordsError("a record entry is not an object")
        try:
            raw = base64.b64decode(item["record"], validate=True)
            proof = [bytes.fromhex(p) for p in item["proof"]]
            record = FrameRecord.decode(raw)
        except (KeyError, TypeError, ValueError, binascii.Error, CodecError) as exc:
            raise RecordsError(f"a record entry does not decode: {exc}") from None
        if not verify_inclusion(
            leaf_hash(raw), record.index, segment.frame_count, proof, segment.merkle_root
        ):
            raise RecordsError(
                f"record {record.index} of segment {segment.sequence} has no valid inclusion "
                "proof under the anchored root"
            )
        found.append(record)
    return found
