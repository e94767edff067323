"""The HTML evidence report: one self-contained file (pure: numpy and zlib).

Sections: the verdict and what it does and does not prove; the camera and its
certificate; the capture time range and coverage; a timeline of the clip (inline SVG)
coloured by frame status, with missing stretches marked; the anomaly table with clip and
capture times and ledger positions; for altered frames the clip frame beside a heat map
of its tile differences (PNG images, base64); the anchors used with their ledger
positions (block, transaction) and the checks done on them; the tool version and the
command to reproduce the verdict. CSS is inline; nothing is fetched.
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cctvchain.verify.align import AnomalyKind, FrameResult, FrameStatus
from cctvchain.verify.report import DOES_NOT_PROVE, PROVES, build_report, iso, short_time
from cctvchain.verify.result import VerifyResult

RGB = npt.NDArray[np.uint8]
GRID = 8
MAX_PICTURES = 12

COLOURS = {
    FrameStatus.EXACT.value: "#2e7d32",
    FrameStatus.PERCEPTUAL.value: "#81c784",
    FrameStatus.ALTERED.value: "#e65100",
    FrameStatus.INSERTED.value: "#c62828",
    FrameStatus.DUPLICATED.value: "#6a1b9a",
    FrameStatus.REORDERED.value: "#1565c0",
    FrameStatus.UNANCHORED.value: "#9e9e9e",
    AnomalyKind.MISSING.value: "#000000",
}
VERDICT_COLOURS = {
    "AUTHENTIC": "#2e7d32",
    "AUTHENTIC_REENCODED": "#558b2f",
    "TAMPERED": "#c62828",
    "UNVERIFIABLE": "#f9a825",
}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.4;padding:0 1em}
h1{margin:.2em 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.verdict{display:inline-block;color:#fff;padding:.25em .7em;border-radius:.3em;
font-weight:700;letter-spacing:.03em}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border-bottom:1px solid #e5e5e5;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f6f6f6}code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:.9em;word-break:break-all}
.kv td:first-child{width:14em;color:#555}
.legend span{display:inline-block;margin-right:1em;font-size:.85em}
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}
.pair{display:flex;gap:1em;flex-wrap:wrap;margin:.8em 0 1.4em}
.pair figure{margin:0}.pair img{image-rendering:pixelated;border:1px solid #ccc;
max-width:100%}figcaption{font-size:.85em;color:#555}
.fail{color:#c62828}.note{color:#555}
"""


