"""What the verifier knows about a clip: the file and its frames' fingerprints (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from cctvchain.verify.align import ClipFrame


@dataclass(frozen=True)
class ClipInfo:
    """The clip file."""

    path: str
    name: str
    sha256: bytes
    size: int
    container: str = ""
    codec: str = ""
    width: int = 0
    height: int = 0
    frames: int = 0
    duration_ms: int = 0


@dataclass(frozen=True)
class ClipFingerprints:
    info: ClipInfo
    frames: tuple[ClipFrame, ...]
    perceptual_frames: int = 0  # how many frames carry a perceptual fingerprint

    def same_frames(self, other: ClipFingerprints) -> bool:
        """Whether both describe the same decoded frames (digests and pts)."""
        return [(f.pts_ms, f.digest) for f in self.frames] == [
            (f.pts_ms, f.digest) for f in other.frames
        ]
