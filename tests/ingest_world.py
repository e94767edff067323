"""Test support for the ingest tests against real peers (not a test module).

:func:`ingest_world` starts the peer cluster of :mod:`peer_cluster` (3 organisations,
3 Raft orderers, 4 peers as processes), runs the paper's flow for two cameras (an
operator requests them, the control room manager approves each, binding its camera
identity, and grants police officer P-77 access) and enrolls each camera's wallet.
:func:`run_ingest` / :func:`start_ingest` run ``cctvchain ingest`` as that camera, as a
real process. Reads of anchors, gaps, history and frame records go through the peers'
HTTP API as the granted officer, with every proof checked.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peer_cluster import (
    ORDERERS,
    ORGS,
    RUNNING_PEERS,
    PeerCluster,
    User,
    make_cluster,
    person,
)
from rtsp_camera import SERVER_SCRIPT, SYSTEM_PYTHON, _wait_ready, ffmpeg_output

from cctvchain.chaincode.cctv.model import Segment
from cctvchain.ingest.fingerprint import (
    FrameRecord,
    frame_digest,
    raw_frame_size,
    split_raw_frame,
)
from cctvchain.ingest.records import verified_records
from cctvchain.network.material import enroll_identity

REPO = Path(__file__).resolve().parent.parent
CAMERAS = ("5859", "5860", "5861")


@dataclass
class IngestWorld:
    cluster: PeerCluster
    crm: User
    po: User  # granted access to every camera
    po2: User  # a police officer without access
    wallets: dict[str, Path]  # camera id -> its enrolled camera wallet

    def ingest_args(
        self, camera: str, source: str, spool: Path, *extra: str, gateway: str = "peer1.city"
    ) -> list[str]:
        return [
            sys.executable,
            "-m",
            "cctvchain",
            "ingest",
            *("--camera", camera, "--source", source),
            *("--wallet", str(self.wallets[camera])),
            *("--peer", self.cluster.url(gateway)),
            *("--config", str(self.cluster.config_path)),
            *("--spool", str(spool)),
            *extra,
        ]

    def ingest_file(
        self,
        camera: str,
        clip: Path,
        spool: Path,
        *,
        segment_seconds: int,
        capture_origin_ms: int,
        records_peers: Sequence[str],
        timeout: float = 600,
    ) -> list[Segment]:
        """``cctvchain ingest`` of a whole file (capture time of pts 0 given), its
        records also stored at ``records_peers``; the camera's checked chain after."""
        args = self.ingest_args(
            camera,
            str(clip),
            spool,
            *("--segment-seconds", str(segment_seconds)),
            *("--capture-origin", str(capture_origin_ms)),
        )
        for peer in records_peers:
            args += ["--records-peer", self.cluster.url(peer)]
        done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stderr[-3000:]
        return check_chain(self.anchors(camera))

    # -- reads as the granted police officer ----------------------------------------------

    def anchors(self, camera: str, peer: str = "peer0.la") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.cluster.get_json(
            peer, f"/api/v1/cameras/{camera}/anchors", self.po
        )
        return found

    def gaps(self, camera: str, peer: str = "peer0.police") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.cluster.get_json(
            peer, f"/api/v1/cameras/{camera}/gaps", self.po
        )
        return found

    def history(self, camera: str, peer: str = "peer0.city") -> list[dict[str, Any]]:
        query = json.dumps({"camera": camera})
        answer = self.cluster.evaluate(self.po, "GetHistory", query, peer=peer)
        found: list[dict[str, Any]] = answer.json()
        return found

    def records(self, camera: str, segment: Segment, peer: str) -> list[FrameRecord]:
        """The segment's frame records from ``peer``, each proof checked against the
        segment (which the caller took from the ledger)."""
        answer = self.cluster.get_json(
            peer, f"/api/v1/cameras/{camera}/segments/{segment.sequence}/records", self.po
        )
        assert answer["merkleRoot"] == segment.merkle_root.hex()
        records = verified_records(answer["records"], segment)
        assert [r.index for r in records] == list(range(segment.frame_count))
        return records


