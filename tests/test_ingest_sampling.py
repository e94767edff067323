"""Which frames get perceptual fingerprints: decided from pts, deterministically."""

from __future__ import annotations

import random

from cctvchain.chaincode.cctv.model import SamplingPolicy
from cctvchain.ingest.sampling import Sampler, sampled

NORMAL = SamplingPolicy("normal", 1)
HIGH_5 = SamplingPolicy("high", 5)
HIGH_60 = SamplingPolicy("high", 60)
ALL = SamplingPolicy("all", 0)


def picked(policy: SamplingPolicy, pts: list[int]) -> list[int]:
    return [p for p, take in zip(pts, sampled(policy, pts), strict=True) if take]


def test_normal_takes_the_first_frame_of_every_second() -> None:
    pts = [40 * i for i in range(250)]  # 10 s at 25 fps
    assert picked(NORMAL, pts) == [1000 * s for s in range(10)]
    # A stream that starts mid-second: its first frame, then each second's first.
    late = [1500 + 40 * i for i in range(100)]
    assert picked(NORMAL, late) == [1500, 2020, 3020, 4020, 5020]


def test_high_takes_rate_frames_per_second_and_all_takes_every_frame() -> None:
    pts = [40 * i for i in range(50)]  # 2 s at 25 fps
    assert picked(HIGH_5, pts) == [200 * k for k in range(10)]
    assert picked(HIGH_60, pts) == pts  # the rate exceeds the frame rate: every frame
    assert picked(ALL, pts) == pts
    ntsc = [round(i * 1001 / 30) for i in range(300)]  # 29.97 fps for 10 s
    assert len(picked(NORMAL, ntsc)) == 10
    assert len(picked(HIGH_5, ntsc)) == 50


def test_jitter_and_gaps_never_exceed_the_rate_and_the_choice_is_reproducible() -> None:
    rng = random.Random(3)
    pts, t = [], 10_000
    for _ in range(2000):
        t += rng.choice([30, 40, 40, 40, 50, 400])  # jitter and the odd dropped run
        pts.append(t)
    first = sampled(HIGH_5, pts)
    assert first == sampled(HIGH_5, pts)
    taken = [p for p, s in zip(pts, first, strict=True) if s]
    for second in range(pts[0] // 1000, pts[-1] // 1000 + 1):
        assert sum(1 for p in taken if p // 1000 == second) <= 5
    # Only a frame that opens a new 200 ms slot is taken, and every slot with frames is.
    slots = {p * 5 // 1000 for p in pts}
    assert len(taken) == len(slots)


def test_a_sampler_fed_frame_by_frame_agrees_with_the_batch_rule() -> None:
    pts = [40 * i + (7 if i % 3 else 0) for i in range(100)]
    sampler = Sampler(NORMAL)
    assert [sampler.sample(p) for p in pts] == sampled(NORMAL, pts)
