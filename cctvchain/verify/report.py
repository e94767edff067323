"""The verification report as JSON, and the terminal summary (pure).

JSON report (``schema`` ``cctvchain.verify.report/1``), the keys PRODUCT §4 requires
first:

* ``verdict`` — ``AUTHENTIC`` | ``AUTHENTIC_REENCODED`` | ``TAMPERED`` |
  ``UNVERIFIABLE`` (``null`` when a bundle was checked with no clip at all), ``reason``;
* ``camera`` — the camera id;
* ``anomalies`` — ``{kind, clip_start_s, clip_end_s, capture_start, capture_end}`` each
  (capture times ISO 8601 UTC with milliseconds), plus ``capture_start_ms`` /
  ``capture_end_ms``, ``first_frame`` / ``last_frame`` (clip frame indices), ``frames``,
  ``anchored_first`` / ``anchored_last`` (``{segment, index}``), ``tiles`` (``[row,
  column]`` of an 8x8 grid, for ``ALTERED``) and ``detail``;
* ``frames`` — clip frames by status (``EXACT``, ``PERCEPTUAL``, ``ALTERED``,
  ``INSERTED``, ``DUPLICATED``, ``REORDERED``, ``UNANCHORED``), ``MISSING`` anchored
  frames, ``total``;
* ``coverage`` — the capture time range covered, the clip's verified fraction, the
  anchored frames in that range and covered, the share of the supplied segments, and
  the clip ranges outside every anchored segment;

and then ``clip`` (path, name, SHA-256, size, container, codec, size in pixels, frame
count, duration), ``timeline`` (runs of one status), ``anchors`` (sequence, block, tx
index, tx id, capture range, frames, sampled, Merkle root, segment hash, anchoring
time, signer), ``camera_certificates``, ``evidence`` (ok, channel, genesis hash,
configuration sequence, the checks done, the failures), ``proves`` /
``does_not_prove``, ``notes``, ``tool`` and ``command``, ``generated``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cctvchain.verify.align import Alignment, Anomaly, FrameResult, FrameStatus, Verdict
from cctvchain.verify.result import VerifyResult

SCHEMA = "cctvchain.verify.report/1"


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _iso_dt(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _s(ms: int) -> float:
    return round(ms / 1000, 3)


PROVES = {
    Verdict.AUTHENTIC: (
        "Every verified frame of the clip is, bit for bit, the frame the camera fingerprinted "
        "at the stated capture time; the fingerprints were signed by the camera's certificate, "
        "endorsed by the channel's peers and ordered into orderer-signed blocks."
    ),
    Verdict.AUTHENTIC_REENCODED: (
        "The clip shows the content the camera anchored at the stated capture times, in order "
        "and complete, but it is not a bit-exact copy (it was re-encoded, rescaled or "
        "converted). Sampled frames were compared directly with the camera's perceptual "
        "fingerprints; the frames between them by their continuity."
    ),
    Verdict.TAMPERED: (
        "The clip differs from what the camera anchored, at the places listed: frames changed, "
        "missing, added, repeated or out of order."
    ),
    Verdict.UNVERIFIABLE: "Nothing about the clip could be established.",
}

DOES_NOT_PROVE = {
    Verdict.AUTHENTIC: (
        "It says nothing about what lies outside the picture or the covered time range, about "
        "whether the camera's clock was right, or about the scene being staged; a camera whose "
        "key was stolen before it was revoked could have signed other pictures."
    ),
    Verdict.AUTHENTIC_REENCODED: (
        "Small changes to frames that were not sampled (at the normal policy, all but one frame "
        "a second) can go unnoticed unless they show as a one-frame transient; bit-level "
        "identity is not established. Nothing about what lies outside the picture."
    ),
    Verdict.TAMPERED: (
        "It does not say who changed the clip, when, or why; a re-encoded copy's anomaly times "
        "are accurate to about a second."
    ),
    Verdict.UNVERIFIABLE: (
        "It does not prove the clip false: the clip may come from another camera or time range, "
        "or the evidence was not available."
    ),
}


def anomaly_json(a: Anomaly) -> dict[str, Any]:
    return {
        "kind": a.kind.value,
        "clip_start_s": _s(a.clip_start_ms),
        "clip_end_s": _s(a.clip_end_ms),
        "capture_start": iso(a.capture_start_ms),
        "capture_end": iso(a.capture_end_ms),
        "capture_start_ms": a.capture_start_ms,
        "capture_end_ms": a.capture_end_ms,
        "first_frame": a.first_frame,
        "last_frame": a.last_frame,
        "frames": a.frames,
        "anchored_first": (
            {"segment": a.anchored_first[0], "index": a.anchored_first[1]}
            if a.anchored_first
            else None
        ),
        "anchored_last": (
            {"segment": a.anchored_last[0], "index": a.anchored_last[1]}
            if a.anchored_last
            else None
        ),
        "tiles": [list(t) for t in a.tiles],
        "detail": a.detail,
    }


def timeline(frames: Sequence[FrameResult]) -> list[dict[str, Any]]:
    """Runs of consecutive clip frames with one status."""
    out = []
    for status, group in itertools.groupby(frames, key=lambda f: f.status):
        run = list(group)
        out.append(
            {
                "status": status.value,
                "first_frame": run[0].clip_index,
                "last_frame": run[-1].clip_index,
                "clip_start_s": _s(run[0].pts_ms),
                "clip_end_s": _s(run[-1].pts_ms),
            }
        )
    return out


def coverage_json(alignment: Alignment) -> dict[str, Any]:
    c = alignment.coverage
    return {
        "capture_start": iso(c.capture_start_ms),
        "capture_end": iso(c.capture_end_ms),
        "capture_start_ms": c.capture_start_ms,
        "capture_end_ms": c.capture_end_ms,
        "clip_frames": c.clip_frames,
        "clip_frames_verified": c.clip_frames_verified,
        "clip_fraction": round(c.clip_fraction, 6),
        "anchored_frames": c.anchored_frames,
        "anchored_start": iso(c.anchored_start_ms),
        "anchored_end": iso(c.anchored_end_ms),
        "anchored_in_span": c.anchored_in_span,
        "anchored_covered": c.anchored_covered,
        "span_fraction": round(c.span_fraction, 6),
        "fraction": round(c.fraction, 6),
        "unverified_clip_ranges_s": [[_s(a), _s(b)] for a, b in c.unanchored_clip_ranges_ms],
    }


def frames_json(alignment: Alignment | None) -> dict[str, int]:
    if alignment is None:
        return {}
    counts = alignment.counts()
    counts["total"] = len(alignment.frames)
    return counts


def build_report(result: VerifyResult) -> dict[str, Any]:
    """The JSON report (module docstring) as a dict ready for :func:`json.dumps`."""
    alignment = result.alignment
    evidence = result.evidence
    verdict = result.verdict
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "verdict": verdict.value if verdict is not None else None,
        "reason": result.reason,
        "camera": result.camera_id,
        "anomalies": [anomaly_json(a) for a in alignment.anomalies] if alignment else [],
        "frames": frames_json(alignment),
        "coverage": coverage_json(alignment) if alignment else None,
        "clip": None,
        "clip_fingerprints_from": result.clip_source,
        "timeline": timeline(alignment.frames) if alignment else [],
        "anchors": [],
        "camera_certificates": [],
        "evidence": None,
        "proves": PROVES.get(verdict) if verdict else "The evidence in the bundle holds.",
        "does_not_prove": DOES_NOT_PROVE.get(verdict)
        if verdict
        else "Nothing about any clip: none was given.",
        "notes": list(alignment.notes) if alignment else [],
        "tool": {"name": "cctvchain", "version": result.tool_version},
        "command": result.command,
        "generated": _iso_dt(result.generated),
    }
    if result.clip is not None:
        info = result.clip
        report["clip"] = {
            "path": info.path,
            "name": info.name,
            "sha256": info.sha256.hex(),
            "size": info.size,
            "container": info.container,
            "codec": info.codec,
            "width": info.width,
            "height": info.height,
            "frames": info.frames,
            "duration_s": _s(info.duration_ms),
        }
    if evidence is not None:
        report["anchors"] = [
            {
                "sequence": a.sequence,
                "block": a.block,
                "tx": a.tx,
                "tx_id": a.tx_id,
                "capture_start": iso(a.capture_start_ms),
                "capture_end": iso(a.capture_end_ms),
                "frames": a.frames,
                "sampled": a.sampled,
                "merkle_root": a.merkle_root.hex(),
                "segment_hash": a.segment_hash.hex(),
                "anchored_at": iso(a.anchored_ms),
                "signer": f"{a.creator} ({a.creator_msp})",
            }
            for a in evidence.anchors
        ]
        report["camera_certificates"] = [
            {
                "msp_id": c.msp_id,
                "subject": c.subject,
                "serial": f"{c.serial:x}",
                "not_before": _iso_dt(c.not_before),
                "not_after": _iso_dt(c.not_after),
                "sha256": c.sha256.hex(),
                "revoked_at": _iso_dt(c.revoked_at),
            }
            for c in evidence.cameras
        ]
        report["evidence"] = {
            "ok": evidence.ok,
            "source": result.source,
            "channel": evidence.channel_id,
            "genesis_hash": evidence.genesis_hash.hex(),
            "config_sequence": evidence.config_sequence,
            "checks": list(evidence.checks),
            "failures": list(evidence.failures),
        }
        report["notes"] = list(evidence.notes) + report["notes"]
    return report


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False) + "\n"


# -- terminal ------------------------------------------------------------------------------

_COLOURS = {
    "AUTHENTIC": "\033[1;32m",
    "AUTHENTIC_REENCODED": "\033[1;32m",
    "TAMPERED": "\033[1;31m",
    "UNVERIFIABLE": "\033[1;33m",
}
_RESET = "\033[0m"

_ORDER = [
    FrameStatus.EXACT,
    FrameStatus.PERCEPTUAL,
    FrameStatus.ALTERED,
    FrameStatus.INSERTED,
    FrameStatus.DUPLICATED,
    FrameStatus.REORDERED,
    FrameStatus.UNANCHORED,
]


def short_time(ms: int | None, reference: int | None = None) -> str:
    """``2026-01-01 00:00:05.040`` (UTC); the date is left out when it is the
    reference's."""
    if ms is None:
        return "-"
    t = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"
    if reference is not None:
        r = datetime.fromtimestamp(reference / 1000, tz=UTC)
        if r.date() == t.date():
            return text
    return t.strftime("%Y-%m-%d ") + text


