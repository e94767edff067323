"""Network verification on the peer: where a clip comes from, and the evidence for it.

Blocking code for worker threads (no event loop here); the routes are
:mod:`cctvchain.peernode.verify_api`, which decides access first (Algorithm 1, as the
caller) and only then calls into this module.

* :func:`locate` — which anchored segments of a camera a clip's frames come from:
  exact digests through the record store's digest index; failing any exact hit, the
  clip's DCT hashes against the camera's sampled records within
  :data:`MAX_HAMMING` bits (a numpy scan of the per-camera table). The answer lists
  each matched segment with its counts, and the capture span of the best contiguous
  run of matched segments.
* :func:`assemble_bundle` — an :class:`~cctvchain.verify.bundle.EvidenceBundle` (no
  clip) built by :func:`~cctvchain.verify.bundle.build_bundle` from this peer's own
  ledger and record store: the anchors overlapping a capture-time range plus one
  neighbour segment on each side (so that a cut at the clip's edge is visible), every
  frame record with its inclusion proof, the block headers and orderer signatures,
  the genesis block and every later configuration.

Both read the ledger state directly: the caller's access has been decided already.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from cctvchain.chaincode.cctv.model import (
    K_ANCHOR,
    NAMESPACE,
    Anchor,
    last_anchored,
    padded,
)
from cctvchain.codec import CodecError
from cctvchain.ingest.records import SegmentRecords
from cctvchain.ledger.config import CONFIG_KEY, CONFIG_NAMESPACE
from cctvchain.ledger.keys import create_composite_key
from cctvchain.ledger.reader import StateReader
from cctvchain.ledger.store import Ledger
from cctvchain.peernode.records import PerceptualTable, RecordStore
from cctvchain.verify.bundle import (
    AnchorRef,
    EvidenceBundle,
    build_bundle,
    records_with_proofs,
)

MAX_HAMMING: Final = 10  # bits of the 64-bit DCT hash: the same picture re-encoded
MAX_LOCATE_DIGESTS: Final = 200_000  # ~2 h of 25 fps video
MAX_LOCATE_DCT: Final = 20_000
# One bundle covers at most 2 h of capture by default ([peer] max_evidence_span_s).
MAX_EVIDENCE_SPAN_MS: Final = 2 * 3600 * 1000
_SCAN_CELLS: Final = 1 << 22  # query x table comparisons per numpy step (~32 MB)
SCAN_BUDGET: Final = 100_000_000  # comparisons of one exhaustive DCT search (~1-2 s)
SEED_WINDOW: Final = 32  # consecutive clip hashes per seed window
SEED_MIN: Final = 64
GROW_SEGMENTS: Final = 4  # segments scanned on each side of a matched one per round
_ID_BITS: Final = 24  # query ids below 2**24 (MAX_LOCATE_DCT and MAX_VERIFY_DCT are)


class EvidenceError(Exception):
    """A request the peer cannot answer: a stable code and an HTTP status
    (``max_span_ms``: the peer's limit, for ``range_too_large``)."""

    def __init__(
        self, message: str, code: str, status: int, *, max_span_ms: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.max_span_ms = max_span_ms


# -- the ledger's anchors ------------------------------------------------------------------


@dataclass(frozen=True)
class Located:
    """An anchored segment on this ledger: the anchor and its transaction's position."""

    anchor: Anchor
    block: int
    tx: int

    @property
    def ref(self) -> AnchorRef:
        return AnchorRef(self.anchor.segment, self.block, self.tx)


def load_anchor(reader: StateReader, camera_id: str, sequence: int) -> Located | None:
    key = create_composite_key(K_ANCHOR, [camera_id, padded(sequence)])
    found = reader.get_state(NAMESPACE, key)
    if found is None:
        return None
    try:
        anchor = Anchor.decode(found.value)
    except CodecError as exc:
        raise EvidenceError(
            f"the stored anchor of segment {sequence} is damaged: {exc}", "corrupt_state", 500
        ) from None
    # The anchor is written once (AnchorSegment refuses a replay): its first write is
    # the anchoring transaction, as the contract's GetAnchor reports it.
    # Only the version is used: the index has it, no block is read (values=False).
    history = reader.get_history(NAMESPACE, key, values=False)
    first = history[0].version if history else found.version
    return Located(anchor, first.block, first.tx)


def anchors_overlapping(
    reader: StateReader, camera_id: str, start_ms: int, end_ms: int
) -> list[Located]:
    """The camera's anchors whose capture overlaps [start, end], in sequence order.

    Capture start and end never decrease along a camera's sequence (the contract refuses
    CAPTURE_OVERLAP), so the overlapping anchors are consecutive: bisect for the first
    one ending at or after ``start`` (as the contract's GetAnchors does), then walk on
    until one starts after ``end``.
    """
    head = last_anchored(
        lambda sequence: (
            reader.get_state(
                NAMESPACE, create_composite_key(K_ANCHOR, [camera_id, padded(sequence)])
            )
            is not None
        )
    )
    if head < 0:
        return []

    def anchor(sequence: int) -> Located:
        located = load_anchor(reader, camera_id, sequence)
        if located is None:
            raise EvidenceError(
                f"segment {sequence} of camera {camera_id} is missing below its head {head}",
                "corrupt_state",
                500,
            )
        return located

    low, high = 0, head + 1
    while low < high:
        middle = (low + high) // 2
        if anchor(middle).anchor.segment.capture_end_ms < start_ms:
            low = middle + 1
        else:
            high = middle
    found = []
    for sequence in range(low, head + 1):
        located = anchor(sequence)
        if located.anchor.segment.capture_start_ms > end_ms:
            break
        found.append(located)
    return found


def config_blocks(reader: StateReader) -> list[int]:
    """The blocks after genesis holding a VALID configuration transaction: the channel
    configuration's key in the history index (only valid writes are indexed), so no
    block is read to find them."""
    history = reader.get_history(CONFIG_NAMESPACE, CONFIG_KEY, values=False)
    return sorted({entry.version.block for entry in history if entry.version.block > 0})


# -- locate ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentMatch:
    sequence: int
    capture_start_ms: int
    capture_end_ms: int
    exact: int  # distinct clip digests found among the segment's records
    perceptual: int  # distinct clip DCT hashes within MAX_HAMMING of a sampled record

    def json(self) -> dict[str, int]:
        return {
            "sequence": self.sequence,
            "captureStart": self.capture_start_ms,
            "captureEnd": self.capture_end_ms,
            "exact": self.exact,
            "perceptual": self.perceptual,
        }


@dataclass(frozen=True)
class LocateResult:
    segments: tuple[SegmentMatch, ...]
    best: tuple[SegmentMatch, ...]  # the best contiguous run of matched segments

    @property
    def capture_start_ms(self) -> int | None:
        return self.best[0].capture_start_ms if self.best else None

    @property
    def capture_end_ms(self) -> int | None:
        return self.best[-1].capture_end_ms if self.best else None

    def json(self) -> dict[str, Any]:
        return {
            "segments": [s.json() for s in self.segments],
            "captureStart": self.capture_start_ms,
            "captureEnd": self.capture_end_ms,
        }


def _scan(
    hashes: npt.NDArray[np.uint64],
    sequences: npt.NDArray[np.int64],
    queries: npt.NDArray[np.uint64],
    ids: npt.NDArray[np.int64],
    max_distance: int,
) -> npt.NDArray[np.int64]:
    """The distinct (sequence, query id) pairs of queries within ``max_distance`` bits
    of one of the sequence's rows, each as ``sequence << _ID_BITS | id`` (sorted)."""
    found = [np.empty(0, dtype=np.int64)]
    if len(hashes) and len(queries):
        rows = max(1, _SCAN_CELLS // len(hashes))
        for at in range(0, len(queries), rows):
            block = queries[at : at + rows]
            near = np.bitwise_count(block[:, None] ^ hashes[None, :]) <= max_distance
            query_rows, columns = np.nonzero(near)
            keys = (sequences[columns] << _ID_BITS) | ids[at + query_rows]
            found.append(np.unique(keys))
    return np.unique(np.concatenate(found))


def _counts(keys: npt.NDArray[np.int64]) -> dict[int, int]:
    sequences, counts = np.unique(keys >> _ID_BITS, return_counts=True)
    return dict(zip(sequences.tolist(), counts.tolist(), strict=True))


def _seeds(count: int, wanted: int) -> npt.NDArray[np.int64]:
    """``wanted`` query positions in windows of :data:`SEED_WINDOW` consecutive ones,
    spread over the clip: a window of consecutive frames holds one captured at (nearly)
    the time of a sampled record, which a lone frame may not."""
    windows = max(1, wanted // SEED_WINDOW)
    starts = np.linspace(0, max(0, count - SEED_WINDOW), windows).astype(np.int64)
    picked = (starts[:, None] + np.arange(SEED_WINDOW)[None, :]).ravel()
    return np.unique(picked[picked < count])


def perceptual_hits(
    table: PerceptualTable,
    queries: npt.NDArray[np.uint64],
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    max_distance: int = MAX_HAMMING,
    budget: int = SCAN_BUDGET,
) -> dict[int, int]:
    """Sequence -> number of distinct query hashes (in clip order) within
    ``max_distance`` bits of one of the segment's sampled frames (optionally only frames
    captured in [start, end]).

    Every query is compared with every sampled frame while that is at most ``budget``
    comparisons (a window of time, or a young camera). Beyond, a camera's whole history
    against a long clip would take minutes, so: windows of consecutive queries (seeds)
    are compared with every frame, and then all the queries with the frames of the
    segments around each seed hit, growing the window while its edge segments match —
    the clip's frames lie in one contiguous run of segments — until the budget is spent.
    """
    mask = np.ones(len(table), dtype=bool)
    if start_ms is not None:
        mask &= table.times >= start_ms
    if end_ms is not None:
        mask &= table.times <= end_ms
    order = np.argsort(table.sequences[mask], kind="stable")
    hashes = table.hashes[mask][order]
    sequences = table.sequences[mask][order]
    _, first = np.unique(queries, return_index=True)
    queries = queries[np.sort(first)]  # distinct, in clip order
    ids = np.arange(len(queries), dtype=np.int64)
    if not len(hashes) or not len(queries):
        return {}
    if len(queries) * len(hashes) <= budget:
        return _counts(_scan(hashes, sequences, queries, ids, max_distance))
    seeds = _seeds(len(queries), max(SEED_MIN, budget // len(hashes)))
    found = _scan(hashes, sequences, queries[seeds], seeds, max_distance)
    spent = 0  # the growing has a budget of its own
    scanned: set[int] = set()
    frontier = set((found >> _ID_BITS).tolist())
    while frontier and spent < budget:
        todo = {s + d for s in frontier for d in range(-GROW_SEGMENTS, GROW_SEGMENTS + 1)}
        todo -= scanned
        scanned |= todo
        wanted = np.fromiter(sorted(todo), dtype=np.int64)
        lo = np.searchsorted(sequences, wanted, side="left")
        hi = np.searchsorted(sequences, wanted, side="right")
        rows = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
        hits = _scan(hashes[rows], sequences[rows], queries, ids, max_distance)
        spent += len(rows) * len(queries)
        found = np.union1d(found, hits)
        # Grow only from segments that matched and whose neighbours are not scanned yet.
        frontier = {
            s
            for s in set((hits >> _ID_BITS).tolist())
            if any(s + d not in scanned for d in (-GROW_SEGMENTS, GROW_SEGMENTS))
        }
    return _counts(found)


def best_run(matches: Sequence[SegmentMatch]) -> tuple[SegmentMatch, ...]:
    """The contiguous run of sequences with the most matches (the earliest on a tie)."""
    runs: list[list[SegmentMatch]] = []
    for match in sorted(matches, key=lambda m: m.sequence):
        if runs and runs[-1][-1].sequence + 1 == match.sequence:
            runs[-1].append(match)
        else:
            runs.append([match])
    if not runs:
        return ()
    best = max(runs, key=lambda run: sum(m.exact + m.perceptual for m in run))
    return tuple(best)


def locate(
    reader: StateReader,
    store: RecordStore,
    camera_id: str,
    digests: Sequence[bytes],
    dct_hashes: Sequence[bytes],
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> LocateResult:
    """Where a clip's frames come from among the camera's anchored segments."""
    exact: dict[int, set[bytes]] = defaultdict(set)
    for hit in store.find_digests(camera_id, digests):
        exact[hit.sequence].add(hit.digest)
    perceptual: dict[int, int] = {}
    if not exact and dct_hashes:
        queries = np.frombuffer(b"".join(dct_hashes), dtype=">u8").astype(np.uint64)
        table = store.perceptual_table(camera_id)
        perceptual = perceptual_hits(table, queries, start_ms=start_ms, end_ms=end_ms)
    matches = []
    for sequence in sorted(set(exact) | set(perceptual)):
        located = load_anchor(reader, camera_id, sequence)
        if located is None:
            continue  # records are stored only for anchored segments; a newer ledger
        segment = located.anchor.segment
        if start_ms is not None and segment.capture_end_ms < start_ms:
            continue
        if end_ms is not None and segment.capture_start_ms > end_ms:
            continue
        matches.append(
            SegmentMatch(
                sequence,
                segment.capture_start_ms,
                segment.capture_end_ms,
                len(exact.get(sequence, ())),
                perceptual.get(sequence, 0),
            )
        )
    return LocateResult(tuple(matches), best_run(matches))


# -- the bundle ------------------------------------------------------------------------------


def check_span(start_ms: int, end_ms: int, max_span_ms: int = MAX_EVIDENCE_SPAN_MS) -> None:
    if end_ms < start_ms:
        raise EvidenceError("the time range ends before it starts", "bad_query", 400)
    if end_ms - start_ms > max_span_ms:
        raise EvidenceError(
            f"the range spans {(end_ms - start_ms) / 1000:g} s of capture; one bundle of this "
            f"peer covers at most {max_span_ms / 1000:g} s ([peer] max_evidence_span_s): ask "
            "for shorter ranges",
            "range_too_large",
            400,
            max_span_ms=max_span_ms,
        )


def assemble_bundle(
    ledger: Ledger,
    store: RecordStore,
    camera_id: str,
    start_ms: int,
    end_ms: int,
    *,
    channel_id: str,
    created_ms: int,
    tool: str,
    source: str,
    command: str = "",
    neighbours: bool = True,
    load_records: Callable[[str, int], bytes | None] | None = None,
    max_span_ms: int = MAX_EVIDENCE_SPAN_MS,
) -> EvidenceBundle:
    """The evidence for [start, end] from this peer's ledger and records (no clip).

    Raises :class:`EvidenceError`: ``no_anchors`` (404) when no anchor overlaps the
    range, ``records_not_stored`` (404) when this peer lacks the records of a covering
    segment (another peer may hold them).
    """
    check_span(start_ms, end_ms, max_span_ms)
    fetch = load_records or store.get
    with ledger.snapshot() as snapshot:
        height = ledger.height
        covering = anchors_overlapping(snapshot, camera_id, start_ms, end_ms)
        if not covering:
            raise EvidenceError(
                f"no anchored segment of camera {camera_id} overlaps the capture range "
                f"{start_ms}..{end_ms} on this peer's ledger (height {height})",
                "no_anchors",
                404,
            )
        records: dict[int, bytes] = {}
        missing = []
        for located in covering:
            sequence = located.anchor.segment.sequence
            data = fetch(camera_id, sequence)
            if data is None:
                missing.append(sequence)
            else:
                records[sequence] = data
        if missing:
            raise EvidenceError(
                f"this peer holds no frame records of segment(s) "
                f"{', '.join(map(str, missing[:10]))} of camera {camera_id}; ask another peer",
                "records_not_stored",
                404,
            )
        chosen = list(covering)
        if neighbours:
            # One segment either side, if this peer has it with its records: without it a
            # clip cut at the covering segments' edge would look complete.
            first, last = covering[0].anchor.segment.sequence, covering[-1].anchor.segment.sequence
            for sequence, at_start in ((first - 1, True), (last + 1, False)):
                if sequence < 0:
                    continue
                neighbour = load_anchor(snapshot, camera_id, sequence)
                data = fetch(camera_id, sequence) if neighbour is not None else None
                if neighbour is None or data is None:
                    continue
                records[sequence] = data
                if at_start:
                    chosen.insert(0, neighbour)
                else:
                    chosen.append(neighbour)
        configs = config_blocks(snapshot)
    proofs = {}
    for sequence, data in records.items():
        upload = SegmentRecords.decode(data)
        proofs[sequence] = records_with_proofs(upload.records)
    return build_bundle(
        get_block=ledger.get_block,
        channel_id=channel_id,
        camera_id=camera_id,
        anchors=[located.ref for located in chosen],
        records=proofs,
        config_blocks=configs,
        ledger_height=height,
        created_ms=created_ms,
        tool=tool,
        command=command,
        source=source,
        # Anchors and blocks may name certificates by reference: bundle their PEMs.
        resolve_certificate=ledger.certificate,
    )
