"""``network up``, ``network status`` and ``network down``: every node of a configuration
as a supervised process on this machine.

* :meth:`NetworkSupervisor.up` creates missing material, leaves running nodes alone,
  refuses (before starting anything) a port held by another program or another node,
  starts the rest as detached processes, and waits until every node is ready -- a CA
  or peer when its ``/readyz`` answers, an orderer when it also knows a Raft leader. If
  one fails, the nodes it started are stopped again (unless ``keep_going``).
* :meth:`NetworkSupervisor.status` looks at every node: pid, ``/healthz``, ``/readyz``,
  an orderer's ``/status``, a peer's channel info.
* :meth:`NetworkSupervisor.down` stops the nodes ``up`` started, peers first, then
  orderers, then CAs: SIGTERM, and SIGKILL (with a warning) after the timeout.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cctvchain.network.config import NetworkConfig
from cctvchain.network.material import NetworkMaterial, ensure_material
from cctvchain.supervisor import DEFAULT_DOWN_TIMEOUT, DEFAULT_UP_TIMEOUT, process
from cctvchain.supervisor.nodes import (
    START_ORDER,
    STOP_ORDER,
    ManagedNode,
    by_kind,
    managed_nodes,
)
from cctvchain.supervisor.pidfile import PidFileError, PidRecord, read_pidfile, remove_pidfile
from cctvchain.supervisor.probe import (
    ClientContexts,
    Probe,
    ProbeSetupError,
    bind_error,
    probe_all,
    probe_many,
)
from cctvchain.supervisor.table import format_table

Out = Callable[[str], None]

RUNNING: Final = "running"  # answers as itself and is ready
NOT_READY: Final = "not ready"  # answers as itself; /readyz refuses or no Raft leader yet
STARTING: Final = "starting"  # its process lives but does not answer yet
DOWN: Final = "down"  # no process, nothing answering
PORT_TAKEN: Final = "port taken"  # no process of ours; someone else holds its port
NO_SERVICE: Final = "no service"  # down, and this build cannot run its kind of node

KILL_WAIT: Final = 5.0  # after SIGKILL
ROUND_INTERVAL: Final = 0.2
PROGRESS_EVERY: Final = 5.0
LOG_LINES: Final = 15
KIND_PLURAL: Final = {"ca": "CAs", "orderer": "orderers", "peer": "peers"}


class SupervisorError(Exception):
    """``up`` or ``down`` failed; the message is one line for the operator."""


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class NodeStatus:
    """What ``network status`` says about one node."""

    node: ManagedNode
    state: str
    pid: int | None  # the live recorded pid (None: no live process of ours)
    managed: bool  # started by `network up` (its pid file names a live process)
    probe: Probe | None
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        probe = self.probe
        return {
            "name": self.node.name,
            "kind": self.node.kind,
            "org": self.node.org,
            "url": self.node.url,
            "state": self.state,
            "pid": self.pid,
            "pid_alive": self.pid is not None,
            "managed": self.managed,
            "healthy": probe is not None and probe.is_node(self.node),
            "ready": self.state == RUNNING,
            "detail": self.detail,
            "orderer": dict(probe.orderer) if probe and probe.orderer is not None else None,
            "channel": dict(probe.channel) if probe and probe.channel is not None else None,
            "log": str(self.node.log_path),
            "pid_file": str(self.node.pid_path),
        }


@dataclass
class DownReport:
    stopped: list[tuple[ManagedNode, int, str, float]] = field(default_factory=list)
    stale: list[ManagedNode] = field(default_factory=list)  # pid file of a gone process
    survivors: list[ManagedNode] = field(default_factory=list)  # would not die
    warnings: list[str] = field(default_factory=list)


def readiness_problem(node: ManagedNode, probe: Probe) -> str | None:
    """Why a node answering as itself is not ready for the network (None if it is)."""
    if not probe.ready:
        return probe.not_ready or "not ready"
    if node.kind == "orderer":
        status = probe.orderer
        if status is None:
            return probe.detail_error or "no /status"
        if status.get("halted"):
            return f"ordering halted: {status['halted']}"
        if status.get("leader") is None:
            return "no Raft leader elected yet"
    return None


def _listen_problem(node: ManagedNode, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return f"port {node.port} of {node.name} ({node.address}) is in use by another program"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{node.name} cannot listen on {node.address}: this machine has no such address"
    if error.errno == errno.EACCES:
        return f"{node.name} cannot listen on {node.address}: permission denied"
    return f"{node.name} cannot listen on {node.address}: {error.strerror or error}"


class NetworkSupervisor:
    def __init__(
        self,
        config: NetworkConfig,
        config_path: Path,
        *,
        out: Out = _quiet,
        err: Out = _quiet,
        services: Iterable[str] | None = None,
    ) -> None:
        """``services``: the node kinds this build can run (default: those registered in
        :data:`cctvchain.node.services.SERVICES`)."""
        if services is None:
            from cctvchain.node.services import SERVICES

            services = SERVICES
        self.services = frozenset(services)
        self.config = config
        self.config_path = config_path.resolve()
        self.nodes = managed_nodes(config)
        self.material = NetworkMaterial.locate(config)
        self.out = out
        self.err = err
        self._contexts: ClientContexts | None = None

    # -- shared ----------------------------------------------------------------------------

    def node(self, name: str) -> ManagedNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def contexts(self) -> ClientContexts:
        if self._contexts is None:
            orgs = [org.name for org in self.config.organizations]
            self._contexts = ClientContexts(self.material, orgs)
        return self._contexts

    def record(self, node: ManagedNode) -> PidRecord | None:
        """The node's pid record; an unreadable pid file is reported and ignored."""
        try:
            record = read_pidfile(node.pid_path)
        except PidFileError as exc:
            self.err(f"warning: {exc}; ignoring it")
            return None
        if record is not None and record.node != node.name:
            self.err(f"warning: {node.pid_path} names {record.node}, not {node.name}; ignoring it")
            return None
        return record

    def _probe(
        self, nodes: Iterable[ManagedNode], *, ready: bool, details: bool = False
    ) -> dict[str, Probe]:
        listed = list(nodes)
        try:
            contexts = self.contexts()
        except ProbeSetupError as exc:
            return {node.name: Probe(answered=False, error=str(exc)) for node in listed}
        return probe_all(listed, contexts, ready=ready, details=details)

    # -- status ----------------------------------------------------------------------------

    def status(self, *, details: bool = True) -> list[NodeStatus]:
        records = {node.name: self.record(node) for node in self.nodes}
        probes = self._probe(self.nodes, ready=True, details=details)
        return [self._classify(node, records[node.name], probes[node.name]) for node in self.nodes]

    def _classify(self, node: ManagedNode, record: PidRecord | None, probe: Probe) -> NodeStatus:
        alive = record is not None and record.is_running()
        pid = record.pid if alive and record is not None else None
        if probe.is_node(node):
            problem = readiness_problem(node, probe)
            detail = problem
            if not alive:
                note = "not started by network up (no live pid file)"
                detail = f"{problem}; {note}" if problem else note
            return NodeStatus(node, NOT_READY if problem else RUNNING, pid, alive, probe, detail)
        if probe.answered:
            who = f"{probe.node} ({probe.kind})" if probe.node else "something else"
            taken = f"{node.address} answers as {who}"
            state = STARTING if alive else PORT_TAKEN
            return NodeStatus(node, state, pid, alive, probe, taken)
        if alive:
            return NodeStatus(node, STARTING, pid, True, probe, probe.error)
        error = bind_error(node.host, node.port)
        if error is not None:
            return NodeStatus(node, PORT_TAKEN, None, False, probe, _listen_problem(node, error))
        if node.kind not in self.services:
            detail = f"this build has no {node.kind} service yet"
            return NodeStatus(node, NO_SERVICE, None, False, probe, detail)
        detail = f"stale pid file ({record.why_not_running()})" if record is not None else None
        return NodeStatus(node, DOWN, None, False, probe, detail)

    # -- up --------------------------------------------------------------------------------

    def ensure_material(self) -> NetworkMaterial:
        created: list[str] = []

        def log(line: str) -> None:
            created.append(line)
            self.out(f"  created {line}")

        self.out(f"material under {self.config.nodes_dir}:")
        result = ensure_material(self.config, datetime.now(UTC), log=log)
        if not created:
            self.out("  all present")
        self.material = result
        return result

    def up(
        self,
        *,
        timeout: float = DEFAULT_UP_TIMEOUT,
        keep_going: bool = False,
    ) -> list[NodeStatus]:
        """Start what is not running and wait until everything is ready; the statuses.

        A node whose kind this build has no service for stops the call before anything
        starts, unless ``keep_going`` (then it is left out, with a warning)."""
        nodes = self._serviceable(keep_going)
        self.ensure_material()
        running, adopted, to_start = self._survey(nodes)
        started: dict[str, tuple[subprocess.Popen[bytes], PidRecord]] = {}
        try:
            for group in by_kind(to_start, START_ORDER):
                for node in group:
                    command = process.node_command(self.config_path, node.name)
                    popen, record = process.spawn(node, command)
                    started[node.name] = (popen, record)
                    self.out(f"started {node.name} ({node.kind}), pid {record.pid}")
            watched = {name: rec for name, rec in running.items()}
            watched.update({name: rec for name, (_, rec) in started.items()})
            waiting = [n for n in nodes if n.name in watched or n.name in adopted]
            failures = self._wait_ready(
                waiting, {name: p for name, (p, _) in started.items()}, watched, timeout
            )
        except BaseException:  # Ctrl-C, or a node that could not be spawned
            if not keep_going:
                self._abort(started)
            raise
        if failures:
            for name, reason in failures.items():
                self._show_failure(self.node(name), reason)
            name, reason = next(iter(failures.items()))
            message = f"{name}: {reason}"
            if len(failures) > 1:
                message += f" (and {len(failures) - 1} more: {', '.join(list(failures)[1:])})"
            if keep_going:
                message += "; the other nodes are left running (--keep-going)"
            elif started:
                self._abort(started)
                message += f"; stopped the {len(started)} node(s) this command started"
            raise SupervisorError(message)
        return self.status(details=False)

    def _serviceable(self, keep_going: bool) -> list[ManagedNode]:
        available = sorted(self.services)
        missing = [node for node in self.nodes if node.kind not in self.services]
        if not missing:
            return list(self.nodes)
        kinds = sorted({node.kind for node in missing})
        what = (
            f"{', '.join(n.name for n in missing)}: this build has no "
            f"{' or '.join(kinds)} service yet (services available: {', '.join(available)})"
        )
        if not keep_going:
            raise SupervisorError(f"{what}; nothing started (--keep-going starts the others)")
        self.err(f"warning: {what}; starting the others (--keep-going)")
        return [node for node in self.nodes if node.kind in self.services]

    def _survey(
        self, nodes: list[ManagedNode]
    ) -> tuple[dict[str, PidRecord], set[str], list[ManagedNode]]:
        """Nodes already running (by pid record), running without one (adopted), and to
        start. Raises SupervisorError, having started nothing, if a port is unusable."""
        running: dict[str, PidRecord] = {}
        candidates: list[ManagedNode] = []
        for node in nodes:
            record = self.record(node)
            if record is not None and record.is_running():
                running[node.name] = record
                self.out(f"{node.name}: already running (pid {record.pid}); left alone")
                continue
            if record is not None:
                self.out(f"{node.name}: removing stale pid file ({record.why_not_running()})")
                remove_pidfile(node.pid_path)
            candidates.append(node)
        busy = {node.name: e for node in candidates if (e := bind_error(node.host, node.port))}
        probes = self._probe([n for n in candidates if n.name in busy], ready=False)
        adopted: set[str] = set()
        conflicts: list[str] = []
        to_start: list[ManagedNode] = []
        for node in candidates:
            if node.name not in busy:
                to_start.append(node)
                continue
            probe = probes[node.name]
            if probe.is_node(node):
                adopted.add(node.name)
                self.out(
                    f"{node.name}: already answering at {node.url}, not started by network "
                    "up (no pid file); left alone"
                )
            elif probe.answered:
                who = f"node {probe.node}" if probe.node else "another service"
                conflicts.append(
                    f"port {node.port} of {node.name} ({node.address}) is in use by {who}"
                )
            else:
                conflicts.append(_listen_problem(node, busy[node.name]))
        if conflicts:
            raise SupervisorError(f"{'; '.join(conflicts)}; nothing started")
        return running, adopted, to_start

    def _wait_ready(
        self,
        nodes: list[ManagedNode],
        started: dict[str, subprocess.Popen[bytes]],
        records: dict[str, PidRecord],
        timeout: float,
    ) -> dict[str, str]:
        """Wait until every node is ready; the nodes that failed, with why."""
        if not nodes:
            return {}
        self.out(f"waiting for {len(nodes)} node(s) to be ready (timeout {timeout:g} s)")
        try:
            contexts = self.contexts()
        except ProbeSetupError as exc:
            raise SupervisorError(str(exc)) from exc
        return asyncio.run(self._poll_ready(nodes, started, records, contexts, timeout))

    async def _poll_ready(
        self,
        nodes: list[ManagedNode],
        started: dict[str, subprocess.Popen[bytes]],
        records: dict[str, PidRecord],
        contexts: ClientContexts,
        timeout: float,
    ) -> dict[str, str]:
        begin = time.monotonic()
        deadline = begin + timeout
        next_progress = begin + PROGRESS_EVERY
        pending = {node.name: node for node in nodes}
        problems: dict[str, str] = {name: "not answering yet" for name in pending}
        width = max(len(node.name) for node in nodes)
        while pending:
            failed: dict[str, str] = {}
            for name in pending:
                popen = started.get(name)
                code = popen.poll() if popen is not None else None
                if code is not None:
                    failed[name] = f"its process exited with code {code}"
                elif name in records and not records[name].is_running():
                    failed[name] = f"its process (pid {records[name].pid}) is gone"
            if failed:
                return failed
            remaining = max(0.5, min(2.0, deadline - time.monotonic()))
            probes = await probe_many(pending.values(), contexts, ready=True, timeout=remaining)
            for name, probe in probes.items():
                node = pending[name]
                if probe.is_node(node):
                    problem = readiness_problem(node, probe)
                elif probe.answered:
                    problem = f"{node.address} answers as {probe.node}"
                else:
                    problem = probe.error or "not answering"
                if problem is None:
                    del pending[name]
                    extra = ""
                    if probe.orderer is not None:
                        extra = f"  (leader {probe.orderer.get('leader')})"
                    self.out(
                        f"  ready  {name.ljust(width)}  {node.url}  "
                        f"{time.monotonic() - begin:5.1f} s{extra}"
                    )
                else:
                    problems[name] = problem
            if not pending:
                break
            now = time.monotonic()
            if now >= deadline:
                return {
                    name: f"not ready within {timeout:g} s: {problems[name]}" for name in pending
                }
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY
                waiting = "; ".join(f"{name}: {problems[name]}" for name in pending)
                self.out(f"  still waiting ({now - begin:.0f} s) for {waiting}")
            await asyncio.sleep(ROUND_INTERVAL)
        return {}

    def _show_failure(self, node: ManagedNode, reason: str) -> None:
        self.err(f"{node.name}: {reason}")
        tail = process.log_tail(node.log_path, LOG_LINES)
        if tail:
            self.err(f"  last lines of {node.log_path}:")
            for line in tail:
                self.err(f"  | {line}")
        else:
            self.err(f"  (its log {node.log_path} is empty)")

    def _abort(self, started: dict[str, tuple[subprocess.Popen[bytes], PidRecord]]) -> None:
        """Stop the processes this ``up`` started (latest kind first) and reap them."""
        if not started:
            return
        nodes = [self.node(name) for name in started]
        records = {name: record for name, (_, record) in started.items()}
        for group in by_kind(nodes, STOP_ORDER):
            self._stop_group(group, records, DEFAULT_DOWN_TIMEOUT, DownReport())
        for popen, _ in started.values():
            try:
                popen.wait(timeout=KILL_WAIT)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()

    # -- down ------------------------------------------------------------------------------

    def down(self, *, timeout: float = DEFAULT_DOWN_TIMEOUT) -> DownReport:
        report = DownReport()
        records: dict[str, PidRecord] = {}
        for node in self.nodes:
            record = self.record(node)
            if record is None:
                continue
            if record.is_running():
                records[node.name] = record
            else:
                remove_pidfile(node.pid_path)
                report.stale.append(node)
        for group in by_kind(self.nodes, STOP_ORDER):
            self._stop_group([n for n in group if n.name in records], records, timeout, report)
        self._check_unmanaged(report)
        return report

    def _stop_group(
        self,
        group: list[ManagedNode],
        records: dict[str, PidRecord],
        timeout: float,
        report: DownReport,
    ) -> None:
        if not group:
            return
        begin = time.monotonic()
        signalled = [n for n in group if process.send(records[n.name], signal.SIGTERM)]
        if signalled:
            names = ", ".join(n.name for n in signalled)
            self.out(f"stopping {KIND_PLURAL[signalled[0].kind]}: {names} (SIGTERM)")
        survivors = process.wait_gone([records[n.name] for n in signalled], timeout)
        killed = {record.node for record in survivors}
        for record in survivors:
            self.err(
                f"warning: {record.node} (pid {record.pid}) did not stop within "
                f"{timeout:g} s; sending SIGKILL"
            )
            process.send(record, signal.SIGKILL)
        still = {r.node for r in process.wait_gone(survivors, KILL_WAIT)} if survivors else set()
        elapsed = time.monotonic() - begin
        for node in group:
            record = records[node.name]
            if node.name in still:
                report.survivors.append(node)
                continue
            remove_pidfile(node.pid_path)
            how = "SIGKILL" if node.name in killed else "SIGTERM"
            report.stopped.append((node, record.pid, how, elapsed))
            self.out(f"  stopped {node.name} (pid {record.pid}) by {how} in {elapsed:.1f} s")

    def _check_unmanaged(self, report: DownReport) -> None:
        """Warn about nodes that still answer but were not started by ``network up``."""
        busy = [
            n
            for n in self.nodes
            if n not in report.survivors and bind_error(n.host, n.port) is not None
        ]
        if not busy:
            return
        for name, probe in self._probe(busy, ready=False).items():
            node = self.node(name)
            if probe.is_node(node):
                report.warnings.append(
                    f"{name} still answers at {node.url} but was not started by network up "
                    "(no pid file); stop it where it was started"
                )