def summary(result: VerifyResult, *, colour: bool = False) -> str:
    """A readable terminal summary of a result."""
    lines: list[str] = []
    verdict = result.verdict.value if result.verdict is not None else "EVIDENCE OK"
    head = f"{_COLOURS.get(verdict, '')}{verdict}{_RESET}" if colour else verdict
    lines.append(f"{head} — {result.reason}")
    evidence = result.evidence
    camera = f"{result.camera_id}"
    if evidence is not None and evidence.cameras:
        c = evidence.cameras[0]
        camera += f" (certificate {c.subject}, {c.msp_id}, serial {c.serial:x}"
        camera += f", revoked {_iso_dt(c.revoked_at)})" if c.revoked_at else ")"
    lines.append(f"  camera    {camera}")
    if result.clip is not None:
        info = result.clip
        lines.append(
            f"  clip      {info.name}  {info.frames} frames, {info.duration_ms / 1000:.2f} s, "
            f"{info.codec} {info.width}x{info.height}, sha256 {info.sha256.hex()[:16]}…"
            + ("  (fingerprints from the bundle)" if result.clip_source == "bundle" else "")
        )
    alignment = result.alignment
    if alignment is not None:
        cov = alignment.coverage
        if cov.capture_start_ms is not None:
            lines.append(
                f"  covers    {short_time(cov.capture_start_ms)} → "
                f"{short_time(cov.capture_end_ms, cov.capture_start_ms)} UTC  "
                f"({cov.clip_fraction:.0%} of the clip verified; "
                f"{cov.anchored_covered} of {cov.anchored_in_span} anchored frames in that "
                f"range; {cov.fraction:.0%} of the anchored segments)"
            )
        counts = alignment.counts()
        parts = [f"{counts[s.value]} {s.value.lower()}" for s in _ORDER if counts[s.value]]
        if counts["MISSING"]:
            parts.append(f"{counts['MISSING']} missing")
        lines.append(f"  frames    {' · '.join(parts) or 'none'}")
    if evidence is not None:
        if evidence.ok:
            blocks = sorted({a.block for a in evidence.anchors})
            span = f"blocks {blocks[0]}-{blocks[-1]}" if blocks else "no blocks"
            records = sum(a.frames for a in evidence.anchors)
            lines.append(
                f"  evidence  {len(evidence.anchors)} anchor(s) in {span}: orderer-signed, "
                f"camera-signed, endorsed; {records} frame records proven; channel "
                f"{evidence.channel_id}, genesis {evidence.genesis_hash.hex()[:16]}…"
            )
        else:
            lines.append("  evidence  DOES NOT HOLD:")
            lines.extend(f"            - {f}" for f in evidence.failures)
    if alignment is not None and alignment.anomalies:
        lines.append("")
        reference = alignment.coverage.capture_start_ms
        rows = [("ANOMALY", "CLIP TIME (s)", "CAPTURE TIME (UTC)", "FRAMES", "DETAIL")]
        for a in alignment.anomalies:
            rows.append(
                (
                    a.kind.value,
                    f"{a.clip_start_ms / 1000:.3f} - {a.clip_end_ms / 1000:.3f}",
                    f"{short_time(a.capture_start_ms, reference)} - "
                    f"{short_time(a.capture_end_ms, reference)}",
                    str(a.frames),
                    (a.detail[:70] + "…") if len(a.detail) > 71 else a.detail,
                )
            )
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        for r in rows:
            lines.append("  " + "  ".join(r[k].ljust(widths[k]) for k in range(4)) + "  " + r[4])
    notes = list(evidence.notes) if evidence is not None else []
    if alignment is not None:
        notes += list(alignment.notes)
    if notes:
        lines.append("")
        lines.extend(f"  note: {n}" for n in notes)
    return "\n".join(lines) + "\n"
