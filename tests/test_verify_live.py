"""The must-show of verification on a live recording: ``cctvchain verify`` on a real cluster.

Once for the module: the peer cluster of :mod:`peer_cluster` (3 organisations, 3 Raft
orderers, 4 peers, each a process, mutual TLS), Debian's GStreamer RTSP server looping
a generated 640x360 H.264 clip longer than the test (so no frame repeats) as camera
5859, the real ``cctvchain ingest`` process anchoring it as the camera's own identity
for ~40 s, and — while it runs — Debian's ffmpeg recording the same stream with
``-rtsp_transport tcp -c copy`` for 30 s, as an NVR does. Copies of that recording are
made with ffmpeg (remux, re-encode, edits), and the police officer P-77, granted access
to the camera, runs the real ``cctvchain verify`` CLI on each, through the wallet:

* the recording and a remux into Matroska → ``AUTHENTIC``; a 720p re-encode at another
  bitrate → ``AUTHENTIC_REENCODED``;
* one frame with a small box painted on it → ``TAMPERED``, ``ALTERED`` at exactly that
  frame; 2 s cut out → ``MISSING`` there (both decode-exact copies: within one frame);
* 1 s of another source spliced in → ``INSERTED``; two 1 s pieces swapped →
  ``REORDERED``; one frame held for 1 s → ``DUPLICATED`` (re-encoded: within 1 s);
* a clip from another source, and the recording checked as another camera's → never
  ``AUTHENTIC``; P-78, without access → exit 4 with the contract's refusal.

The truth for capture times comes from the ledger: the recording's frames are looked
up by their exact digest among the camera's anchored frame records.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ingest_world import (
    REPO,
    IngestWorld,
    check_chain,
    ingest_world,
    serve_rtsp,
    start_ingest,
    wait_for,
)
from node_helpers import free_ports
from rtsp_camera import FFMPEG, ffmpeg, make_clip, transcode

from cctvchain.cli.main import main
from cctvchain.ingest.fingerprint import FrameRecord
from cctvchain.ingest.records import verified_records
from cctvchain.network.material import wallet_dir
from cctvchain.verify.clip import fingerprint_clip

pytestmark = pytest.mark.timeout(1200)

CAMERA = "5859"
OTHER_CAMERA = "5860"  # approved, never ingested
FRAME_MS = 40
RECORD_S = 30
EDIT = 300  # the frame (12 s into the recording) where the edits are made
BOX = f"drawbox=x=300:y=150:w=60:h=40:color=black:t=fill:enable='eq(n,{EDIT})'"
LOSSLESS = ("-c:v", "libx264", "-preset", "veryfast", "-qp", "0")  # the very same planes
REENCODE = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "18")
PEERS = ("peer0.police", "peer0.la", "peer0.city", "peer1.city")


@dataclass
class Live:
    world: IngestWorld
    root: Path
    clips: dict[str, Path]
    capture: list[int]  # capture time (ms) of each recording frame, from the ledger
    boxed: int  # a sampled recording frame (the first of a capture second), boxed
    po: Path  # P-77's wallet (granted access)
    po2: Path  # P-78's wallet (no access)


def _metrics(spool: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((spool / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data


def _concat(root: Path, name: str, pieces: list[tuple[int, int, int]], sources: list[Path]) -> Path:
    """Frames [start, end) of source ``k`` for each (k, start, end), concatenated and
    re-encoded (``.mkv``: losslessly, decoding to the very same planes)."""
    inputs: list[str] = []
    for source in sources:
        inputs += ["-i", str(source)]
    chains = [
        f"[{k}:v]trim=start_frame={a}:end_frame={b},setpts=PTS-STARTPTS[p{i}]"
        for i, (k, a, b) in enumerate(pieces)
    ]
    joined = "".join(f"[p{i}]" for i in range(len(pieces)))
    graph = ";".join(chains) + f";{joined}concat=n={len(pieces)}:v=1[o]"
    out = root / name
    codec = LOSSLESS if name.endswith(".mkv") else REENCODE
    ffmpeg(*inputs, "-filter_complex", graph, "-map", "[o]", *codec, str(out), timeout=300)
    return out


def _anchored_records(world: IngestWorld) -> list[FrameRecord]:
    """Every anchored frame record of the camera, each proof checked, from whichever
    peer holds the segment's records (the camera stores them at two organisations)."""
    records: list[FrameRecord] = []
    for segment in check_chain(world.anchors(CAMERA)):
        path = f"/api/v1/cameras/{CAMERA}/segments/{segment.sequence}/records"
        for peer in PEERS:
            answer = world.cluster.request(peer, "GET", path, user=world.po)
            if answer.status == 200:
                data = answer.json()
                assert data["merkleRoot"] == segment.merkle_root.hex()
                records += verified_records(data["records"], segment)
                break
        else:
            raise AssertionError(f"no peer holds the records of segment {segment.sequence}")
    return records


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("verify-live")
    (root / "net").mkdir()
    (root / "camera").mkdir()
    # testsrc2 alone repeats its picture every 12 s as far as the perceptual tier sees
    # (a re-encoded copy could not be placed); a slow rotation (under one turn in the
    # clip) makes frames 3 s apart differ by at least 16 bits of the DCT hash.
    footage = make_clip(
        root / "camera" / "camera.h264",
        seconds=60.0,
        bframes=0,
        filters="rotate=a=0.1*t",
        extra=("-f", "h264"),
    )
    worlds = ingest_world(root / "net")
    world = next(worlds)
    server, url = serve_rtsp(footage, free_ports(1)[0])
    try:
        spool, log = root / "spool", root / "ingest.log"
        duration = ("--duration", str(RECORD_S + 10), "--metrics-interval", "1")
        args = world.ingest_args(CAMERA, url, spool, *duration)
        ingest = start_ingest(args, log)
        recording = root / "recording.mp4"
        try:
            wait_for(lambda: _metrics(spool).get("frames_fingerprinted", 0) > 0, 60, "frames")
            recorder = subprocess.run(
                [
                    *(FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"),
                    *("-rtsp_transport", "tcp", "-i", url, "-c", "copy"),
                    *("-t", str(RECORD_S), str(recording)),
                ],
                capture_output=True,
                text=True,
                timeout=RECORD_S + 60,
            )
            assert recorder.returncode == 0, recorder.stderr[-2000:]
            ingest.wait(timeout=180)
        finally:
            if ingest.poll() is None:
                ingest.kill()
                ingest.wait()
        output = log.read_text(errors="replace")
        assert ingest.returncode == 0, output[-3000:]
        assert "spool empty" in output and "Traceback" not in output

        # The truth: each recording frame's capture time, by its anchored digest.
        records = _anchored_records(world)
        anchored = {r.digest: r.capture_time_ms for r in records}
        sampled = {r.digest for r in records if r.perceptual is not None}
        frames = fingerprint_clip(recording).frames
        assert len(frames) >= RECORD_S * 25 - 25
        missing = [f.index for f in frames if f.digest not in anchored]
        assert not missing, f"recording frames not anchored: {missing[:20]}"
        capture = [anchored[f.digest] for f in frames]
        assert capture == sorted(capture)

        count = len(frames)
        # A frame whose anchored record carries the perceptual fingerprint: a re-encoded
        # copy is compared with the camera's picture directly there.
        boxed = next(f.index for f in frames if f.index > EDIT + 50 and f.digest in sampled)
        other = make_clip(
            root / "other.mp4", source="mandelbrot", size="640x360", seconds=4.0, bframes=0
        )
        held = root / "held.mp4"
        ffmpeg(
            *("-i", str(recording), "-fps_mode", "passthrough", "-filter_complex"),
            f"[0:v]split[a][b];[a][b]freezeframes=first={EDIT + 1}:last={EDIT + 24}:replace={EDIT}",
            *REENCODE,
            str(held),
            timeout=300,
        )
        clips = {
            "recording": recording,
            "remux": transcode(recording, root / "remux.mkv", "-c", "copy"),
            "reencode": transcode(
                recording,
                root / "reencode.mp4",
                *("-vf", "scale=1280:720", "-c:v", "libx264", "-preset", "veryfast"),
                *("-b:v", "500k"),
            ),
            "box": transcode(recording, root / "box.mkv", "-vf", BOX, *LOSSLESS),
            "box-sampled": transcode(
                recording,
                root / "box-sampled.mp4",
                *("-vf", BOX.replace(f"eq(n,{EDIT})", f"eq(n,{boxed})"), *REENCODE),
            ),
            "cut": _concat(root, "cut.mkv", [(0, 0, EDIT), (0, EDIT + 50, count)], [recording]),
            "insert": _concat(
                root,
                "insert.mp4",
                [(0, 0, EDIT), (1, 0, 25), (0, EDIT, count)],
                [recording, other],
            ),
            "swap": _concat(
                root,
                "swap.mp4",
                [
                    (0, 0, EDIT),
                    (0, EDIT + 25, EDIT + 50),
                    (0, EDIT, EDIT + 25),
                    (0, EDIT + 50, count),
                ],
                [recording],
            ),
            "held": held,
            "other": other,
        }
        config = world.cluster.config
        yield Live(
            world,
            root,
            clips,
            capture,
            boxed,
            wallet_dir(config, "Police", "po"),
            wallet_dir(config, "Police", "po2"),
        )
    finally:
        server.terminate()
        server.communicate(timeout=30)
        worlds.close()


def verify(
    live: Live, clip: str, *extra: str, camera: str = CAMERA, wallet: Path | None = None
) -> tuple[int, dict[str, Any]]:
    """``cctvchain verify`` as P-77 (or ``wallet``), with the cluster's configuration."""
    out = live.root / f"{clip}-{camera}.json"
    started = time.monotonic()
    code = main(
        [
            "verify",
            str(live.clips[clip]),
            *("--camera", camera),
            *("--wallet", str(wallet or live.po)),
            *("--config", str(live.world.cluster.config_path)),
            *("--json", str(out)),
            *extra,
        ]
    )
    report: dict[str, Any] = json.loads(out.read_text())
    print(f"verify {clip}: {report['verdict']} in {time.monotonic() - started:.1f} s")
    return code, report


def clip_s(frame: int) -> float:
    return frame * FRAME_MS / 1000


def only(report: dict[str, Any], kind: str) -> dict[str, Any]:
    """The one anomaly of ``kind`` (a held frame may also show as ALTERED around it)."""
    assert report["verdict"] == "TAMPERED", report["reason"]
    kinds = [a["kind"] for a in report["anomalies"]]
    allowed = {kind, "ALTERED"} if kind == "DUPLICATED" else {kind}
    assert kind in kinds and set(kinds) <= allowed, report["anomalies"]
    found: dict[str, Any] = next(a for a in report["anomalies"] if a["kind"] == kind)
    return found


# -- honest copies -------------------------------------------------------------------------


@pytest.mark.parametrize("clip", ["recording", "remux"])
def test_the_recording_and_its_remux_are_authentic(
    live: Live, clip: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The remux is verified with a peer that is down named first: the next one serves.
    extra = ("--peer", "peer2.city") if clip == "remux" else ()
    code, report = verify(live, clip, *extra)
    text = capsys.readouterr().out
    assert code == 0 and report["verdict"] == "AUTHENTIC", report["reason"]
    frames = report["frames"]
    assert frames["EXACT"] == frames["total"] == len(live.capture)
    assert report["anomalies"] == [] and report["coverage"]["span_fraction"] == 1.0
    start = datetime.fromisoformat(report["coverage"]["capture_start"].replace("Z", "+00:00"))
    assert abs(start.timestamp() * 1000 - live.capture[0]) <= FRAME_MS / 2
    assert text.startswith("AUTHENTIC")
    assert report["evidence"]["ok"] and report["evidence"]["source"] == "network"
    assert len(report["anchors"]) >= 3
    if clip == "remux":
        assert report["clip"]["container"].startswith("matroska")


def test_a_720p_reencode_at_another_bitrate_is_authentic_reencoded(live: Live) -> None:
    code, report = verify(live, "reencode", "--quiet")
    assert code == 0 and report["verdict"] == "AUTHENTIC_REENCODED", report["anomalies"]
    assert report["clip"]["width"] == 1280 and report["frames"]["EXACT"] == 0


# -- edits ---------------------------------------------------------------------------------


def test_one_frame_with_a_small_region_changed_is_altered_at_that_frame(live: Live) -> None:
    html, bundle = live.root / "box.html", live.root / "box.cvb"
    code, report = verify(live, "box", "--quiet", "--report", str(html), "--bundle", str(bundle))
    assert code == 3
    anomaly = only(report, "ALTERED")
    assert anomaly["first_frame"] == anomaly["last_frame"] == EDIT
    assert anomaly["clip_start_s"] == pytest.approx(clip_s(EDIT), abs=0.001)
    assert abs(anomaly["capture_start_ms"] - live.capture[EDIT]) <= FRAME_MS / 2
    assert report["frames"]["EXACT"] == len(live.capture) - 1
    page = html.read_text()
    assert "ALTERED" in page and f"clip frame {EDIT}" in page
    # The evidence the network served re-checks offline, with the same verdict.
    assert main(["verify-bundle", str(bundle), str(live.clips["box"]), "--quiet"]) == 3


def test_a_box_on_a_sampled_frame_of_a_reencoded_copy_is_altered_at_that_frame(
    live: Live,
) -> None:
    # The edit moves the frame's DCT hash: the camera's sampled picture must still be
    # compared with the edited frame (not an untouched neighbour), and the edit is no
    # replacement (INSERTED) of the frame.
    code, report = verify(live, "box-sampled", "--quiet")
    assert code == 3
    anomaly = only(report, "ALTERED")
    assert anomaly["first_frame"] == anomaly["last_frame"] == live.boxed, report["anomalies"]
    assert abs(anomaly["capture_start_ms"] - live.capture[live.boxed]) <= FRAME_MS / 2
    assert anomaly["tiles"] and {tuple(t) for t in anomaly["tiles"]} <= {
        (3, 3),
        (3, 4),
        (4, 3),
        (4, 4),
    }


def test_two_seconds_cut_out_are_missing_there(live: Live) -> None:
    code, report = verify(live, "cut", "--quiet")
    assert code == 3
    anomaly = only(report, "MISSING")
    assert anomaly["frames"] == 50
    assert abs(anomaly["capture_start_ms"] - live.capture[EDIT]) <= FRAME_MS
    assert abs(anomaly["capture_end_ms"] - live.capture[EDIT + 49]) <= FRAME_MS
    assert abs(anomaly["clip_end_s"] - clip_s(EDIT)) <= FRAME_MS / 1000


def test_foreign_frames_spliced_in_are_inserted_there(live: Live) -> None:
    code, report = verify(live, "insert", "--quiet")
    assert code == 3
    anomaly = only(report, "INSERTED")
    assert abs(anomaly["clip_start_s"] - clip_s(EDIT)) <= 1.0
    assert abs(anomaly["clip_end_s"] - clip_s(EDIT + 24)) <= 1.0


def test_two_swapped_pieces_are_reordered(live: Live) -> None:
    code, report = verify(live, "swap", "--quiet")
    assert code == 3
    anomaly = only(report, "REORDERED")
    assert abs(anomaly["clip_start_s"] - clip_s(EDIT)) <= 1.0
    assert abs(anomaly["clip_end_s"] - clip_s(EDIT + 49)) <= 1.0
    assert abs(anomaly["capture_start_ms"] - live.capture[EDIT]) <= 1000


def test_a_frame_held_for_a_second_is_duplicated_there(live: Live) -> None:
    code, report = verify(live, "held", "--quiet")
    assert code == 3
    anomaly = only(report, "DUPLICATED")
    assert abs(anomaly["clip_start_s"] - clip_s(EDIT + 1)) <= 1.0
    assert abs(anomaly["clip_end_s"] - clip_s(EDIT + 24)) <= 1.0
    assert abs(anomaly["capture_start_ms"] - live.capture[EDIT + 1]) <= 1000


# -- not this camera, not this user ---------------------------------------------------------


def test_a_clip_of_another_camera_is_never_authentic(live: Live) -> None:
    code, report = verify(live, "other", "--quiet")
    assert code in (3, 4) and report["verdict"] in ("TAMPERED", "UNVERIFIABLE")
    code, report = verify(live, "recording", "--quiet", camera=OTHER_CAMERA)
    assert code == 4 and report["verdict"] == "UNVERIFIABLE"
    assert report["reason"].startswith(f"no anchors of camera {OTHER_CAMERA} match this clip")


def test_a_user_without_access_gets_unverifiable_with_the_reason(live: Live) -> None:
    """Through the real entry point, as a process: ``python -m cctvchain verify``."""
    out = live.root / "refused.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "cctvchain", "verify", str(live.clips["recording"])),
            *("--camera", CAMERA, "--wallet", str(live.po2)),
            *("--config", str(live.world.cluster.config_path), "--json", str(out)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 4, done.stderr[-3000:]
    assert done.stdout.startswith("UNVERIFIABLE") and "Traceback" not in done.stderr
    report = json.loads(out.read_text())
    assert report["verdict"] == "UNVERIFIABLE" and report["anchors"] == []
    assert report["reason"].startswith(f"no access to camera {CAMERA}: peer0.police (Police)")
    assert "ACCESS_DENIED" in report["reason"] and "ACCESS_DENIED" in done.stdout
