"""The perceptual tier on real video: re-encodes match, other content does not, and a
local edit of about 3 % of one frame is found and placed on the right tiles.

Every clip is made by Debian's ffmpeg at test time and decoded by the media shell; the
"original" is what a camera would have anchored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rtsp_camera import make_clip, transcode

from cctvchain.ingest import perceptual as P
from cctvchain.media import decode_frames

# The first test may install Debian packages (apt) for the whole run.
pytestmark = pytest.mark.timeout(900)

# The edit: a filled 110x60 box (6600 px, 2.9 % of 640x360) on frame 37 only.
EDIT_FRAME = 37
BOX_X, BOX_Y, BOX_W, BOX_H = 200, 100, 110, 60
TILE_W, TILE_H = 640 / P.GRID, 360 / P.GRID


def fingerprints(path: Path) -> list[P.Perceptual]:
    return [P.fingerprint(frame.thumbnail()) for frame in decode_frames(path)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("perceptual")
    original = make_clip(root / "original.mp4", seconds=3.0)
    out = {"original": original}
    out["720p-300k"] = transcode(
        original, root / "720p.mkv", "-vf", "scale=1280:720", "-c:v", "libx264", "-b:v", "300k"
    )
    out["360p-100k"] = transcode(original, root / "360p.mp4", "-c:v", "libx264", "-b:v", "100k")
    out["180p-60k"] = transcode(
        original, root / "180p.ts", "-vf", "scale=320:180", "-c:v", "libx264", "-b:v", "60k"
    )
    out["mandelbrot"] = make_clip(root / "mandelbrot.mp4", source="mandelbrot", seconds=3.0)
    out["testsrc"] = make_clip(root / "testsrc.mp4", source="testsrc", seconds=3.0)
    for colour in ("black", "gray"):
        box = f"x={BOX_X}:y={BOX_Y}:w={BOX_W}:h={BOX_H}:color={colour}:t=fill"
        out[f"edit-{colour}"] = transcode(
            original,
            root / f"edit-{colour}.mp4",
            "-vf",
            f"drawbox={box}:enable='eq(n,{EDIT_FRAME})'",
            "-c:v",
            "libx264",
            "-crf",
            "18",
        )
    return out


@pytest.fixture(scope="module")
def anchored(clips: dict[str, Path]) -> list[P.Perceptual]:
    return fingerprints(clips["original"])


@pytest.mark.parametrize("copy", ["720p-300k", "360p-100k", "180p-60k"])
def test_a_reencode_stays_within_the_thresholds_frame_by_frame(
    clips: dict[str, Path], anchored: list[P.Perceptual], copy: str
) -> None:
    other = fingerprints(clips[copy])
    assert len(other) == len(anchored) == 75
    results = [P.compare(a, b) for a, b in zip(anchored, other, strict=True)]
    worst_hamming = max(r.hamming for r in results)
    worst_tile = max(r.max_tile_distance for r in results)
    print(f"{copy}: worst hamming {worst_hamming}, worst tile {worst_tile:.0f}")
    assert all(r.same_content for r in results)
    assert worst_hamming <= P.SAME_CONTENT_MAX_HAMMING - 2
    assert worst_tile <= P.TILE_CHANGED - 2
    # The compact on-chain signature agrees.
    for a, b in zip(anchored, other, strict=True):
        onchain = P.compare_compact(
            a.dct_hash, P.compact_tiles(a.tiles), b.dct_hash, P.compact_tiles(b.tiles)
        )
        assert onchain.same_content


@pytest.mark.parametrize("other", ["mandelbrot", "testsrc"])
def test_different_content_is_far_outside_the_thresholds(
    clips: dict[str, Path], anchored: list[P.Perceptual], other: str
) -> None:
    results = [P.compare(a, b) for a, b in zip(anchored, fingerprints(clips[other]), strict=True)]
    best_hamming = min(r.hamming for r in results)
    fewest_changed = min(len(r.changed) for r in results)
    print(f"{other}: best hamming {best_hamming}, fewest changed tiles {fewest_changed}")
    assert not any(r.same_content for r in results)
    assert best_hamming > P.SAME_CONTENT_MAX_HAMMING + 4
    assert fewest_changed >= 32  # at least half the frame differs, in every frame


def box_tiles() -> set[tuple[int, int]]:
    cols = range(int(BOX_X // TILE_W), int((BOX_X + BOX_W - 1) // TILE_W) + 1)
    rows = range(int(BOX_Y // TILE_H), int((BOX_Y + BOX_H - 1) // TILE_H) + 1)
    return {(r, c) for r in rows for c in cols}


@pytest.mark.parametrize("colour", ["black", "gray"])
def test_a_small_local_edit_is_found_and_localised_to_its_tiles(
    clips: dict[str, Path], anchored: list[P.Perceptual], colour: str
) -> None:
    edited = fingerprints(clips[f"edit-{colour}"])
    results = [P.compare(a, b) for a, b in zip(anchored, edited, strict=True)]
    flagged = [i for i, r in enumerate(results) if r.changed]
    assert flagged == [EDIT_FRAME]  # only the edited frame, in a re-encoded clip
    hit = results[EDIT_FRAME]
    touched = box_tiles()
    assert touched == {(2, 2), (2, 3), (3, 2), (3, 3)}
    assert set(hit.changed) <= touched  # nothing flagged outside the box
    # The tile the box covers most (70x45 of its 80x45 pixels) is flagged.
    assert (2, 3) in hit.changed
    untouched = np.ones((P.GRID, P.GRID), dtype=bool)
    for r, c in touched:
        untouched[r, c] = False
    assert float(hit.tiles[untouched].max()) <= P.TILE_CHANGED - 4
    print(f"{colour} box: changed tiles {sorted(hit.changed)}, hamming {hit.hamming}")
    # On-chain (compact) signatures localise it too.
    a, b = anchored[EDIT_FRAME], edited[EDIT_FRAME]
    onchain = P.compare_compact(
        a.dct_hash, P.compact_tiles(a.tiles), b.dct_hash, P.compact_tiles(b.tiles)
    )
    assert (2, 3) in onchain.changed and set(onchain.changed) <= touched


def test_hash_and_signature_layouts() -> None:
    rng = np.random.default_rng(7)
    thumb = rng.uniform(0, 255, (64, 64))
    fp = P.fingerprint(thumb)
    assert len(fp.dct_hash) == P.DCT_HASH_SIZE == 8
    assert len(fp.tiles) == P.TILE_SIGNATURE_SIZE == 256
    assert len(P.compact_tiles(fp.tiles)) == P.COMPACT_SIGNATURE_SIZE == 64
    # Half the bits are above the median of 64 distinct coefficients.
    assert int.from_bytes(fp.dct_hash, "big").bit_count() == 32
    # A flat tile: its mean, no gradient, no spread.
    flat = np.full((64, 64), 100.0)
    flat[:8, :8] = 37.0
    tiles = P.tile_signature(flat)
    assert tiles[:4] == bytes([37, 0, 0, 0])
    assert tiles[4:8] == bytes([100, 0, 0, 0])
    # gx = left - right halves, halved, as a signed byte.
    ramp = np.full((64, 64), 100.0)
    ramp[:8, 4:8] = 140.0
    assert P.tile_signature(ramp)[1] == (256 - 20)
    assert P.hamming(fp.dct_hash, fp.dct_hash) == 0
    assert P.hamming(bytes(8), b"\xff" * 8) == 64
    with pytest.raises(ValueError):
        P.tile_signature(np.zeros((32, 32)))


def test_the_reference_thumbnail_is_an_exact_area_average() -> None:
    luma = np.arange(128 * 192, dtype=np.uint16).reshape(128, 192) % 251
    thumb = P.grey_thumbnail(luma.astype(np.uint8))
    expected = luma.reshape(64, 2, 64, 3).mean(axis=(1, 3))
    assert np.allclose(thumb, expected)
    # Fractional pixels (100 -> 64) keep the overall mean.
    odd = np.random.default_rng(1).integers(0, 256, (100, 90)).astype(np.uint8)
    assert abs(P.grey_thumbnail(odd).mean() - odd.mean()) < 1e-9
    ten_bit = (luma.astype(np.uint16) * 4).astype(np.uint16)
    assert np.allclose(P.grey_thumbnail(ten_bit, bit_depth=10), expected)
