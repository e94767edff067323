"""The whole story, end to end, on real processes: a cluster, a live RTSP camera, the
paper's participants, a camera approved and anchored while an NVR records it, and a
police officer verifying the recording and two copies of it.

1. the default cluster (3 organisations, 3 Raft orderers, 4 peers, 3 CA nodes) as
   separate processes, from the demo's own copy of the configuration (other ports, its
   own directory; :mod:`~cctvchain.demo.cluster`);
2. a GStreamer RTSP camera streaming a generated H.264 clip;
3. the participants enrolled at their organisation's CA node and added to the ledger;
4. an operator requests the camera, the control room manager approves it and binds its
   own enrolled identity (the operator may not approve);
5. ``cctvchain ingest`` anchors the stream for ``seconds`` while ``ffmpeg -c copy``
   records it like an NVR;
6. the manager grants the police officer access;
7. the officer verifies the recording (``AUTHENTIC``), a copy with a box painted on one
   frame (``TAMPERED``, with the altered time) and a 720p re-encode
   (``AUTHENTIC_REENCODED``), with JSON and HTML reports and an evidence bundle that is
   then re-checked offline;
8. users without a grant are refused (``UNVERIFIABLE``, exit 4, with the reason);
9. where everything is; the cluster and the camera are stopped — on success, failure
   or Ctrl-C alike.

Every user action goes through the ``cctvchain`` command line (in this process, its
output shown indented), the ingest as its own process, as a user would run them. An
outcome other than the expected one stops the demo with a :class:`DemoError`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cctvchain.demo import DemoError
from cctvchain.demo import camera as media
from cctvchain.demo.cluster import CONFIG_NAME, DEFAULT_PORT_OFFSET, write_demo_config
from cctvchain.demo.participants import (
    CAMERA,
    CITY,
    ORGANISATIONS,
    PARTICIPANTS,
    Participant,
    participant,
)
from cctvchain.network.config import NetworkConfig, NetworkConfigError, load_network_config
from cctvchain.node.runtime import format_url

if TYPE_CHECKING:  # the supervisor loads aiohttp; imported where the cluster starts
    from cctvchain.supervisor.network import NetworkSupervisor

STEPS: Final = 9
Out = Callable[[str], None]

EXIT_TAMPERED: Final = 3
EXIT_UNVERIFIABLE: Final = 4
CLIP_MARGIN_S: Final = 45.0  # the camera clip outlasts the ingest: no loop, no repeats
RECORD_MARGIN_S: Final = 2.5  # the recording ends this long before the ingest does
# The ingest's own --duration is only a backstop (should the demo be killed): the demo
# stops it ``seconds`` after its first frame, however long it took to start.
INGEST_BACKSTOP_S: Final = 120.0
MIN_SECONDS: Final = 8.0


@dataclass(frozen=True)
class StoryOptions:
    directory: Path  # emptied by the caller (see workspace.prepare)
    template: Path  # the topology to copy (configs/local.toml)
    port_offset: int = DEFAULT_PORT_OFFSET
    seconds: float = 30.0  # how long the camera is ingested
    up_timeout: float = 120.0


@dataclass(frozen=True)
class Verification:
    label: str
    who: str
    clip: Path
    code: int
    verdict: str
    report: dict[str, Any]
    json_path: Path
    html_path: Path


@dataclass
class StoryResult:
    config: Path
    recording: Path
    bundle: Path | None = None
    verifications: list[Verification] = field(default_factory=list)
    box_frame: int = 0
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    def error(self) -> str:
        text = self.err.strip() or self.out.strip()
        return text.removeprefix("cctvchain: error: ")


def cli(*args: str | Path) -> CliRun:
    """Run one ``cctvchain`` command in this process and capture what it prints."""
    from cctvchain.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(arg) for arg in args])
    except SystemExit as exc:  # argparse refused the arguments
        code = exc.code if isinstance(exc.code, int) else 2
    if code == 130:  # main() turned a Ctrl-C into its exit code; the demo must stop
        raise KeyboardInterrupt
    return CliRun(code, out.getvalue(), err.getvalue())


def has_command(name: str) -> bool:
    """Whether this build's ``cctvchain`` has the sub-command ``name``."""
    from cctvchain.cli.main import build_parser

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            build_parser().parse_args([name, "--help"])
        except SystemExit as exc:
            return exc.code == 0
    return False


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