# -- PNG ---------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png(image: RGB) -> bytes:
    """A PNG file of an (height, width, 3) uint8 RGB array."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError("png() takes an (h, w, 3) uint8 array")
    h, w, _ = image.shape
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def data_uri(image: RGB) -> str:
    return "data:image/png;base64," + base64.b64encode(png(image)).decode("ascii")


def heat_map(
    picture: RGB | None,
    distances: Sequence[float],
    changed: Sequence[tuple[int, int]],
    *,
    size: tuple[int, int] = (180, 320),
) -> RGB:
    """The tile distances over a dimmed grey copy of the picture: transparent below the
    change threshold, yellow to red above it; changed tiles outlined."""
    h, w = picture.shape[:2] if picture is not None else size
    if picture is not None:
        grey = picture.astype(np.float64).mean(axis=2, keepdims=True)
        base = np.repeat(grey * 0.45 + 40, 3, axis=2)
    else:
        base = np.full((h, w, 3), 60.0)
    grid = np.asarray(distances, dtype=np.float64).reshape(GRID, GRID)
    rows = (np.arange(h) * GRID // h).clip(0, GRID - 1)
    cols = (np.arange(w) * GRID // w).clip(0, GRID - 1)
    d = grid[rows][:, cols]
    level = np.clip(d / 64.0, 0.0, 1.0)[..., None]
    hot = np.stack(
        [np.full_like(d, 255.0), 255.0 * (1.0 - np.clip(d / 64.0, 0, 1)), np.zeros_like(d)],
        axis=-1,
    )
    alpha = np.where(d[..., None] > 4.0, 0.25 + 0.6 * level, 0.0)
    out = base * (1 - alpha) + hot * alpha
    for r, c in changed:
        y0, y1 = r * h // GRID, max(r * h // GRID + 1, (r + 1) * h // GRID - 1)
        x0, x1 = c * w // GRID, max(c * w // GRID + 1, (c + 1) * w // GRID - 1)
        out[y0, x0 : x1 + 1] = out[y1, x0 : x1 + 1] = (255, 255, 255)
        out[y0 : y1 + 1, x0] = out[y0 : y1 + 1, x1] = (255, 255, 255)
    result: RGB = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return result


# -- the pieces ----------------------------------------------------------------------------------


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def wanted_pictures(result: VerifyResult) -> list[int]:
    """Clip frames whose pictures the report shows: the most changed frame of each
    ALTERED anomaly, and the first frame of every other anomaly of clip frames."""
    alignment = result.alignment
    if alignment is None:
        return []
    frames = alignment.frames
    out: list[int] = []
    for a in alignment.anomalies:
        if a.first_frame is None or a.last_frame is None or a.kind == AnomalyKind.MISSING:
            continue
        if a.kind == AnomalyKind.ALTERED:
            run = frames[a.first_frame : a.last_frame + 1]
            best = max(run, key=lambda f: max(f.tile_distances, default=0.0))
            out.append(best.clip_index)
        else:
            out.append(a.first_frame)
        if len(out) >= MAX_PICTURES:
            break
    return out


def timeline_svg(result: VerifyResult, width: int = 1000, height: int = 46) -> str:
    alignment = result.alignment
    if alignment is None or not alignment.frames:
        return ""
    frames = alignment.frames
    t0 = frames[0].pts_ms
    step = alignment.frame_interval_ms or 40.0
    t1 = frames[-1].pts_ms + step
    span = max(t1 - t0, 1.0)

    def x(ms: float) -> float:
        return round((ms - t0) / span * width, 2)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 16}" '
        f'width="100%" role="img" aria-label="timeline of the clip by frame status">'
    ]
    run_start: FrameResult | None = None
    previous: FrameResult | None = None
    for f in [*frames, None]:
        if f is not None and run_start is not None and f.status == run_start.status:
            previous = f
            continue
        if run_start is not None and previous is not None:
            x0, x1 = x(run_start.pts_ms), x(previous.pts_ms + step)
            colour = COLOURS[run_start.status.value]
            parts.append(
                f'<rect x="{x0}" y="4" width="{max(x1 - x0, 0.6)}" height="{height - 8}" '
                f'fill="{colour}"><title>{_e(run_start.status.value)}: clip '
                f"{run_start.pts_ms / 1000:.3f}-{previous.pts_ms / 1000:.3f} s</title></rect>"
            )
        run_start = previous = f
    for a in alignment.anomalies:
        if a.kind != AnomalyKind.MISSING:
            continue
        xm = x((a.clip_start_ms + a.clip_end_ms) / 2 + step / 2)
        parts.append(
            f'<path d="M{xm - 6},0 L{xm + 6},0 L{xm},9 Z M{xm - 1},9 h2 v{height - 9} h-2 Z" '
            f'fill="#000"><title>MISSING: {a.frames} anchored frame(s), capture '
            f"{_e(iso(a.capture_start_ms))} to {_e(iso(a.capture_end_ms))}</title></path>"
        )
    seconds = span / 1000
    tick = next(t for t in (0.5, 1, 2, 5, 10, 30, 60, 300, 600, 1800, 3600) if seconds / t <= 12)
    k = 0.0
    while k * 1000 <= span:
        xt = x(t0 + k * 1000)
        parts.append(
            f'<line x1="{xt}" y1="{height - 4}" x2="{xt}" y2="{height}" stroke="#555"/>'
            f'<text x="{xt}" y="{height + 12}" font-size="10" text-anchor="middle" '
            f'fill="#555">{k:g}s</text>'
        )
        k += tick
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{c}"></i>{_e(name)}</span>' for name, c in COLOURS.items()
        )
        + "</div>"
    )


def _kv(rows: Sequence[tuple[str, str]]) -> str:
    return (
        '<table class="kv">'
        + "".join(f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in rows)
        + "</table>"
    )


def _anomaly_table(result: VerifyResult, report: Mapping[str, Any]) -> str:
    alignment = result.alignment
    if alignment is None or not alignment.anomalies:
        return "<p>No anomaly.</p>"
    evidence = result.evidence
    blocks = {a.sequence: (a.block, a.tx) for a in evidence.anchors} if evidence else {}
    reference = alignment.coverage.capture_start_ms
    rows = []
    for a in alignment.anomalies:
        where = ""
        if a.anchored_first is not None:
            seq, index = a.anchored_first
            block = blocks.get(seq)
            where = f"segment {seq} frame {index}"
            if block is not None:
                where += f" (block {block[0]}, tx {block[1]})"
        clip_frames = f"{a.first_frame}-{a.last_frame}" if a.first_frame is not None else "-"
        rows.append(
            "<tr>"
            f'<td><b style="color:{COLOURS.get(a.kind.value, "#000")}">{_e(a.kind.value)}</b></td>'
            f"<td>{a.clip_start_ms / 1000:.3f} &ndash; {a.clip_end_ms / 1000:.3f} s"
            f"<br><span class=note>frames {_e(clip_frames)}</span></td>"
            f"<td>{_e(short_time(a.capture_start_ms, reference))} &ndash; "
            f"{_e(short_time(a.capture_end_ms, reference))}</td>"
            f"<td>{a.frames}</td><td>{_e(where)}</td><td>{_e(a.detail)}</td></tr>"
        )
    return (
        "<table><tr><th>Kind</th><th>Clip time</th><th>Capture time (UTC)</th>"
        "<th>Frames</th><th>Ledger position</th><th>Detail</th></tr>" + "".join(rows) + "</table>"
    )


def _pictures(result: VerifyResult, pictures: Mapping[int, RGB]) -> str:
    alignment = result.alignment
    if alignment is None:
        return ""
    blocks = []
    for index in wanted_pictures(result):
        f = alignment.frames[index]
        picture = pictures.get(index)
        figures = []
        if picture is not None:
            figures.append(
                f'<figure><img alt="clip frame {index}" src="{data_uri(picture)}">'
                f"<figcaption>clip frame {index} at {f.pts_ms / 1000:.3f} s "
                f"({_e(f.status.value)})</figcaption></figure>"
            )
        if f.status == FrameStatus.ALTERED:
            if f.tile_distances:
                heat = heat_map(picture, f.tile_distances, f.changed_tiles)
                tiles = ", ".join(f"r{r}c{c}" for r, c in f.changed_tiles) or "none beyond 14"
                figures.append(
                    f'<figure><img alt="tile differences of frame {index}" '
                    f'src="{data_uri(heat)}"><figcaption>tile differences against the '
                    f"{_e(f.reference)} (8x8 tiles; changed: {_e(tiles)})</figcaption></figure>"
                )
            else:
                figures.append(
                    "<figure><figcaption>not bit-exact; no visible change found at the "
                    "perceptual tier</figcaption></figure>"
                )
        if figures:
            capture = iso(f.capture_time_ms) or "-"
            blocks.append(
                f"<h3>{_e(f.status.value)} — clip frame {index}, capture {_e(capture)}</h3>"
                f'<div class="pair">{"".join(figures)}</div>'
            )
    return "".join(blocks)


def render(
    result: VerifyResult,
    pictures: Mapping[int, RGB] | None = None,
    *,
    reproduce: str = "",
) -> str:
    """The report as one HTML document (module docstring)."""
    pictures = pictures or {}
    report = build_report(result)
    verdict = result.verdict.value if result.verdict is not None else "EVIDENCE OK"
    colour = VERDICT_COLOURS.get(verdict, "#2e7d32")
    out: list[str] = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>cctvchain verification: {_e(verdict)} — {_e(result.camera_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1><span class="verdict" style="background:{colour}">{_e(verdict)}</span></h1>',
        f"<p><b>{_e(result.reason)}</b></p>",
    ]
    v = result.verdict
    proves = PROVES.get(v) if v else "The evidence in the bundle holds."
    not_proves = DOES_NOT_PROVE.get(v) if v else "Nothing about any clip: none was given."
    out.append(
        f"<p><b>What this proves.</b> {_e(proves)}</p>"
        f"<p><b>What it does not prove.</b> {_e(not_proves)}</p>"
    )
    # Camera and certificate.
    evidence = result.evidence
    out.append("<h2>Camera</h2>")
    cam_rows = [("camera", _e(result.camera_id))]
    if evidence is not None:
        for c in evidence.cameras:
            cam_rows += [
                ("certificate", f"{_e(c.subject)} — {_e(c.msp_id)}, serial {c.serial:x}"),
                ("valid", f"{_e(c.not_before.isoformat())} to {_e(c.not_after.isoformat())}"),
                ("certificate SHA-256", f"<code>{c.sha256.hex()}</code>"),
                (
                    "revocation",
                    _e(f"revoked {c.revoked_at.isoformat()}")
                    if c.revoked_at
                    else "not revoked in the latest CRL bundled",
                ),
            ]
        cam_rows += [
            ("channel", _e(evidence.channel_id)),
            ("genesis block hash", f"<code>{evidence.genesis_hash.hex()}</code>"),
            ("configuration in force", _e(f"sequence {evidence.config_sequence}")),
        ]
    out.append(_kv(cam_rows))
    # Clip and coverage.
    out.append("<h2>Clip and coverage</h2>")
    rows: list[tuple[str, str]] = []
    clip = report.get("clip")
    if clip:
        rows += [
            ("file", _e(clip["name"])),
            ("SHA-256", f"<code>{_e(clip['sha256'])}</code>"),
            (
                "size",
                _e(
                    f"{clip['size']} bytes, {clip['container']}, {clip['codec']} "
                    f"{clip['width']}x{clip['height']}"
                ),
            ),
            ("frames", _e(f"{clip['frames']} ({clip['duration_s']} s)")),
        ]
        if result.clip_source == "bundle":
            rows.append(("fingerprints", "from the bundle (the clip itself was not decoded)"))
    cov = report.get("coverage")
    if cov:
        rows += [
            ("capture time covered", _e(f"{cov['capture_start']} to {cov['capture_end']}")),
            ("clip verified", _e(f"{cov['clip_fraction']:.1%} of its frames")),
            (
                "anchored frames",
                _e(
                    f"{cov['anchored_covered']} of {cov['anchored_in_span']} in that range; "
                    f"{cov['fraction']:.1%} of the {cov['anchored_frames']} in the segments "
                    f"used ({cov['anchored_start']} to {cov['anchored_end']})"
                ),
            ),
        ]
    frames = report.get("frames") or {}
    if frames:
        rows.append(("frames by status", _e(", ".join(f"{k} {n}" for k, n in frames.items() if n))))
    out.append(_kv(rows))
    svg = timeline_svg(result)
    if svg:
        out.append("<h2>Timeline</h2>" + svg + _legend())
    out.append("<h2>Anomalies</h2>" + _anomaly_table(result, report))
    pics = _pictures(result, pictures)
    if pics:
        out.append("<h2>Frames</h2>" + pics)
    # Evidence.
    out.append("<h2>Evidence on the ledger</h2>")
    if evidence is not None:
        if evidence.failures:
            out.append(
                "<p class=fail><b>The evidence does not hold:</b></p><ul class=fail>"
                + "".join(f"<li>{_e(f)}</li>" for f in evidence.failures)
                + "</ul>"
            )
        anchor_rows = "".join(
            f"<tr><td>{a.sequence}</td><td>{a.block}</td><td>{a.tx}</td>"
            f"<td><code>{_e(a.tx_id)}</code></td>"
            f"<td>{_e(iso(a.capture_start_ms))}<br>{_e(iso(a.capture_end_ms))}</td>"
            f"<td>{a.frames} ({a.sampled} sampled)</td><td>{_e(iso(a.anchored_ms))}</td>"
            f"<td><code>{a.merkle_root.hex()[:16]}…</code></td></tr>"
            for a in evidence.anchors
        )
        if anchor_rows:
            out.append(
                "<table><tr><th>Segment</th><th>Block</th><th>Tx</th><th>Transaction id</th>"
                "<th>Capture</th><th>Frames</th><th>Anchored</th><th>Merkle root</th></tr>"
                + anchor_rows
                + "</table>"
            )
        if evidence.checks:
            out.append(
                "<p>Checked:</p><ul>"
                + "".join(f"<li>{_e(c)}</li>" for c in evidence.checks)
                + "</ul>"
            )
    else:
        out.append("<p>No ledger evidence.</p>")
    notes = report.get("notes") or []
    if notes:
        out.append(
            "<h2>Notes</h2><ul class=note>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"
        )
    out.append("<h2>Reproduce</h2>")
    out.append(
        _kv(
            [
                ("tool", _e(f"cctvchain {result.tool_version}")),
                ("command", f"<code>{_e(result.command)}</code>"),
                ("to reproduce", f"<code>{_e(reproduce or result.command)}</code>"),
                ("generated", _e(report.get("generated"))),
            ]
        )
    )
    out.append("</body></html>\n")
    return "".join(out)
