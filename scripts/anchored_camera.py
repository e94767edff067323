"""A camera anchoring a real clip on a real in-process network (for the benchmarks).

Shared by ``scripts/bench_verify.py`` and ``scripts/bench_ledger.py`` (the benchmarks may
not import ``tests/``): it builds, from the package alone, what the verify tests build —

* an :class:`~cctvchain.inprocess.network.InProcessNetwork` (three organisations with
  their CAs, one peer each with its LevelDB ledger, one orderer) running the CCTV
  contract with the default ACL rules;
* the people a camera needs: each organisation's network admin, a CityCCTV operator who
  requests the camera and a control room manager who approves it and binds the camera's
  own enrolled identity (certificate OU ``camera``);
* the clip's segments from the real :class:`~cctvchain.ingest.segment.Segmenter` fed
  with the media shell's exact digests and perceptual fingerprints, each anchored by the
  camera's identity: propose, endorse, order, validate and commit on every peer.

Every transaction is endorsed by two organisations' peers, as the peer gateway gathers
them for the default policy ``OutOf(2, …)`` (not by all three), so that a transaction
carries what it carries on the default cluster.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cctvchain.chaincode.cctv import CctvContract
from cctvchain.chaincode.cctv.model import SamplingPolicy
from cctvchain.client.transaction import ClientIdentity, assemble_envelope
from cctvchain.ingest import perceptual as P
from cctvchain.ingest.segment import SealedSegment, Segmenter
from cctvchain.inprocess.network import InProcessNetwork
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.media import decode_frames
from cctvchain.network.acl_rules import load_acl_rules
from cctvchain.peer.events import BlockEvent, TxEvent
from cctvchain.verify.bundle import (
    AnchorRef,
    EvidenceBundle,
    build_bundle,
    config_block_numbers,
    records_with_proofs,
)

FFMPEG = "/usr/bin/ffmpeg"
CITY, POLICE, LOCAL_AUTHORITY = "CityCCTV", "Police", "LocalAuthority"
CONTRACT = "cctv"
CHANNEL = "cctv"
CAMERA_FPS = 25
POLICIES = {
    "normal": SamplingPolicy("normal", 1),
    "high": SamplingPolicy("high", 5),
    "all": SamplingPolicy("all", 0),
}


def make_clip(path: Path, seconds: float, size: str = "1920x1080", crf: int = 23) -> Path:
    """An H.264 clip like an IP camera's stream (``testsrc2``: moving content; one
    keyframe a second, no B-frames), by Debian's ffmpeg — as ``bench_ingest.py``."""
    ffmpeg = shutil.which("ffmpeg") or FFMPEG
    command = [
        *(ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
        *("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={CAMERA_FPS}"),
        *("-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf)),
        *("-g", str(CAMERA_FPS), "-bf", "0", "-pix_fmt", "yuv420p", str(path)),
    ]
    subprocess.run(command, check=True)
    return path


def reencode(source: Path, target: Path, crf: int = 30) -> Path:
    """The same frames at another bitrate (a re-encoded export: no frame is bit-exact)."""
    ffmpeg = shutil.which("ffmpeg") or FFMPEG
    command = [
        *(ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(source)),
        *("-fps_mode", "passthrough", "-c:v", "libx264", "-preset", "veryfast"),
        *("-crf", str(crf), "-g", str(CAMERA_FPS), "-bf", "0", "-pix_fmt", "yuv420p"),
        str(target),
    ]
    subprocess.run(command, check=True)
    return target


def _person(pid: str, role: str, identity: str, control_room: str = "") -> dict[str, Any]:
    return {
        "id": pid,
        "personId": f"person-{pid}",
        "name": f"bench {pid}",
        "department": "Bench",
        "age": 40,
        "gender": "female",
        "role": role,
        "identity": identity,
        "controlRoom": control_room,
    }


@dataclass(frozen=True)
class Committed:
    event: TxEvent
    block_event: BlockEvent
    envelope: bytes


@dataclass
class CameraNetwork:
    """The in-process network with a CityCCTV operator and manager ready to add cameras."""

    net: InProcessNetwork
    admins: dict[str, ClientIdentity]
    operator: ClientIdentity
    manager: ClientIdentity
    cameras: dict[str, ClientIdentity] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path) -> CameraNetwork:
        net = InProcessNetwork(root, {CONTRACT: CctvContract()}, acl_rules=load_acl_rules())
        admins = {
            org: net.client(org, f"admin-{org.lower()}", "admin")
            for org in (CITY, POLICE, LOCAL_AUTHORITY)
        }
        operator = net.client(CITY, "bench-operator", role="Operator")
        manager = net.client(CITY, "bench-manager", role="CRM")
        world = cls(net, admins, operator, manager)
        for pid, role, who in (("OP-1", "Operator", operator), ("CRM-1", "CRM", manager)):
            world.invoke(
                admins[CITY], "AddParticipant", json.dumps(_person(pid, role, who.name, "CR-B"))
            )
        return world

    def invoke(self, client: ClientIdentity, function: str, *args: str) -> Committed:
        """Propose, endorse on two organisations' peers, order, commit; ``VALID`` or raise."""
        net = self.net
        signed = net.propose(client, CONTRACT, function, list(args))
        responses = net.endorse(signed, net.endorsing_peers()[:2])
        for response in responses:
            if not response.response.ok:
                raise RuntimeError(f"{function} refused: {response.response.message}")
        envelope = assemble_envelope(client, signed, responses)
        raw = envelope.encode()
        net.broadcast(raw)
        net.cut()
        for block_event in net.deliver():
            event = block_event.tx(envelope.tx_id)
            if event is not None:
                if event.code != TxValidationCode.VALID:
                    raise RuntimeError(f"{function}: {event.code_name} {event.reason}")
                return Committed(event, block_event, raw)
        raise RuntimeError(f"{function}: transaction {envelope.tx_id} was not committed")

    def add_camera(self, camera_id: str, policy: str = "normal") -> ClientIdentity:
        """Request (operator), approve (manager) and bind a fresh camera identity."""
        camera = {
            "id": camera_id,
            "ipAddress": "10.0.0.7",
            "location": "Bench street",
            "model": "Axis P1448-LE",
            "policy": policy,
        }
        self.invoke(self.operator, "RequestCamera", json.dumps(camera))
        identity = self.net.client(CITY, f"cam-{camera_id}", "camera")
        self.invoke(self.manager, "Approve", camera_id, identity.name)
        self.cameras[camera_id] = identity
        return identity

    def anchor(self, camera_id: str, sealed: SealedSegment) -> tuple[AnchorRef, Committed]:
        """``AnchorSegment`` by the camera's own identity; where it landed on the ledger."""
        segment_b64 = base64.b64encode(sealed.segment.encode()).decode("ascii")
        committed = self.invoke(self.cameras[camera_id], "AnchorSegment", segment_b64)
        # As the frame extractor does: once a block carried the camera's certificate, its
        # transactions name it by reference (32 bytes instead of the PEM).
        self.cameras[camera_id] = referenced(self.cameras[camera_id])
        ref = AnchorRef(sealed.segment, committed.event.block, committed.event.index)
        return ref, committed

    def bundle(
        self, camera_id: str, refs: list[AnchorRef], sealed: list[SealedSegment]
    ) -> EvidenceBundle:
        """The evidence bundle of ``camera_id``'s anchored segments, from peer0's ledger."""
        ledger = self.net.peers[0].ledger
        return build_bundle(
            get_block=ledger.get_block,
            channel_id=CHANNEL,
            camera_id=camera_id,
            anchors=refs,
            records={s.sequence: records_with_proofs(s.records) for s in sealed},
            config_blocks=config_block_numbers(ledger.get_block, ledger.height),
            ledger_height=ledger.height,
            created_ms=self.net.clock.now_ms,
            tool="cctvchain bench",
            source="in-process peer0.CityCCTV",
            # Certificates the transactions carry as 32-byte references, bundled as PEMs.
            resolve_certificate=ledger.certificate,
        )

    def close(self) -> None:
        self.net.close()


def referenced(identity: ClientIdentity) -> ClientIdentity:
    """``identity`` naming itself by certificate reference, where the client offers it."""
    by_reference = getattr(identity, "referenced", None)
    return by_reference() if callable(by_reference) else identity


def segment_clip(
    clip: Path,
    camera_ids: dict[str, SamplingPolicy],
    origin_ms: int,
    segment_ms: int = 10_000,
) -> dict[str, list[SealedSegment]]:
    """Decode ``clip`` once and segment it for each camera (its own policy): exact digest
    of every frame, perceptual fingerprints of the frames each policy samples."""
    segmenters = {
        camera: Segmenter(camera, policy, segment_ms=segment_ms)
        for camera, policy in camera_ids.items()
    }
    sealed: dict[str, list[SealedSegment]] = {camera: [] for camera in camera_ids}
    for frame in decode_frames(clip):
        cached: list[P.Perceptual] = []

        def perceptual(frame: Any = frame, cached: list[P.Perceptual] = cached) -> P.Perceptual:
            if not cached:
                cached.append(P.fingerprint(frame.thumbnail()))
            return cached[0]

        for camera, segmenter in segmenters.items():
            done = segmenter.add(frame.pts_ms, origin_ms + frame.pts_ms, frame.digest, perceptual)
            if done is not None:
                sealed[camera].append(done)
    for camera, segmenter in segmenters.items():
        last = segmenter.flush()
        if last is not None:
            sealed[camera].append(last)
    return sealed


def directory_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (their sizes, not their disk blocks)."""
    return sum(p.stat().st_size for p in _files(path))


def _files(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
    elif path.is_dir():
        for child in path.rglob("*"):
            if child.is_file():
                yield child
