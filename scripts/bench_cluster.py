#!/usr/bin/env python3
"""End-to-end benchmark: the default-shaped cluster under a closed-loop load of many
concurrent clients, as committed transactions per second and submit-to-commit latency.

It writes a copy of ``configs/local.toml`` (3 organisations with a CA each, 3 Raft
orderers, 4 peers, the same batch settings and policies) on free loopback ports into a
temporary directory, starts every node as its own process with the supervisor of
``cctvchain network up``, and runs ``--clients`` concurrent clients in one asyncio loop,
each with its own gateway connection to a peer of its organisation (the organisation's
peers taken in turn). Every client submits real ``cctv`` transactions with distinct keys
one after the other (closed loop: a new one as soon as the last one's commit status is
back) for ``--warmup`` + ``--duration`` seconds:

* ``participants`` (default): each organisation's admin adds participants of its own
  organisation (``AddParticipant``; a participant and its identity binding, 3 historian
  keys);
* ``cameras``: operators of CityCCTV, enrolled at its CA and added as participants first,
  request cameras (``RequestCamera``); only CityCCTV's two peers act as gateways.

Each transaction is timed from the proposal to the commit status the gateway answers
(propose, endorse on 2 organisations' peers, sign, order, commit): that is the latency
reported. Transactions whose commit status arrives in the measurement window count
towards the throughput. Failures are counted by code. Every node process the script
started is stopped again (SIGTERM, then SIGKILL, by pid) on the way out, errors and
Ctrl-C included. Timings are printed, never asserted.

    .venv/bin/python scripts/bench_cluster.py [--clients 48] [--duration 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from cctvchain.client.transaction import ClientIdentity
from cctvchain.msp.wallet import Wallet
from cctvchain.network.acl_rules import DEFAULT_ACL
from cctvchain.network.config import NetworkConfig, load_network_config
from cctvchain.network.material import enroll_identity
from cctvchain.node import tls
from cctvchain.node.errors import NodeClientError, NodeRefused, NodeUnreachable
from cctvchain.peernode.gateway_client import Gateway, TransactionInvalid
from cctvchain.supervisor.network import NetworkSupervisor
from cctvchain.supervisor.pidfile import read_pidfile

REPO = Path(__file__).resolve().parent.parent
LOCAL_TOML = REPO / "configs" / "local.toml"
CONTRACT = "cctv"
GOAL_TPS = 500.0
GOAL_P99_S = 2.0
# Context only: Hyperledger Fabric 1.4's published Caliper result for its create-asset
# benchmark (not measured here, on other hardware).
FABRIC_CALIPER_TPS = 372.0
# Participants each organisation's admin may add (AddParticipant checks the role).
ORG_ROLES = {"CityCCTV": "Operator", "Police": "PO", "LocalAuthority": "LAS"}
OPERATORS = 8  # enrolled operators for the `cameras` workload
CLIENT_TIMEOUT = 60.0


# -- the network ---------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports that were free a moment ago (held together, then freed)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def write_config(directory: Path, template: Path = LOCAL_TOML) -> Path:
    """``template`` with free ports, ``nodes_dir`` under ``directory``, the ACL file by its
    absolute path; everything else (orgs, nodes, batch, policies) as it is."""
    text = template.read_text(encoding="utf-8")
    port_line = re.compile(r"(?m)\bport\s*=\s*(\d+)")
    used = sorted({int(m.group(1)) for m in port_line.finditer(text)})
    mapping = dict(zip(used, free_ports(len(used)), strict=True))
    text = port_line.sub(lambda m: f"port = {mapping[int(m.group(1))]}", text)
    text = re.sub(r'(?m)^nodes_dir\s*=\s*"[^"]*"', 'nodes_dir = "nodes"', text)
    acl = template.parent / "acl.toml"
    text = re.sub(
        r'(?m)^acl\s*=\s*"[^"]*"', f'acl = "{acl if acl.exists() else DEFAULT_ACL}"', text
    )
    path = directory / "network.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class User:
    name: str
    org: str
    identity: ClientIdentity
    wallet: Wallet


def load_user(config: NetworkConfig, wallet_path: Path, org: str) -> User:
    loaded = Wallet(wallet_path).load()
    identity = ClientIdentity(loaded.msp_id, loaded.cert_pem, loaded.signing_key, loaded.name)
    return User(loaded.name, org, identity, Wallet(wallet_path))


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) raise KeyboardInterrupt, so that the cleanup runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def node_pids(supervisor: NetworkSupervisor) -> dict[str, tuple[str, int]]:
    """name -> (kind, pid) of every node with a pid file."""
    pids: dict[str, tuple[str, int]] = {}
    for node in supervisor.nodes:
        record = read_pidfile(node.pid_path)
        if record is not None:
            pids[node.name] = (node.kind, record.pid)
    return pids


LEADER_LINE = re.compile(r"^(\S+) \w+ (\S+): raft: leader in term (\d+)")


def raft_elections(supervisor: NetworkSupervisor) -> list[dict[str, Any]]:
    """Every Raft leader election the orderers logged: time, leader, term."""
    elections: dict[int, dict[str, Any]] = {}
    for node in supervisor.nodes:
        if node.kind != "orderer" or not node.log_path.exists():
            continue
        for line in node.log_path.read_text(errors="replace").splitlines():
            match = LEADER_LINE.match(line)
            if match:
                term = int(match.group(3))
                elections.setdefault(term, {"at": match.group(1), "leader": match.group(2)})
    return [{"term": term, **elections[term]} for term in sorted(elections)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far; 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the load ------------------------------------------------------------------------------


@dataclass
class Sample:
    start: float
    endorsed: float
    done: float
    outcome: str  # "VALID" or a failure code


@dataclass
class Load:
    samples: list[Sample] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)
    heights: dict[str, int] = field(default_factory=dict)


Work = Callable[[int, int], tuple[str, list[str]]]  # (client, n) -> function, args


def participant_work(org: str) -> Work:
    role = ORG_ROLES[org]

    def work(client: int, n: int) -> tuple[str, list[str]]:
        pid = f"B{client:03d}-{n:06d}"
        body = {
            "id": pid,
            "personId": f"person-{pid}",
            "name": f"bench participant {pid}",
            "department": "Bench",
            "age": 30 + n % 40,
            "gender": "female" if n % 2 else "male",
            "role": role,
            "identity": f"bench-{pid}",
            "controlRoom": "CR-Bench" if org == "CityCCTV" else "",
        }
        return "AddParticipant", [json.dumps(body)]

    return work


def camera_work(client: int, n: int) -> tuple[str, list[str]]:
    camera = {
        "id": f"bench-{client:03d}-{n:06d}",
        "ipAddress": f"10.{client % 250}.{n // 250 % 250}.{n % 250 + 1}",
        "location": f"bench street {n}",
        "model": "Axis P1448-LE",
        "policy": "normal",
    }
    return "RequestCamera", [json.dumps(camera)]


def outcome_of(exc: BaseException) -> str:
    if isinstance(exc, TransactionInvalid):
        return exc.result.validation_code_name
    if isinstance(exc, NodeRefused):
        return exc.code
    if isinstance(exc, NodeUnreachable):
        return "unreachable"
    if isinstance(exc, NodeClientError):
        return type(exc).__name__
    return f"{type(exc).__name__}"


async def client_loop(
    index: int,
    user: User,
    url: str,
    ssl_context: Any,
    work: Work,
    stop_at: float,
    samples: list[Sample],
) -> None:
    async with Gateway(url, ssl_context, channel_id="cctv", timeout=CLIENT_TIMEOUT) as gateway:
        n = 0
        while time.monotonic() < stop_at:
            function, args = work(index, n)
            n += 1
            start = time.monotonic()
            endorsed = start
            try:
                prepared = await gateway.prepare(user.identity, CONTRACT, function, args)
                endorsed = time.monotonic()
                result = await gateway.commit(prepared, check=False)
                outcome = result.validation_code_name
            except (NodeClientError, OSError, ValueError) as exc:
                outcome = outcome_of(exc)
                await asyncio.sleep(0.05)  # a refusing peer is not hammered in a tight loop
            samples.append(Sample(start, endorsed, time.monotonic(), outcome))


async def channel_height(url: str, ssl_context: Any) -> int:
    async with Gateway(url, ssl_context, timeout=10) as gateway:
        return int((await gateway.request("GET", "/api/v1/channel"))["height"])


async def run_load(
    clients: Sequence[tuple[User, str, Any, Work]],
    warmup: float,
    duration: float,
    heights_from: tuple[str, Any],
) -> Load:
    load = Load()
    begin = time.monotonic()
    window = (begin + warmup, begin + warmup + duration)
    load.window = window
    tasks = [
        asyncio.create_task(client_loop(i, user, url, context, work, window[1], load.samples))
        for i, (user, url, context, work) in enumerate(clients)
    ]
    url, context = heights_from
    await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
    load.heights["start"] = await channel_height(url, context)
    await asyncio.sleep(max(0.0, window[1] - time.monotonic()))
    load.heights["end"] = await channel_height(url, context)
    await asyncio.gather(*tasks)
    return load


# -- figures -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of sorted ``values``; NaN if empty."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), round(q / 100 * len(values) + 0.5)))
    return values[rank - 1]


def summarise(load: Load, duration: float) -> dict[str, Any]:
    lo, hi = load.window
    measured = [s for s in load.samples if lo <= s.done <= hi]
    valid = [s for s in measured if s.outcome == "VALID"]
    failures = Counter(s.outcome for s in measured if s.outcome != "VALID")
    total = sorted(s.done - s.start for s in valid)
    commit = sorted(s.done - s.endorsed for s in valid)
    endorse = sorted(s.endorsed - s.start for s in valid)
    blocks = load.heights.get("end", 0) - load.heights.get("start", 0)

    def spread(values: list[float]) -> dict[str, float]:
        return {
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "p99": percentile(values, 99),
            "max": values[-1] if values else float("nan"),
            "mean": sum(values) / len(values) if values else float("nan"),
        }

    return {
        "duration_s": duration,
        "committed_valid": len(valid),
        "tx_per_s": len(valid) / duration,
        "failed": sum(failures.values()),
        "failures": dict(failures.most_common()),
        "all_samples": len(load.samples),
        "all_failures": dict(
            Counter(s.outcome for s in load.samples if s.outcome != "VALID").most_common()
        ),
        "latency_s": spread(total),
        "endorse_s": spread(endorse),
        "submit_to_commit_s": spread(commit),
        "blocks": blocks,
        "tx_per_block": len(valid) / blocks if blocks else None,
    }


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# -- main ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=48, help="concurrent clients (48)")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds (30)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before (5)")
    parser.add_argument("--workload", choices=("participants", "cameras"), default="participants")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (node logs) afterwards"
    )
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--clients and --duration must be positive, --warmup not negative")

    info = machine()
    print("machine")
    for key, value in info.items():
        print(f"  {key:<13} {value}")
    with terminate_as_interrupt(), work_directory(args.dir, args.keep) as directory:
        try:
            return bench(args, info, directory)
        except KeyboardInterrupt:
            print("\ninterrupted; the cluster was stopped", file=sys.stderr)
            return 130


@contextmanager
def work_directory(parent: Path | None, keep: bool) -> Iterator[Path]:
    if keep:
        directory = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir=parent))
        try:
            yield directory
        finally:
            print(f"work directory kept: {directory}")
    else:
        with tempfile.TemporaryDirectory(prefix="bench-cluster-", dir=parent) as tmp:
            yield Path(tmp)


def bench(args: argparse.Namespace, info: dict[str, Any], directory: Path) -> int:
    config_path = write_config(directory)
    config = load_network_config(config_path)
    supervisor = NetworkSupervisor(
        config, config_path, err=lambda line: print(line, file=sys.stderr)
    )
    shape = (
        f"{len(config.organizations)} organisations, {len(config.orderers)} Raft orderers, "
        f"{len(config.peers)} peers, batch {config.batch.max_message_count} tx / "
        f"{config.batch.batch_timeout_ms} ms"
    )
    print(f"\ncluster from {LOCAL_TOML.relative_to(REPO)} on free ports: {shape}")
    material = supervisor.ensure_material()
    now = datetime.now(UTC)
    admins = {
        org.name: load_user(config, material.admin_wallets[org.name], org.name)
        for org in config.organizations
    }
    operators: list[User] = []
    if args.workload == "cameras":
        # Enrolled before the CA nodes start (the CA directory is theirs once they run).
        operators = [
            load_user(
                config,
                enroll_identity(
                    config, "CityCCTV", f"bench-op{i}", "client", {"role": "Operator"}, now=now
                ),
                "CityCCTV",
            )
            for i in range(OPERATORS)
        ]
    started = time.monotonic()
    try:
        supervisor.up()
        print(f"  every node ready in {time.monotonic() - started:.1f} s")
        return asyncio.run(drive(args, info, config, supervisor, admins, operators))
    finally:
        report = supervisor.down()
        stopped = ", ".join(f"{node.name} ({how})" for node, _, how, _ in report.stopped)
        print(f"stopped {len(report.stopped)} nodes: {stopped}")
        for node in report.survivors:
            print(f"warning: {node.name} survived SIGKILL", file=sys.stderr)


async def drive(
    args: argparse.Namespace,
    info: dict[str, Any],
    config: NetworkConfig,
    supervisor: NetworkSupervisor,
    admins: dict[str, User],
    operators: list[User],
) -> int:
    channel = supervisor.material.channel_config()
    contexts: dict[str, Any] = {}

    def context(user: User) -> Any:
        if user.name + user.org not in contexts:
            contexts[user.name + user.org] = tls.node_client_context(user.wallet, channel)
        return contexts[user.name + user.org]

    peers_of: dict[str, list[str]] = {}
    urls: dict[str, str] = {}
    for endpoint in config.peers:
        peers_of.setdefault(endpoint.org, []).append(endpoint.name)
        urls[endpoint.name] = f"https://{endpoint.host}:{endpoint.port}"

    clients: list[tuple[User, str, Any, Work]] = []
    if args.workload == "participants":
        orgs = [org.name for org in config.organizations]
        for i in range(args.clients):
            org = orgs[i % len(orgs)]
            peers = peers_of[org]
            peer = peers[(i // len(orgs)) % len(peers)]
            user = admins[org]
            clients.append((user, urls[peer], context(user), participant_work(org)))
        what = "AddParticipant by each organisation's admin"
    else:
        city = admins["CityCCTV"]
        peer0 = urls[peers_of["CityCCTV"][0]]
        async with Gateway(peer0, context(city), channel_id="cctv") as gateway:
            for i, operator in enumerate(operators):
                person = {
                    "id": f"OP-{i}",
                    "personId": f"person-op-{i}",
                    "name": f"operator {i}",
                    "department": "Control",
                    "age": 35,
                    "gender": "female",
                    "role": "Operator",
                    "identity": operator.name,
                    "controlRoom": "CR-Bench",
                }
                await gateway.submit(
                    city.identity, CONTRACT, "AddParticipant", [json.dumps(person)]
                )
        peers = peers_of["CityCCTV"]
        for i in range(args.clients):
            user = operators[i % len(operators)]
            peer = peers[(i // len(operators)) % len(peers)]
            clients.append((user, urls[peer], context(user), camera_work))
        what = f"RequestCamera by {len(operators)} enrolled operators of CityCCTV"

    spread = Counter(url for _, url, _, _ in clients)
    by_peer = ", ".join(f"{name} {spread[url]}" for name, url in urls.items() if spread[url])
    print(
        f"\nload: {args.clients} concurrent clients (closed loop), {what}\n"
        f"  gateways: {by_peer}\n"
        f"  warm-up {args.warmup:g} s, then {args.duration:g} s measured ...",
        flush=True,
    )

    pids = node_pids(supervisor)
    first_peer = urls[config.peers[0].name]
    loop_task = asyncio.create_task(
        run_load(clients, args.warmup, args.duration, (first_peer, context(admins["CityCCTV"])))
    )
    await asyncio.sleep(args.warmup)
    cpu_before = {name: cpu_seconds(pid) for name, (_, pid) in pids.items()}
    own_before = time.process_time()
    await asyncio.sleep(args.duration)
    cpu_after = {name: cpu_seconds(pid) for name, (_, pid) in pids.items()}
    own_after = time.process_time()
    load = await loop_task

    results = summarise(load, args.duration)
    elections = raft_elections(supervisor)
    results["raft_elections"] = elections
    results["raft_reelections"] = max(0, len(elections) - 1)
    cpu: dict[str, float] = {}
    for name, (kind, _) in pids.items():
        cpu[kind] = cpu.get(kind, 0.0) + (cpu_after[name] - cpu_before[name]) / args.duration
    cpu["load generator"] = (own_after - own_before) / args.duration
    results.update(
        {
            "machine": info,
            "workload": args.workload,
            "clients": args.clients,
            "warmup_s": args.warmup,
            "cluster": {
                "orgs": len(config.organizations),
                "orderers": len(config.orderers),
                "peers": len(config.peers),
                "batch_max_message_count": config.batch.max_message_count,
                "batch_timeout_ms": config.batch.batch_timeout_ms,
            },
            "cpu_cores_busy": cpu,
            "goal_tx_per_s": GOAL_TPS,
            "goal_p99_s": GOAL_P99_S,
            "fabric_1_4_caliper_tps": FABRIC_CALIPER_TPS,
        }
    )
    print_results(results)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


def print_results(r: dict[str, Any]) -> None:
    lat, sub, end = r["latency_s"], r["submit_to_commit_s"], r["endorse_s"]
    tps_ok = "PASS" if r["tx_per_s"] >= GOAL_TPS else "BELOW GOAL"
    p99_ok = "PASS" if lat["p99"] < GOAL_P99_S else "BELOW GOAL"
    print(f"\nresults over {r['duration_s']:g} s")
    print(f"  committed VALID      {r['committed_valid']:>8} tx")
    print(f"  throughput           {r['tx_per_s']:>8.1f} tx/s   (goal >= {GOAL_TPS:g}: {tps_ok})")
    print(
        f"  latency, propose to commit status: p50 {lat['p50']:.3f} s, p95 {lat['p95']:.3f} s, "
        f"p99 {lat['p99']:.3f} s, max {lat['max']:.3f} s (goal p99 < {GOAL_P99_S:g} s: {p99_ok})"
    )
    print(
        f"    of which endorsement p50 {end['p50']:.3f} s; submit to commit p50 "
        f"{sub['p50']:.3f} s, p99 {sub['p99']:.3f} s"
    )
    per_block = r["tx_per_block"]
    blocks = f"{r['blocks']} blocks" + (f", {per_block:.1f} tx per block" if per_block else "")
    print(f"  blocks cut           {blocks}")
    if r["failures"]:
        listed = ", ".join(f"{code} {count}" for code, count in r["failures"].items())
        print(f"  failures             {r['failed']}: {listed}")
    else:
        print("  failures             none")
    elections = r["raft_elections"]
    if r["raft_reelections"]:
        changes = ", ".join(
            f"{e['leader']} (term {e['term']}, {e['at'][11:23]})" for e in elections
        )
        print(f"  Raft leader changes  {r['raft_reelections']}: leaders {changes}")
    else:
        print(f"  Raft leader changes  none ({elections[0]['leader'] if elections else '?'} led)")
    print(
        "  CPU (cores busy, of "
        + str(r["machine"]["cores"])
        + "): "
        + ", ".join(f"{kind} {busy:.2f}" for kind, busy in r["cpu_cores_busy"].items())
    )
    print(
        f"\nfor context: Hyperledger Fabric 1.4's published Caliper create-asset result is "
        f"{FABRIC_CALIPER_TPS:g} TPS (a published figure on other hardware, not measured here); "
        f"this run: {r['tx_per_s']:.1f} tx/s ({r['tx_per_s'] / FABRIC_CALIPER_TPS:.2f}x)"
    )


if __name__ == "__main__":
    sys.exit(main())