# -- presentation -------------------------------------------------------------------------

TABLE_HEADERS: Final = ("NODE", "KIND", "ORG", "URL", "PID", "STATE")


def status_table(statuses: Iterable[NodeStatus], *, details: bool = False) -> str:
    rows = []
    for status in statuses:
        state = status.state
        if details:
            extra = _orderer_summary(status) or _channel_summary(status)
            if extra:
                state += f" ({extra})"
            if status.detail:
                state += f" - {status.detail}"
        rows.append(
            [
                status.node.name,
                status.node.kind,
                status.node.org,
                status.node.url,
                str(status.pid) if status.pid is not None else "-",
                state,
            ]
        )
    return format_table(TABLE_HEADERS, rows, indent="  ")


def _orderer_summary(status: NodeStatus) -> str:
    orderer = status.probe.orderer if status.probe is not None else None
    if orderer is None:
        return ""
    role, leader = orderer.get("role"), orderer.get("leader")
    who = f"{role}" if role == "leader" or leader is None else f"{role} of {leader}"
    return f"{who}, term {orderer.get('term')}, height {orderer.get('height')}"


def _channel_summary(status: NodeStatus) -> str:
    channel = status.probe.channel if status.probe is not None else None
    if channel is None or "height" not in channel:
        return ""
    head = channel.get("head_hash")
    return f"height {channel['height']}" + (f", head {head[:16]}" if isinstance(head, str) else "")


def leader_of(statuses: Iterable[NodeStatus]) -> str | None:
    """The Raft leader the running orderers agree on (None if none or they disagree)."""
    leaders = {
        status.probe.orderer.get("leader")
        for status in statuses
        if status.state == RUNNING and status.probe is not None and status.probe.orderer
    }
    if len(leaders) == 1:
        leader = next(iter(leaders))
        return leader if isinstance(leader, str) else None
    return None


def status_json(supervisor: NetworkSupervisor, statuses: list[NodeStatus]) -> dict[str, Any]:
    running = sum(1 for status in statuses if status.state == RUNNING)
    return {
        "network": supervisor.config.name,
        "config": str(supervisor.config_path),
        "nodes_dir": str(supervisor.config.nodes_dir),
        "running": running,
        "total": len(statuses),
        "leader": leader_of(statuses),
        "nodes": [status.to_json() for status in statuses],
    }
