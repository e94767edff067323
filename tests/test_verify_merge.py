"""Merging one peer's evidence bundles of consecutive windows (``cctvchain.verify.merge``).

Real evidence: a camera's 12 s clip anchored in two segments on an in-process network
(:mod:`verify_world`; a configuration update lands between the two anchors), each
window's bundle built from that ledger like a peer builds it. The merge of two windows
that share the anchor at their edge is one bundle that the offline checker accepts;
anything the windows share but disagree on is refused with a precise reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from verify_world import CAMERA, AnchoredCamera, anchored_camera, bundle_for, make_camera_clip

from cctvchain.verify.align import Verdict
from cctvchain.verify.bundle import EvidenceBundle, check_bundle
from cctvchain.verify.clip import fingerprint_clip
from cctvchain.verify.merge import MergeError, merge_bundles, next_window_start

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnchoredCamera]:
    root = tmp_path_factory.mktemp("merge")
    anchored = anchored_camera(root / "net", make_camera_clip(root / "camera.mp4"))
    assert len(anchored.refs) == 2
    try:
        yield anchored
    finally:
        anchored.world.net.close()


def window(cam: AnchoredCamera, *segments: int) -> EvidenceBundle:
    return bundle_for(
        cam.world,
        CAMERA,
        [cam.refs[k] for k in segments],
        [cam.sealed[k] for k in segments],
    )


def test_windows_sharing_the_edge_anchor_merge_into_one_checkable_bundle(
    cam: AnchoredCamera,
) -> None:
    first, second = window(cam, 0, 1), window(cam, 1)
    merged = merge_bundles([first, second])
    whole = cam.bundle()
    # The shared anchor is kept once; everything else as in one bundle of both segments.
    assert [a.segment.sequence for a in merged.anchors] == [0, 1]
    assert merged.anchors == whole.anchors
    assert merged.headers == whole.headers
    assert merged.block_signatures == whole.block_signatures
    assert merged.config_updates == whole.config_updates and len(merged.config_updates) >= 1
    assert merged.genesis == whole.genesis
    assert set(merged.certificates) == set(whole.certificates)
    assert merged.camera_certificates == whole.camera_certificates
    clip = fingerprint_clip(cam.clip)
    verdict = check_bundle(merged, clip)
    assert verdict.ok, verdict.failures
    assert verdict.alignment is not None and verdict.alignment.verdict == Verdict.AUTHENTIC
    # Order does not matter; one window is itself.
    assert merge_bundles([second, first]).anchors == merged.anchors
    assert merge_bundles([first]) is first


def test_next_window_starts_at_the_last_anchor_of_the_window(cam: AnchoredCamera) -> None:
    s0, s1 = cam.refs[0].segment, cam.refs[1].segment
    both = window(cam, 0, 1)
    # A window ending inside segment 1: the next starts where segment 1 starts.
    assert next_window_start(both, (s0.capture_start_ms, s1.capture_start_ms + 1)) == (
        s1.capture_start_ms
    )
    # A window inside one segment: the next starts at the window's end (still inside it).
    inside = (s0.capture_start_ms + 100, s0.capture_start_ms + 200)
    assert next_window_start(both, inside) == inside[1]


def test_windows_whose_headers_leave_a_gap_are_refused(cam: AnchoredCamera) -> None:
    # Segment 0 and segment 1 alone: the configuration block between them is in neither.
    first, second = window(cam, 0), window(cam, 1)
    assert second.headers[0].number > first.headers[-1].number + 1, "no block between them"
    with pytest.raises(MergeError, match=r"leave a gap: blocks \d+-\d+ are in no window"):
        merge_bundles([first, second])


def test_conflicting_copies_of_a_shared_anchor_are_refused(cam: AnchoredCamera) -> None:
    first, second = window(cam, 0, 1), window(cam, 1)
    shared = second.anchors[0]
    recorded = replace(second, anchors=(replace(shared, validation_code=11),))
    with pytest.raises(
        MergeError, match=r"segment 1: validation code 0 in window 1, 11 in window 2"
    ):
        merge_bundles([first, recorded])
    fewer = replace(second, anchors=(replace(shared, records=shared.records[:-1]),))
    with pytest.raises(MergeError, match="segment 1: the frame records differ between windows"):
        merge_bundles([first, fewer])
    moved = replace(second, anchors=(replace(shared, tx=replace(shared.tx, index=5)),))
    with pytest.raises(MergeError, match=r"segment 1: hash \w+… in block \d+ tx \d+ in window 1"):
        merge_bundles([first, moved])


def test_conflicting_headers_configurations_and_genesis_are_refused(cam: AnchoredCamera) -> None:
    first, second = window(cam, 0, 1), window(cam, 1)
    header = second.headers[0]
    forked = replace(second, headers=(replace(header, data_hash=bytes(32)),))
    with pytest.raises(MergeError, match=rf"block {header.number}: header hash \w+… in window 1"):
        merge_bundles([first, forked])
    update = second.config_updates[0]
    other = replace(update, header=replace(update.header, data_hash=bytes(32)))
    reconfigured = replace(second, config_updates=(other, *second.config_updates[1:]))
    with pytest.raises(
        MergeError, match=rf"configuration block {update.header.number} differs between windows"
    ):
        merge_bundles([first, reconfigured])
    withheld = replace(second, config_updates=second.config_updates[1:])
    with pytest.raises(
        MergeError,
        match=rf"configuration block {update.header.number} is in another window's evidence, "
        "not in window 2's",
    ):
        merge_bundles([first, withheld])
    genesis = replace(second.genesis, header=replace(second.genesis.header, data_hash=bytes(32)))
    with pytest.raises(MergeError, match="different genesis blocks"):
        merge_bundles([first, replace(second, genesis=genesis)])
    other_camera = replace(second, metadata=replace(second.metadata, camera_id="CAM-X"))
    with pytest.raises(MergeError, match="window 2 is evidence of camera 'CAM-X'"):
        merge_bundles([first, other_camera])
