"""Which frames get perceptual fingerprints (paper §3.3.1), decided from pts alone.

A policy of ``rate`` frames per second cuts the stream's presentation time into slots
of ``1000 / rate`` ms: frame ``i`` lies in slot ``floor(pts_ms_i * rate / 1000)`` and
is sampled when it is the first frame of its slot, i.e. when its slot differs from the
previous frame's (the first frame of a stream is always sampled). ``normal`` is rate 1
(one frame per second of video), ``high`` its policy rate, ``all`` every frame.

The rule looks only at each frame's pts and its predecessor's, so the extractor and a
verifier replaying the same stream pick the same frames, and a frame rate above the
policy rate never yields more than ``rate`` samples per second of video.
"""

from __future__ import annotations

from collections.abc import Iterable

from cctvchain.chaincode.cctv.model import POLICY_ALL, SamplingPolicy


def slot(pts_ms: int, rate: int) -> int:
    return (pts_ms * rate) // 1000


class Sampler:
    """Feed the pts of each frame in order; answers whether to sample it."""

    __slots__ = ("_last_slot", "_rate", "_started")

    def __init__(self, policy: SamplingPolicy) -> None:
        self._rate = 0 if policy.mode == POLICY_ALL else policy.rate
        self._last_slot = 0
        self._started = False

    def sample(self, pts_ms: int) -> bool:
        if self._rate == 0:
            return True
        current = slot(pts_ms, self._rate)
        take = not self._started or current != self._last_slot
        self._started = True
        self._last_slot = current
        return take


def sampled(policy: SamplingPolicy, pts_ms: Iterable[int]) -> list[bool]:
    """The sampling decision for each frame of a stream, in order."""
    sampler = Sampler(policy)
    return [sampler.sample(p) for p in pts_ms]
