"""``cctvchain demo`` end to end, as a subprocess: a real cluster, a real RTSP camera, a
real ingest beside an NVR recording, and the verdicts, reports and evidence bundle it
leaves behind; interrupted with Ctrl-C half way, it leaves no process behind either."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from node_helpers import free_ports

from cctvchain.demo.cluster import write_demo_config
from cctvchain.demo.workspace import MARKER

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parent.parent
SECONDS = "12"  # of ingest (the demo's default is 30)
FRAME_S = 0.04


@dataclass
class DemoRun:
    directory: Path
    result: subprocess.CompletedProcess[str]

    @property
    def out(self) -> str:
        return self.result.stdout

    def report(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.directory / "evidence" / name).read_text())
        return data


def _cctvchain(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "cctvchain", *map(str, args)]


def _topology(root: Path) -> Path:
    """configs/local.toml (3 organisations with a CA each, 3 orderers, 4 peers) with
    every port replaced by a free one."""
    text = (REPO / "configs" / "local.toml").read_text()
    count = len(re.findall(r"\bport = \d+", text))
    ports = iter(free_ports(count))
    config = root / "topology.toml"
    config.write_text(re.sub(r"\bport = \d+", lambda _: f"port = {next(ports)}", text))
    (root / "acl.toml").write_text((REPO / "configs" / "acl.toml").read_text())
    return config


def _demo_args(root: Path, directory: Path) -> list[str]:
    config = _topology(root)
    return [
        *(sys.executable, "-m", "cctvchain", "demo", "--config", str(config)),
        *("--port-offset", "0", "--seconds", SECONDS, "--dir", str(directory)),
    ]


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name ``text`` (a demo's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _no_process_left(directory: Path) -> None:
    # Nodes name the demo's config, the camera its clip, the ingest its spool: all
    # under the demo directory.
    left = _processes_mentioning(str(directory))
    assert left == [], left
    assert list(directory.glob("*/node.pid")) == []


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    root = tmp_path_factory.mktemp("demo")
    directory = root / "run"
    result = subprocess.run(
        _demo_args(root, directory), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    yield DemoRun(directory, result)
    for line in _processes_mentioning(str(directory)):  # only if a test failed
        os.kill(int(line.split(":")[0]), signal.SIGKILL)


def test_the_demo_tells_the_whole_story(demo: DemoRun) -> None:
    assert demo.result.returncode == 0, demo.out[-6000:] + demo.result.stderr
    assert demo.result.stderr == ""
    headings = re.findall(r"^\[(\d)/9\] ", demo.out, flags=re.MULTILINE)
    assert headings == [str(n) for n in range(1, 10)]
    assert "is up" in demo.out or "running" in demo.out
    for role in ("CRM", "CRS", "Operator", "PO", "PCRO", "LAS"):
        assert re.search(rf"@\w+\s+{role}\s", demo.out), role
    assert "camera 5859 streams at rtsp://127.0.0.1:" in demo.out
    assert "refused by the network: ACCESS_DENIED" in demo.out  # the operator's approval
    assert "status: APPROVED" in demo.out
    assert re.search(r"segment \d+ anchored in block \d+", demo.out)
    assert "spool empty" in demo.out
    assert "GRANTED: user P-77 holds access to 5859" in demo.out
    assert re.search(r"^demo finished in \d+ s: recording AUTHENTIC, tampered TAMPERED, "
                     r"reencoded AUTHENTIC_REENCODED", demo.out, flags=re.MULTILINE)  # fmt: skip


def test_the_recording_and_its_copies_get_their_verdicts(demo: DemoRun) -> None:
    assert demo.result.returncode == 0, demo.out[-6000:] + demo.result.stderr
    recording = demo.report("recording.json")
    assert recording["verdict"] == "AUTHENTIC", recording.get("reason")
    assert recording["camera"] == "5859" and recording["anomalies"] == []
    assert recording["frames"]["total"] > 50
    assert recording["frames"]["EXACT"] == recording["frames"]["total"]

    tampered = demo.report("tampered.json")
    assert tampered["verdict"] == "TAMPERED"
    assert [a["kind"] for a in tampered["anomalies"]] == ["ALTERED"], tampered["anomalies"]
    (altered,) = tampered["anomalies"]
    match = re.search(r"a box painted on frame (\d+) \(t = ([\d.]+) s\)", demo.out)
    assert match is not None
    frame, at = int(match.group(1)), float(match.group(2))
    assert frame * FRAME_S == pytest.approx(at)
    # The edited frame is found, and only it.
    assert abs(altered["clip_start_s"] - at) <= FRAME_S + 1e-6, altered
    assert altered["clip_end_s"] - altered["clip_start_s"] <= FRAME_S + 1e-6, altered
    # ... and placed in the camera's time, inside what the recording covers.
    start, end = (_when(recording["coverage"][k]) for k in ("capture_start", "capture_end"))
    assert start <= _when(altered["capture_start"]) <= end
    assert "ALTERED at" in demo.out

    reencoded = demo.report("reencoded.json")
    assert reencoded["verdict"] == "AUTHENTIC_REENCODED", reencoded["anomalies"]
    assert reencoded["clip"]["width"] == 1280

    for name in ("recording", "tampered", "reencoded"):
        page = (demo.directory / "evidence" / f"{name}.html").read_text()
        assert "<svg" in page and page.rstrip().endswith("</html>"), name


def test_the_evidence_bundle_rechecks_offline(demo: DemoRun) -> None:
    assert demo.result.returncode == 0, demo.out[-6000:] + demo.result.stderr
    bundle = demo.directory / "evidence" / "recording.bundle"
    recording = demo.directory / "camera" / "nvr-recording.mp4"
    out = demo.directory / "recheck.json"
    # The cluster is down by now: this check has no network to ask.
    checked = subprocess.run(
        [*_cctvchain("verify-bundle", bundle, recording), "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(out.read_text())["verdict"] == "AUTHENTIC"
    tampered = demo.directory / "camera" / "tampered-box.mp4"
    against = subprocess.run(
        _cctvchain("verify-bundle", bundle, tampered),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert against.returncode == 3, against.stdout + against.stderr


def test_users_without_a_grant_are_refused(demo: DemoRun) -> None:
    assert demo.result.returncode == 0, demo.out[-6000:] + demo.result.stderr
    assert "DENIED: neither user P-81 nor role PCRO holds access to camera 5859" in demo.out
    for who in ("pcro", "staff"):
        report = demo.report(f"refused-{who}.json")
        assert report["verdict"] == "UNVERIFIABLE", report
        assert "access" in report["reason"].lower(), report
        assert report["anomalies"] == []
    assert demo.out.count("=> refused: exit 4 (UNVERIFIABLE)") == 2


def test_nothing_is_left_running(demo: DemoRun) -> None:
    assert "stopping the cluster" in demo.out
    assert "stopping the RTSP camera" in demo.out
    _no_process_left(demo.directory)


def test_ctrl_c_half_way_stops_everything(tmp_path: Path) -> None:
    directory = tmp_path / "run"
    process = subprocess.Popen(
        _demo_args(tmp_path, directory),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A background job inherits SIGINT ignored; a terminal's Ctrl-C is not.
        preexec_fn=_default_sigint,
    )
    assert process.stdout is not None
    seen = []
    try:
        for line in process.stdout:  # until the ingest and the recording run
            seen.append(line)
            if line.startswith("      $ ffmpeg "):
                break
        else:
            raise AssertionError("the demo ended without starting the NVR: " + "".join(seen))
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    text = "".join(seen) + out
    assert any(line.startswith("[5/9] ") for line in seen), text
    assert process.returncode == 130, text + err
    assert "Traceback" not in err
    assert "stopping the cluster" in text and "stopping the RTSP camera" in text
    _no_process_left(directory)


def test_a_network_without_the_demo_organisations_is_refused(tmp_path: Path) -> None:
    toml = (REPO / "configs" / "local.toml").read_text().replace('"Police"', '"Constabulary"')
    config = tmp_path / "other.toml"
    config.write_text(toml)
    (tmp_path / "acl.toml").write_text((REPO / "configs" / "acl.toml").read_text())
    result = subprocess.run(
        _cctvchain("demo", "--config", config, "--dir", tmp_path / "d"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cctvchain: error: demo failed: ")
    assert "needs a network with the organisations" in lines[0]
    assert "[2/9]" not in result.stdout  # nothing started beyond the configuration


def test_a_rerun_first_stops_what_a_killed_demo_left_running(tmp_path: Path) -> None:
    # What a demo killed by SIGKILL leaves: its directory, with its cluster running.
    directory = tmp_path / "run"
    directory.mkdir()
    (directory / MARKER).write_text("")
    config = write_demo_config(_topology(tmp_path), directory, 0)
    up = subprocess.run(
        _cctvchain("network", "up", "--config", config, "--timeout", "120"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert len(_processes_mentioning(str(directory))) == 10  # 3 CAs, 3 orderers, 4 peers
    # The next run stops them before it deletes their directory (then fails early here).
    toml = (REPO / "configs" / "local.toml").read_text().replace('"Police"', '"Constabulary"')
    other = tmp_path / "other.toml"
    other.write_text(toml)
    (tmp_path / "acl.toml").write_text((REPO / "configs" / "acl.toml").read_text())
    again = subprocess.run(
        _cctvchain("demo", "--config", other, "--dir", directory),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 1 and "needs a network with the organisations" in again.stderr
    assert "stopped peer0.city" in again.stdout and "stopped ca.la" in again.stdout
    _no_process_left(directory)


def test_too_short_an_ingest_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        _cctvchain("demo", "--seconds", "3", "--dir", tmp_path / "d"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == "cctvchain: error: --seconds must be at least 8\n"
    assert not (tmp_path / "d").exists()


def test_a_foreign_directory_is_kept(tmp_path: Path) -> None:
    directory = tmp_path / "mine"
    directory.mkdir()
    (directory / "keep.txt").write_text("not the demo's")
    result = subprocess.run(
        _cctvchain("demo", "--dir", directory),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "--fresh" in result.stderr
    assert "Traceback" not in result.stderr
    assert (directory / "keep.txt").exists()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _when(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