class Narrator:
    """Numbered step headings, indented detail lines, and the time since the start."""

    def __init__(self, out: Out) -> None:
        self._out = out
        # The ingest's output is relayed from another thread: without the lock its lines
        # and the narration's could interleave mid-line.
        self._lock = threading.Lock()
        self.number = 0
        self.started = time.monotonic()

    def out(self, line: str) -> None:
        with self._lock:
            self._out(line)

    def step(self, title: str) -> None:
        self.number += 1
        elapsed = time.monotonic() - self.started
        self.out(f"[{self.number}/{STEPS}] {title}  (+{elapsed:.0f} s)")

    def say(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.out(f"      {line}")

    def shown(self, text: str, prefix: str = "| ") -> None:
        """A command's own output, set off from the narration."""
        for line in text.rstrip().splitlines():
            self.out(f"        {prefix}{line}")


def stop_leftovers(directory: Path, out: Out) -> None:
    """Stop the nodes of an earlier demo in ``directory`` that is still running (it was
    killed before it could clean up), before its directory is deleted."""
    from cctvchain.demo.workspace import MARKER
    from cctvchain.supervisor.network import NetworkSupervisor

    path = directory / CONFIG_NAME
    if not (directory / MARKER).is_file() or not path.is_file():
        return
    try:
        config = load_network_config(path)
    except NetworkConfigError:
        return
    NetworkSupervisor(config, path, out=out, err=out).down()


class Story:
    def __init__(self, options: StoryOptions, out: Out) -> None:
        if options.seconds < MIN_SECONDS:
            raise DemoError(f"--seconds must be at least {MIN_SECONDS:g}")
        self.options = options
        self.say = Narrator(out)
        self.dir = options.directory.resolve()
        self.media_dir = self.dir / "camera"
        self.evidence = self.dir / "evidence"
        self.config_path = self.dir / CONFIG_NAME
        self.config: NetworkConfig | None = None
        self.wallets: dict[str, Path] = {}
        self.cleanup = contextlib.ExitStack()

    # -- the story -------------------------------------------------------------------------

    def run(self) -> StoryResult:
        self.say.out("preparing: the media tools the camera and the NVR need")
        media.ensure_packages(self.say.say)
        with self.cleanup:
            config = self._step_cluster()
            camera = self._step_camera()
            self._step_participants(config)
            self._step_camera_approval()
            result = StoryResult(self.config_path, self.media_dir / "nvr-recording.mp4")
            self._step_ingest(camera.url, result.recording)
            self._step_grant()
            self._step_verify(result)
            self._step_refusals(result)
            self.say.step("Where everything is; stopping the cluster and the camera")
            self._where(config, result)
        result.elapsed_s = time.monotonic() - self.say.started
        return result

    def _step_cluster(self) -> NetworkConfig:
        from cctvchain.supervisor.network import NetworkSupervisor, status_table

        say = self.say
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.evidence.mkdir(parents=True, exist_ok=True)
        path = write_demo_config(self.options.template, self.dir, self.options.port_offset)
        try:
            config = load_network_config(path)
            for name in ORGANISATIONS:
                config.org(name)
        except NetworkConfigError as exc:
            raise DemoError(
                f"the demo needs a network with the organisations {', '.join(ORGANISATIONS)} "
                f"(as in configs/local.toml): {exc}"
            ) from exc
        self.config = config
        say.step(
            f"Starting the cluster: {len(config.organizations)} CAs, {len(config.orderers)} "
            f"Raft orderers, {len(config.peers)} peers, each its own process"
        )
        say.say(
            f"configuration {display_path(path)}: the topology of "
            f"{display_path(self.options.template)}, ports moved by {self.options.port_offset}"
        )
        supervisor = NetworkSupervisor(config, path, out=say.say, err=say.say)
        # Registered before anything starts: a failure or Ctrl-C from here on stops them.
        self.cleanup.callback(self._stop_cluster, supervisor)
        statuses = supervisor.up(timeout=self.options.up_timeout)
        say.say(status_table(statuses).strip("\n"))
        return config

    def _stop_cluster(self, supervisor: NetworkSupervisor) -> None:
        self.say.say(f"stopping the cluster ({display_path(self.config_path)})")
        report = supervisor.down()
        for warning in report.warnings:
            self.say.say(f"warning: {warning}")
        if report.survivors:
            names = ", ".join(node.name for node in report.survivors)
            self.say.say(f"warning: {names} still running after SIGKILL")

    def _step_camera(self) -> media.RtspCamera:
        say = self.say
        say.step("Starting a live RTSP camera (GStreamer) streaming a generated H.264 clip")
        clip_seconds = self.options.seconds + CLIP_MARGIN_S
        clip = media.make_camera_clip(self.media_dir / "camera.h264", clip_seconds)
        say.say(
            f"clip {display_path(clip)}: {clip_seconds:g} s of moving test pattern, "
            f"{media.SIZE} at {media.FPS} fps, libx264, a keyframe a second, no B-frames"
        )
        camera = media.start_rtsp_camera(clip, self.media_dir / "rtsp-server.log")
        self.cleanup.callback(self._stop_camera, camera)
        say.say(f"camera {CAMERA.camera_id} streams at {camera.url} (RTSP, RTP/H.264)")
        return camera

    def _stop_camera(self, camera: media.RtspCamera) -> None:
        self.say.say("stopping the RTSP camera")
        camera.stop()

    def _ca_url(self, org: str) -> str:
        assert self.config is not None
        ca = self.config.org(org).ca
        return format_url(ca.host, ca.port)

    def _admin(self, org: str) -> Path:
        return self.dir / "wallets" / f"admin@{org}"

    def _enrol(self, org: str, name: str, id_type: str, role: str | None) -> Path:
        """Register as the organisation's admin, then enrol msp and tls at the CA node."""
        url, admin = self._ca_url(org), self._admin(org)
        attrs = ["--attr", f"role={role}"] if role else []
        registered = self._ok(
            f"register {name} at {url}",
            "ca", "register", "--url", url, "--registrar", admin, "--name", name,
            "--type", id_type, *attrs,
        )  # fmt: skip
        secret = registered.out.strip().rsplit(" ", 1)[-1]
        wallet = self.dir / "wallets" / f"{name}@{org}"
        for profile in ("msp", "tls"):
            self._ok(
                f"enrol {name} ({profile})",
                "ca", "enroll", "--url", url, "--name", name, f"--secret={secret}",
                "--wallet", wallet, "--profile", profile, "--tls-ca", admin / "tls" / "ca.pem",
            )  # fmt: skip
        self.wallets[name] = wallet
        return wallet

    def _as(self, wallet: Path, *args: str | Path) -> CliRun:
        return cli(*args, "--wallet", wallet, "--config", self.config_path)

    def _ok(self, what: str, *args: str | Path) -> CliRun:
        run = cli(*args)
        if run.code != 0:
            raise DemoError(f"{what} failed: {run.error()}")
        return run

    def _ok_as(self, what: str, wallet: Path, *args: str | Path) -> CliRun:
        run = self._as(wallet, *args)
        if run.code != 0:
            raise DemoError(f"{what} failed: {run.error()}")
        return run

    def _step_participants(self, config: NetworkConfig) -> None:
        say = self.say
        say.step("Enrolling the paper's participants at their CA nodes and adding them")
        say.say("each: registered by the organisation's admin with a role attribute, a key")
        say.say("made here, msp + tls certificates from the CA node over TLS, then a")
        say.say("participant record on the ledger added by that admin")
        for who in PARTICIPANTS:
            self._enrol(who.org, who.name, "client", who.role)
            added = self._ok_as(
                f"adding participant {who.participant_id}",
                self._admin(who.org),
                *self._participant_args(who),
            )
            committed = added.out.strip().splitlines()[0].split(": ", 1)[-1]
            room = f", {who.control_room}" if who.control_room else ""
            say.say(
                f"{who.label:<24} {who.role:<8} {who.title:<29} participant "
                f"{who.participant_id} ({who.person}{room}): {committed}"
            )
        self._enrol(CITY, CAMERA.identity, "camera", None)
        say.say(
            f"{CAMERA.identity}@{CITY:<15} camera   the camera's own identity (signs its anchors)"
        )
        say.say(f"wallets in {display_path(self.dir / 'wallets')}/<name>@<Org>")

    @staticmethod
    def _participant_args(who: Participant) -> list[str]:
        args = [
            *("participant", "add", "--id", who.participant_id, "--role", who.role),
            *("--identity", who.name, "--name", who.person, "--person-id", f"ID-{who.name}"),
            *("--department", who.department, "--age", str(who.age), "--gender", who.gender),
        ]
        if who.control_room:
            args += ["--control-room", who.control_room]
        return args

    def _step_camera_approval(self) -> None:
        say = self.say
        operator, manager = participant("operator"), participant("manager")
        say.step("The operator requests the camera, the control room manager approves it")
        requested = self._ok_as(
            "the camera request",
            self.wallets[operator.name],
            *("camera", "request", "--id", CAMERA.camera_id, "--ip", CAMERA.ip),
            *("--location", CAMERA.location, "--model", CAMERA.model, "--policy", "normal"),
        )
        say.say(f"{operator.label} (Operator): cctvchain camera request --id {CAMERA.camera_id}")
        say.shown(_pick(requested.out, ("requested", "status", "policy")))
        refused = self._as(
            self.wallets[operator.name],
            *("camera", "approve", CAMERA.camera_id, "--camera-identity", CAMERA.identity),
        )
        if refused.code == 0:
            raise DemoError("the operator approved a camera; only the CRM may")
        say.say(f"{operator.label} tries to approve it too: refused")
        say.shown(refused.error())
        approved = self._ok_as(
            "the approval",
            self.wallets[manager.name],
            *("camera", "approve", CAMERA.camera_id, "--camera-identity", CAMERA.identity),
        )
        say.say(
            f"{manager.label} (CRM): cctvchain camera approve {CAMERA.camera_id} "
            f"--camera-identity {CAMERA.identity}"
        )
        say.shown(_pick(approved.out, ("approved", "status", "cameraIdentity", "controlRoom")))

    def _step_ingest(self, url: str, recording: Path) -> None:
        say = self.say
        seconds = self.options.seconds
        say.step(f"Ingesting the camera for {seconds:g} s while an NVR records it (ffmpeg -c copy)")
        wallet = self.wallets[CAMERA.identity]
        spool = self.dir / "spool" / CAMERA.camera_id
        command = [
            *(sys.executable, "-m", "cctvchain", "ingest", "--camera", CAMERA.camera_id),
            *("--source", url, "--wallet", str(wallet), "--config", str(self.config_path)),
            *("--spool", str(spool), "--metrics-interval", "10"),
            *("--duration", f"{seconds + INGEST_BACKSTOP_S:g}"),
        ]
        say.say(
            "$ cctvchain ingest --camera "
            f"{CAMERA.camera_id} --source {url} --wallet {display_path(wallet)}"
        )
        log = self.dir / "ingest.log"
        ingest = IngestProcess(command, log, say)
        self.cleanup.callback(ingest.stop)
        if not ingest.frames.wait(timeout=30.0):
            ingest.stop()
            raise DemoError(f"the ingest saw no frame within 30 s; see {display_path(log)}")
        # Timed from the first frame, not from the start of the process: a loaded machine
        # may take seconds to start Python and connect. The recording lies inside the
        # anchored stream: it starts once the ingest has frames and ends a little before
        # the demo stops the ingest.
        first_frame = time.monotonic()
        stop_at = first_frame + seconds - RECORD_MARGIN_S
        recorder = media.Recorder(url, recording, self.media_dir / "nvr.log")
        self.cleanup.callback(recorder.stop)
        say.say(f"$ {shlex.join(['ffmpeg', *recorder.command[5:]])}")
        while time.monotonic() < stop_at:
            if recorder.process.poll() is not None:
                break  # finish() says why
            time.sleep(0.2)
        recorder.finish()
        frames = media.count_frames(recording)
        say.say(f"NVR recording {display_path(recording)}: {frames} frames ({frames / 25:.1f} s)")
        time.sleep(max(0.0, first_frame + seconds - time.monotonic()))
        say.say(f"stopping the ingest after {seconds:g} s (SIGTERM, as Ctrl-C would)")
        code = ingest.interrupt(timeout=120)
        if code != 0 or not ingest.saw("spool empty"):
            raise DemoError(
                f"the ingest ended with code {code} without draining its spool; see "
                f"{display_path(log)}"
            )

    def _step_grant(self) -> None:
        say = self.say
        manager, officer = participant("manager"), participant("officer")
        say.step("The control room manager grants the police officer access to the camera")
        granted = self._ok_as(
            "the grant",
            self.wallets[manager.name],
            *("access", "grant", CAMERA.camera_id, "--user", officer.participant_id),
        )
        say.say(
            f"{manager.label}: cctvchain access grant {CAMERA.camera_id} "
            f"--user {officer.participant_id}"
        )
        say.shown(_pick(granted.out, ("granted",)))
        checked = self._ok_as(
            "the officer's access check",
            self.wallets[officer.name],
            *("access", "check", CAMERA.camera_id, "--record", "incident 2026-417, Market Sq"),
        )
        say.say(f"{officer.label}: cctvchain access check {CAMERA.camera_id} --record ...")
        say.shown(checked.out)

    def _step_verify(self, result: StoryResult) -> None:
        say = self.say
        officer = participant("officer")
        say.step("The police officer verifies the recording and two copies of it")
        if not has_command("verify"):
            raise DemoError("this build has no `cctvchain verify` command yet")
        recording = result.recording
        frames = media.count_frames(recording)
        result.box_frame = frames // 2
        tampered = media.paint_box(recording, self.media_dir / "tampered-box.mp4", result.box_frame)
        say.say(
            f"tampered copy {display_path(tampered)}: a box painted on frame "
            f"{result.box_frame} (t = {result.box_frame / media.FPS:.2f} s), re-encoded"
        )
        reencoded = media.reencode_720p(recording, self.media_dir / "reencoded-720p.mp4")
        say.say(
            f"re-encoded copy {display_path(reencoded)}: 1280x720 at "
            f"{media.REENCODE_BITRATE.removesuffix('k')} kbit/s"
        )
        bundle = self.evidence / "recording.bundle"
        expected = (
            ("recording", recording, "AUTHENTIC", 0, bundle),
            ("tampered", tampered, "TAMPERED", EXIT_TAMPERED, None),
            ("reencoded", reencoded, "AUTHENTIC_REENCODED", 0, None),
        )
        for label, clip, verdict, code, bundle_path in expected:
            done = self._verify(label, officer, clip, bundle_path)
            result.verifications.append(done)
            if (done.code, done.verdict) != (code, verdict):
                raise DemoError(
                    f"the {label} copy came out {done.verdict} (exit {done.code}), "
                    f"expected {verdict}: {done.report.get('reason', '')}"
                )
            if label == "tampered":
                for anomaly in done.report.get("anomalies", []):
                    say.say(f"=> {_anomaly_line(anomaly)}")
        result.bundle = bundle
        rechecked = cli("verify-bundle", bundle, recording, "--quiet")
        say.say(f"$ cctvchain verify-bundle {display_path(bundle)} {display_path(recording)}")
        if rechecked.code != 0:
            raise DemoError(f"the evidence bundle did not re-check offline: {rechecked.error()}")
        say.say("=> the bundle re-checks with no network: AUTHENTIC (exit 0)")

    def _verify(
        self, label: str, who: Participant, clip: Path, bundle: Path | None, tag: str = ""
    ) -> Verification:
        say = self.say
        stem = f"{label}{tag}"
        json_path, html_path = self.evidence / f"{stem}.json", self.evidence / f"{stem}.html"
        extra: list[str | Path] = ["--report", html_path]
        if bundle is not None:
            extra += ["--bundle", bundle]
        shown = ["cctvchain verify", display_path(clip), "--camera", CAMERA.camera_id]
        shown += [f"--report {display_path(html_path)}"]
        if bundle is not None:
            shown += [f"--bundle {display_path(bundle)}"]
        say.say(f"{who.label}: $ {' '.join(shown)}")
        run = self._as(
            self.wallets[who.name],
            *("verify", clip, "--camera", CAMERA.camera_id, "--json", json_path, *extra),
        )
        try:
            report: dict[str, Any] = json.loads(json_path.read_text())
        except (OSError, ValueError) as exc:
            raise DemoError(f"verify wrote no JSON report for {label}: {run.error()}") from exc
        say.shown(run.out or run.err)
        verdict = str(report.get("verdict", ""))
        return Verification(label, who.name, clip, run.code, verdict, report, json_path, html_path)

    def _step_refusals(self, result: StoryResult) -> None:
        say = self.say
        say.step("Users without a grant are refused")
        pcro = participant("pcro")
        check = self._as(self.wallets[pcro.name], "access", "check", CAMERA.camera_id)
        say.say(f"{pcro.label} (PCRO, no grant): cctvchain access check {CAMERA.camera_id}")
        say.shown(check.out or check.err)
        if check.code != EXIT_TAMPERED:  # access check: 3 = denied
            raise DemoError(f"the PCRO's access check gave exit {check.code}, expected 3")
        for name in ("pcro", "staff"):
            who = participant(name)
            done = self._verify("refused", who, result.recording, None, tag=f"-{name}")
            result.verifications.append(done)
            if (done.code, done.verdict) != (EXIT_UNVERIFIABLE, "UNVERIFIABLE"):
                raise DemoError(
                    f"{who.label} got {done.verdict} (exit {done.code}); expected a refusal"
                )
            say.say(f"=> refused: exit {done.code} ({done.verdict})")

    def _where(self, config: NetworkConfig, result: StoryResult) -> None:
        p = display_path
        rows = [("configuration", p(self.config_path))]
        rows += [("node logs", p(self.dir) + "/<node>/node.log")]
        rows += [("ingest log", p(self.dir / "ingest.log"))]
        rows += [("camera clip", p(self.media_dir / "camera.h264"))]
        rows += [("NVR recording", p(result.recording))]
        for done in result.verifications:
            rows.append((f"{done.label} ({done.who})", f"{p(done.html_path)}  {done.verdict}"))
        if result.bundle is not None:
            rows.append(("evidence bundle", p(result.bundle)))
        rows.append(("wallets", p(self.dir / "wallets")))
        width = max(len(label) for label, _ in rows)
        for label, value in rows:
            self.say.say(f"{label:<{width}}  {value}")
        officer = p(self.wallets.get("officer", self.dir / "wallets"))
        self.say.say("to look at the ledger again later (its state stays in the directory):")
        self.say.say(f"  cctvchain network up --config {p(self.config_path)}")
        self.say.say(f"  cctvchain ledger info --wallet {officer} --config {p(self.config_path)}")


class IngestProcess:
    """``cctvchain ingest`` as its own process, its output relayed to the narration and
    kept in a log file."""

    FRAMES = re.compile(r"source \S+: \S+ \d+x\d+")

    def __init__(self, command: Sequence[str], log: Path, say: Narrator) -> None:
        self.say = say
        self.frames = threading.Event()
        self.lines: list[str] = []
        self.log = log
        self.process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.reader = threading.Thread(target=self._relay, daemon=True)
        self.reader.start()

    def _relay(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("a") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                self.lines.append(line)
                # Drop the log's own date and level: the narration is the clock.
                text = re.sub(r"^\S+ \S+ (INFO|WARNING|ERROR) ingest\[\S+\] ", "", line.rstrip())
                self.say.shown(text, prefix="ingest| ")
                if self.FRAMES.search(line):  # after it is shown: the narration stays in order
                    self.frames.set()

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def wait(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.stop()
            raise DemoError(f"the ingest did not finish within {timeout:g} s") from exc
        self.reader.join(timeout=5)
        return code

    def interrupt(self, timeout: float) -> int:
        """Stop the ingest as its user would: it seals its open segment, drains its spool
        and exits."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the ingest seals and drains on SIGTERM
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _pick(text: str, keys: Sequence[str]) -> str:
    """The lines of a command's answer that mention one of ``keys``."""
    return "\n".join(line for line in text.splitlines() if any(key in line for key in keys)) or text


def _anomaly_line(anomaly: dict[str, Any]) -> str:
    """One anomaly in words: its kind, where in the clip, when the camera captured it."""
    start, end = anomaly["clip_start_s"], anomaly["clip_end_s"]
    captured = _clock(anomaly["capture_start"])
    if anomaly["capture_end"] != anomaly["capture_start"]:
        captured += f" to {_clock(anomaly['capture_end'])}"
    where = f"{start:.2f} s" if start == end else f"{start:.2f}-{end:.2f} s"
    return f"{anomaly['kind']} at {where} of the copy, captured by the camera at {captured}"


def _clock(iso: str) -> str:
    """A capture time as its UTC time of day, to the millisecond."""
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return when.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3] + " UTC"
