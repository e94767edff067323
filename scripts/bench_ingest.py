#!/usr/bin/env python3
"""Benchmark: the frame extractor's ingest rate beside decode-only, in the same run.

Debian's ffmpeg generates a 1080p25 H.264 clip (``testsrc2``, one keyframe a second, no
B-frames, like an IP camera's stream; ``--seconds`` long) in a temporary directory. Then,
alternating ``--rounds`` times on the same clip with the same decoder settings (PyAV,
FFmpeg's frame threading, ``--threads``):

* **decode-only**: every frame decoded into its canonical planes
  (:class:`~cctvchain.media.VideoSource`), nothing else;
* **ingest**: the extractor's capture pipeline without the network
  (:meth:`~cctvchain.ingest.extractor.Extractor.capture_only`): decode, the exact digest
  of every frame (on a worker thread, one frame of lookahead), the sampling policy and
  perceptual fingerprints of sampled frames, segments with their Merkle roots, and the
  durable spool's fsynced writes — everything ``cctvchain ingest`` does before the
  network.

The best round of each is reported, with the ratio (goal >= 0.9) and how many 25 fps
cameras the machine (and one core) could ingest in real time. Timings are printed, never
asserted.

    .venv/bin/python scripts/bench_ingest.py [--seconds 20] [--rounds 3] [--policy normal]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from cctvchain.chaincode.cctv.model import SamplingPolicy
from cctvchain.ingest.extractor import Extractor, ExtractorSettings
from cctvchain.media import VideoSource

FFMPEG = "/usr/bin/ffmpeg"
GOAL = 0.9
CAMERA_FPS = 25
POLICIES = {
    "normal": SamplingPolicy("normal", 1),
    "high": SamplingPolicy("high", 5),
    "all": SamplingPolicy("all", 0),
}


def make_clip(path: Path, seconds: float) -> None:
    ffmpeg = shutil.which("ffmpeg") or FFMPEG
    command = [
        *(ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
        *("-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={CAMERA_FPS}"),
        *("-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"),
        *("-g", str(CAMERA_FPS), "-bf", "0", "-pix_fmt", "yuv420p", str(path)),
    ]
    subprocess.run(command, check=True)


@dataclass(frozen=True)
class Run:
    frames: int
    wall_s: float
    cpu_s: float  # CPU time of the whole process (every thread, FFmpeg's too)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / self.frames


def timed(work: Callable[[], int]) -> Run:
    wall, cpu = time.perf_counter(), time.process_time()
    frames = work()
    return Run(frames, time.perf_counter() - wall, time.process_time() - cpu)


def decode_only(clip: Path, threads: int) -> int:
    frames = 0
    with VideoSource(clip, threads=threads) as source:
        for _ in source.frames(lookahead=False):
            frames += 1
    return frames


def decode_and_digest(clip: Path, threads: int) -> int:
    frames = 0
    with VideoSource(clip, threads=threads) as source:
        for frame in source.frames():
            frame.digest  # noqa: B018 -- computed on the lookahead thread
            frames += 1
    return frames


def ingest(clip: Path, spool: Path, threads: int, policy: SamplingPolicy) -> int:
    shutil.rmtree(spool, ignore_errors=True)
    settings = ExtractorSettings(
        camera_id="bench",
        source=str(clip),
        spool_dir=spool,
        policy=policy,
        capture_origin_ms=1_767_225_600_000,
        decoder_threads=threads,
    )
    extractor = Extractor(settings, None)
    metrics = extractor.capture_only()
    assert metrics.frames_fingerprinted == metrics.frames_seen
    assert len(extractor.spool) == metrics.segments_sealed > 0
    return metrics.frames_fingerprinted


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument(
        "--threads", type=int, default=0, help="decoder threads (default 0: FFmpeg chooses)"
    )
    parser.add_argument("--policy", choices=sorted(POLICIES), default="normal")
    parser.add_argument("--clip", type=Path, help="use this clip instead of generating one")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    print("machine")
    print(f"  {'cpu':<13} {platform.processor() or platform.machine()}, {cores} cores")
    print(f"  {'python':<13} {sys.version.split()[0]}, PyAV {av.__version__}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        clip = args.clip or Path(tmp) / "clip-1080p25.mp4"
        if args.clip is None:
            print(f"\ngenerating a {args.seconds:g} s 1080p25 H.264 clip ...", flush=True)
            make_clip(clip, args.seconds)
        spool = Path(tmp) / "spool"
        policy = POLICIES[args.policy]
        stages: dict[str, Callable[[], int]] = {
            "decode-only": lambda: decode_only(clip, args.threads),
            "decode+digest": lambda: decode_and_digest(clip, args.threads),
            "ingest": lambda: ingest(clip, spool, args.threads, policy),
        }
        runs: dict[str, list[Run]] = {name: [] for name in stages}
        for round_number in range(1, args.rounds + 1):
            for name, work in stages.items():
                runs[name].append(timed(work))
            print(
                f"  round {round_number}: "
                + ", ".join(f"{name} {runs[name][-1].fps:6.1f} fps" for name in stages),
                flush=True,
            )
    frames = runs["decode-only"][0].frames
    fps = {name: max(r.fps for r in found) for name, found in runs.items()}
    cpu = {name: min(r.cpu_ms for r in found) for name, found in runs.items()}
    ratio = fps["ingest"] / fps["decode-only"]
    cpu_ratio = cpu["decode-only"] / cpu["ingest"]
    cameras = fps["ingest"] / CAMERA_FPS
    verdict = "met" if ratio >= GOAL else "NOT met"
    threads = args.threads or "auto"
    print(f"\n1080p25 H.264, {frames} frames, policy {args.policy}, decoder threads {threads}")
    print(f"  {'':<16}{'frames/s':>10}{'CPU ms/frame':>14}   (best of {args.rounds} rounds)")
    for name in stages:
        print(f"  {name:<16}{fps[name]:>10.1f}{cpu[name]:>14.2f}")
    print(
        f"  {'ratio':<16}{ratio:>10.2f}{cpu_ratio:>14.2f}   ingest / decode-only "
        f"(goal >= {GOAL}: {verdict})"
    )
    print(f"  {'cameras':<16}{cameras:>10.1f}{'':>14}   25 fps cameras in real time, machine")
    print(
        f"  {'per core':<16}{cameras / cores:>10.1f}{'':>14}   ({cores} cores; by CPU time "
        f"{1000 / cpu['ingest'] / CAMERA_FPS:.1f})"
    )
    if args.json is not None:
        figures: dict[str, Any] = {
            "frames": frames,
            "policy": args.policy,
            "fps": fps,
            "cpu_ms_per_frame": cpu,
            "ratio": ratio,
            "cpu_ratio": cpu_ratio,
            "cameras_real_time": cameras,
            "cameras_per_core": cameras / cores,
            "cores": cores,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
