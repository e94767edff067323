"""Evidence bundles from a real in-process network: a clip anchored by the camera's own
identity, checked offline; a byte altered in any part fails with a reason that names it;
a later revocation of the camera's certificate is a note, a backdated one a failure."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from cctv_helpers import CITY, commit_config, config_tx, current_config, majority
from verify_world import (
    CAMERA,
    NORMAL,
    AnchoredCamera,
    anchor_sealed,
    anchored_camera,
    bundle_for,
    make_camera_clip,
)

from cctvchain.crypto import sha256
from cctvchain.ingest import perceptual as P
from cctvchain.ingest.segment import Segmenter
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.verify.align import Verdict
from cctvchain.verify.bundle import (
    BundleError,
    EvidenceBundle,
    anchored_digests,
    check_bundle,
    read_bundle,
)
from cctvchain.verify.clip import fingerprint_clip
from cctvchain.verify.fingerprints import ClipFingerprints

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def cam(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnchoredCamera]:
    root = tmp_path_factory.mktemp("bundle")
    clip = make_camera_clip(root / "camera.mp4")
    anchored = anchored_camera(root / "net", clip)
    try:
        yield anchored
    finally:
        anchored.world.net.close()


@pytest.fixture(scope="module")
def fingerprints(cam: AnchoredCamera) -> ClipFingerprints:
    return fingerprint_clip(cam.clip)


@pytest.fixture(scope="module")
def bundle(cam: AnchoredCamera, fingerprints: ClipFingerprints) -> EvidenceBundle:
    return cam.bundle(fingerprints, command="cctvchain verify camera.mp4 --camera CAM-V1")


def test_a_bundle_holds_the_evidence_and_checks_offline(
    cam: AnchoredCamera, bundle: EvidenceBundle, fingerprints: ClipFingerprints
) -> None:
    assert len(bundle.anchors) == len(cam.sealed) >= 2
    assert len(bundle.config_updates) == 1
    blocks = [a.tx.block for a in bundle.anchors]
    assert [h.number for h in bundle.headers] == list(range(min(blocks), max(blocks) + 1))
    assert read_bundle(bundle.encode()) == bundle
    verdict = check_bundle(bundle)
    assert verdict.ok, verdict.failures
    assert verdict.camera_id == CAMERA and verdict.channel_id == "cctv"
    genesis = cam.world.net.peers[0].ledger.get_block(0).hash()
    assert verdict.genesis_hash == genesis
    assert [a.sequence for a in verdict.anchors] == [s.sequence for s in cam.sealed]
    assert [(a.block, a.tx) for a in verdict.anchors] == [(r.block, r.tx) for r in cam.refs]
    [camera] = verdict.cameras
    assert camera.msp_id == cam.identity.msp_id and camera.revoked_at is None
    assert any("header chain" in c for c in verdict.checks)
    assert any("configuration sequence 1" in c for c in verdict.checks)
    # Without a clip the bundled fingerprints re-derive the verdict.
    assert verdict.clip_source == "bundle"
    assert verdict.alignment is not None and verdict.alignment.verdict == Verdict.AUTHENTIC
    # With the clip decoded again: the same frames, AUTHENTIC, all covered.
    again = fingerprint_clip(cam.clip, known_digests=anchored_digests(bundle))
    assert again.perceptual_frames == 0  # a decode-exact copy costs digests only
    checked = check_bundle(bundle, again, expected_genesis=genesis)
    assert checked.ok and checked.clip_source == "clip" and checked.clip_matches_bundle
    assert checked.alignment is not None
    assert checked.alignment.verdict == Verdict.AUTHENTIC
    assert checked.alignment.coverage.fraction == 1.0
    assert checked.alignment.counts()["EXACT"] == len(fingerprints.frames)


def test_the_genesis_hash_can_be_pinned(bundle: EvidenceBundle) -> None:
    verdict = check_bundle(bundle, expected_genesis=bytes(32))
    assert not verdict.ok
    assert verdict.failures[0].startswith("genesis: block hash")
    assert verdict.alignment is None


def _flip(data: bytes, part: bytes, *, at: float = 0.5) -> bytes:
    """``data`` with one byte changed inside the first occurrence of ``part``."""
    start = data.find(part)
    assert start >= 0, "part not found in the bundle's bytes"
    pos = start + min(len(part) - 1, max(0, int(len(part) * at)))
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


def _failures(data: bytes) -> str:
    try:
        bundle = read_bundle(data)
    except BundleError as exc:
        return str(exc)
    verdict = check_bundle(bundle)
    assert not verdict.ok, "an altered bundle passed"
    return " | ".join(verdict.failures)


def test_an_altered_byte_in_each_part_fails_with_a_precise_reason(
    bundle: EvidenceBundle,
) -> None:
    data = bundle.encode()
    anchor = bundle.anchors[-1]
    record = anchor.records[17]
    middle = bundle.headers[len(bundle.headers) // 2]
    cases = {
        "frame record": (record.record, 0.9, "frame record 17"),
        "record proof": (record.encode(), 0.3, "frame record 17"),  # its proof
        "anchor transaction": (anchor.tx.transaction, 0.5, "inclusion proof under the block"),
        "transaction proof": (
            anchor.tx.proof[0] if anchor.tx.proof else anchor.tx.transaction,
            0.5,
            "inclusion proof under the block",
        ),
        "block header": (middle.data_hash, 0.5, "block"),
        "orderer signature": (
            bundle.block_signatures[0].signatures[0].signature,
            0.5,
            "no valid orderer signature",
        ),
        "genesis": (bundle.genesis.tx.transaction, 0.6, "genesis"),
        "configuration update": (
            bundle.config_updates[0].tx.transaction,
            0.7,
            "configuration update 1",
        ),
        "configuration signature": (
            bundle.config_updates[0].signatures[0].signature,
            0.5,
            "configuration update 1",
        ),
        "metadata": (bundle.metadata.command.encode(), 0.5, "'metadata'"),
        "clip fingerprints": (
            bundle.clip.digests if bundle.clip else b"",
            0.5,
            "'clip fingerprints'",
        ),
        "checksums": (bundle.checksums.validation_codes, 0.5, "'validation codes'"),
        "camera certificate list": (bundle.camera_certificates[0], 0.5, "camera certificates"),
    }
    for name, (part, at, expected) in cases.items():
        reason = _failures(_flip(data, part, at=at))
        assert expected in reason, (name, reason)
    # The anchored segment itself (its Merkle root): no longer what the camera signed.
    forged = replace(anchor, segment=replace(anchor.segment, merkle_root=bytes(32)))
    altered = replace(bundle, anchors=(*bundle.anchors[:-1], forged))
    assert "anchors another segment" in _failures(altered.encode())
    # A validation code other than VALID (re-checksummed to isolate the check).
    invalid = replace(anchor, validation_code=int(TxValidationCode.MVCC_READ_CONFLICT))
    relabelled = replace(bundle, anchors=(*bundle.anchors[:-1], invalid))
    reason = _failures(relabelled.encode())
    assert "MVCC_READ_CONFLICT" in reason and "'validation codes'" in reason


def test_any_altered_byte_anywhere_fails(bundle: EvidenceBundle) -> None:
    data = bundle.encode()
    rng = random.Random(7)
    positions = sorted(rng.sample(range(len(data)), 120))
    for pos in positions:
        changed = data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1 :]
        assert _failures(changed), pos


def test_missing_or_reordered_parts_fail(bundle: EvidenceBundle) -> None:
    assert check_bundle(replace(bundle, anchors=bundle.anchors[:1], clip=None)).failures == (
        "checksums: the unsigned part 'validation codes' (or its checksum) was altered: its "
        "SHA-256 does not match",
        "checksums: the unsigned part 'clip fingerprints' (or its checksum) was altered: its "
        "SHA-256 does not match",
    )
    if len(bundle.anchors) >= 3:
        gap = replace(bundle, anchors=(bundle.anchors[0], bundle.anchors[2]))
        assert "must be consecutive" in " ".join(check_bundle(gap).failures)
    no_headers = replace(bundle, headers=bundle.headers[1:])
    assert "not among the bundled headers" in " ".join(check_bundle(no_headers).failures)
    short = replace(
        bundle,
        anchors=(
            *bundle.anchors[:-1],
            replace(bundle.anchors[-1], records=bundle.anchors[-1].records[:-1]),
        ),
    )
    assert "frame records for" in " ".join(check_bundle(short).failures)
    swapped = list(bundle.anchors[0].records)
    swapped[3], swapped[4] = swapped[4], swapped[3]
    reordered = replace(
        bundle, anchors=(replace(bundle.anchors[0], records=tuple(swapped)), *bundle.anchors[1:])
    )
    assert "carries index" in " ".join(check_bundle(reordered).failures)
    other = replace(bundle, metadata=replace(bundle.metadata, camera_id="CAM-OTHER"))
    assert "of camera 'CAM-V1', not 'CAM-OTHER'" in " ".join(check_bundle(other).failures)


def test_a_later_revocation_is_a_note_a_backdated_one_a_failure(cam: AnchoredCamera) -> None:
    world = cam.world
    net = world.net
    city = net.orgs[CITY]
    # A second camera anchors one short segment now.
    spare = world.approved_camera("CAM-V2")
    segmenter = Segmenter("CAM-V2", NORMAL)
    start = net.clock.now_ms - 5000
    still = P.fingerprint(np.full((64, 64), 90.0))
    for k in range(5):
        segmenter.add(k * 40, start + k * 40, sha256(bytes([k])), lambda: still)
    sealed = segmenter.flush()
    assert sealed is not None
    ref = anchor_sealed(world, spare, sealed)
    # Then both certificates are revoked: CAM-V1's as of now, after its anchors; CAM-V2's
    # dated an hour before its anchor (a key compromise found out later).
    net.clock.advance(60_000)
    city.revoke(name=cam.identity.name, now=net.clock.now, reason="cessationOfOperation")
    city.revoke(name=spare.name, now=net.clock.now - timedelta(hours=1), reason="keyCompromise")
    organizations = tuple(
        city.organization_config(crls=[city.crl(net.clock.now)])
        if org.msp_id == city.msp_id
        else org
        for org in current_config(net).organizations
    )
    commit_config(net, config_tx(net, majority(net), organizations=organizations))
    later = check_bundle(cam.bundle())
    assert later.ok, later.failures
    assert later.cameras[0].revoked_at is not None
    assert any("after these anchors were made" in note for note in later.notes)
    backdated = check_bundle(bundle_for(world, "CAM-V2", [ref], [sealed]))
    assert not backdated.ok
    [failure] = backdated.failures
    assert "is revoked as of" in failure and "before this segment was anchored" in failure
