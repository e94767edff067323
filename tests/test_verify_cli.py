"""``cctvchain verify-bundle`` on real clips: a camera's recording anchored on a real
in-process network, an evidence bundle made from the ledger, and copies of the recording
made with Debian's ffmpeg — remuxed, trimmed, re-encoded at 720p and another bitrate,
one frame with a box painted on it, 2 s cut out, 1 s of another source spliced in, two
1 s pieces swapped, one frame held for 1 s, and another camera's clip. Each gets its
verdict, exit code, anomaly kind and time range (within one frame on decode-exact
copies, within 1 s on re-encoded ones), JSON and HTML reports."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rtsp_camera import ffmpeg, make_clip, transcode
from verify_world import CAMERA, AnchoredCamera, anchored_camera, make_camera_clip

from cctvchain.cli.main import main
from cctvchain.verify.clip import fingerprint_clip

pytestmark = pytest.mark.timeout(900)

FRAME_S = 0.04
BOX = "drawbox=x=100:y=50:w=55:h=30:color=black:t=fill:enable='eq(n,137)'"
LOSSLESS = ("-c:v", "libx264", "-qp", "0")  # decodes to the very same planes
REENCODE = ("-c:v", "libx264", "-crf", "18")


@dataclass
class Setup:
    cam: AnchoredCamera
    bundle: Path
    clips: dict[str, Path]
    root: Path


def _concat(
    root: Path,
    name: str,
    pieces: list[tuple[int, int, int]],
    codec: tuple[str, ...],
    sources: list[Path],
) -> Path:
    """Frames [start, end) of source ``k`` for each (k, start, end), concatenated."""
    inputs: list[str] = []
    for s in sources:
        inputs += ["-i", str(s)]
    chains = [
        f"[{k}:v]trim=start_frame={a}:end_frame={b},setpts=PTS-STARTPTS[p{i}]"
        for i, (k, a, b) in enumerate(pieces)
    ]
    joined = "".join(f"[p{i}]" for i in range(len(pieces)))
    graph = ";".join(chains) + f";{joined}concat=n={len(pieces)}:v=1[o]"
    out = root / name
    ffmpeg(*inputs, "-filter_complex", graph, "-map", "[o]", *codec, str(out))
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("verify-cli")
    camera = make_camera_clip(root / "camera.mp4")
    cam = anchored_camera(root / "net", camera)
    bundle = root / "evidence.cvb"
    fingerprints = fingerprint_clip(camera)
    bundle.write_bytes(cam.bundle(fingerprints, command="cctvchain verify ...").encode())
    other = make_clip(
        root / "other.mp4", source="mandelbrot", size="320x180", seconds=4.0, bframes=0
    )
    clips = {
        "remux": transcode(camera, root / "remux.mkv", "-c", "copy"),
        "reencode": transcode(
            camera,
            root / "reencode.mp4",
            "-vf",
            "scale=1280:720",
            "-c:v",
            "libx264",
            "-b:v",
            "300k",
        ),
        "box": transcode(camera, root / "box.mp4", "-vf", BOX, *REENCODE),
        "box-exact": transcode(camera, root / "box.mkv", "-vf", BOX, *LOSSLESS),
        # frame 150 is a sampled frame (normal policy: the first frame of each second)
        "box-sampled": transcode(
            camera, root / "box150.mp4", "-vf", BOX.replace("137", "150"), *REENCODE
        ),
        "cut": _concat(root, "cut.mp4", [(0, 0, 125), (0, 175, 300)], REENCODE, [camera]),
        "cut-exact": _concat(root, "cut.mkv", [(0, 0, 125), (0, 175, 300)], LOSSLESS, [camera]),
        "insert": _concat(
            root,
            "insert.mp4",
            [(0, 0, 125), (1, 0, 25), (0, 125, 300)],
            REENCODE,
            [camera, other],
        ),
        "swap": _concat(
            root,
            "swap.mp4",
            [(0, 0, 100), (0, 125, 150), (0, 100, 125), (0, 150, 300)],
            REENCODE,
            [camera],
        ),
        "other": other,
    }
    trimmed = root / "trimmed.mp4"
    ffmpeg("-ss", "3.3", "-i", str(camera), "-t", "5", "-c", "copy", str(trimmed))
    clips["trimmed"] = trimmed
    held = root / "held.mp4"
    ffmpeg(
        "-i",
        str(camera),
        "-fps_mode",
        "passthrough",
        "-filter_complex",
        "[0:v]split[a][b];[a][b]freezeframes=first=101:last=124:replace=100",
        *REENCODE,
        str(held),
    )
    clips["held"] = held
    try:
        yield Setup(cam, bundle, clips, root)
    finally:
        cam.world.net.close()


def verify(
    setup: Setup, clip: str | None, *extra: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any], str]:
    out = setup.root / f"report-{clip or 'none'}.json"
    args = ["verify-bundle", str(setup.bundle)]
    if clip is not None:
        args.append(str(setup.clips[clip]))
    code = main([*args, "--json", str(out), *extra])
    text = capsys.readouterr().out
    return code, json.loads(out.read_text()), text


def capture_s(setup: Setup, iso_time: str) -> float:
    """A report's capture time as seconds from the camera clip's first frame."""
    from datetime import datetime

    t = datetime.fromisoformat(iso_time.replace("Z", "+00:00"))
    return t.timestamp() - setup.cam.origin_ms / 1000


def only(report: dict[str, Any], kind: str) -> dict[str, Any]:
    kinds = [a["kind"] for a in report["anomalies"]]
    assert report["verdict"] == "TAMPERED", report["reason"]
    assert kind in kinds, report["anomalies"]
    assert set(kinds) <= {kind, "ALTERED"} if kind == "DUPLICATED" else set(kinds) == {kind}, (
        report["anomalies"]
    )
    return next(a for a in report["anomalies"] if a["kind"] == kind)


# -- honest copies -----------------------------------------------------------------------


def test_the_recording_and_its_remux_are_authentic(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, text = verify(setup, "remux", capsys=capsys)
    assert code == 0 and report["verdict"] == "AUTHENTIC"
    assert report["camera"] == CAMERA and report["anomalies"] == []
    assert report["frames"]["EXACT"] == report["frames"]["total"] == 300
    assert report["coverage"]["fraction"] == 1.0
    assert abs(capture_s(setup, report["coverage"]["capture_start"])) < 0.001
    assert text.startswith("AUTHENTIC — every verified frame is bit-exact")
    assert report["evidence"]["ok"] and report["anchors"][0]["block"] > 0
    assert report["clip"]["container"].startswith("matroska")


def test_a_trimmed_copy_is_authentic_for_what_it_covers(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = verify(setup, "trimmed", capsys=capsys)
    assert code == 0 and report["verdict"] == "AUTHENTIC"
    cov = report["coverage"]
    assert abs(capture_s(setup, cov["capture_start"]) - 3.3) <= FRAME_S
    assert abs(capture_s(setup, cov["capture_end"]) - 8.28) <= 2 * FRAME_S
    assert cov["fraction"] < 0.5 and cov["span_fraction"] == 1.0


def test_a_reencode_at_720p_and_another_bitrate_is_authentic_reencoded(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = verify(setup, "reencode", capsys=capsys)
    assert code == 0 and report["verdict"] == "AUTHENTIC_REENCODED", report["anomalies"]
    assert report["frames"]["PERCEPTUAL"] == 300
    assert report["clip"]["width"] == 1280


# -- edits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("clip", ["box", "box-exact"])
def test_one_frame_with_a_small_region_changed_is_altered_there(
    setup: Setup, clip: str, capsys: pytest.CaptureFixture[str]
) -> None:
    html_path = setup.root / f"{clip}.html"
    code, report, text = verify(setup, clip, "--report", str(html_path), capsys=capsys)
    assert code == 3
    anomaly = only(report, "ALTERED")
    assert anomaly["first_frame"] == anomaly["last_frame"] == 137
    assert anomaly["clip_start_s"] == pytest.approx(5.48)
    assert abs(capture_s(setup, anomaly["capture_start"]) - 5.48) < 0.001
    assert anomaly["tiles"] and {tuple(t) for t in anomaly["tiles"]} <= {
        (2, 2),
        (2, 3),
        (3, 2),
        (3, 3),
    }
    assert "ALTERED" in text and "5.480" in text
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 2  # the frame and its heat map
    assert "<svg" in page and "clip frame 137" in page


def test_a_box_on_a_sampled_frame_of_a_reencoded_copy_is_altered_at_that_frame_only(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    # The sampled anchored frame is compared with the clip frame that matches it best
    # near its slot: that must be the edited frame itself, not its untouched neighbour
    # (which differs by motion and would be reported ALTERED on unrelated tiles).
    code, report, _ = verify(setup, "box-sampled", capsys=capsys)
    assert code == 3
    anomaly = only(report, "ALTERED")
    assert anomaly["first_frame"] == anomaly["last_frame"] == 150, report["anomalies"]
    assert {tuple(t) for t in anomaly["tiles"]} <= {(2, 2), (2, 3), (3, 2), (3, 3)}


@pytest.mark.parametrize("clip", ["cut", "cut-exact"])
def test_two_seconds_cut_out_are_missing_there(
    setup: Setup, clip: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = verify(setup, clip, capsys=capsys)
    assert code == 3
    anomaly = only(report, "MISSING")
    tolerance = FRAME_S if clip.endswith("exact") else 1.0
    assert abs(capture_s(setup, anomaly["capture_start"]) - 5.0) <= tolerance
    assert abs(capture_s(setup, anomaly["capture_end"]) - 6.96) <= tolerance
    assert abs(anomaly["clip_end_s"] - 5.0) <= tolerance
    assert report["frames"]["MISSING"] == 50


def test_foreign_frames_spliced_in_are_inserted_there(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = verify(setup, "insert", capsys=capsys)
    assert code == 3
    anomaly = only(report, "INSERTED")
    assert abs(anomaly["clip_start_s"] - 5.0) <= 1.0 and abs(anomaly["clip_end_s"] - 5.96) <= 1.0


def test_two_swapped_pieces_are_reordered(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _ = verify(setup, "swap", capsys=capsys)
    assert code == 3
    anomaly = only(report, "REORDERED")
    assert abs(anomaly["clip_start_s"] - 4.0) <= 1.0 and abs(anomaly["clip_end_s"] - 5.96) <= 1.0


def test_a_frame_held_for_a_second_is_duplicated_there(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, _ = verify(setup, "held", capsys=capsys)
    assert code == 3
    anomaly = only(report, "DUPLICATED")
    assert abs(anomaly["clip_start_s"] - 4.04) <= 1.0 and abs(anomaly["clip_end_s"] - 4.96) <= 1.0


def test_a_clip_of_another_camera_is_never_authentic(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, text = verify(setup, "other", capsys=capsys)
    assert code == 4 and report["verdict"] == "UNVERIFIABLE"
    assert "not a recording of this camera" in report["reason"]
    assert text.startswith("UNVERIFIABLE")


# -- the command ------------------------------------------------------------------------------


def test_without_a_clip_the_bundled_fingerprints_give_the_verdict(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    html_path = setup.root / "bundle-only.html"
    code, report, text = verify(setup, None, "--report", str(html_path), capsys=capsys)
    assert code == 0 and report["verdict"] == "AUTHENTIC"
    assert report["clip_fingerprints_from"] == "bundle"
    assert "(fingerprints from the bundle)" in text
    assert (
        report["evidence"]["genesis_hash"]
        == setup.cam.world.net.peers[0].ledger.get_block(0).hash().hex()
    )
    for key in (
        "verdict",
        "camera",
        "anomalies",
        "frames",
        "coverage",
        "anchors",
        "camera_certificates",
        "evidence",
        "tool",
        "command",
        "proves",
        "does_not_prove",
        "timeline",
    ):
        assert key in report
    _well_formed(html_path.read_text())


def test_a_bundle_with_an_altered_byte_is_unverifiable_with_the_reason(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(setup.bundle.read_bytes())
    data[len(data) * 2 // 3] ^= 0x04
    broken = setup.root / "broken.cvb"
    broken.write_bytes(bytes(data))
    out = setup.root / "broken.json"
    code = main(["verify-bundle", str(broken), str(setup.clips["remux"]), "--json", str(out)])
    text = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert code == 4 and report["verdict"] == "UNVERIFIABLE"
    assert report["reason"].startswith(("the evidence does not hold", "the bundle does not"))
    assert text.startswith("UNVERIFIABLE")


def test_usage_errors_and_the_genesis_pin(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify-bundle", str(setup.root / "nothing.cvb")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["verify-bundle", str(setup.bundle), str(setup.root / "nothing.mp4")]) == 2
    assert main(["verify-bundle", str(setup.bundle), "--genesis-hash", "xyz"]) == 2
    capsys.readouterr()
    code, report, _ = verify(setup, None, "--genesis-hash", "00" * 32, capsys=capsys)
    assert code == 4 and "expected" in report["reason"]
    with pytest.raises(SystemExit) as usage:
        main(["verify-bundle"])
    assert usage.value.code == 2
    undecodable = setup.root / "not-a-clip.mp4"
    shutil.copy(setup.bundle, undecodable)
    assert main(["verify-bundle", str(setup.bundle), str(undecodable)]) == 1
    assert "cannot decode the clip" in capsys.readouterr().err


class _Checker(HTMLParser):
    VOID = {"meta", "br", "img", "hr", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def _well_formed(page: str) -> None:
    checker = _Checker()
    checker.feed(page)
    assert checker.stack == [], checker.stack
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_still_scene_on_real_video(tmp_path: Path) -> None:
    """A CCTV-like still view (static textured background, sensor noise, an object too
    faint to move the picture): decode-exact copies are verified frame by frame, edits
    included; a re-encoded copy is UNVERIFIABLE (it cannot be placed in time), and a
    still stretch followed by an edit is not mistaken for a held frame."""
    from cctvchain.chaincode.cctv.model import SamplingPolicy
    from cctvchain.ingest import perceptual as P
    from cctvchain.ingest.segment import Segmenter
    from cctvchain.media import decode_frames
    from cctvchain.verify.result import verify_clip

    source = (
        "color=c=0x506070:s=320x180:r=25,"
        "geq=lum='lum(X,Y)+40*sin(X/23)*cos(Y/17)':cb='cb(X,Y)':cr='cr(X,Y)',"
        "noise=alls=10:allf=t"
    )
    still = tmp_path / "still.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        source,
        "-t",
        "8",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "25",
        "-bf",
        "0",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        str(still),
    )
    segmenter = Segmenter("CAM-STILL", SamplingPolicy("normal", 1))
    sealed = []
    for f in decode_frames(still):
        done = segmenter.add(
            f.pts_ms,
            1_767_225_600_000 + f.pts_ms,
            f.digest,
            lambda f=f: P.fingerprint(f.thumbnail()),
        )
        if done is not None:
            sealed.append(done)
    last = segmenter.flush()
    assert last is not None
    segments = [(s.segment, s.records) for s in [*sealed, last]]

    def verdict_of(clip: Path) -> tuple[str, list[str]]:
        result = verify_clip(fingerprint_clip(clip), "CAM-STILL", segments)
        assert result.alignment is not None
        return str(result.verdict), [a.kind.value for a in result.alignment.anomalies]

    cut_exact = _concat(tmp_path, "cut.mkv", [(0, 0, 75), (0, 125, 200)], LOSSLESS, [still])
    box = transcode(still, tmp_path / "box.mp4", "-vf", BOX.replace("137", "150"), *REENCODE)
    reencoded = transcode(still, tmp_path / "re.mp4", "-c:v", "libx264", "-b:v", "200k")
    assert verdict_of(transcode(still, tmp_path / "remux.mkv", "-c", "copy")) == ("AUTHENTIC", [])
    assert verdict_of(cut_exact) == ("TAMPERED", ["MISSING"])
    for clip in (reencoded, box):
        verdict, kinds = verdict_of(clip)
        assert verdict == "UNVERIFIABLE" and kinds == [], (clip.name, verdict, kinds)


def test_an_honest_reencode_of_a_repeating_test_pattern_is_authentic_reencoded(
    tmp_path: Path,
) -> None:
    """ffmpeg's ``testsrc2`` repeats every 12 s as the fingerprints see it: in a 20 s
    recording each frame after 12 s matches the camera's frame at its own time and the
    one 12 s before equally well, up to re-encoding noise. An honest re-encode was judged
    DUPLICATED at its last second (crf 23 at 320x180; crf 23-30 at 1080p): it must be
    AUTHENTIC_REENCODED, and the decode-exact recording AUTHENTIC."""
    from cctvchain.chaincode.cctv.model import SamplingPolicy
    from cctvchain.ingest import perceptual as P
    from cctvchain.ingest.segment import Segmenter
    from cctvchain.media import decode_frames
    from cctvchain.verify.result import verify_clip

    h264 = ("-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "0")
    recording = tmp_path / "pattern.mp4"
    ffmpeg(
        *("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "20"),
        *h264,
        *("-crf", "23", "-pix_fmt", "yuv420p", str(recording)),
    )
    segmenter = Segmenter("CAM-PATTERN", SamplingPolicy("normal", 1), segment_ms=10_000)
    sealed = []
    for f in decode_frames(recording):
        done = segmenter.add(
            f.pts_ms,
            1_767_225_600_000 + f.pts_ms,
            f.digest,
            lambda f=f: P.fingerprint(f.thumbnail()),
        )
        if done is not None:
            sealed.append(done)
    last = segmenter.flush()
    if last is not None:
        sealed.append(last)
    segments = [(s.segment, s.records) for s in sealed]

    def verdict_of(clip: Path) -> tuple[str, list[tuple[str, int, int]]]:
        result = verify_clip(fingerprint_clip(clip), "CAM-PATTERN", segments)
        assert result.alignment is not None
        anomalies = result.alignment.anomalies
        return str(result.verdict), [
            (a.kind.value, a.clip_start_ms, a.clip_end_ms) for a in anomalies
        ]

    assert verdict_of(recording) == ("AUTHENTIC", [])
    for crf in ("23", "30"):
        copy = transcode(
            recording,
            tmp_path / f"pattern-crf{crf}.mp4",
            *(*h264, "-crf", crf, "-pix_fmt", "yuv420p"),
        )
        assert verdict_of(copy) == ("AUTHENTIC_REENCODED", []), crf