def segment_of(anchor: dict[str, Any]) -> Segment:
    segment = Segment.decode(base64.b64decode(anchor["segment"]))
    assert segment.hash().hex() == anchor["segmentHash"]
    return segment


def check_chain(anchors: list[dict[str, Any]]) -> list[Segment]:
    """The anchors form one unbroken chain from segment 0: sequences, links, times."""
    segments = [segment_of(a) for a in anchors]
    assert [s.sequence for s in segments] == list(range(len(segments)))
    assert segments[0].previous_hash == bytes(32)
    for before, after in itertools.pairwise(segments):
        assert after.previous_hash == before.hash()
        assert after.capture_start_ms > before.capture_end_ms
    return segments


def ingest_world(directory: Path, extra_toml: str = "") -> Iterator[IngestWorld]:
    cluster = make_cluster(directory, extra_toml)
    try:
        for name in (*ORDERERS, *RUNNING_PEERS):
            cluster.start(name)
        for name in RUNNING_PEERS:
            cluster.wait_ready(name)
        city, police, _la = (cluster.users[f"admin@{org}"] for org in ORGS)
        crm = cluster.enroll("CityCCTV", "crm", role="CRM")
        operator = cluster.enroll("CityCCTV", "operator", role="Operator")
        po = cluster.enroll("Police", "po", role="PO")
        po2 = cluster.enroll("Police", "po2", role="PO")
        steps: list[tuple[User, str, tuple[str, ...], str]] = [
            (city, "AddParticipant", (person("3881", "CRM", "crm", "CR-North"),), "peer0.city"),
            (
                city,
                "AddParticipant",
                (person("3690", "Operator", "operator", "CR-North"),),
                "peer0.city",
            ),
            (police, "AddParticipant", (person("P-77", "PO", "po"),), "peer0.police"),
            (police, "AddParticipant", (person("P-78", "PO", "po2"),), "peer0.police"),
        ]
        wallets: dict[str, Path] = {}
        for camera in CAMERAS:
            wallets[camera] = enroll_identity(
                cluster.config, "CityCCTV", f"cam-{camera}", "camera", now=datetime.now(UTC)
            )
            request = json.dumps(
                {
                    "id": camera,
                    "ipAddress": "10.20.0.7",
                    "location": "Main St",
                    "model": "Axis P1448-LE",
                    "policy": "normal",
                }
            )
            steps += [
                (operator, "RequestCamera", (request,), "peer1.city"),
                (crm, "Approve", (camera, f"cam-{camera}"), "peer0.city"),
                (crm, "GrantAccess", (camera, "user", "P-77"), "peer0.city"),
            ]
        for user, function, args, peer in steps:
            result = cluster.submit(user, function, *args, peer=peer)
            assert result.validation_code_name == "VALID", (function, result)
        cluster.wait_converged(RUNNING_PEERS)
        yield IngestWorld(cluster, crm, po, po2, wallets)
    finally:
        cluster.stop_all()


def wait_for(condition: Any, timeout: float, what: str, step: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def start_ingest(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(args, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)


def serve_rtsp(clip: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """Debian's GStreamer RTSP server looping ``clip`` on a fixed port (so that it can be
    killed and started again at the same URL)."""
    process = subprocess.Popen(
        [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--clip", str(clip), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, _wait_ready(process, timeout=30.0)


def ffmpeg_digests(path: Path, width: int, height: int) -> list[bytes]:
    """Exact fingerprints of a recording's frames from Debian ffmpeg's own decode."""
    raw = ffmpeg_output(
        *("-i", str(path), "-fps_mode", "passthrough"),
        *("-f", "rawvideo", "-pix_fmt", "yuv420p", "-"),
        timeout=300,
    )
    size = raw_frame_size("yuv420p", width, height)
    assert raw and len(raw) % size == 0
    return [
        frame_digest(split_raw_frame("yuv420p", width, height, raw[i : i + size]))
        for i in range(0, len(raw), size)
    ]
