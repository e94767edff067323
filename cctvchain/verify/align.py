"""Align a clip's frames to a camera's anchored frames and classify every frame (pure).

Inputs
------
* the clip's frames in presentation order (:class:`ClipFrame`): index, pts in ms, the
  exact digest and — for every frame whose digest is not anchored, and for its two
  neighbours — the perceptual fingerprint (64-bit DCT hash, full 256-byte tile
  signature; see :mod:`cctvchain.ingest.perceptual`);
* the anchored frames of the covering segments in capture order (:class:`AnchoredFrame`,
  from the verified frame records: :func:`anchored_frames`): capture time, digest, and
  the full perceptual fingerprint for the sampled ones (normal policy: 1 frame/s).

Output
------
An :class:`Alignment`: per clip frame a status (``EXACT``, ``PERCEPTUAL``, ``ALTERED``,
``INSERTED``, ``DUPLICATED``, ``REORDERED`` or ``UNANCHORED``) with the anchored frame it
shows or whose time slot it occupies; the anomalies (``ALTERED``, ``MISSING``,
``INSERTED``, ``REORDERED``, ``DUPLICATED``) with clip time range and anchored capture
time range; the coverage; the verdict.

Notation: clip frame ``i`` has pts ``q_i``; anchored frame ``j`` has capture time ``t_j``;
``δa`` is the median capture interval of the anchored frames, ``δc`` the median pts
interval of the clip, ``δ = max(δa, δc)``. An *offset* ``o`` maps clip time to capture
time: ``τ = q + o``.

The algorithm
-------------
1. **Exact points.** An index anchored digest → positions gives, for each clip frame,
   the anchored frames with the same digest. A unique candidate is a point ``(i, j)``
   with offset ``t_j - q_i``. Several candidates (bit-identical anchored frames, e.g. a
   perfectly still scene) are resolved, in clip order, to the candidate whose offset is
   closest to that of the nearest resolved exact point before (else after) it.
2. **Perceptual points.** For each *sampled* anchored frame ``j`` that no clip frame
   matches exactly, every non-exact clip frame with a fingerprint is compared by the
   Hamming distance of the DCT hashes (vectorised). The clip frames within
   ``SAME_CONTENT_MAX_HAMMING`` (12) form *occurrences*: runs of such frames at most two
   frames apart. Each occurrence gives one point, at its smallest distance; of several
   occurrences only those within 2 bits of the best one count (a frame shown again
   matches as well as its first showing, a neighbour across a splice clearly worse). An
   occurrence longer than ``ambiguous_ms`` (2 s), or more than ``max_occurrences`` (8)
   occurrences, means the content is too still or repetitive to place that frame in
   time: it gives no point. Per clip frame only the points at the smallest distance
   are kept.
3. **Pieces.** Points are walked in clip order and grouped into *pieces*: maximal runs
   of points explained by one offset, with capture time strictly increasing. An exact
   point joins the current piece if its offset is within ``δ/2`` of the previous exact
   point's (tolerating timestamp jitter that drifts slowly); any other point if its
   offset is within ``2.5 δ`` of the piece's reference offset (the median of its exact
   offsets, else the median of its points' offsets weighted by ``(13 - hamming)²`` —
   ``2.5 δ`` is the fuzziness of a perceptual match in moving content). Otherwise the
   point opens a new piece — unless it is a *weak* perceptual match (Hamming ≥ 9,
   beyond what a re-encode alone produced in calibration, worst 8):
   a sampled frame whose own frame was cut or replaced still weakly matches a frame a
   few positions away, so a weak match may extend a piece but not open one (except the
   first).
4. **Cleaning.** A piece of at most two perceptual points (no exact one) is a false
   match, and dropped, when (a) it is an adjacent piece's continuation seen through a
   *neighbour match* — a sampled frame matching a frame a few positions away (slow
   content, its own frame cut or replaced, or it lies just past the clip's end): the
   neighbour has more support (Σ (13 - hamming)² over its points), the offsets differ
   by at most 4 frames (or, under the neighbour's offset, the piece's sampled frames
   lie outside the clip altogether, or they differ by a *repeat* of the camera's
   picture to within 4 frames), no content cut (step 5) separates the two, and
   the neighbour's offset contradicts no sampled frame that the piece's frames land on.
   A repeat is the time between two sampled anchored frames more than ``ambiguous_ms``
   apart that show the same content (Hamming ≤ 12, no tile beyond 14): periodic
   content such as ffmpeg's ``testsrc2``, which repeats every 12 s as the fingerprints
   see it. There a clip frame matches the camera's frame at its own time and the one a
   period before equally well, up to re-encoding noise, so near the clip's end (where
   the later showing has no sampled frame left to match) the earlier one placed a piece
   a period back, which was reported ``DUPLICATED`` (an honest 20 s 1080p re-encode, at
   18.5-20 s); a match shifted by a repeat places nothing;
   or (b) it lies between two pieces that agree with each other and no cut separates
   them (an island in continuous content — a real piece from elsewhere is bounded by
   cuts — is a coincidental match, e.g. in periodic content), or (c) it lies between
   two pieces that agree with each other and, for each of its points ``(i, j)``, the
   clip frame at ``t_j - o`` under their offset ``o`` also shows ``j`` (Hamming ≤ 12;
   its points move there). Adjacent pieces that agree (offsets
   within tolerance, capture time increasing) are merged. With no point at all but
   *ambiguous* occurrences (the content matches but is too still to place), one piece
   is placed by timestamps: the clip's pts taken as the stream's pts when they fall in
   the anchored pts range, else the clip's start at the first anchored frame. Its frames
   are still classified (for the report), but the verdict is then ``UNVERIFIABLE``
   with no anomaly: a still scene re-encoded looks like the camera's view, yet its
   capture time, order and completeness are not established (it could be another day
   of the same view).
5. **Boundaries.** A piece spans the clip frames from its first to its last point. The
   frames between two pieces, before the first and after the last, are assigned by the
   clip's own content. A *cut* between consecutive clip frames is ≥ 16 of the 64 tiles
   moving by more than the tile threshold (14), or ≥ 16 bits of the DCT hash with ≥ 6
   tiles (calibrated: moving test video never exceeds 14 bits or 8 tiles between
   consecutive frames, while 1-2 s jumps mostly exceed 16 bits with 6 tiles; a small
   high-contrast edit can move the hash by 24 bits but only 5 tiles), or a jump relative
   to the clip's own motion: against the median of the 24 neighbouring pairs, at least 4
   tiles and 3 (median + 1) tiles change and the Hamming distance is at least twice its
   median + 4 (slow content). A *strong* cut (different content) is ≥ 16 tiles, or
   ≥ 22 bits with ≥ 8 tiles. Between two pieces, frames up to the first cut extend the
   earlier piece, frames after the last cut the later one, and frames between the first
   and the last cut are orphans. Without a cut the split point is the one that best
   agrees with the sampled anchored frames the gap frames land on (+1 for each that
   matches, -1 for each that does not), ties broken towards the middle. Before the
   first piece, frames up to the last cut are orphans; after the last, frames after
   the first cut — except a stretch between two such cuts (or a cut and the clip's
   edge), next to the piece, whose frames under the piece's offset land on sampled
   anchored frames, one at least, and show every one of them (Hamming ≤ 12): the cut
   is the camera's own, the piece extends over the stretch. Periodic content too
   repetitive to give points of its own (more than ``max_occurrences``; a 7 s cycle
   with a jump at each wrap, in a synthetic 60 s clip) left its last seconds
   ``INSERTED``.
6. **Order.** Each piece has a capture range (exact frames: ``t_j``; others ``q + o``).
   The heaviest chain of pieces (weight = frames) whose capture ranges increase in clip
   order is *in order*. A piece off that chain whose capture range overlaps a piece of
   the chain shows frames again: ``DUPLICATED``. Any other piece off the chain is
   ``REORDERED``, and so is every piece of the chain that it is inverted with (clip
   order and capture order disagree) — so a swap of two pieces marks both.
7. **Frames.** An exact point is ``EXACT`` (or its piece's ``REORDERED``/``DUPLICATED``).
   Another frame of a piece lands at ``τ = q + o``, in the time slot of the nearest
   anchored frame ``j*`` (within ``δa/2`` + 2 ms; no anchored frame there:
   ``UNANCHORED`` — outside every anchored segment, not verified, not an anomaly). Its
   content is judged:

   * each sampled anchored frame that a frame of the piece lands on is compared with the
     clip frame that matches it best within two frames of that slot (a perceptual
     offset is known to a frame or two; comparing a neighbour would measure motion, not
     an edit): the lowest (Hamming, largest tile distance) — unless that one is not the
     same content and another candidate shows the sampled frame but for a local edit of
     its own: the tiles on which it differs from the sampled frame by more than 14 and
     by more than twice as much as either of its clip neighbours does (a change in
     neither neighbour; motion is shared with one) are at most 16, and every other tile
     is within 14. That frame is the sampled frame, edited (of several, the one whose
     other tiles match best). The edit moves its DCT hash — a black box on 3 % of a
     320x180 frame moved it by 10-24 bits in calibration (19 sampled frames re-encoded
     at crf 18, crf 28 and 720p/300k), while its other tiles matched the sampled frame
     within a mean of 0.1-0.8 grey levels, its neighbours' within 1.5-2.6 — so by
     Hamming distance an untouched neighbour, a frame of motion away, won, and was
     judged altered on the tiles where it moved. Failing such a frame, one that is the
     same content (below) is preferred: hashes a frame apart differ by re-encoding
     noise as much as by motion (honest 720p/300k and 180p/60k copies of a 640x360
     recording: the frame in the slot at 2-4 bits with no tile beyond 7 grey levels, a
     neighbour at 0-2 bits with tiles 16-25 away where the picture moved, which was
     reported altered). Same content (Hamming ≤ 12, no tile beyond 14) → matches; tiles
     beyond 14 with Hamming ≤ 12, or at most 16 of them (a quarter of the picture: a
     small high-contrast edit moves the DCT hash beyond 12 bits at low resolutions) →
     ``ALTERED`` on those tiles; otherwise → *mismatch* (not that frame at all).
   * every other frame (no anchored perceptual fingerprint to compare with) is judged
     by its neighbours in the clip. A *transient* local change — tiles that differ from
     both the previous and the next clip frame by more than 14 and by more than twice
     what those two differ from each other, while those two are not separated by a
     cut over two frames (else it is an edit boundary) — is ``ALTERED`` on those tiles
     (a *mismatch* when they are more than 16, a quarter of the picture); otherwise the
     frame matches by continuity with its piece.

   **Decode-exact context.** A maximal stretch of non-exact frames with exact frames of
   the same piece on both sides sits in a bit-exact copy: if some of its frames show a
   change (altered, mismatch, frozen), those are the anomaly and the others are
   re-encoded (``PERCEPTUAL``); if none does, the whole stretch is ``ALTERED``
   ("not bit-exact where the rest of the copy is").

   **Frozen runs.** A run of at least ``max(5, 2⌈δa/δc⌉ + 1)`` consecutive clip frames
   whose fingerprints stay within Hamming 2 and tile distance 4 of the run's first frame
   is a held frame when the camera's content moved meanwhile: a sampled anchored frame
   inside the run's slots that is not the same content as the held frame, or a cut
   right after the run together with the camera's own picture at the first sampled
   frame after the run (within 1.5 s) not being the held one (the picture jumps to
   where the camera had moved meanwhile; a still scene that is then edited is no hold).
   Its frames after the first are ``DUPLICATED`` (of the first one's slot).

   A mismatch that is not frozen is ``INSERTED`` in place. Orphans are ``INSERTED``,
   and so are the frames inside a piece between two cuts with no point between them
   when both cuts are strong or a frame of them is a mismatch with the sampled frame it
   lands on (pictures replacing the camera's in place while the time runs on). A frame
   that is only altered there is the camera's own, edited: in slow content a local
   edit can make a relative cut into it and one out of it (calibration: black, white
   and grey boxes on 2-3 % of the picture changed 3-9 tiles and 4-24 bits between
   consecutive frames, against local medians of 1-3 tiles and 4-6 bits; both cuts on 7
   of 27 edited frames), so "a Hamming distance beyond 12" (its hash moved) would have
   left it ``INSERTED``.
8. **Missing.** An anchored frame is covered by the clip frame that matches it exactly
   or occupies its slot. Between the first and last covered anchored frames, a run of
   uncovered ones between covered ``a`` and ``b`` is ``MISSING`` when ``t_b - t_a``
   exceeds what the clip's frame spacing explains — ``1.5 δa`` when the clip has the
   camera's frame rate (one dropped frame is found), ``δc + δa`` when it was converted
   to another rate (its frames land on anchored slots only to within half an interval at
   each end) — unless the clip frames between the two covering frames are in-place
   replacements (``INSERTED`` or
   ``DUPLICATED``, at least half as many as the run needs), which are reported as such;
   or at most 3 frames are missing with at most 3 bit-exact frames between the gap and
   the clip's end or start (what ``ffmpeg -ss/-t -c copy`` does with B-frames: it keeps
   the reference frame shown after them and drops them; stated in the notes), or the
   run is no longer than ``2.5 δ`` next to a frame placed perceptually (the placement
   accuracy of a perceptual match).
9. **Anomalies** group consecutive frames of one status (``MISSING``: each run). Clip
   ranges are the pts of the first and last frame involved (inclusive instants; for
   ``MISSING`` the two clip frames around the gap); capture ranges the capture times of
   the anchored frames shown or replaced (``INSERTED`` with no slot: the capture times
   of the verified frames around it).
10. **Verdict.** No clip frame or no anchored frame: ``UNVERIFIABLE``. No point and
    nothing ambiguous — nothing in the clip matches any anchored frame of the camera:
    ``UNVERIFIABLE`` ("not a recording of this camera in this range, or altered
    throughout"), never ``TAMPERED``: no anchored recording can be shown to be the one
    that was altered. A clip matched only perceptually whose every matching sampled
    frame is nearly flat (no texture) is ``UNVERIFIABLE`` as well, and so is a clip
    placed by timestamps only (step 4: a still scene re-encoded). Otherwise: any
    anomaly → ``TAMPERED``; every verified frame exact → ``AUTHENTIC``; else
    ``AUTHENTIC_REENCODED``. ``UNANCHORED`` frames lower the clip coverage (stated) but
    are not anomalies.

Limits (stated in the report): at 1 sampled frame/s a re-encoded copy is compared
directly only on sampled frames; other frames are judged by continuity, so an edit of a
non-sampled frame is found only as a transient change, a piece shorter than the
sampling interval that was moved or replaced may be reported as ``INSERTED`` rather
than ``REORDERED``, a gap shorter than ``2.5 δ`` (about 0.1 s) is not resolved, and a
hold shorter than the sampling interval that starts on a sampled frame is found only
through its exit jump. A re-encoded copy of a still scene cannot be placed in time at
all (``UNVERIFIABLE``). Periodic content is understood only when its period is a
multiple of the sampling interval (a repeat is seen between two sampled frames, step
4; ffmpeg's ``testsrc2``: 12 s) or when it repeats more than ``max_occurrences`` times
in the clip (no points: ``UNVERIFIABLE``); a re-encoded copy of content repeating every
9.5 s, say, still gives false ``DUPLICATED``/``REORDERED`` pieces (synthetic cameras).
In a decode-exact copy every frame is checked bit for bit.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cctvchain.chaincode.cctv.model import Segment
from cctvchain.ingest import perceptual as P
from cctvchain.ingest.fingerprint import FrameRecord

GRID_TILES = P.GRID * P.GRID


class FrameStatus(enum.StrEnum):
    EXACT = "EXACT"
    PERCEPTUAL = "PERCEPTUAL"
    ALTERED = "ALTERED"
    INSERTED = "INSERTED"
    DUPLICATED = "DUPLICATED"
    REORDERED = "REORDERED"
    UNANCHORED = "UNANCHORED"


class AnomalyKind(enum.StrEnum):
    ALTERED = "ALTERED"
    MISSING = "MISSING"
    INSERTED = "INSERTED"
    REORDERED = "REORDERED"
    DUPLICATED = "DUPLICATED"


class Verdict(enum.StrEnum):
    AUTHENTIC = "AUTHENTIC"
    AUTHENTIC_REENCODED = "AUTHENTIC_REENCODED"
    TAMPERED = "TAMPERED"
    UNVERIFIABLE = "UNVERIFIABLE"


# Statuses of clip frames that are placed on an anchored frame (content or slot).
PLACED = frozenset(
    {
        FrameStatus.EXACT,
        FrameStatus.PERCEPTUAL,
        FrameStatus.ALTERED,
        FrameStatus.DUPLICATED,
        FrameStatus.REORDERED,
    }
)


@dataclass(frozen=True)
class AlignParams:
    """Thresholds of the alignment (module docstring)."""

    same_hamming: int = P.SAME_CONTENT_MAX_HAMMING
    tile_changed: float = P.TILE_CHANGED
    cut_hamming: int = 22
    cut_tiles: int = 16
    cut_pair_hamming: int = 16
    cut_pair_tiles: int = 6
    strong_pair_tiles: int = 8
    cut_relative_tiles: int = 4
    frozen_hamming: int = 2
    frozen_tile: float = 4.0
    frozen_min_frames: int = 5
    ambiguous_ms: int = 2000
    max_occurrences: int = 8
    occurrence_slack: int = 2
    weak_hamming: int = 9
    local_tiles: int = 16
    edge_frames: int = 3
    flat_std: float = 2.0
    flat_range: float = 16.0


@dataclass(frozen=True, slots=True)
class ClipFrame:
    """One decoded frame of the clip."""

    index: int
    pts_ms: int
    digest: bytes
    dct_hash: bytes | None = None
    tiles: bytes | None = None  # full tile signature (256 bytes)

    @property
    def has_perceptual(self) -> bool:
        return self.dct_hash is not None and self.tiles is not None


@dataclass(frozen=True, slots=True)
class AnchoredFrame:
    """One anchored frame record (its segment's sequence and its index in it)."""

    segment: int
    index: int
    pts_ms: int
    capture_time_ms: int
    digest: bytes
    dct_hash: bytes | None = None
    tiles: bytes | None = None

    @property
    def sampled(self) -> bool:
        return self.dct_hash is not None and self.tiles is not None


def anchored_frames(
    segments: Iterable[tuple[Segment, Sequence[FrameRecord]]],
) -> list[AnchoredFrame]:
    """The anchored frames of verified segments, in capture order."""
    out: list[AnchoredFrame] = []
    for segment, records in segments:
        for r in records:
            p = r.perceptual
            out.append(
                AnchoredFrame(
                    segment.sequence,
                    r.index,
                    r.pts_ms,
                    r.capture_time_ms,
                    r.digest,
                    p.dct_hash if p is not None else None,
                    p.tiles if p is not None else None,
                )
            )
    out.sort(key=lambda a: (a.capture_time_ms, a.segment, a.index))
    return out


@dataclass(frozen=True)
class FrameResult:
    """What one clip frame is."""

    clip_index: int
    pts_ms: int
    status: FrameStatus
    anchored: int | None  # position in the anchored list: the frame shown, or the slot
    capture_time_ms: int | None
    exact: bool
    hamming: int | None = None  # against the anchored (or neighbour) fingerprint used
    changed_tiles: tuple[tuple[int, int], ...] = ()
    tile_distances: tuple[float, ...] = ()  # 64 values, row by row, for ALTERED frames
    reference: str = ""  # what an ALTERED frame was compared with
    note: str = ""


@dataclass(frozen=True)
class Anomaly:
    kind: AnomalyKind
    clip_start_ms: int
    clip_end_ms: int
    capture_start_ms: int | None
    capture_end_ms: int | None
    first_frame: int | None  # clip frame indices (inclusive); MISSING: the frames around
    last_frame: int | None
    frames: int  # clip frames involved; MISSING: anchored frames missing
    anchored_first: tuple[int, int] | None = None  # (segment, index)
    anchored_last: tuple[int, int] | None = None
    tiles: tuple[tuple[int, int], ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class Coverage:
    capture_start_ms: int | None
    capture_end_ms: int | None
    clip_frames: int
    clip_frames_verified: int
    anchored_frames: int  # supplied
    anchored_start_ms: int | None
    anchored_end_ms: int | None
    anchored_in_span: int  # anchored frames within [capture_start, capture_end]
    anchored_covered: int
    unanchored_clip_ranges_ms: tuple[tuple[int, int], ...] = ()

    @property
    def clip_fraction(self) -> float:
        return self.clip_frames_verified / self.clip_frames if self.clip_frames else 0.0

    @property
    def span_fraction(self) -> float:
        return self.anchored_covered / self.anchored_in_span if self.anchored_in_span else 0.0

    @property
    def fraction(self) -> float:
        """The share of the supplied anchored frames (the covering segments) covered."""
        return self.anchored_covered / self.anchored_frames if self.anchored_frames else 0.0


@dataclass(frozen=True)
class PieceInfo:
    """One piece of the alignment (for reports and debugging)."""

    first_frame: int
    last_frame: int
    offset_ms: int
    capture_start_ms: int
    capture_end_ms: int
    order: str  # IN_ORDER | REORDERED | DUPLICATED
    exact_points: int
    perceptual_points: int
    by_timestamps: bool


@dataclass(frozen=True)
class Alignment:
    verdict: Verdict
    reason: str
    frames: tuple[FrameResult, ...]
    anomalies: tuple[Anomaly, ...]
    coverage: Coverage
    missing_frames: int
    pieces: tuple[PieceInfo, ...] = ()
    notes: tuple[str, ...] = ()
    frame_interval_ms: float = 0.0

    def counts(self) -> dict[str, int]:
        """Clip frames by status, plus ``MISSING`` anchored frames."""
        out = {status.value: 0 for status in FrameStatus}
        for f in self.frames:
            out[f.status.value] += 1
        out["MISSING"] = self.missing_frames
        return out


# -- internals ---------------------------------------------------------------------------

_IN_ORDER, _REORDERED, _DUPLICATED = "IN_ORDER", "REORDERED", "DUPLICATED"


@dataclass(slots=True)
class _Point:
    i: int
    j: int
    exact: bool
    hamming: int
    offset: int


@dataclass
class _Piece:
    points: list[_Point]
    first: int = 0
    last: int = 0
    label: str = _IN_ORDER
    by_timestamps: bool = False
    fixed_offset: int | None = None
    frames: list[int] = field(default_factory=list)
    cap_start: int = 0
    cap_end: int = 0
    _ref: int | None = None

    def add(self, p: _Point) -> None:
        self.points.append(p)
        self._ref = None

    def support(self) -> int:
        """How strongly the points hold the piece: Σ (13 - hamming)², exact points 13²."""
        return sum((P.SAME_CONTENT_MAX_HAMMING + 1 - p.hamming) ** 2 for p in self.points)

    @property
    def has_exact(self) -> bool:
        return any(p.exact for p in self.points)

    def ref_offset(self) -> int:
        if self.fixed_offset is not None:
            return self.fixed_offset
        if self._ref is None:
            exact = [p.offset for p in self.points if p.exact]
            if exact:
                self._ref = int(statistics.median_low(exact))
            else:
                self._ref = _weighted_median(
                    [
                        (p.offset, (P.SAME_CONTENT_MAX_HAMMING + 1 - p.hamming) ** 2)
                        for p in self.points
                    ]
                )
        return self._ref


@dataclass(frozen=True, slots=True)
class _Judgement:
    kind: str  # "ok" | "altered" | "mismatch" | "unknown"
    hamming: int | None = None
    changed: tuple[tuple[int, int], ...] = ()
    distances: tuple[float, ...] = ()
    reference: str = ""


def _local_median(
    values: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_], half: int = 12
) -> npt.NDArray[np.float64]:
    """The median of each value's valid neighbours (``half`` on each side, itself
    excluded); NaN where there are none (comparisons with it are false)."""
    n = len(values)
    if n == 0:
        return np.zeros(0)
    data = np.where(valid, values.astype(np.float64), np.nan)
    padded = np.pad(data, half, mode="constant", constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    without = np.delete(windows, half, axis=1)
    out = np.full(n, np.nan)
    some = ~np.all(np.isnan(without), axis=1)
    out[some] = np.nanmedian(without[some], axis=1)
    return out


def _weighted_median(values: list[tuple[int, int]]) -> int:
    """The lower weighted median of (value, weight) pairs (weights > 0)."""
    ordered = sorted(values)
    total = sum(max(w, 1) for _, w in ordered)
    running = 0
    for value, weight in ordered:
        running += max(weight, 1)
        if 2 * running >= total:
            return value
    return ordered[-1][0]


def _tiles_matrix(sig: bytes) -> npt.NDArray[np.int16]:
    raw = np.frombuffer(sig, dtype=np.uint8).reshape(GRID_TILES, P.TILE_BYTES)
    values = raw.astype(np.int16)
    values[:, 1:3] = raw[:, 1:3].view(np.int8)
    return values


def _dist(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """Per-tile distance (64 values) as :func:`perceptual.tile_distances` defines it."""
    out: npt.NDArray[np.float64] = np.abs(a - b).max(axis=-1).astype(np.float64)
    return out


def _changed(dist: npt.NDArray[np.float64], threshold: float) -> tuple[tuple[int, int], ...]:
    return tuple(divmod(int(k), P.GRID) for k in np.flatnonzero(dist > threshold))


def _anchored_interval(anchored: Sequence[AnchoredFrame]) -> float:
    """The median capture interval inside segments (gaps between segments are outages)."""
    diffs: list[int] = []
    for _, group in itertools.groupby(anchored, key=lambda a: a.segment):
        times = [a.capture_time_ms for a in group]
        diffs += [b - a for a, b in itertools.pairwise(times) if b > a]
    return float(statistics.median(diffs)) if diffs else 40.0


def _median_interval(values: Sequence[int], default: float) -> float:
    diffs = [b - a for a, b in itertools.pairwise(values) if b > a]
    return float(statistics.median(diffs)) if diffs else default


class _Aligner:
    def __init__(
        self, clip: Sequence[ClipFrame], anchored: Sequence[AnchoredFrame], params: AlignParams
    ) -> None:
        self.clip = clip
        self.anchored = anchored
        self.params = params
        self.n = len(clip)
        self.m = len(anchored)
        self.q = [c.pts_ms for c in clip]
        self.t = [a.capture_time_ms for a in anchored]
        self.da = _anchored_interval(anchored)
        self.dc = _median_interval(self.q, self.da)
        self.delta = max(self.da, self.dc)
        self.tol_exact = max(2.0, self.delta / 2)
        self.tol_perc = 2.5 * self.delta
        self.tol_slot = self.da / 2 + 2
        self.has_p = np.array([c.has_perceptual for c in clip], dtype=bool)
        self.ch = np.array(
            [int.from_bytes(c.dct_hash, "big") if c.dct_hash else 0 for c in clip],
            dtype=np.uint64,
        )
        self.ct = np.zeros((self.n, GRID_TILES, P.TILE_BYTES), dtype=np.int16)
        for i, c in enumerate(clip):
            if c.tiles is not None:
                self.ct[i] = _tiles_matrix(c.tiles)
        self.sampled = [a.sampled for a in anchored]
        self.ah = [int.from_bytes(a.dct_hash, "big") if a.dct_hash else 0 for a in anchored]
        self.at: dict[int, npt.NDArray[np.int16]] = {
            j: _tiles_matrix(a.tiles) for j, a in enumerate(anchored) if a.tiles is not None
        }
        # Consecutive clip distances (k ↔ k+1).
        if self.n > 1:
            both = self.has_p[:-1] & self.has_p[1:]
            self.cons_valid = both
            self.cons_ham = np.bitwise_count(self.ch[:-1] ^ self.ch[1:]).astype(np.int64)
            self.cons_dist = np.abs(self.ct[:-1] - self.ct[1:]).max(axis=2).astype(np.float64)
            changed = (self.cons_dist > params.tile_changed).sum(axis=1).astype(np.int64)
            ham = self.cons_ham
            self.strong_cut = both & (
                (changed >= params.cut_tiles)
                | ((ham >= params.cut_hamming) & (changed >= params.strong_pair_tiles))
            )
            # Relative to the clip's own motion around each pair (slow content).
            self.med_changed = _local_median(changed, both)
            self.med_ham = _local_median(ham, both)
            self.cut = both & self.is_cut(ham, changed, self.med_ham, self.med_changed)
        else:
            self.cons_valid = np.zeros(0, dtype=bool)
            self.cons_ham = np.zeros(0, dtype=np.int64)
            self.cons_dist = np.zeros((0, GRID_TILES))
            self.cut = np.zeros(0, dtype=bool)
            self.strong_cut = np.zeros(0, dtype=bool)
            self.med_changed = np.zeros(0)
            self.med_ham = np.zeros(0)
        self.exact_j = [-1] * self.n
        self.ambiguous_occurrences = 0
        self.notes: list[str] = []
        self.twins = self.repeated_pictures()
        self.repeat_shifts = sorted(
            {self.t[b] - self.t[a] for a, found in self.twins.items() for b in found if b > a}
        )

    def is_cut(self, ham: Any, changed: Any, med_ham: Any, med_changed: Any, span: int = 1) -> Any:
        """The cut criterion (module docstring, step 5), element-wise, between frames
        ``span`` apart (the clip's motion over ``span`` frames is ``span`` medians)."""
        p = self.params
        med_ham = med_ham * span
        med_changed = med_changed * span
        absolute = (changed >= p.cut_tiles) | (
            (ham >= p.cut_pair_hamming) & (changed >= p.cut_pair_tiles)
        )
        relative = (
            (changed >= p.cut_relative_tiles)
            & (changed >= 3 * (med_changed + 1))
            & (ham >= 2 * med_ham + 4)
        )
        return absolute | relative

    # -- fingerprints ------------------------------------------------------------------

    def hamming_clip_anchor(self, i: int, j: int) -> int:
        return (int(self.ch[i]) ^ self.ah[j]).bit_count()

    def compare_anchor(self, i: int, j: int) -> _Judgement:
        """Clip frame ``i`` against sampled anchored frame ``j``."""
        h = self.hamming_clip_anchor(i, j)
        dist = _dist(self.ct[i], self.at[j])
        changed = _changed(dist, self.params.tile_changed)
        ref = f"anchored frame {self.anchored[j].segment}/{self.anchored[j].index}"
        if not changed and h <= self.params.same_hamming:
            return _Judgement("ok", h, (), (), ref)
        if changed and (h <= self.params.same_hamming or len(changed) <= self.params.local_tiles):
            # The same picture but for some tiles (a small high-contrast edit can move
            # the DCT hash beyond 12 bits at low resolutions).
            return _Judgement("altered", h, changed, tuple(dist.tolist()), ref)
        return _Judgement("mismatch", h, changed, tuple(dist.tolist()), ref)

    def transient(self, i: int) -> _Judgement | None:
        """A local change of clip frame ``i`` that is in neither neighbour."""
        if i <= 0 or i >= self.n - 1:
            return None
        if not (self.has_p[i - 1] and self.has_p[i] and self.has_p[i + 1]):
            return None
        d_prev = self.cons_dist[i - 1]
        d_next = self.cons_dist[i]
        d_skip = _dist(self.ct[i - 1], self.ct[i + 1])
        skip_ham = (int(self.ch[i - 1]) ^ int(self.ch[i + 1])).bit_count()
        skip_changed = int((d_skip > self.params.tile_changed).sum())
        if self.is_cut(skip_ham, skip_changed, self.med_ham[i], self.med_changed[i], span=2):
            return None  # the neighbours differ too: an edit boundary, not a transient
        low = np.minimum(d_prev, d_next)
        flagged = (low > self.params.tile_changed) & (low > 2 * d_skip)
        if not flagged.any():
            return None
        dist = np.where(flagged, low, np.minimum(low, self.params.tile_changed))
        changed = tuple(divmod(int(k), P.GRID) for k in np.flatnonzero(flagged))
        h = min(int(self.cons_ham[i - 1]), int(self.cons_ham[i]))
        # More than a quarter of the picture: another picture, not a local edit.
        kind = "mismatch" if len(changed) > self.params.local_tiles else "altered"
        return _Judgement(kind, h, changed, tuple(dist.tolist()), "neighbouring clip frames")

    def edited_view(self, i: int, j: int) -> float | None:
        """Whether clip frame ``i`` shows sampled anchored frame ``j`` but for a local edit
        of ``i`` alone; then the mean distance of its other tiles to ``j`` (how well the
        rest matches), else None.

        The edit: the tiles on which ``i`` differs from ``j`` beyond the tile threshold
        and by more than twice as much as either clip neighbour does (a change that is in
        neither neighbour; motion is shared with a neighbour), at most a quarter of the
        picture. Every other tile must match ``j``. The edit moves the DCT hash (a box on
        3 % of the picture moved it by 10-24 bits), so the Hamming distance cannot tell the
        edited frame from its untouched neighbours; the tiles outside the edit can: there
        the edited frame is ``j`` itself, a neighbour is a frame of motion away.
        """
        if i <= 0 or i >= self.n - 1 or not (self.has_p[i - 1] and self.has_p[i + 1]):
            return None
        dist = _dist(self.ct[i], self.at[j])
        around = np.maximum(_dist(self.ct[i - 1], self.at[j]), _dist(self.ct[i + 1], self.at[j]))
        edit = (dist > self.params.tile_changed) & (dist > 2 * around)
        if not 0 < int(edit.sum()) <= self.params.local_tiles:
            return None
        rest = dist[~edit]
        if float(rest.max()) > self.params.tile_changed:
            return None
        return float(rest.mean())

    def near(self, a: int, b: int) -> bool:
        if not (self.has_p[a] and self.has_p[b]):
            return False
        h = (int(self.ch[a]) ^ int(self.ch[b])).bit_count()
        return (
            h <= self.params.frozen_hamming
            and float(_dist(self.ct[a], self.ct[b]).max()) <= self.params.frozen_tile
        )

    def repeated_pictures(self) -> dict[int, set[int]]:
        """The camera's repeated pictures: sampled anchored frame -> the other sampled
        frames, more than ``ambiguous_ms`` away, that show the same content (Hamming
        <= 12, no tile beyond 14) — periodic content such as a test pattern (ffmpeg's
        ``testsrc2`` repeats every 12 s as the fingerprints see it)."""
        sampled = [j for j in range(self.m) if self.sampled[j]]
        out: dict[int, set[int]] = {}
        if len(sampled) < 2:
            return out
        hashes = np.array([self.ah[j] for j in sampled], dtype=np.uint64)
        times = np.array([self.t[j] for j in sampled], dtype=np.int64)
        for k, j in enumerate(sampled[:-1]):
            far = times[k + 1 :] - times[k] > self.params.ambiguous_ms
            close = np.bitwise_count(hashes[k + 1 :] ^ hashes[k]) <= self.params.same_hamming
            for x in np.flatnonzero(far & close):
                other = sampled[k + 1 + int(x)]
                if float(_dist(self.at[j], self.at[other]).max()) <= self.params.tile_changed:
                    out.setdefault(j, set()).add(other)
                    out.setdefault(other, set()).add(j)
        return out

    def repeat_shift(self, shift: float) -> bool:
        """Whether the camera's picture repeats after about ``shift`` ms (either way):
        two sampled anchored frames that far apart show the same content (within the
        four frames a perceptual placement may be off by)."""
        k = bisect.bisect_left(self.repeat_shifts, abs(shift) - 4 * self.delta)
        return k < len(self.repeat_shifts) and self.repeat_shifts[k] <= abs(shift) + 4 * self.delta

    def informative(self, j: int) -> bool:
        tiles = self.at.get(j)
        if tiles is None:
            return False
        std = float(tiles[:, 3].mean())
        spread = float(tiles[:, 0].max() - tiles[:, 0].min())
        return std >= self.params.flat_std or spread >= self.params.flat_range

    # -- 1. exact points ---------------------------------------------------------------

    def exact_points(self) -> list[_Point]:
        index: dict[bytes, list[int]] = {}
        for j, a in enumerate(self.anchored):
            index.setdefault(a.digest, []).append(j)
        ambiguous: dict[int, list[int]] = {}
        for i, c in enumerate(self.clip):
            cands = index.get(c.digest)
            if cands is None:
                continue
            if len(cands) == 1:
                self.exact_j[i] = cands[0]
            else:
                ambiguous[i] = cands
        if ambiguous:
            resolved = [i for i in range(self.n) if self.exact_j[i] >= 0]
            for i in sorted(ambiguous):
                cands = ambiguous[i]
                k = bisect.bisect_left(resolved, i)
                ref = resolved[k - 1] if k > 0 else (resolved[k] if k < len(resolved) else None)
                if ref is None:
                    choice = cands[0]
                else:
                    o = self.t[self.exact_j[ref]] - self.q[ref]
                    choice = min(cands, key=lambda j: (abs(self.t[j] - self.q[i] - o), j))
                self.exact_j[i] = choice
                bisect.insort(resolved, i)
        return [
            _Point(i, j, True, 0, self.t[j] - self.q[i])
            for i, j in enumerate(self.exact_j)
            if j >= 0
        ]

    # -- 2. perceptual points ----------------------------------------------------------

    def perceptual_points(self) -> list[_Point]:
        matched = {j for j in self.exact_j if j >= 0}
        rows = [i for i in range(self.n) if self.exact_j[i] < 0 and bool(self.has_p[i])]
        targets = [j for j in range(self.m) if self.sampled[j] and j not in matched]
        if not rows or not targets:
            return []
        idx = np.array(rows, dtype=np.int64)
        hashes = self.ch[idx]
        pts = np.array([self.q[i] for i in rows], dtype=np.int64)
        limit = self.params.same_hamming
        points: list[_Point] = []
        for j in targets:
            dist = np.bitwise_count(hashes ^ np.uint64(self.ah[j]))
            hit = np.flatnonzero(dist <= limit)
            if hit.size == 0:
                continue
            breaks = np.flatnonzero(np.diff(idx[hit]) > 2) + 1
            runs = np.split(hit, breaks)
            if len(runs) > self.params.max_occurrences:
                self.ambiguous_occurrences += 1
                continue
            found: list[_Point] = []
            for run in runs:
                if int(pts[run[-1]] - pts[run[0]]) > self.params.ambiguous_ms:
                    self.ambiguous_occurrences += 1
                    continue
                best = run[int(np.argmin(dist[run]))]
                i = int(idx[best])
                found.append(_Point(i, j, False, int(dist[best]), self.t[j] - self.q[i]))
            if found:
                # Several occurrences: a frame shown again matches as well as the first
                # showing; a neighbour of it across a splice matches clearly worse.
                floor = min(p.hamming for p in found) + self.params.occurrence_slack
                points += [p for p in found if p.hamming <= floor]
        # Per clip frame keep only its best points.
        best_h: dict[int, int] = {}
        for p in points:
            best_h[p.i] = min(best_h.get(p.i, 99), p.hamming)
        return [p for p in points if p.hamming == best_h[p.i]]

    # -- 3. pieces ---------------------------------------------------------------------

    def accepts(self, piece: _Piece, p: _Point) -> bool:
        last = piece.points[-1]
        if self.t[p.j] <= self.t[last.j]:
            return False
        if p.exact and last.exact:
            return abs(p.offset - last.offset) <= self.tol_exact
        return abs(p.offset - piece.ref_offset()) <= self.tol_perc

    def build_pieces(self, points: list[_Point]) -> list[_Piece]:
        points.sort(key=lambda p: (p.i, not p.exact, p.hamming, p.j))
        pieces: list[_Piece] = []
        for _, grouped in itertools.groupby(points, key=lambda p: p.i):
            group = list(grouped)
            if pieces:
                for p in group:
                    if self.accepts(pieces[-1], p):
                        pieces[-1].add(p)
                        break
                else:
                    # A weak match extends a piece but never opens one: a sampled frame
                    # whose own frame was cut or replaced still weakly matches a frame
                    # a few positions away.
                    if group[0].exact or group[0].hamming < self.params.weak_hamming:
                        pieces.append(_Piece([group[0]]))
            else:
                pieces.append(_Piece([group[0]]))
        return pieces

    # -- 4. cleaning -------------------------------------------------------------------

    def compatible(self, a: _Piece, b: _Piece) -> bool:
        la, fb = a.points[-1], b.points[0]
        if self.t[fb.j] <= self.t[la.j]:
            return False
        if la.exact and fb.exact:
            return abs(la.offset - fb.offset) <= self.tol_exact
        return abs(a.ref_offset() - b.ref_offset()) <= self.tol_perc

    def nearest_clip(self, pts: float) -> int:
        k = bisect.bisect_left(self.q, pts)
        if k <= 0:
            return 0
        if k >= self.n:
            return self.n - 1
        return k if self.q[k] - pts < pts - self.q[k - 1] else k - 1

    def explained(self, p: _Point, offset: int) -> _Point | None:
        target = self.t[p.j] - offset
        i = self.nearest_clip(target)
        if abs(self.q[i] - target) > self.tol_slot + self.dc / 2:
            return None
        if self.exact_j[i] >= 0 or not self.has_p[i]:
            return None
        h = self.hamming_clip_anchor(i, p.j)
        if h > self.params.same_hamming:
            return None
        return _Point(i, p.j, False, h, self.t[p.j] - self.q[i])

    def clean(self, pieces: list[_Piece]) -> list[_Piece]:
        changed = True
        while changed:
            changed = False
            for k, x in enumerate(pieces):
                if x.has_exact or len(x.points) > 2:
                    continue
                prev = pieces[k - 1] if k > 0 else None
                nxt = pieces[k + 1] if k + 1 < len(pieces) else None
                host = next(
                    (h for h in (prev, nxt) if h is not None and self.continues(pieces, k, h)),
                    None,
                )
                if host is not None:
                    # A neighbour match: the piece is its neighbour's continuation.
                    at = k - 1 if host is prev else k + 1
                    pieces[min(k, at) : max(k, at) + 1] = [_Piece(list(host.points))]
                    changed = True
                    break
                if prev is None or nxt is None or not self.compatible(prev, nxt):
                    continue
                if not self.cuts_between(prev.points[-1].i, nxt.points[0].i):
                    # An island in continuous content: a real piece from elsewhere
                    # would be bounded by content cuts. A coincidental match.
                    pieces[k - 1 : k + 2] = [_Piece(self._dedupe(prev.points + nxt.points))]
                    changed = True
                    break
                moved = [self.explained(p, prev.ref_offset()) for p in x.points]
                if any(mp is None for mp in moved):
                    continue
                merged_points = list(prev.points) + [mp for mp in moved if mp is not None]
                merged_points += list(nxt.points)
                merged_points.sort(key=lambda p: p.i)
                pieces[k - 1 : k + 2] = [_Piece(self._dedupe(merged_points))]
                changed = True
                break
        out: list[_Piece] = []
        for piece in pieces:
            if out and self.compatible(out[-1], piece):
                out[-1] = _Piece(self._dedupe(out[-1].points + piece.points))
            else:
                out.append(piece)
        return out

    def continues(self, pieces: list[_Piece], k: int, host: _Piece) -> bool:
        """Whether small piece ``k`` is only ``host``'s continuation, seen through a
        neighbour match: a sampled frame matching a frame a few positions away (slow
        content, or its own frame cut or replaced), e.g. just past the clip's end.

        So when the host has more support, the offsets differ by at most four frames (or
        under the host's offset the piece's sampled frames are not in the clip at all),
        no content cut separates the two, and the host's offset contradicts none of the
        sampled frames that the frames between them land on.
        """
        x = pieces[k]
        if host.support() <= x.support():
            return False
        offset = host.ref_offset()
        outside = all(
            not self.q[0] - self.tol_slot <= self.t[p.j] - offset <= self.q[-1] + self.tol_slot
            for p in x.points
        )
        shift = x.ref_offset() - offset
        if abs(shift) > 4 * self.delta and not outside and not self.repeat_shift(shift):
            return False
        if x.points[0].i > host.points[-1].i:  # after the host
            lo, hi = host.points[-1].i, x.points[-1].i
        else:  # before it
            lo, hi = x.points[0].i, host.points[0].i
        if self.cuts_between(lo, hi):
            return False
        return -1 not in self.split_score(range(lo, hi + 1), offset)

    @staticmethod
    def _dedupe(points: list[_Point]) -> list[_Point]:
        seen: dict[int, _Point] = {}
        for p in points:
            old = seen.get(p.i)
            if old is None or (p.exact, -p.hamming) > (old.exact, -old.hamming):
                seen[p.i] = p
        return [seen[i] for i in sorted(seen)]

    def timestamp_piece(self) -> _Piece | None:
        """One piece placed by timestamps when the content is too still to place."""
        pts = [a.pts_ms for a in self.anchored]
        lo, hi = min(pts), max(pts)
        if lo <= self.q[0] and self.q[-1] <= hi:
            j = min(range(self.m), key=lambda j: abs(self.anchored[j].pts_ms - self.q[0]))
            offset = self.t[j] - self.anchored[j].pts_ms
            how = "the clip's timestamps taken as the stream's"
        else:
            offset = self.t[0] - self.q[0]
            how = "the clip's start taken as the first anchored frame"
        self.notes.append(
            "the content is too still to place the clip in time by its fingerprints: "
            f"placed by timestamps ({how}); the capture times are not established"
        )
        piece = _Piece([], by_timestamps=True, fixed_offset=offset)
        piece.first, piece.last = 0, self.n - 1
        return piece

    # -- 5. boundaries -----------------------------------------------------------------

    def cuts_between(self, lo: int, hi: int) -> list[int]:
        """Cut positions c (between frames c and c+1) with lo <= c < hi."""
        lo, hi = max(lo, 0), min(hi, self.n - 1)
        if hi <= lo:
            return []
        return [int(c) + lo for c in np.flatnonzero(self.cut[lo:hi])]

    def slot_of(self, tau: float) -> int | None:
        k = bisect.bisect_left(self.t, tau)
        best: int | None = None
        for c in (k - 1, k):
            if 0 <= c < self.m and (best is None or abs(self.t[c] - tau) < abs(self.t[best] - tau)):
                best = c
        if best is None or abs(self.t[best] - tau) > self.tol_slot:
            return None
        return best

    def split_score(self, frames: range, offset: int) -> list[int]:
        """+1/-1 per frame of ``frames`` whose slot under ``offset`` is a sampled frame."""
        out = []
        for i in frames:
            j = self.slot_of(self.q[i] + offset)
            if j is None or not self.sampled[j] or not self.has_p[i]:
                out.append(0)
            elif self.hamming_clip_anchor(i, j) <= self.params.same_hamming:
                out.append(1)
            else:
                out.append(-1)
        return out

    def agrees(self, frames: range, offset: int) -> bool:
        """Whether ``frames`` under ``offset`` land on sampled anchored frames (one at
        least) and show each of them."""
        score = self.split_score(frames, offset)
        return 1 in score and -1 not in score

    def assign(self, pieces: list[_Piece]) -> list[int]:
        owner = [-1] * self.n
        for piece in pieces:
            if not piece.by_timestamps:
                piece.first = piece.points[0].i
                piece.last = piece.points[-1].i
        for k in range(len(pieces) - 1):
            a, b = pieces[k], pieces[k + 1]
            lo, hi = a.last, b.first
            if hi - lo <= 1:
                continue
            cuts = self.cuts_between(lo, hi)
            if cuts:
                a.last = cuts[0]
                b.first = cuts[-1] + 1
                continue
            gap = range(lo + 1, hi)
            sa = self.split_score(gap, a.ref_offset())
            sb = self.split_score(gap, b.ref_offset())
            best_split, best_score = lo, None
            mid = (lo + hi) / 2
            for s in range(lo, hi):  # frames <= s go to a
                score = sum(sa[: s - lo]) + sum(sb[s - lo :])
                key = (score, -abs(s + 0.5 - mid))
                if best_score is None or key > best_score:
                    best_split, best_score = s, key
            a.last = best_split
            b.first = best_split + 1
        if pieces:
            first, last = pieces[0], pieces[-1]
            # Past a cut at the clip's edge, a stretch whose every sampled slot (one at
            # least) shows the camera's picture there is the camera's own cut (content
            # too repetitive to place on its own, e.g. a test pattern's wrap).
            before = self.cuts_between(0, first.first)
            bounds = [-1, *before]
            while len(bounds) > 1 and self.agrees(
                range(bounds[-2] + 1, bounds[-1] + 1), first.ref_offset()
            ):
                bounds.pop()
            first.first = bounds[-1] + 1
            after = self.cuts_between(last.last, self.n - 1)
            bounds = [*after, self.n - 1]
            while len(bounds) > 1 and self.agrees(
                range(bounds[0] + 1, bounds[1] + 1), last.ref_offset()
            ):
                bounds.pop(0)
            last.last = bounds[0]
        for k, piece in enumerate(pieces):
            orphans = self.replaced_in_place(piece)
            piece.frames = [i for i in range(piece.first, piece.last + 1) if i not in orphans]
            for i in piece.frames:
                owner[i] = k
        return owner

    def replaced_in_place(self, piece: _Piece) -> set[int]:
        """Frames inside a piece between two content cuts with no point between them:
        pictures that replace the camera's in place (the piece's time runs on)."""
        orphans: set[int] = set()
        offset = piece.ref_offset()
        for a, b in itertools.pairwise(piece.points):
            if b.i - a.i <= 2:
                continue
            cuts = self.cuts_between(a.i, b.i)
            if len(cuts) < 2:
                continue
            inside = range(cuts[0] + 1, cuts[-1] + 1)
            strong = bool(self.strong_cut[cuts[0]]) and bool(self.strong_cut[cuts[-1]])
            if strong or any(self.another_picture(i, offset) for i in inside):
                orphans.update(inside)
        return orphans

    def another_picture(self, i: int, offset: int) -> bool:
        """Whether clip frame ``i`` lands (under ``offset``) on a sampled anchored frame
        and is not that picture: a *mismatch* of step 7. A local edit (at most a quarter
        of the picture changed) is the camera's frame, altered — its own two cuts (in and
        out of the edit, relative to slow content) make no replacement."""
        j = self.slot_of(self.q[i] + offset)
        if j is None or not self.sampled[j] or not self.has_p[i]:
            return False
        return self.compare_anchor(i, j).kind == "mismatch"

    # -- 6. order ----------------------------------------------------------------------

    def order(self, pieces: list[_Piece], exact_in: list[dict[int, int]]) -> None:
        for k, piece in enumerate(pieces):
            taus = [
                self.t[exact_in[k][i]] if i in exact_in[k] else self.q[i] + piece.ref_offset()
                for i in piece.frames
            ]
            piece.cap_start, piece.cap_end = min(taus), max(taus)
        r = len(pieces)
        if r <= 1:
            return

        def tol(a: _Piece, b: _Piece) -> float:
            return self.delta / 2 if a.has_exact and b.has_exact else self.tol_perc

        weight = [len(p.frames) for p in pieces]
        best = weight[:]
        prev = [-1] * r
        for b in range(r):
            pb = pieces[b]
            for a in range(b):
                pa = pieces[a]
                follows = (
                    pb.cap_start > pa.cap_end - tol(pa, pb)
                    and pb.cap_start > pa.cap_start
                    and pb.cap_end > pa.cap_end
                )
                if follows and best[a] + weight[b] > best[b]:
                    best[b] = best[a] + weight[b]
                    prev[b] = a
        end = max(range(r), key=lambda k: (best[k], -k))
        chain: set[int] = set()
        while end >= 0:
            chain.add(end)
            end = prev[end]
        for k, piece in enumerate(pieces):
            if k in chain:
                continue
            # Capture intervals include the last frame's duration; a piece off the chain
            # shows frames again when at least half of it overlaps the chain.
            length = piece.cap_end + self.da - piece.cap_start
            overlap = sum(
                max(
                    0.0,
                    min(piece.cap_end, pieces[c].cap_end)
                    + self.da
                    - max(piece.cap_start, pieces[c].cap_start),
                )
                for c in chain
            )
            overlaps = overlap >= 0.5 * length
            piece.label = _DUPLICATED if overlaps else _REORDERED
        for k, piece in enumerate(pieces):
            if k in chain or piece.label != _REORDERED:
                continue
            for c in chain:
                other = pieces[c]
                if (c > k and other.cap_start < piece.cap_start) or (
                    c < k and other.cap_start > piece.cap_start
                ):
                    other.label = _REORDERED

    # -- 7. frames ---------------------------------------------------------------------

    def sampled_judges(self, frames: list[int], slots: dict[int, int | None]) -> dict[int, int]:
        """Which clip frame is compared with each sampled anchored frame of a piece.

        A sampled frame is judged in the piece whose offset puts one of its frames on
        it, by the frame that matches it best within two frames of that slot (the
        offset of a perceptual match is known to a frame or two): clip frame -> sampled
        anchored frame.
        """
        members = set(frames)
        chosen: dict[int, int] = {}
        for i in frames:
            j = slots.get(i)
            if j is None or not self.sampled[j] or not self.has_p[i]:
                continue
            candidates = [x for x in range(i - 2, i + 3) if x in members and bool(self.has_p[x])]

            def key(x: int, j: int = j) -> tuple[int, float]:
                return (
                    self.hamming_clip_anchor(x, j),
                    float(_dist(self.ct[x], self.at[j]).max()),
                )

            best = min(candidates, key=key)
            if self.compare_anchor(best, j).kind != "ok":
                # The Hamming-best frame is not j as it is. A frame that shows j but for a
                # local edit of its own is j's frame: the edit moved its hash, so an
                # untouched neighbour (a frame of motion away) won by Hamming distance and
                # would be judged altered on the tiles where it moved. Else a frame that
                # is j as it is: hashes a frame apart differ by re-encoding noise as much
                # as by motion, the tiles of a neighbour by motion beyond the threshold.
                edited = [
                    (score, x) for x in candidates if (score := self.edited_view(x, j)) is not None
                ]
                same = [x for x in candidates if self.compare_anchor(x, j).kind == "ok"]
                if edited:
                    best = min(edited)[1]
                elif same:
                    best = min(same, key=key)
            if best not in chosen:
                chosen[best] = j
        return chosen

    def frozen_runs(self, frames: list[int], slots: dict[int, int | None]) -> dict[int, int]:
        """Held frames: clip frame -> the run's first frame, for runs with evidence.

        A run starts at any frame with a fingerprint and extends over following
        non-exact frames only (an exact frame is what it claims to be).
        """
        held: dict[int, int] = {}
        minimum = max(self.params.frozen_min_frames, 2 * math.ceil(self.da / max(self.dc, 1.0)) + 1)
        k = 0
        while k < len(frames):
            start = frames[k]
            e = k
            while (
                e + 1 < len(frames)
                and frames[e + 1] == frames[e] + 1
                and self.exact_j[frames[e + 1]] < 0
                and self.near(start, frames[e + 1])
            ):
                e += 1
            run = frames[k : e + 1]
            if len(run) >= minimum and self.has_p[start] and self.frozen_evidence(run, slots):
                for x in run[1:]:
                    held[x] = start
            k = e + 1
        return held

    def frozen_evidence(self, run: list[int], slots: dict[int, int | None]) -> bool:
        start = run[0]
        for x in run[1:]:
            j = slots.get(x)
            if j is not None and self.sampled[j]:
                h = (int(self.ch[start]) ^ self.ah[j]).bit_count()
                dist = _dist(self.ct[start], self.at[j])
                if h > self.params.same_hamming or bool((dist > self.params.tile_changed).any()):
                    return True
        # Or the run ends in a content cut, and the camera's own picture at the first
        # sampled frame after the run (within 1.5 s) is not the held one: the camera's
        # scene moved on while the clip held still (a still scene that is then edited
        # is no hold).
        end = run[-1]
        if end + 1 >= self.n or not self.cut[end]:
            return False
        j_end = slots.get(end)
        if j_end is None:
            return False
        for j in range(j_end + 1, self.m):
            if self.t[j] - self.t[j_end] > 1500:
                break
            if self.sampled[j]:
                h = (int(self.ch[start]) ^ self.ah[j]).bit_count()
                dist = _dist(self.ct[start], self.at[j])
                return h > self.params.same_hamming or bool((dist > self.params.tile_changed).any())
        return False

    # -- the whole -----------------------------------------------------------------------

    def run(self) -> Alignment:
        points = self.exact_points()
        points += self.perceptual_points()
        pieces = self.clean(self.build_pieces(points)) if points else []
        if not pieces:
            if self.ambiguous_occurrences:
                piece = self.timestamp_piece()
                pieces = [piece] if piece is not None else []
            if not pieces:
                return self.unverifiable(
                    "no frame of the clip matches any anchored frame of the camera in the "
                    "supplied segments: it is not a recording of this camera in this time "
                    "range (or it was altered throughout)"
                )
        owner = self.assign(pieces)
        exact_in: list[dict[int, int]] = [
            {p.i: p.j for p in piece.points if p.exact} for piece in pieces
        ]
        self.order(pieces, exact_in)
        results = self.classify(pieces, owner, exact_in)
        return self.finish(pieces, results)

    def unverifiable(self, reason: str) -> Alignment:
        frames = tuple(
            FrameResult(c.index, c.pts_ms, FrameStatus.INSERTED, None, None, False)
            for c in self.clip
        )
        coverage = Coverage(
            None,
            None,
            self.n,
            0,
            self.m,
            self.t[0] if self.t else None,
            self.t[-1] if self.t else None,
            0,
            0,
        )
        return Alignment(
            Verdict.UNVERIFIABLE,
            reason,
            frames,
            (),
            coverage,
            0,
            (),
            tuple(self.notes),
            self.da,
        )

    def classify(
        self, pieces: list[_Piece], owner: list[int], exact_in: list[dict[int, int]]
    ) -> list[FrameResult]:
        results: list[FrameResult | None] = [None] * self.n
        for k, piece in enumerate(pieces):
            label = piece.label
            base = {
                _IN_ORDER: FrameStatus.PERCEPTUAL,
                _REORDERED: FrameStatus.REORDERED,
                _DUPLICATED: FrameStatus.DUPLICATED,
            }[label]
            exact_status = FrameStatus.EXACT if label == _IN_ORDER else base
            offset = piece.ref_offset()
            slots: dict[int, int | None] = {}
            judgements: dict[int, _Judgement] = {}
            non_exact = [i for i in piece.frames if i not in exact_in[k]]
            for i in piece.frames:
                if i in exact_in[k]:
                    j = exact_in[k][i]
                    slots[i] = j
                    note = ""
                    if label == _DUPLICATED:
                        note = f"bit-exact repeat of anchored frame {self._name(j)}"
                    elif label == _REORDERED:
                        note = "bit-exact but out of capture order"
                    results[i] = FrameResult(
                        i, self.q[i], exact_status, j, self.t[j], True, 0, note=note
                    )
                    continue
                slots[i] = self.slot_of(self.q[i] + offset)
            judged = self.sampled_judges(non_exact, slots)
            for i in non_exact:
                slot = slots[i]
                if slot is None:
                    results[i] = FrameResult(
                        i,
                        self.q[i],
                        FrameStatus.UNANCHORED,
                        None,
                        None,
                        False,
                        note="no anchored frame at this capture time",
                    )
                elif i in judged:
                    judgements[i] = self.compare_anchor(i, judged[i])
                elif not self.has_p[i]:
                    judgements[i] = _Judgement("unknown")
                else:
                    # No sampled frame to compare with here: judged by continuity.
                    found = self.transient(i)
                    judgements[i] = found if found is not None else _Judgement("ok")
            held = self.frozen_runs(piece.frames, slots)
            # Decode-exact context: non-exact stretches between exact frames.
            exact_positions = sorted(exact_in[k])
            stretches: list[list[int]] = []
            for a, b in itertools.pairwise(exact_positions):
                if b - a > 1:
                    stretches.append(list(range(a + 1, b)))
            in_exact_context: dict[int, list[int]] = {}
            for stretch in stretches:
                for i in stretch:
                    in_exact_context[i] = stretch
            for i, judgement in judgements.items():
                slot = slots[i]
                assert slot is not None
                if i in held:
                    first = held[i]
                    content = slots.get(first)
                    results[i] = FrameResult(
                        i,
                        self.q[i],
                        FrameStatus.DUPLICATED,
                        content if content is not None else slot,
                        self.t[slot],
                        False,
                        note=f"repeats clip frame {first} in the slot of anchored frame "
                        f"{self.anchored[slot].segment}/{self.anchored[slot].index}",
                    )
                    continue
                around = in_exact_context.get(i)
                if around is not None:
                    results[i] = self.exact_context_result(
                        i, slot, judgement, around, judgements, held, base
                    )
                    continue
                results[i] = self.plain_result(i, slot, judgement, base)
        for i in range(self.n):
            if owner[i] < 0:
                results[i] = FrameResult(
                    i,
                    self.q[i],
                    FrameStatus.INSERTED,
                    None,
                    None,
                    False,
                    note="matches no anchored frame and breaks the content continuity",
                )
        return [r for r in results if r is not None]

    def altered(self, i: int, slot: int, judgement: _Judgement, note: str) -> FrameResult:
        """Clip frame ``i`` in the slot of anchored frame ``slot``, ALTERED as judged."""
        return FrameResult(
            i,
            self.q[i],
            FrameStatus.ALTERED,
            slot,
            self.t[slot],
            False,
            judgement.hamming,
            judgement.changed,
            judgement.distances,
            judgement.reference,
            note=note,
        )

    def plain_result(
        self, i: int, slot: int, judgement: _Judgement, base: FrameStatus
    ) -> FrameResult:
        t = self.t[slot]
        if judgement.kind == "ok":
            note = ""
            if base == FrameStatus.REORDERED:
                note = "out of capture order"
            elif base == FrameStatus.DUPLICATED:
                note = f"shows anchored frame {self._name(slot)} again"
            return FrameResult(i, self.q[i], base, slot, t, False, judgement.hamming, note=note)
        if judgement.kind == "altered":
            return self.altered(
                i, slot, judgement, "local change on " + _tile_names(judgement.changed)
            )
        if judgement.kind == "mismatch":
            return FrameResult(
                i,
                self.q[i],
                FrameStatus.INSERTED,
                slot,
                t,
                False,
                judgement.hamming,
                note=f"in the slot of anchored frame {self._name(slot)} but another picture "
                f"(hamming {judgement.hamming})",
            )
        return FrameResult(
            i,
            self.q[i],
            FrameStatus.INSERTED,
            slot,
            t,
            False,
            note="not bit-exact and no perceptual fingerprint to compare",
        )

    def exact_context_result(
        self,
        i: int,
        slot: int,
        judgement: _Judgement,
        stretch: list[int],
        judgements: dict[int, _Judgement],
        held: dict[int, int],
        base: FrameStatus,
    ) -> FrameResult:
        visible = any(
            x in held or (x in judgements and judgements[x].kind in ("altered", "mismatch"))
            for x in stretch
        )
        if not visible or judgement.kind == "unknown":
            return self.altered(
                i,
                slot,
                judgement,
                "not bit-exact where the rest of the copy is (frames "
                f"{stretch[0]}-{stretch[-1]} between exact frames); no visible change found",
            )
        if judgement.kind == "mismatch":
            return self.altered(
                i,
                slot,
                judgement,
                f"another picture in the slot of anchored frame {self._name(slot)} "
                "inside a bit-exact copy",
            )
        return self.plain_result(i, slot, judgement, base)

    def _name(self, j: int) -> str:
        a = self.anchored[j]
        return f"{a.segment}/{a.index}"

    # -- 8-10. missing, anomalies, verdict ----------------------------------------------

    def finish(self, pieces: list[_Piece], results: list[FrameResult]) -> Alignment:
        cover: dict[int, int] = {}
        for r in results:
            if r.anchored is None or r.status not in PLACED:
                continue
            if r.status == FrameStatus.DUPLICATED and r.exact:
                continue  # shows a frame again; covers nothing new
            cover.setdefault(r.anchored, r.clip_index)
        # Duplicated non-exact (held) frames occupy their slot.
        for r in results:
            if r.status == FrameStatus.DUPLICATED and not r.exact and r.capture_time_ms is not None:
                slot = self.slot_of(r.capture_time_ms)
                if slot is not None:
                    cover.setdefault(slot, r.clip_index)
        missing_anoms, missing_count = self.missing(cover, results)
        anomalies = self.group(results) + missing_anoms
        anomalies.sort(key=lambda a: (a.clip_start_ms, a.kind != AnomalyKind.MISSING))
        placed = [r for r in results if r.status in PLACED and r.capture_time_ms is not None]
        verified = len([r for r in results if r.status in PLACED])
        cap_start: int | None
        cap_end: int | None
        if placed:
            cap_start = min(r.capture_time_ms for r in placed if r.capture_time_ms is not None)
            cap_end = max(r.capture_time_ms for r in placed if r.capture_time_ms is not None)
            in_span = [j for j in range(self.m) if cap_start <= self.t[j] <= cap_end]
        else:
            cap_start = cap_end = None
            in_span = []
        covered = len([j for j in in_span if j in cover])
        unanchored = _ranges([r for r in results if r.status == FrameStatus.UNANCHORED])
        coverage = Coverage(
            cap_start,
            cap_end,
            self.n,
            verified,
            self.m,
            self.t[0],
            self.t[-1],
            len(in_span),
            covered,
            unanchored,
        )
        notes = list(self.notes)
        if unanchored:
            spans = ", ".join(f"{a / 1000:.3f}-{b / 1000:.3f} s" for a, b in unanchored)
            notes.append(
                f"clip time {spans} lies outside every supplied anchored segment: not verified"
            )
        infos = tuple(
            PieceInfo(
                p.first,
                p.last,
                p.ref_offset(),
                p.cap_start,
                p.cap_end,
                p.label,
                len([x for x in p.points if x.exact]),
                len([x for x in p.points if not x.exact]),
                p.by_timestamps,
            )
            for p in pieces
        )
        if any(p.by_timestamps for p in pieces):
            # Placed by timestamps only: nothing about time, order or completeness is
            # established, so no anomaly either.
            anomalies, missing_count = [], 0
        verdict, reason = self.verdict(results, anomalies, verified, pieces)
        return Alignment(
            verdict,
            reason,
            tuple(results),
            tuple(anomalies),
            coverage,
            missing_count,
            infos,
            tuple(notes),
            self.da,
        )

    def verdict(
        self,
        results: list[FrameResult],
        anomalies: list[Anomaly],
        verified: int,
        pieces: list[_Piece],
    ) -> tuple[Verdict, str]:
        if verified == 0:
            return Verdict.UNVERIFIABLE, (
                "no frame of the clip could be placed on an anchored frame of the camera"
            )
        if any(p.by_timestamps for p in pieces):
            return Verdict.UNVERIFIABLE, (
                "the clip's content is too still to verify a re-encoded copy: it looks like "
                "the camera's scene, but its capture time, order and completeness cannot be "
                "established from the anchored fingerprints (a decode-exact copy would be "
                "verified frame by frame)"
            )
        exact = [r for r in results if r.exact]
        if not exact:
            confirmations = [
                r.anchored
                for r in results
                if r.status in PLACED
                and r.anchored is not None
                and self.sampled[r.anchored]
                and r.hamming is not None
            ]
            if not any(self.informative(j) for j in confirmations):
                return Verdict.UNVERIFIABLE, (
                    "the clip matches only nearly uniform anchored pictures: too little "
                    "content to tell this recording from another"
                )
        if anomalies:
            kinds = sorted({a.kind.value for a in anomalies})
            noun = "anomaly" if len(anomalies) == 1 else "anomalies"
            return Verdict.TAMPERED, f"{len(anomalies)} {noun} ({', '.join(kinds)})"
        if all(r.exact for r in results if r.status in PLACED):
            return Verdict.AUTHENTIC, "every verified frame is bit-exact"
        return Verdict.AUTHENTIC_REENCODED, (
            "the content matches the anchored frames; the clip is not bit-exact (re-encoded)"
        )

    def missing(
        self, cover: dict[int, int], results: list[FrameResult]
    ) -> tuple[list[Anomaly], int]:
        if not cover:
            return [], 0
        covered = sorted(cover)
        anomalies: list[Anomaly] = []
        total = 0
        # At the camera's frame rate one skipped frame is a gap; a clip at another rate
        # lands on every anchored slot only within half an interval at each end.
        same_rate = abs(self.dc - self.da) <= 0.05 * self.da
        threshold = 1.5 * self.da if same_rate else self.dc + self.da + 1
        for a, b in itertools.pairwise(covered):
            if b - a <= 1:
                continue
            if self.t[b] - self.t[a] <= threshold:
                continue
            run = range(a + 1, b)
            ia, ib = cover[a], cover[b]
            exactly = results[ia].exact and results[ib].exact
            if not exactly and len(run) * self.da <= self.tol_perc:
                continue  # within the placement accuracy of a perceptual match
            if ia < ib:
                between = [
                    r
                    for r in results[ia + 1 : ib]
                    if r.status in (FrameStatus.INSERTED, FrameStatus.DUPLICATED)
                ]
                needed = len(run) * self.da / max(self.dc, 1.0)
                if len(between) >= 0.5 * needed:
                    continue
            lo, hi = min(ia, ib), max(ia, ib)
            if ia < ib and len(run) <= self.params.edge_frames:
                tail = results[ib:]
                head = results[: ia + 1]
                if len(tail) <= self.params.edge_frames and all(r.exact for r in tail):
                    self.notes.append(
                        f"{len(run)} anchored frame(s) before the clip's last {len(tail)} "
                        "frame(s) are not in it: the B-frames a stream-copy cut drops at its "
                        "end (not reported as missing)"
                    )
                    continue
                if len(head) <= self.params.edge_frames and all(r.exact for r in head):
                    self.notes.append(
                        f"{len(run)} anchored frame(s) after the clip's first {len(head)} "
                        "frame(s) are not in it: frames a stream-copy cut drops at its start "
                        "(not reported as missing)"
                    )
                    continue
            first, last = self.anchored[run[0]], self.anchored[run[-1]]
            total += len(run)
            anomalies.append(
                Anomaly(
                    AnomalyKind.MISSING,
                    self.q[lo],
                    self.q[hi],
                    self.t[run[0]],
                    self.t[run[-1]],
                    lo,
                    hi,
                    len(run),
                    (first.segment, first.index),
                    (last.segment, last.index),
                    detail=f"{len(run)} anchored frame(s) are not in the clip, between clip "
                    f"frames {lo} and {hi}",
                )
            )
        return anomalies, total

    def group(self, results: list[FrameResult]) -> list[Anomaly]:
        kinds = {
            FrameStatus.ALTERED: AnomalyKind.ALTERED,
            FrameStatus.INSERTED: AnomalyKind.INSERTED,
            FrameStatus.DUPLICATED: AnomalyKind.DUPLICATED,
            FrameStatus.REORDERED: AnomalyKind.REORDERED,
        }
        out: list[Anomaly] = []
        for status, grouped in itertools.groupby(results, key=lambda r: r.status):
            kind = kinds.get(status)
            if kind is None:
                continue
            run = list(grouped)
            out.append(self.anomaly(kind, run, results))
        return out

    def anomaly(
        self, kind: AnomalyKind, run: list[FrameResult], results: list[FrameResult]
    ) -> Anomaly:
        first, last = run[0], run[-1]
        times = [r.capture_time_ms for r in run if r.capture_time_ms is not None]
        anchored = [r.anchored for r in run if r.anchored is not None]
        cap_start: int | None
        cap_end: int | None
        if kind == AnomalyKind.DUPLICATED:
            shown = [self.t[j] for j in anchored]
            times = shown or times
        if times:
            cap_start, cap_end = min(times), max(times)
        else:
            before = next(
                (
                    r.capture_time_ms
                    for r in reversed(results[: first.clip_index])
                    if r.status in PLACED and r.capture_time_ms is not None
                ),
                None,
            )
            after = next(
                (
                    r.capture_time_ms
                    for r in results[last.clip_index + 1 :]
                    if r.status in PLACED and r.capture_time_ms is not None
                ),
                None,
            )
            bounds = [x for x in (before, after) if x is not None]
            cap_start = min(bounds) if bounds else None
            cap_end = max(bounds) if bounds else None
        tiles: tuple[tuple[int, int], ...] = ()
        if kind == AnomalyKind.ALTERED:
            tiles = tuple(sorted({t for r in run for t in r.changed_tiles}))
        a_first = self.anchored[min(anchored, key=lambda j: self.t[j])] if anchored else None
        a_last = self.anchored[max(anchored, key=lambda j: self.t[j])] if anchored else None
        notes = sorted({r.note for r in run if r.note})
        return Anomaly(
            kind,
            first.pts_ms,
            last.pts_ms,
            cap_start,
            cap_end,
            first.clip_index,
            last.clip_index,
            len(run),
            (a_first.segment, a_first.index) if a_first else None,
            (a_last.segment, a_last.index) if a_last else None,
            tiles,
            "; ".join(notes[:3]),
        )


def _tile_names(tiles: Sequence[tuple[int, int]]) -> str:
    names = [f"r{r}c{c}" for r, c in tiles]
    if len(names) > 8:
        return f"{len(names)} tiles ({', '.join(names[:8])}, ...)"
    return f"tile{'s' if len(names) != 1 else ''} {', '.join(names)}"


def _ranges(results: list[FrameResult]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    prev = None
    for r in results:
        if prev is not None and r.clip_index == prev + 1:
            out[-1] = (out[-1][0], r.pts_ms)
        else:
            out.append((r.pts_ms, r.pts_ms))
        prev = r.clip_index
    return tuple(out)


def align(
    clip: Sequence[ClipFrame],
    anchored: Sequence[AnchoredFrame],
    params: AlignParams | None = None,
) -> Alignment:
    """Align ``clip`` to ``anchored`` (capture order) and classify (module docstring)."""
    params = params or AlignParams()
    if any(b.pts_ms <= a.pts_ms for a, b in itertools.pairwise(clip)):
        raise ValueError("clip frames must have increasing pts")
    if any(b.capture_time_ms < a.capture_time_ms for a, b in itertools.pairwise(anchored)):
        raise ValueError("anchored frames must be in capture order")
    if not clip:
        coverage = Coverage(None, None, 0, 0, len(anchored), None, None, 0, 0)
        return Alignment(Verdict.UNVERIFIABLE, "the clip has no frames", (), (), coverage, 0)
    if not anchored:
        frames = tuple(
            FrameResult(c.index, c.pts_ms, FrameStatus.INSERTED, None, None, False) for c in clip
        )
        coverage = Coverage(None, None, len(clip), 0, 0, None, None, 0, 0)
        return Alignment(
            Verdict.UNVERIFIABLE, "no anchored frames cover the clip", frames, (), coverage, 0
        )
    return _Aligner(clip, anchored, params).run()
