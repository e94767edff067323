#!/usr/bin/env python3
"""Benchmark: verifying a 1080p25 H.264 clip against its evidence bundle, beside
decode-only of the same clip in the same run (goal: verify >= 0.8 x decode-only).

Set-up (not timed): Debian's ffmpeg generates a 1080p25 clip like an IP camera's stream
(``testsrc2``, one keyframe a second, no B-frames; ``--seconds`` long, as
``bench_ingest.py``). The media shell decodes it once and the real
:class:`~cctvchain.ingest.segment.Segmenter` cuts it into 10 s segments (normal policy);
a camera registered and approved on a real in-process network (``anchored_camera.py``:
CAs, X.509 certificates, LevelDB ledgers, endorsement, ordering, commit) anchors them
with its own identity, and the evidence bundle is built from a peer's ledger
(:func:`~cctvchain.verify.bundle.build_bundle`) and written to a file.

Timed, alternating ``--rounds`` times, the best round of each reported:

* **decode-only**: every frame decoded by the decoder path the verifier uses
  (:class:`~cctvchain.media.VideoSource`, FFmpeg's frame threading), nothing else;
* **verify**: ``cctvchain verify-bundle BUNDLE CLIP`` run in this process through the
  CLI's own entry point (``--quiet --json``): read the bundle, decode the clip once with
  the exact digest of every frame (perceptual fingerprints only where a digest is not
  anchored, and next to such frames), check the bundle (genesis and configuration
  chain, headers, orderer signatures, anchor transactions, camera certificate, Merkle
  proofs), align the clip to the anchored frames, classify, write the JSON report.

Also measured: the same on a re-encoded copy of the clip (``--reencode``, default on:
no frame is bit-exact, so every frame gets a perceptual fingerprint; its verdict is
``AUTHENTIC_REENCODED``), against decode-only of that copy; where the time goes in one
verification (bundle, decode + fingerprints, evidence checks, alignment, report); and
the CPU milliseconds per frame of decoding, of the exact digest and of a perceptual
fingerprint on one thread, so that a missed goal can be explained. Timings are printed,
never asserted.

    .venv/bin/python scripts/bench_verify.py [--seconds 20] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from anchored_camera import POLICIES, CameraNetwork, make_clip, reencode, segment_clip

from cctvchain.cli.main import main as cctvchain_main
from cctvchain.ingest import perceptual as P
from cctvchain.ingest.fingerprint import frame_digest
from cctvchain.media import DecodedFrame, VideoSource
from cctvchain.verify import clip as verify_clip
from cctvchain.verify.align import align, anchored_frames
from cctvchain.verify.bundle import anchored_digests, check_bundle, read_bundle
from cctvchain.verify.report import build_report, dumps
from cctvchain.verify.result import result_from_bundle

GOAL = 0.8
CAMERA = "BENCH-VERIFY"
SEGMENT_MS = 10_000
PROFILE_FRAMES = 50  # frames decoded and held for the per-frame CPU costs


@dataclass(frozen=True)
class Run:
    frames: int
    wall_s: float
    cpu_s: float  # CPU time of the whole process (every thread, FFmpeg's too)
    verdict: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / self.frames


def timed(work: Callable[[], tuple[int, str]]) -> Run:
    wall, cpu = time.perf_counter(), time.process_time()
    frames, verdict = work()
    return Run(frames, time.perf_counter() - wall, time.process_time() - cpu, verdict)


def decode_only(clip: Path) -> tuple[int, str]:
    """The verifier's decoder path (``verify.clip.fingerprint_clip``), no hashing."""
    frames = 0
    with VideoSource(clip) as video:
        for _ in video.frames(lookahead=False):
            frames += 1
    return frames, ""


def verify_bundle(bundle: Path, clip: Path, report: Path) -> tuple[int, str]:
    """``cctvchain verify-bundle BUNDLE CLIP --quiet --json REPORT``, in this process."""
    code = cctvchain_main(
        ["verify-bundle", str(bundle), str(clip), "--quiet", "--json", str(report)]
    )
    data = json.loads(report.read_text())
    if code not in (0, 3, 4) or "clip" not in data:
        raise RuntimeError(f"verify-bundle exited with {code}: {data.get('reason')}")
    return int(data["clip"]["frames"]), str(data["verdict"])


