"""The report layer on synthetic alignments: JSON schema and values, exit codes, the
terminal summary, the HTML page (well formed, self-contained, timeline, pictures) and
its PNG encoder."""

from __future__ import annotations

import json
import struct
import zlib
from datetime import UTC, datetime
from html.parser import HTMLParser

import numpy as np
import numpy.typing as npt
import pytest
from verify_synth import FRAME_MS, T0, Camera, Source, build_clip, camera, span

from cctvchain.chaincode.cctv.model import SamplingPolicy, Segment
from cctvchain.ingest.fingerprint import FramePerceptual, FrameRecord
from cctvchain.verify import html
from cctvchain.verify.align import ClipFrame, Verdict
from cctvchain.verify.fingerprints import ClipFingerprints, ClipInfo
from cctvchain.verify.report import build_report, dumps, summary
from cctvchain.verify.result import (
    EXIT_AUTHENTIC,
    EXIT_TAMPERED,
    EXIT_UNVERIFIABLE,
    VerifyResult,
    exit_code,
    unverifiable,
    verify_clip,
)

NORMAL = SamplingPolicy("normal", 1)


def segments_of(cam: Camera) -> list[tuple[Segment, list[FrameRecord]]]:
    """The synthetic camera's frames as anchored segments of records."""
    by_segment: dict[int, list[FrameRecord]] = {}
    for f in cam.frames:
        perceptual = FramePerceptual(f.dct_hash, f.tiles) if f.dct_hash and f.tiles else None
        by_segment.setdefault(f.segment, []).append(
            FrameRecord(f.index, f.pts_ms, f.capture_time_ms, f.digest, perceptual)
        )
    out = []
    for seq, records in sorted(by_segment.items()):
        segment = Segment(
            "CAM-S",
            seq,
            records[0].capture_time_ms,
            records[-1].capture_time_ms,
            len(records),
            bytes(32),
            bytes(32),
            NORMAL,
        )
        out.append((segment, records))
    return out


def fingerprints(frames: list[ClipFrame], name: str = "clip.mp4") -> ClipFingerprints:
    info = ClipInfo(
        "/x/" + name,
        name,
        bytes(range(32)),
        12345,
        "mov,mp4",
        "h264",
        320,
        180,
        len(frames),
        len(frames) * FRAME_MS,
    )
    return ClipFingerprints(info, tuple(frames), sum(f.has_perceptual for f in frames))


@pytest.fixture(scope="module")
def tampered() -> VerifyResult:
    cam = camera(3, 20.0)
    rng = np.random.default_rng(1)
    sources = span(0, 100) + span(150, 300)
    sources[40] = Source(40, edit="altered")
    clip = fingerprints(build_clip(cam, sources, rng))
    return verify_clip(clip, "CAM-S", segments_of(cam), command="cctvchain verify clip.mp4")


def test_exit_codes() -> None:
    assert exit_code(Verdict.AUTHENTIC) == exit_code(Verdict.AUTHENTIC_REENCODED) == 0
    assert exit_code(Verdict.TAMPERED) == EXIT_TAMPERED == 3
    assert exit_code(Verdict.UNVERIFIABLE) == EXIT_UNVERIFIABLE == 4
    assert exit_code(None) == EXIT_AUTHENTIC


def test_the_json_report_of_a_tampered_clip(tampered: VerifyResult) -> None:
    assert tampered.exit_code == 3
    report = json.loads(dumps(build_report(tampered)))
    assert report["schema"] == "cctvchain.verify.report/1"
    assert report["verdict"] == "TAMPERED" and report["camera"] == "CAM-S"
    kinds = [(a["kind"], a["first_frame"], a["last_frame"]) for a in report["anomalies"]]
    assert kinds == [("ALTERED", 40, 40), ("MISSING", 99, 100)]
    altered, missing = report["anomalies"]
    assert altered["clip_start_s"] == altered["clip_end_s"] == 1.6
    assert altered["capture_start"] == datetime.fromtimestamp(
        (T0 + 40 * FRAME_MS) / 1000, tz=UTC
    ).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert altered["tiles"] and altered["anchored_first"] == {"segment": 0, "index": 40}
    assert missing["capture_start_ms"] == T0 + 100 * FRAME_MS
    assert missing["capture_end_ms"] == T0 + 149 * FRAME_MS and missing["frames"] == 50
    assert report["frames"] == {
        "EXACT": 249,
        "PERCEPTUAL": 0,
        "ALTERED": 1,
        "INSERTED": 0,
        "DUPLICATED": 0,
        "REORDERED": 0,
        "UNANCHORED": 0,
        "MISSING": 50,
        "total": 250,
    }
    cov = report["coverage"]
    assert cov["clip_fraction"] == 1.0 and cov["anchored_covered"] == 250
    assert cov["capture_start"].endswith("Z") and cov["span_fraction"] == pytest.approx(250 / 300)
    assert [t["status"] for t in report["timeline"]] == ["EXACT", "ALTERED", "EXACT"]
    assert report["clip"]["sha256"] == bytes(range(32)).hex()
    assert report["tool"]["name"] == "cctvchain" and report["command"].startswith("cctvchain")
    assert report["evidence"] is None and report["anchors"] == []
    assert "differs from what the camera anchored" in report["proves"]


