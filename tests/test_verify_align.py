"""The alignment core on synthetic streams: every anomaly kind is found where it was made,
honest copies (remuxed, trimmed, re-encoded, re-timed, another frame rate) are authentic
with their coverage, and a clip from another camera is never authentic.

Streams are random walks of fingerprints (tests/verify_synth.py) that behave like moving
video. "exact" clips carry the anchored digests (a decode-exact copy); "re-encoded" ones
carry fresh digests and noisy fingerprints, so only the perceptual tier applies, with
anchored fingerprints for 1 frame in 25 (the normal policy at 25 fps).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verify_synth import (
    FRAME_MS,
    T0,
    Camera,
    Content,
    Source,
    build_clip,
    camera,
    encode_tiles,
    foreign,
    periodic_camera,
    span,
)

from cctvchain.chaincode.cctv.model import SamplingPolicy, Segment
from cctvchain.ingest import perceptual as P
from cctvchain.ingest.fingerprint import FramePerceptual, FrameRecord
from cctvchain.verify import align as A
from cctvchain.verify.align import (
    AnomalyKind,
    ClipFrame,
    FrameStatus,
    Verdict,
    align,
    anchored_frames,
)

SECOND = 1000


@pytest.fixture(scope="module")
def cam() -> Camera:
    return camera(1, 30.0)


def kinds(result: A.Alignment) -> list[AnomalyKind]:
    return [a.kind for a in result.anomalies]


def only(result: A.Alignment, kind: AnomalyKind) -> A.Anomaly:
    assert result.verdict == Verdict.TAMPERED, result.reason
    assert kinds(result) == [kind], [(a.kind, a.clip_start_ms, a.detail) for a in result.anomalies]
    return result.anomalies[0]


def close(actual: int | None, expected: int, tolerance: int) -> bool:
    return actual is not None and abs(actual - expected) <= tolerance


def cap(k: int) -> int:
    return T0 + k * FRAME_MS


# -- honest copies -----------------------------------------------------------------------


@pytest.mark.parametrize("exact", [True, False])
def test_a_whole_copy_is_authentic_frame_by_frame(cam: Camera, exact: bool) -> None:
    rng = np.random.default_rng(1)
    result = align(build_clip(cam, span(0, cam.n, exact=exact), rng), cam.frames)
    assert result.verdict == (Verdict.AUTHENTIC if exact else Verdict.AUTHENTIC_REENCODED)
    assert result.anomalies == ()
    status = FrameStatus.EXACT if exact else FrameStatus.PERCEPTUAL
    assert result.counts()[status] == cam.n
    assert [f.capture_time_ms for f in result.frames] == [cap(k) for k in range(cam.n)]
    cov = result.coverage
    assert (cov.capture_start_ms, cov.capture_end_ms) == (cap(0), cap(cam.n - 1))
    assert cov.clip_fraction == cov.span_fraction == cov.fraction == 1.0


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("retime", [True, False])
def test_a_trimmed_sub_range_is_authentic_for_what_it_covers(
    cam: Camera, exact: bool, retime: bool
) -> None:
    rng = np.random.default_rng(2)
    clip = build_clip(cam, span(137, 402, exact=exact), rng, retime=retime, start_pts=1234)
    result = align(clip, cam.frames)
    assert result.verdict == (Verdict.AUTHENTIC if exact else Verdict.AUTHENTIC_REENCODED)
    assert result.anomalies == ()
    cov = result.coverage
    tolerance = 0 if exact else 2 * FRAME_MS
    assert close(cov.capture_start_ms, cap(137), tolerance)
    assert close(cov.capture_end_ms, cap(401), tolerance)
    assert cov.anchored_covered == cov.anchored_in_span
    assert cov.fraction == pytest.approx(265 / cam.n, abs=2 / cam.n)


def test_lazy_fingerprints_suffice_for_a_decode_exact_copy(cam: Camera) -> None:
    """The decoder computes perceptual fingerprints only around non-exact frames."""
    rng = np.random.default_rng(3)
    sources = span(0, 300)
    sources[137] = Source(137, edit="altered")
    clip = build_clip(cam, sources, rng, perceptual="lazy")
    assert sum(c.has_perceptual for c in clip) == 3
    result = align(clip, cam.frames)
    anomaly = only(result, AnomalyKind.ALTERED)
    assert (anomaly.first_frame, anomaly.last_frame) == (137, 137)
    assert set(anomaly.tiles) <= {(2, 3), (2, 4), (3, 3), (3, 4)} and anomaly.tiles


@pytest.mark.parametrize("rate_ms", [33, 50, 100])
def test_a_reencode_at_another_frame_rate_is_authentic(cam: Camera, rate_ms: int) -> None:
    rng = np.random.default_rng(4)
    n = 15_000 // rate_ms
    sources = [Source(round(k * rate_ms / FRAME_MS), exact=False) for k in range(n)]
    clip = build_clip(cam, sources, rng)
    clip = [replace(c, pts_ms=k * rate_ms) for k, c in enumerate(clip)]
    result = align(clip, cam.frames)
    assert result.verdict == Verdict.AUTHENTIC_REENCODED, [
        (a.kind, a.clip_start_ms, a.detail) for a in result.anomalies
    ]
    assert close(result.coverage.capture_end_ms, cap(sources[-1].frame or 0), FRAME_MS)


def test_anchored_segments_with_an_outage_between_them(cam: Camera) -> None:
    """Frames inside an outage have no anchored frame: not verified, no anomaly."""
    rng = np.random.default_rng(5)
    anchored = [f for f in cam.frames if not (cap(250) <= f.capture_time_ms < cap(375))]
    for exact in (True, False):
        result = align(build_clip(cam, span(200, 450, exact=exact), rng), anchored)
        assert result.verdict == (Verdict.AUTHENTIC if exact else Verdict.AUTHENTIC_REENCODED)
        assert result.anomalies == ()
        assert result.counts()["UNANCHORED"] == pytest.approx(125, abs=2)
        assert result.coverage.clip_fraction == pytest.approx(0.5, abs=0.01)
        [(start, end)] = result.coverage.unanchored_clip_ranges_ms
        assert abs(start - 50 * FRAME_MS) <= FRAME_MS and abs(end - 174 * FRAME_MS) <= FRAME_MS
        assert any("not verified" in note for note in result.notes)


def test_records_of_segments_become_anchored_frames_in_capture_order() -> None:
    policy = SamplingPolicy("normal", 1)
    perceptual = FramePerceptual(bytes(8), bytes(P.TILE_SIGNATURE_SIZE))
    records = [
        FrameRecord(i, i * 40, 5000 + i * 40, bytes([i]) * 32, perceptual if i == 0 else None)
        for i in range(3)
    ]
    seg = Segment("C", 4, 5000, 5080, 3, bytes(32), bytes(32), policy)
    earlier = Segment("C", 3, 4000, 4000, 1, bytes(32), bytes(32), policy)
    early_record = FrameRecord(0, 0, 4000, bytes(32), None)
    frames = anchored_frames([(seg, records), (earlier, [early_record])])
    assert [(f.segment, f.index) for f in frames] == [(3, 0), (4, 0), (4, 1), (4, 2)]
    assert frames[1].sampled and not frames[2].sampled


def test_tile_distances_agree_with_the_perceptual_module() -> None:
    rng = np.random.default_rng(6)
    a = P.tile_signature(rng.uniform(0, 255, (64, 64)))
    b = P.tile_signature(rng.uniform(0, 255, (64, 64)))
    ours = A._dist(A._tiles_matrix(a), A._tiles_matrix(b))
    assert np.array_equal(ours, P.tile_distances(a, b).ravel())


# -- each anomaly, by hand ---------------------------------------------------------------


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("frame", [137, 150])  # 150 is a sampled frame, 137 is not
def test_one_altered_frame(cam: Camera, exact: bool, frame: int) -> None:
    rng = np.random.default_rng(7)
    sources = span(0, 300, exact=exact)
    sources[frame] = Source(frame, exact=exact, edit="altered")
    anomaly = only(align(build_clip(cam, sources, rng), cam.frames), AnomalyKind.ALTERED)
    assert (anomaly.first_frame, anomaly.last_frame) == (frame, frame)
    assert anomaly.capture_start_ms == anomaly.capture_end_ms == cap(frame)
    assert anomaly.tiles and set(anomaly.tiles) <= {(2, 3), (2, 4), (3, 3), (3, 4)}


def _camera_with_a_fast_object(seed: int, seconds: float = 12.0) -> Camera:
    """A camera whose picture also has an object crossing row 5 fast: tiles (5, 0)-(5, 3)
    brighten by 20 grey levels a frame, so a frame one frame away from a sampled one
    differs from it there beyond the tile threshold (motion, shared with a neighbour)."""
    base = camera(seed, seconds)
    content = []
    for k, c in enumerate(base.content):
        tiles = c.tiles.copy()
        for t in range(40, 44):
            tiles[t, 0] = 20 + (20 * k + 37 * t) % 200
        content.append(Content(c.hash, tiles))
    frames = [
        replace(f, tiles=encode_tiles(content[k].tiles)) if f.sampled else f
        for k, f in enumerate(base.frames)
    ]
    return Camera(content, frames)


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("frame", [75, 150])  # sampled frames
def test_a_high_contrast_edit_on_a_sampled_frame_is_altered_there_only(
    exact: bool, frame: int
) -> None:
    """A small high-contrast box moves the DCT hash by more than 12 bits (10-24 on real
    clips), so by Hamming distance the sampled frame matches its untouched neighbours
    better than the edited frame. The edited frame must still be the one compared with
    it (a neighbour would be judged altered on the tiles where the object moved), and the
    cuts into and out of the edit must not make it a replacement (INSERTED)."""
    cam = _camera_with_a_fast_object(41)
    rng = np.random.default_rng(19)
    honest = align(build_clip(cam, span(0, 300, exact=False), rng), cam.frames)
    assert honest.verdict == Verdict.AUTHENTIC_REENCODED and honest.anomalies == ()
    sources = span(0, 300, exact=exact)
    sources[frame] = Source(frame, exact=exact, edit="altered")
    clip = build_clip(cam, sources, rng)
    moved = int.from_bytes(clip[frame].dct_hash or bytes(8), "big")
    for bit in rng.choice(64, 13, replace=False):
        moved ^= 1 << int(bit)
    clip[frame] = replace(clip[frame], dct_hash=moved.to_bytes(8, "big"))
    anomaly = only(align(clip, cam.frames), AnomalyKind.ALTERED)
    assert (anomaly.first_frame, anomaly.last_frame) == (frame, frame)
    assert anomaly.capture_start_ms == anomaly.capture_end_ms == cap(frame)
    assert anomaly.tiles and set(anomaly.tiles) <= {(2, 3), (2, 4), (3, 3), (3, 4)}


def test_a_neighbour_closer_by_hash_noise_is_not_judged_instead_of_the_frame() -> None:
    """Re-encoding noise moves hashes as much as a frame of motion does: a neighbour of
    the frame in a sampled slot can match the sampled hash better (measured: 0 bits
    against the frame's own 2 in a 720p/300k copy). The frame that is the sampled
    picture, tile for tile, is the one compared — not the neighbour, whose tiles moved."""
    cam = _camera_with_a_fast_object(43)
    rng = np.random.default_rng(20)
    clip = build_clip(cam, span(0, 300, exact=False), rng)
    for j in (75, 150, 225):
        sampled = int.from_bytes(cam.frames[j].dct_hash or bytes(8), "big")
        clip[j] = replace(clip[j], dct_hash=(sampled ^ 0b101).to_bytes(8, "big"))
        clip[j + 1] = replace(clip[j + 1], dct_hash=sampled.to_bytes(8, "big"))
    result = align(clip, cam.frames)
    assert result.verdict == Verdict.AUTHENTIC_REENCODED, result.anomalies
    assert [f.status for f in result.frames if f.clip_index in (75, 76, 150, 151)] == [
        FrameStatus.PERCEPTUAL
    ] * 4


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("retime", [True, False])
def test_two_seconds_cut_out(cam: Camera, exact: bool, retime: bool) -> None:
    rng = np.random.default_rng(8)
    clip = build_clip(
        cam, span(0, 125, exact=exact) + span(175, 400, exact=exact), rng, retime=retime
    )
    result = align(clip, cam.frames)
    anomaly = only(result, AnomalyKind.MISSING)
    assert (anomaly.capture_start_ms, anomaly.capture_end_ms) == (cap(125), cap(174))
    assert anomaly.frames == result.missing_frames == 50
    assert (anomaly.first_frame, anomaly.last_frame) == (124, 125)
    assert anomaly.clip_start_ms == 124 * FRAME_MS


@pytest.mark.parametrize("exact", [True, False])
def test_one_second_of_foreign_frames_spliced_in(cam: Camera, exact: bool) -> None:
    rng = np.random.default_rng(9)
    sources = span(0, 125, exact=exact) + foreign(99, 25) + span(125, 400, exact=exact)
    result = align(build_clip(cam, sources, rng), cam.frames)
    anomaly = only(result, AnomalyKind.INSERTED)
    assert (anomaly.first_frame, anomaly.last_frame) == (125, 149)
    assert (anomaly.capture_start_ms, anomaly.capture_end_ms) == (cap(124), cap(125))
    assert result.coverage.clip_frames_verified == 400


@pytest.mark.parametrize("exact", [True, False])
def test_foreign_frames_replacing_a_second_in_place(cam: Camera, exact: bool) -> None:
    rng = np.random.default_rng(10)
    sources = span(0, 110, exact=exact) + foreign(98, 25) + span(135, 300, exact=exact)
    result = align(build_clip(cam, sources, rng), cam.frames)
    anomaly = only(result, AnomalyKind.INSERTED)
    assert (anomaly.first_frame, anomaly.last_frame) == (110, 134)
    assert result.missing_frames == 0


@pytest.mark.parametrize("exact", [True, False])
def test_two_one_second_pieces_swapped(cam: Camera, exact: bool) -> None:
    rng = np.random.default_rng(11)
    sources = (
        span(0, 100, exact=exact)
        + span(125, 150, exact=exact)
        + span(100, 125, exact=exact)
        + span(150, 300, exact=exact)
    )
    anomaly = only(align(build_clip(cam, sources, rng), cam.frames), AnomalyKind.REORDERED)
    assert (anomaly.first_frame, anomaly.last_frame) == (100, 149)
    assert (anomaly.capture_start_ms, anomaly.capture_end_ms) == (cap(100), cap(149))


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("frame", [100, 110])  # 100 is sampled: the hold starts on it
def test_one_frame_held_for_a_second(cam: Camera, exact: bool, frame: int) -> None:
    rng = np.random.default_rng(12)
    held = [Source(frame, exact=exact, edit="held")] * 24
    sources = span(0, frame + 1, exact=exact) + held + span(frame + 25, 300, exact=exact)
    result = align(build_clip(cam, sources, rng), cam.frames)
    anomaly = only(result, AnomalyKind.DUPLICATED)
    assert (anomaly.first_frame, anomaly.last_frame) == (frame + 1, frame + 24)
    assert anomaly.capture_start_ms == cap(frame)


@pytest.mark.parametrize("exact", [True, False])
def test_a_second_shown_twice(cam: Camera, exact: bool) -> None:
    rng = np.random.default_rng(13)
    sources = span(0, 150, exact=exact) + span(100, 125, exact=exact) + span(150, 300, exact=exact)
    anomaly = only(align(build_clip(cam, sources, rng), cam.frames), AnomalyKind.DUPLICATED)
    assert close(anomaly.first_frame, 150, 1) and close(anomaly.last_frame, 174, 1)
    assert close(anomaly.capture_start_ms, cap(100), FRAME_MS)


@pytest.mark.parametrize("exact", [True, False])
def test_a_clip_of_another_camera_is_never_authentic(cam: Camera, exact: bool) -> None:
    rng = np.random.default_rng(14)
    other = camera(2, 12.0)
    result = align(build_clip(other, span(0, other.n, exact=exact), rng), cam.frames)
    assert result.verdict == Verdict.UNVERIFIABLE
    assert "not a recording of this camera" in result.reason
    assert result.coverage.clip_frames_verified == 0


def test_a_uniform_picture_is_too_little_to_verify() -> None:
    """Black frames match black frames: no evidence of which recording this is."""
    flat = bytes([16, 0, 0, 0] * 64)
    anchored = [
        A.AnchoredFrame(0, k, k * 40, T0 + k * 40, bytes([k]) * 32, bytes(8), flat)
        for k in range(50)
    ]
    clip = [ClipFrame(k, k * 40, bytes([k + 100]) * 32, bytes(8), flat) for k in range(50)]
    result = align(clip, anchored)
    assert result.verdict == Verdict.UNVERIFIABLE
    assert "uniform" in result.reason


def test_empty_inputs_are_unverifiable(cam: Camera) -> None:
    assert align([], cam.frames).verdict == Verdict.UNVERIFIABLE
    rng = np.random.default_rng(15)
    result = align(build_clip(cam, span(0, 10), rng), [])
    assert result.verdict == Verdict.UNVERIFIABLE
    assert result.reason == "no anchored frames cover the clip"
    with pytest.raises(ValueError):
        align([ClipFrame(0, 5, bytes(32)), ClipFrame(1, 5, bytes(32))], cam.frames)


def test_a_frame_dropped_from_a_decode_exact_copy_is_missing(cam: Camera) -> None:
    rng = np.random.default_rng(16)
    clip = build_clip(cam, span(0, 77) + span(78, 200), rng, retime=False)
    anomaly = only(align(clip, cam.frames), AnomalyKind.MISSING)
    assert (anomaly.capture_start_ms, anomaly.capture_end_ms, anomaly.frames) == (
        cap(77),
        cap(77),
        1,
    )


def test_bit_identical_anchored_frames_resolve_by_offset() -> None:
    """A perfectly still stretch: several anchored frames share one digest."""
    still = bytes(32)
    digests = [bytes([k]) * 32 if not 10 <= k < 20 else still for k in range(40)]
    anchored = [A.AnchoredFrame(0, k, k * 40, T0 + k * 40, d) for k, d in enumerate(digests)]
    clip = [ClipFrame(i, i * 40, digests[i + 5]) for i in range(30)]
    result = align(clip, anchored)
    assert result.verdict == Verdict.AUTHENTIC
    assert [f.anchored for f in result.frames] == list(range(5, 35))


# -- properties: each kind at random places ----------------------------------------------

KINDS = ["ALTERED", "MISSING", "INSERTED", "REORDERED", "DUPLICATED"]
PROPERTY_CAMERA = camera(21, 24.0)


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, bool, bool, int, int, int]:
    kind = draw(st.sampled_from(KINDS))
    exact = draw(st.booleans())
    retime = draw(st.booleans())
    n = PROPERTY_CAMERA.n
    lo = 0 if exact else 5  # the shortest edit the perceptual tier resolves (frames)
    if kind in ("REORDERED", "DUPLICATED") and not exact:
        lo = 25  # a piece that holds a sampled frame
    length = draw(st.integers(max(1, lo), 60))
    position = draw(st.integers(60, n - 2 * length - 60))
    start = draw(st.integers(0, 5000))
    return kind, exact, retime, length, position, start


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits(), st.integers(0, 2**16))
def test_every_anomaly_kind_is_found_at_its_place(
    edit: tuple[str, bool, bool, int, int, int], seed: int
) -> None:
    kind, exact, retime, length, at, start = edit
    cam = PROPERTY_CAMERA
    rng = np.random.default_rng(seed)
    n = cam.n
    s = span(0, n, exact=exact)
    # Where, in clip frames and anchored frames, the truth is.
    if kind == "ALTERED":
        s[at] = Source(at, exact=exact, edit="altered")
        clip_range, cap_range = (at, at), (at, at)
    elif kind == "MISSING":
        s = s[:at] + s[at + length :]
        clip_range, cap_range = (at - 1, at), (at, at + length - 1)
    elif kind == "INSERTED":
        s = s[:at] + foreign(100_000 + seed, length) + s[at:]  # never the camera's seed
        clip_range, cap_range = (at, at + length - 1), (at - 1, at)
        retime = True
    elif kind == "REORDERED":
        s = s[:at] + s[at + length : at + 2 * length] + s[at : at + length] + s[at + 2 * length :]
        clip_range, cap_range = (at, at + 2 * length - 1), (at, at + 2 * length - 1)
        retime = True
    else:
        s = s[: at + 1] + [Source(at, exact=exact, edit="held")] * length + s[at + length + 1 :]
        clip_range, cap_range = (at + 1, at + length), (at, at)
    clip = build_clip(cam, s, rng, retime=retime, start_pts=start)
    result = align(clip, cam.frames)
    found = [a for a in result.anomalies if a.kind == kind]
    tolerance_frames = 0 if exact else 25  # decode-exact: the frame; re-encoded: 1 s
    assert result.verdict == Verdict.TAMPERED, result.reason
    assert found, [(a.kind, a.first_frame, a.last_frame) for a in result.anomalies]
    assert {a.kind for a in result.anomalies} == {kind}, [
        (a.kind, a.first_frame, a.last_frame, a.detail) for a in result.anomalies
    ]
    first = min(a.first_frame for a in found if a.first_frame is not None)
    last = max(a.last_frame for a in found if a.last_frame is not None)
    assert abs(first - clip_range[0]) <= tolerance_frames, (first, clip_range)
    assert abs(last - clip_range[1]) <= tolerance_frames, (last, clip_range)
    cap_first = min(a.capture_start_ms for a in found if a.capture_start_ms is not None)
    cap_last = max(a.capture_end_ms for a in found if a.capture_end_ms is not None)
    assert abs(cap_first - cap(cap_range[0])) <= tolerance_frames * FRAME_MS
    assert abs(cap_last - cap(cap_range[1])) <= tolerance_frames * FRAME_MS


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 400),
    st.integers(50, 200),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_any_honest_sub_range_is_authentic_with_its_coverage(
    first: int, length: int, exact: bool, retime: bool, seed: int
) -> None:
    cam = PROPERTY_CAMERA
    last = min(cam.n, first + length)
    rng = np.random.default_rng(seed)
    clip = build_clip(cam, span(first, last, exact=exact), rng, retime=retime, start_pts=seed)
    result = align(clip, cam.frames)
    assert result.verdict == (Verdict.AUTHENTIC if exact else Verdict.AUTHENTIC_REENCODED)
    assert result.anomalies == ()
    tolerance = 0 if exact else 2 * FRAME_MS  # a perceptual match places to a frame or two
    assert close(result.coverage.capture_start_ms, cap(first), tolerance)
    assert close(result.coverage.capture_end_ms, cap(last - 1), tolerance)


def _still_camera(seconds: float = 12.0) -> Camera:
    """A camera whose picture does not move (a parked car park at night)."""
    still = camera(31, seconds)
    first = still.content[0]
    frames = [
        replace(
            f,
            dct_hash=first.hash.to_bytes(8, "big") if f.sampled else None,
            tiles=encode_tiles(first.tiles) if f.sampled else None,
        )
        for f in still.frames
    ]
    return Camera([first] * still.n, frames)


def test_a_still_scene_is_verified_bit_exactly_or_not_at_all() -> None:
    """A re-encoded copy of a still picture looks like the camera's view but cannot be
    placed in time: UNVERIFIABLE, never AUTHENTIC_REENCODED and no made-up anomaly."""
    cam = _still_camera()
    rng = np.random.default_rng(17)
    exact = align(build_clip(cam, span(20, 200), rng), cam.frames)
    assert exact.verdict == Verdict.AUTHENTIC
    cut = align(build_clip(cam, span(20, 100) + span(150, 200), rng), cam.frames)
    assert kinds(cut) == [AnomalyKind.MISSING]
    for sources in (
        span(20, 200, exact=False),
        span(20, 100, exact=False) + span(150, 200, exact=False),
    ):
        result = align(build_clip(cam, sources, rng), cam.frames)
        assert result.verdict == Verdict.UNVERIFIABLE and "too still" in result.reason
        assert result.anomalies == ()


def test_a_still_stretch_followed_by_an_edit_is_no_held_frame(cam: Camera) -> None:
    """Frozen-looking frames are a hold only if the camera's own picture moved on."""
    rng = np.random.default_rng(18)
    still = _still_camera()
    # Mixed: moving content, then a still stretch (the camera's own, re-encoded), then an
    # edited frame that jumps: no DUPLICATED, only the edit.
    frames = list(cam.frames[:100]) + [
        replace(f, capture_time_ms=T0 + (100 + k) * FRAME_MS, segment=0, index=100 + k)
        for k, f in enumerate(still.frames[:60])
    ]
    mixed = Camera(list(cam.content[:100]) + still.content[:60], frames)
    sources = span(0, 160, exact=False)
    sources[150] = Source(150, exact=False, edit="altered")
    result = align(build_clip(mixed, sources, rng), mixed.frames)
    assert AnomalyKind.DUPLICATED not in kinds(result), result.anomalies


# -- periodic content --------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_an_honest_reencode_of_periodic_content_is_no_anomaly(seed: int) -> None:
    """A picture that repeats every 12 s (ffmpeg's testsrc2; a bench clip of 20 s at
    1080p re-encoded at crf 23-30 was judged DUPLICATED at 18.5-20 s): each clip frame
    after 12 s matches the camera's frame at its own time and the one 12 s before equally
    well, up to re-encoding noise. The repetition places nothing: no anomaly."""
    cam = periodic_camera(40 + seed)
    rng = np.random.default_rng(seed)
    result = align(build_clip(cam, span(0, cam.n, exact=False), rng), cam.frames)
    assert result.verdict == Verdict.AUTHENTIC_REENCODED, [
        (a.kind, a.clip_start_ms, a.clip_end_ms, a.detail) for a in result.anomalies
    ]
    assert close(result.coverage.capture_end_ms, cap(cam.n - 1), 2 * FRAME_MS)


@pytest.mark.parametrize("exact", [True, False])
def test_periodic_content_still_shows_a_second_shown_twice(exact: bool) -> None:
    """The repetition excuses only a shift by the period: seconds 3-4 shown again at 8 s
    (5 s from where they belong) are still DUPLICATED."""
    cam = periodic_camera(47)
    rng = np.random.default_rng(7)
    sources = span(0, 200, exact=exact) + span(75, 100, exact=exact) + span(200, cam.n, exact=exact)
    anomaly = only(align(build_clip(cam, sources, rng), cam.frames), AnomalyKind.DUPLICATED)
    assert close(anomaly.first_frame, 200, 1) and close(anomaly.last_frame, 224, 1)


@pytest.mark.parametrize("seed", range(3))
def test_periodic_content_too_repetitive_to_place_keeps_its_last_seconds(seed: int) -> None:
    """A 7 s cycle in a 60 s clip: the sampled frames of a cycle's first seconds show up
    9 times (too many to place: no points), and the cycle's wrap is a content cut. The
    seconds after the last wrap still land on sampled frames they show: the camera's
    own cut, not INSERTED frames."""
    cam = periodic_camera(60 + seed, 60.0, 7.0)
    rng = np.random.default_rng(seed)
    result = align(build_clip(cam, span(0, cam.n, exact=False), rng), cam.frames)
    assert result.anomalies == ()
    assert result.verdict in (Verdict.AUTHENTIC_REENCODED, Verdict.UNVERIFIABLE)


@pytest.mark.parametrize("periodic", [True, False])
def test_foreign_seconds_after_a_cut_at_the_end_stay_inserted(periodic: bool) -> None:
    """The stretch after the clip's last cut joins the piece only where it shows the
    camera's sampled frames: foreign frames there are INSERTED."""
    cam = periodic_camera(70, 60.0, 7.0) if periodic else camera(70, 60.0)
    rng = np.random.default_rng(9)
    sources = span(0, cam.n - 100, exact=False) + foreign(71, 100)
    result = align(build_clip(cam, sources, rng), cam.frames)
    assert AnomalyKind.INSERTED in kinds(result), result.reason
    inserted = [a for a in result.anomalies if a.kind == AnomalyKind.INSERTED]
    assert close(inserted[-1].first_frame, cam.n - 100, 1) and inserted[-1].last_frame == cam.n - 1


@pytest.mark.xfail(
    strict=True,
    reason="known limit (module docstring): a period that is not a multiple of the 1 s "
    "sampling interval is seen between no two sampled frames, so the clip's second "
    "showings place pieces a period away (false DUPLICATED/REORDERED)",
)
def test_an_honest_reencode_of_content_repeating_off_the_sampling_grid() -> None:
    cam = periodic_camera(100, 20.0, 9.5)
    rng = np.random.default_rng(0)
    result = align(build_clip(cam, span(0, cam.n, exact=False), rng), cam.frames)
    assert result.anomalies == ()