def phases(bundle_path: Path, clip: Path) -> dict[str, Any]:
    """One verification step by step, as ``verify_cmd.finish`` runs it: seconds each."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    bundle = read_bundle(bundle_path.read_bytes())
    known = anchored_digests(bundle)
    out["read the bundle"] = time.perf_counter() - start
    start = time.perf_counter()
    fingerprints = verify_clip.fingerprint_clip(clip, known_digests=known)
    out["decode + exact digests + perceptual where needed"] = time.perf_counter() - start
    start = time.perf_counter()
    evidence = check_bundle(bundle, fingerprints)
    checked = time.perf_counter() - start
    # The alignment again on its own (check_bundle ran it last, on the verified segments).
    start = time.perf_counter()
    align(fingerprints.frames, anchored_frames(evidence.segments))
    aligned = time.perf_counter() - start
    out["check the evidence (signatures, proofs, certificates)"] = max(0.0, checked - aligned)
    out["align and classify"] = aligned
    start = time.perf_counter()
    result = result_from_bundle(evidence, source="bundle", command="bench")
    report = build_report(result)
    dumps(report)
    out["verdict and JSON report"] = time.perf_counter() - start
    return {
        "seconds": out,
        "frames": len(fingerprints.frames),
        "perceptual_frames": fingerprints.perceptual_frames,
        "verdict": report["verdict"],
        "frame_counts": report["frames"],
        "anomalies": [
            {k: a.get(k) for k in ("kind", "clip_start_s", "clip_end_s")}
            for a in report["anomalies"]
        ],
    }


def per_frame_costs(clip: Path, count: int = PROFILE_FRAMES) -> dict[str, float]:
    """CPU ms per frame on one thread: the exact digest and the perceptual fingerprint
    (the verifier's thumbnail with a reused scaler), over ``count`` decoded frames."""
    frames: list[DecodedFrame] = []
    with VideoSource(clip) as video:
        for frame in video.frames(lookahead=False):
            frames.append(frame)
            if len(frames) >= count:
                break
    # The verifier's perceptual step; the media shell's public path if it is renamed.
    perceptual: Callable[[DecodedFrame], Any] = getattr(
        verify_clip, "_perceptual", lambda f: P.fingerprint(f.thumbnail())
    )
    start = time.thread_time()
    for frame in frames:
        frame_digest(frame.picture)
    digest = (time.thread_time() - start) * 1000 / len(frames)
    start = time.thread_time()
    for frame in frames:
        perceptual(frame)
    fingerprint = (time.thread_time() - start) * 1000 / len(frames)
    return {"exact digest": digest, "perceptual fingerprint": fingerprint}


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "pyav": av.__version__,
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def anchor_clip(clip: Path, seconds: float, directory: Path) -> tuple[Path, int]:
    """Anchor ``clip`` on an in-process network; write its evidence bundle. Returns the
    bundle's path and the number of segments."""
    world = CameraNetwork.create(directory / "net")
    try:
        world.add_camera(CAMERA, "normal")
        origin = (world.net.clock.now_ms - int(seconds * 1000) - 60_000) // SEGMENT_MS * SEGMENT_MS
        sealed = segment_clip(clip, {CAMERA: POLICIES["normal"]}, origin, SEGMENT_MS)[CAMERA]
        refs = [world.anchor(CAMERA, s)[0] for s in sealed]
        bundle = world.bundle(CAMERA, refs, sealed)
    finally:
        world.close()
    path = directory / "clip.bundle"
    path.write_bytes(bundle.encode())
    return path, len(sealed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument(
        "--reencode",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also verify a re-encoded copy (default: yes)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1:
        parser.error("--seconds and --rounds must be positive")
    info = machine()
    print("machine")
    for key, value in info.items():
        print(f"  {key:<13} {value}")
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        directory = Path(tmp)
        clip = directory / "clip-1080p25.mp4"
        print(f"\ngenerating a {args.seconds:g} s 1080p25 H.264 clip ...", flush=True)
        make_clip(clip, args.seconds)
        print("anchoring its segments on an in-process network ...", flush=True)
        bundle, segments = anchor_clip(clip, args.seconds, directory)
        print(f"  {segments} segments anchored; bundle {bundle.stat().st_size:,} bytes", flush=True)
        report = directory / "report.json"
        stages: dict[str, Callable[[], tuple[int, str]]] = {
            "decode-only": lambda: decode_only(clip),
            "verify": lambda: verify_bundle(bundle, clip, report),
        }
        copy = directory / "clip-reencoded.mp4"
        if args.reencode:
            print("re-encoding a copy (crf 30) ...", flush=True)
            reencode(clip, copy)
            stages["decode-only (re-encoded copy)"] = lambda: decode_only(copy)
            stages["verify (re-encoded copy)"] = lambda: verify_bundle(bundle, copy, report)
        runs: dict[str, list[Run]] = {name: [] for name in stages}
        for round_number in range(1, args.rounds + 1):
            for name, work in stages.items():
                runs[name].append(timed(work))
            print(
                f"  round {round_number}: "
                + ", ".join(f"{name} {runs[name][-1].fps:6.1f} fps" for name in stages),
                flush=True,
            )
        profile = phases(bundle, clip)
        profile_copy = phases(bundle, copy) if args.reencode else None
        costs = per_frame_costs(clip)
    frames = runs["decode-only"][0].frames
    fps = {name: max(r.fps for r in found) for name, found in runs.items()}
    cpu = {name: min(r.cpu_ms for r in found) for name, found in runs.items()}
    verdicts = {name: found[-1].verdict for name, found in runs.items() if found[-1].verdict}
    ratio = fps["verify"] / fps["decode-only"]
    costs = {"decoding (decode-only run, all threads)": cpu["decode-only"], **costs}
    print(f"\n1080p25 H.264, {frames} frames, {segments} anchored segments")
    print(f"  {'':<32}{'frames/s':>10}{'CPU ms/frame':>14}   (best of {args.rounds} rounds)")
    for name in stages:
        verdict = f"   {verdicts[name]}" if name in verdicts else ""
        print(f"  {name:<32}{fps[name]:>10.1f}{cpu[name]:>14.2f}{verdict}")
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"  {'ratio':<32}{ratio:>10.2f}   verify / decode-only (goal >= {GOAL}: {verdict})")
    ratio_copy = None
    if args.reencode:
        ratio_copy = fps["verify (re-encoded copy)"] / fps["decode-only (re-encoded copy)"]
        print(f"  {'ratio, re-encoded copy':<32}{ratio_copy:>10.2f}")
    print("\nwhere one verification's time goes (seconds)")
    for name, found in (("decode-exact clip", profile), ("re-encoded copy", profile_copy)):
        if found is None:
            continue
        print(f"  {name}: {found['verdict']}, {found['perceptual_frames']} perceptual fingerprints")
        for anomaly in found["anomalies"]:
            print(
                f"    anomaly {anomaly['kind']} at {anomaly['clip_start_s']}"
                f"-{anomaly['clip_end_s']} s of the clip"
            )
        for phase, seconds in found["seconds"].items():
            print(f"    {phase:<58}{seconds:>8.3f}")
    print("CPU ms per frame on one thread")
    for part, ms in costs.items():
        print(f"  {part:<60}{ms:>6.2f}")
    if args.json is not None:
        figures: dict[str, Any] = {
            "machine": info,
            "frames": frames,
            "segments": segments,
            "rounds": args.rounds,
            "fps": fps,
            "cpu_ms_per_frame": cpu,
            "verdicts": verdicts,
            "ratio": ratio,
            "ratio_reencoded": ratio_copy,
            "cpu_ratio": cpu["decode-only"] / cpu["verify"],
            "profile": profile,
            "profile_reencoded": profile_copy,
            "per_frame_ms": costs,
            "goal": GOAL,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
