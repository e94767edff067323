"""A verification's outcome, however it was reached, and its exit code (pure).

Two ways in:

* :func:`result_from_bundle` — after :func:`~cctvchain.verify.bundle.check_bundle`: the
  evidence checked offline (``verify-bundle``), or fetched from the network and checked
  the same way (``verify``: the network half builds a bundle from what the peers
  serve — blocks, anchors, records with proofs — and checks it, so that no single
  peer is trusted);
* :func:`verify_clip` — the alignment alone, for frame records the caller has already
  verified (it is what the network half calls once it holds checked segments);
* :func:`unverifiable` — nothing to align (no access, no anchors, unreadable evidence).

Exit codes (PRODUCT §4): 0 ``AUTHENTIC`` / ``AUTHENTIC_REENCODED``, 3 ``TAMPERED``,
4 ``UNVERIFIABLE``, 2 a usage error, 1 any other failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cctvchain import __version__
from cctvchain.chaincode.cctv.model import Segment
from cctvchain.ingest.fingerprint import FrameRecord
from cctvchain.verify.align import Alignment, AlignParams, Verdict, align, anchored_frames
from cctvchain.verify.bundle import BundleVerdict
from cctvchain.verify.fingerprints import ClipFingerprints, ClipInfo

EXIT_AUTHENTIC = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_TAMPERED = 3
EXIT_UNVERIFIABLE = 4

_EXIT = {
    Verdict.AUTHENTIC: EXIT_AUTHENTIC,
    Verdict.AUTHENTIC_REENCODED: EXIT_AUTHENTIC,
    Verdict.TAMPERED: EXIT_TAMPERED,
    Verdict.UNVERIFIABLE: EXIT_UNVERIFIABLE,
}


def exit_code(verdict: Verdict | None) -> int:
    """The process exit code for a verdict (None: evidence checked, no clip: 0)."""
    return EXIT_AUTHENTIC if verdict is None else _EXIT[verdict]


@dataclass(frozen=True)
class VerifyResult:
    """Everything a report says."""

    verdict: Verdict | None  # None: a bundle checked without any clip fingerprints
    reason: str
    camera_id: str
    clip: ClipInfo | None
    alignment: Alignment | None
    evidence: BundleVerdict | None
    source: str  # "bundle" | "network" | ""
    tool_version: str
    command: str
    generated: datetime = field(default_factory=lambda: datetime.now(UTC))
    clip_source: str | None = None  # "clip" | "bundle"

    @property
    def exit_code(self) -> int:
        return exit_code(self.verdict)


def _version() -> str:
    return __version__


def verify_clip(
    clip: ClipFingerprints,
    camera_id: str,
    segments: Sequence[tuple[Segment, Sequence[FrameRecord]]],
    *,
    evidence: BundleVerdict | None = None,
    source: str = "network",
    command: str = "",
    params: AlignParams | None = None,
) -> VerifyResult:
    """Align ``clip`` with the frame records of already verified ``segments``.

    The caller vouches for the segments (e.g. they come from a bundle that
    :func:`~cctvchain.verify.bundle.check_bundle` accepted; pass its verdict as
    ``evidence`` so the report lists the proofs).
    """
    if not segments:
        return unverifiable(
            camera_id,
            f"no anchored segment of camera {camera_id} covers the clip",
            clip=clip.info,
            evidence=evidence,
            source=source,
            command=command,
        )
    alignment = align(clip.frames, anchored_frames(segments), params)
    return VerifyResult(
        verdict=alignment.verdict,
        reason=alignment.reason,
        camera_id=camera_id,
        clip=clip.info,
        alignment=alignment,
        evidence=evidence,
        source=source,
        tool_version=_version(),
        command=command,
        clip_source="clip",
    )


def unverifiable(
    camera_id: str,
    reason: str,
    *,
    clip: ClipInfo | None = None,
    evidence: BundleVerdict | None = None,
    source: str = "",
    command: str = "",
) -> VerifyResult:
    """An ``UNVERIFIABLE`` result with its reason (e.g. Algorithm 1 denied access)."""
    return VerifyResult(
        verdict=Verdict.UNVERIFIABLE,
        reason=reason,
        camera_id=camera_id,
        clip=clip,
        alignment=None,
        evidence=evidence,
        source=source,
        tool_version=_version(),
        command=command,
    )


def result_from_bundle(
    evidence: BundleVerdict, *, source: str = "bundle", command: str = ""
) -> VerifyResult:
    """The outcome of a checked bundle: evidence that does not hold is ``UNVERIFIABLE``
    (its first failure is the reason); otherwise the alignment's verdict, if a clip (or
    the bundled clip fingerprints) was aligned."""
    clip = evidence.clip.info if evidence.clip is not None else None
    if not evidence.ok:
        return VerifyResult(
            verdict=Verdict.UNVERIFIABLE,
            reason=f"the evidence does not hold: {evidence.failures[0]}",
            camera_id=evidence.camera_id,
            clip=clip,
            alignment=None,
            evidence=evidence,
            source=source,
            tool_version=_version(),
            command=command,
            clip_source=evidence.clip_source,
        )
    alignment = evidence.alignment
    if alignment is None:
        return VerifyResult(
            verdict=None,
            reason="the evidence holds (no clip to verify against it)",
            camera_id=evidence.camera_id,
            clip=None,
            alignment=None,
            evidence=evidence,
            source=source,
            tool_version=_version(),
            command=command,
        )
    reason = alignment.reason
    if evidence.clip_source == "bundle":
        reason += " (from the clip fingerprints in the bundle, not from the clip itself)"
    return VerifyResult(
        verdict=alignment.verdict,
        reason=reason,
        camera_id=evidence.camera_id,
        clip=clip,
        alignment=alignment,
        evidence=evidence,
        source=source,
        tool_version=_version(),
        command=command,
        clip_source=evidence.clip_source,
    )