def test_the_terminal_summary(tampered: VerifyResult) -> None:
    text = summary(tampered)
    lines = text.splitlines()
    assert lines[0] == "TAMPERED — 2 anomalies (ALTERED, MISSING)"
    assert "249 exact · 1 altered · 50 missing" in text
    assert any(line.strip().startswith("ALTERED") and "1.600 - 1.600" in line for line in lines)
    assert "\033[" not in text and "\033[1;31m" in summary(tampered, colour=True)


def test_unverifiable_results() -> None:
    result = unverifiable("CAM-X", "access denied by Algorithm 1: no grant for PO P-77")
    assert result.exit_code == 4
    report = build_report(result)
    assert report["verdict"] == "UNVERIFIABLE" and report["anomalies"] == []
    assert report["reason"].startswith("access denied")
    assert summary(result).startswith("UNVERIFIABLE — access denied")
    assert verify_clip(fingerprints([]), "CAM-X", []).verdict == Verdict.UNVERIFIABLE


def _png_pixels(data: bytes) -> npt.NDArray[np.uint8]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
            assert body[8:] == bytes([8, 2, 0, 0, 0])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h = size
    raw = zlib.decompress(idat)
    rows = [raw[y * (3 * w + 1) : (y + 1) * (3 * w + 1)] for y in range(h)]
    assert all(r[0] == 0 for r in rows)
    return np.frombuffer(b"".join(r[1:] for r in rows), dtype=np.uint8).reshape(h, w, 3)


def test_the_png_encoder_round_trips() -> None:
    image = np.random.default_rng(2).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert np.array_equal(_png_pixels(html.png(image)), image)
    with pytest.raises(ValueError):
        html.png(np.zeros((4, 4), dtype=np.uint8))


def test_a_heat_map_outlines_the_changed_tiles() -> None:
    picture = np.full((90, 160, 3), 100, dtype=np.uint8)
    distances = [0.0] * 64
    distances[2 * 8 + 3] = 80.0
    heat = html.heat_map(picture, distances, [(2, 3)])
    assert heat.shape == picture.shape
    tile = heat[2 * 90 // 8 + 3 : 3 * 90 // 8 - 3, 3 * 160 // 8 + 3 : 4 * 160 // 8 - 3]
    assert (tile[..., 0] > 200).all() and (tile[..., 2] < 60).all()  # red
    assert (heat[2 * 90 // 8, 3 * 160 // 8 : 4 * 160 // 8] == 255).all()  # outline
    calm = heat[70:, :40]
    assert np.ptp(calm) == 0  # untouched tiles stay grey


class _Tags(HTMLParser):
    VOID = {"meta", "br", "img"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images += 1
            src = dict(attrs)["src"] or ""
            assert src.startswith("data:image/png;base64,")
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID:
            assert self.stack.pop() == tag


def test_the_html_page_is_self_contained_and_complete(tampered: VerifyResult) -> None:
    wanted = html.wanted_pictures(tampered)
    assert wanted == [40]
    pictures = {40: np.full((90, 160, 3), 120, dtype=np.uint8)}
    page = html.render(tampered, pictures, reproduce="cctvchain verify-bundle b.cvb clip.mp4")
    tags = _Tags()
    tags.feed(page)
    assert tags.stack == [] and tags.images == 2
    for text in (
        "TAMPERED",
        "What this proves.",
        "What it does not prove.",
        "<svg",
        "MISSING: 50 anchored frame(s)",
        "Capture time (UTC)",
        "clip frame 40",
        "cctvchain verify-bundle b.cvb clip.mp4",
        "cctvchain verify clip.mp4",
    ):
        assert text in page, text
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page
