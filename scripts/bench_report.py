#!/usr/bin/env python3
"""Run the benchmarks and write ``BENCHMARKS.md``: every figure beside the baseline
measured in the same run, its goal (PRODUCT.md section 5) and whether it is met.

The benchmarks are the ``scripts/bench_*.py`` of :data:`BENCHMARKS` that exist; each runs
as its own process with ``--json``, its output shown as it goes. With ``--results DIR``
the JSON files already in ``DIR`` (``<name>.json``, as ``make bench`` leaves them) are
used and only the missing ones are run. The report names the machine (cores, CPU model,
memory, Python, library versions) and the load on it, since every figure depends on
both. Nothing is asserted: a missed goal is reported as BELOW GOAL, by how much, and
with where the time goes.

    .venv/bin/python scripts/bench_report.py [--results DIR] [--out BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LIBRARIES = ("cryptography", "plyvel", "aiohttp", "av", "numpy")
NA = "\N{EN DASH}"  # a table cell with nothing to say
STARTED = ".started"  # touched by `make bench` in the results directory when it begins


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    args: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        return REPO / "scripts" / self.script


BENCHMARKS = (
    Benchmark("commit", "bench_commit.py"),
    Benchmark("cluster", "bench_cluster.py"),
    Benchmark("ingest", "bench_ingest.py"),
    Benchmark("verify", "bench_verify.py"),
)


@dataclass
class Outcome:
    bench: Benchmark
    data: dict[str, Any] | None = None
    seconds: float | None = None  # None: taken from --results
    error: str | None = None
    log_tail: list[str] = field(default_factory=list)


# -- running -------------------------------------------------------------------------------


def run(bench: Benchmark, json_path: Path) -> Outcome:
    """Run one benchmark, its output shown live and its last lines kept."""
    command = [sys.executable, str(bench.path), *bench.args, "--json", str(json_path)]
    print(f"\n=== {bench.name}: {' '.join(command[1:])}", flush=True)
    start = time.monotonic()
    tail: list[str] = []
    with subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                print(line, end="", flush=True)
                tail = [*tail[-19:], line.rstrip("\n")]
            code = process.wait()
        except KeyboardInterrupt:
            # The benchmark got the same Ctrl-C (one process group) and cleans up.
            process.wait()
            raise
    seconds = time.monotonic() - start
    if code != 0:
        return Outcome(bench, None, seconds, f"exited with status {code}", tail)
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError) as exc:
        return Outcome(bench, None, seconds, f"wrote no readable JSON ({exc})", tail)
    return Outcome(bench, data, seconds, None, tail)


def collect(results: Path | None) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        for bench in BENCHMARKS:
            if not bench.path.exists():
                continue
            existing = results / f"{bench.name}.json" if results is not None else None
            if existing is not None and existing.exists():
                data = json.loads(existing.read_text())
                outcomes.append(Outcome(bench, data))
                continue
            target = existing if existing is not None else Path(tmp) / f"{bench.name}.json"
            outcomes.append(run(bench, target))
    return outcomes


# -- the machine ---------------------------------------------------------------------------


def _cpuinfo(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return None


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _openssl() -> str:
    try:
        from cryptography.hazmat.backends.openssl import backend

        return str(backend.openssl_version_text())
    except ImportError:
        return "unknown"


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "cctvchain"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes under cctvchain/)" if dirty else head


def machine() -> list[tuple[str, str]]:
    model = _cpuinfo("model name") or platform.processor() or platform.machine()
    mhz = _cpuinfo("cpu MHz")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()}" + (
        f" ({affinity} usable by this process)" if affinity and affinity != os.cpu_count() else ""
    )
    rows = [
        ("CPU", model + (f" @ {float(mhz):.0f} MHz" if mhz else "")),
        ("cores", cores),
        ("memory", _memory()),
        ("OS", f"{_os_name()}, kernel {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]
    rows += [(name, _version(name)) for name in LIBRARIES]
    rows.append(("OpenSSL", _openssl()))
    return rows


# -- figures -------------------------------------------------------------------------------


def verdict(value: float, goal: float, *, at_most: bool = False) -> str:
    if math.isnan(value):
        return "NOT MEASURED"
    met = value < goal if at_most else value >= goal
    if met:
        return "PASS"
    if at_most:
        return f"BELOW GOAL ({value / goal:.1f}x the limit)"
    return f"BELOW GOAL ({value / goal:.0%} of the goal)"


def _f(value: Any, digits: int = 0, unit: str = "") -> str:
    if not isinstance(value, int | float) or math.isnan(value):
        return NA
    return f"{value:,.{digits}f}{unit}"


Row = tuple[str, str, str, str, str, str]  # figure, measured, baseline, ratio, goal, verdict


def commit_rows(data: dict[str, Any]) -> list[Row]:
    workers = data.get("pool_workers", "?")
    return [
        (
            "Peer validate + commit (one peer, blocks of "
            f"{max(data.get('blocks') or [0])} tx, {data.get('txs')} tx)",
            _f(data.get("commit_tx_per_s"), 0, " tx/s"),
            f"{_f(data.get('bound_tx_per_s'), 0, ' tx/s')} (raw ECDSA verify on {workers} "
            "threads ÷ 3 signatures per tx)",
            _f(data.get("ratio"), 2),
            "≥ 0.6",
            verdict(float(data.get("ratio", math.nan)), 0.6),
        )
    ]


def cluster_rows(data: dict[str, Any]) -> list[Row]:
    latency = data.get("latency_s", {})
    tps = float(data.get("tx_per_s", math.nan))
    p99 = float(latency.get("p99", math.nan))
    fabric = float(data.get("fabric_1_4_caliper_tps", 372.0))
    shape = data.get("cluster", {})
    load = (
        f"{data.get('clients')} closed-loop clients, {data.get('workload')}, "
        f"{_f(data.get('duration_s'), 0)} s"
    )
    return [
        (
            f"End-to-end committed tx/s, default cluster ({shape.get('orgs')} orgs, "
            f"{shape.get('orderers')} Raft orderers, {shape.get('peers')} peers; {load})",
            _f(tps, 1, " tx/s"),
            f"Fabric 1.4 Caliper create-asset: {fabric:g} TPS (published figure, other "
            "hardware, not measured here)",
            f"{tps / fabric:.2f} of Fabric's" if not math.isnan(tps) else NA,
            "≥ 500 tx/s",
            verdict(tps, 500.0),
        ),
        (
            "End-to-end latency, proposal to commit status: p50 / p95 / p99",
            f"{_f(latency.get('p50'), 2)} / {_f(latency.get('p95'), 2)} / {_f(p99, 2)} s",
            NA,
            NA,
            "p99 < 2 s",
            verdict(p99, 2.0, at_most=True),
        ),
    ]


def _fps(data: dict[str, Any], mode: str) -> Any:
    """Frames/s of ``mode`` ("decode-only", "ingest", "verify"): nested or flat JSON."""
    nested = data.get("fps")
    if isinstance(nested, dict):
        return nested.get(mode)
    return data.get(f"{mode.removesuffix('-only')}_fps")


def ingest_rows(data: dict[str, Any]) -> list[Row]:
    ratio = float(data.get("ratio", math.nan))
    cores = data.get("cores", "?")
    return [
        (
            f"Ingest of a 1080p25 H.264 clip ({data.get('frames', '?')} frames, policy "
            f"{data.get('policy', '?')})",
            _f(_fps(data, "ingest"), 1, " frames/s"),
            f"{_f(_fps(data, 'decode-only'), 1, ' frames/s')} decode-only, same clip",
            _f(ratio, 2),
            "≥ 0.9",
            verdict(ratio, 0.9),
        ),
        (
            "1080p25 cameras anchored in real time",
            f"{_f(data.get('cameras_per_core'), 1)} per core "
            f"({_f(data.get('cameras_real_time'), 1)} on {cores} cores)",
            NA,
            NA,
            NA,
            NA,
        ),
    ]


def verify_rows(data: dict[str, Any]) -> list[Row]:
    ratio = float(data.get("ratio", math.nan))
    return [
        (
            "Verification of a recording",
            _f(_fps(data, "verify"), 1, " frames/s"),
            f"{_f(_fps(data, 'decode-only'), 1, ' frames/s')} decode-only, same clip",
            _f(ratio, 2),
            "≥ 0.8",
            verdict(ratio, 0.8),
        )
    ]


ROWS = {
    "commit": commit_rows,
    "cluster": cluster_rows,
    "ingest": ingest_rows,
    "verify": verify_rows,
}


# -- details -------------------------------------------------------------------------------


def stateless_parts(data: dict[str, Any]) -> dict[str, float]:
    """Seconds of the one-thread stateless checks by part (bench_commit's measurements)."""
    txs = int(data.get("txs", 0))
    stateless = float(data.get("stateless_1_thread_seconds", 0.0))
    parts = {
        "raw ECDSA (3 verifies)": 3 * txs / float(data.get("verify_rate_1_thread", math.inf)),
        "decoding the envelope": float(data.get("decode_1_thread_seconds", 0.0)),
        "MSP validation of 3 signers": float(data.get("msp_1_thread_seconds", 0.0)),
        "encoding (tx id, hashes, signed bytes)": float(data.get("encoding_1_thread_seconds", 0.0)),
    }
    parts["the rest (policy, checks, …)"] = stateless - sum(parts.values())
    return parts


def commit_details(data: dict[str, Any]) -> list[str]:
    txs = int(data.get("txs", 0)) or 1
    phases: dict[str, float] = data.get("phases", {})
    total = sum(phases.values()) or 1.0
    lines = [
        f"Raw ECDSA P-256 verify (`cryptography`, same signatures): "
        f"{_f(data.get('verify_rate_1_thread'))} verifies/s on 1 thread, "
        f"{_f(data.get('verify_rate_pool'))} on {data.get('pool_workers')} threads. "
        f"`Committer.commit` of {len(data.get('blocks', []))} blocks: best of "
        + ", ".join(f"{s:.3f}" for s in data.get("commit_runs_seconds", []))
        + " s.",
        "",
        "Where a peer's commit time goes (a third peer committing the same blocks phase by phase):",
        "",
        "| phase | seconds | share | µs per tx |",
        "|---|---:|---:|---:|",
    ]
    for label, seconds in phases.items():
        lines.append(
            f"| {label} | {seconds:.3f} | {seconds / total:.0%} | {seconds / txs * 1e6:.0f} |"
        )
    stateless = float(data.get("stateless_1_thread_seconds", 0.0))
    if stateless:
        parts = list(stateless_parts(data).items())
        lines += [
            "",
            f"The stateless checks on one thread ({stateless / txs * 1e6:.0f} µs per tx):",
            "",
            "| part | µs per tx | share |",
            "|---|---:|---:|",
        ]
        for label, seconds in parts:
            lines.append(f"| {label} | {seconds / txs * 1e6:.0f} | {seconds / stateless:.0%} |")
    return lines


def cluster_details(data: dict[str, Any]) -> list[str]:
    latency = data.get("latency_s", {})
    endorse = data.get("endorse_s", {})
    submit = data.get("submit_to_commit_s", {})
    shape = data.get("cluster", {})
    failures: dict[str, int] = data.get("failures", {})
    lines = [
        f"`configs/local.toml` on free loopback ports (batch {shape.get('batch_max_message_count')}"
        f" tx / {shape.get('batch_timeout_ms')} ms), every node its own process, "
        f"{data.get('clients')} clients in one asyncio process, each with its own gateway "
        f"connection, {_f(data.get('warmup_s'), 0)} s warm-up then "
        f"{_f(data.get('duration_s'), 0)} s measured.",
        "",
        "| | p50 | p95 | p99 | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, spread in (
        ("proposal → commit status", latency),
        ("of which: endorsement", endorse),
        ("of which: submit → commit status", submit),
    ):
        lines.append(
            f"| {label} | {_f(spread.get('p50'), 3)} s | {_f(spread.get('p95'), 3)} s | "
            f"{_f(spread.get('p99'), 3)} s | {_f(spread.get('max'), 3)} s |"
        )
    per_block = data.get("tx_per_block")
    lines += [
        "",
        f"- committed VALID: {data.get('committed_valid')} tx in {data.get('blocks')} blocks"
        + (f" ({per_block:.1f} tx per block)" if per_block else ""),
        "- failures by code: "
        + (", ".join(f"{code} {n}" for code, n in failures.items()) if failures else "none"),
    ]
    elections = data.get("raft_elections", [])
    if data.get("raft_reelections"):
        lines.append(
            f"- Raft leader changes during the run: {data['raft_reelections']} ("
            + ", ".join(f"term {e['term']}: {e['leader']}" for e in elections)
            + ")"
        )
    else:
        lines.append("- Raft leader changes during the run: none")
    cpu: dict[str, float] = data.get("cpu_cores_busy", {})
    if cpu:
        cores = data.get("machine", {}).get("cores", "?")
        lines.append(
            f"- CPU during the measured window, in cores busy (of {cores}): "
            + ", ".join(f"{kind} {busy:.2f}" for kind, busy in cpu.items())
        )
    return lines


def ingest_details(data: dict[str, Any]) -> list[str]:
    fps = data.get("fps")
    cpu = data.get("cpu_ms_per_frame")
    if not isinstance(fps, dict):
        return generic_details(data)
    lines = [
        "Best of the alternating rounds on the same clip (ingest: decode, exact digests, "
        "sampling and perceptual fingerprints, segments, fsynced spool):",
        "",
        "| mode | frames/s | CPU ms per frame |",
        "|---|---:|---:|",
    ]
    for mode, value in fps.items():
        per_frame = cpu.get(mode) if isinstance(cpu, dict) else None
        lines.append(f"| {mode} | {_f(value, 1)} | {_f(per_frame, 2)} |")
    if "cpu_ratio" in data:
        lines += ["", f"CPU time ratio, decode-only ÷ ingest: {_f(data['cpu_ratio'], 2)}."]
    return lines


def generic_details(data: dict[str, Any]) -> list[str]:
    scalars = {k: v for k, v in data.items() if isinstance(v, int | float | str)}
    return [f"- {key}: {value}" for key, value in scalars.items()]


DETAILS = {
    "commit": ("Peer validate + commit (`scripts/bench_commit.py`)", commit_details),
    "cluster": ("End to end on the default cluster (`scripts/bench_cluster.py`)", cluster_details),
    "ingest": ("Ingest (`scripts/bench_ingest.py`)", ingest_details),
    "verify": ("Verification (`scripts/bench_verify.py`)", generic_details),
}


# -- notes on missed goals -------------------------------------------------------------------


def notes(outcomes: Sequence[Outcome]) -> list[str]:
    found = {o.bench.name: o.data for o in outcomes if o.data is not None}
    lines: list[str] = []
    commit = found.get("commit")
    if commit is not None and float(commit.get("ratio", 0.0)) < 0.6:
        phases: dict[str, float] = commit.get("phases", {})
        total = sum(phases.values()) or 1.0
        top = sorted(phases.items(), key=lambda item: -item[1])[:3]
        stateless = float(commit.get("stateless_1_thread_seconds", 0.0))
        text = (
            f"- **Peer validate + commit** reaches {float(commit['ratio']):.2f} of the raw "
            f"ECDSA bound (goal 0.6: {0.6 / float(commit['ratio']):.1f}x to go). The time goes "
            "to " + ", ".join(f"{label} ({seconds / total:.0%})" for label, seconds in top) + "."
        )
        if stateless:
            parts = sorted(stateless_parts(commit).items(), key=lambda item: -item[1])
            text += " On one thread the stateless checks split into " + ", ".join(
                f"{label} {seconds / stateless:.0%}" for label, seconds in parts
            )
            text += "; everything but the ECDSA calls is Python and holds the GIL."
            pooled = phases.get("stateless checks (thread pool)", 0.0)
            if pooled:
                text += (
                    f" The thread pool made the stateless checks {stateless / pooled:.2f}x as "
                    f"fast as one thread on {os.cpu_count()} cores"
                    + (
                        " (slower: the threads wait for the GIL, the more so when other "
                        "processes take the cores; see the load average)"
                        if stateless < pooled
                        else ""
                    )
                    + "."
                )
        lines.append(text)
    cluster = found.get("cluster")
    if cluster is not None:
        tps = float(cluster.get("tx_per_s", 0.0))
        p99 = float(cluster.get("latency_s", {}).get("p99", math.nan))
        cpu: dict[str, float] = cluster.get("cpu_cores_busy", {})
        if tps < 500 or not p99 < 2.0:
            busy = ", ".join(f"{kind} {value:.2f}" for kind, value in cpu.items())
            text = (
                f"- **End to end** commits {tps:.1f} tx/s ({tps / 500:.0%} of the 500 tx/s "
                f"goal) with p99 {p99:.2f} s. CPU in cores busy: {busy}."
            )
            if cluster.get("raft_reelections"):
                text += (
                    f" The Raft leader changed {cluster['raft_reelections']} time(s) under "
                    "load, and each change stalls ordering for seconds (the p99). Diagnosis: a "
                    "follower orderer forwards every broadcast it receives to the leader over "
                    "the same aiohttp connection pool (4 connections per host, "
                    "`cctvchain/orderer/service.py`) that carries its Raft messages, and a "
                    "forwarded broadcast holds its connection until the envelope is ordered "
                    "(up to 10 s); with a few dozen clients the followers' append and heartbeat "
                    "responses queue behind them, the leader fails its check-quorum and steps "
                    "down, and the next leader meets the same queue. With forwarding on a pool "
                    "of its own, the same load ran without any leader change."
                )
            peer_cpu = cpu.get("peer", 0.0)
            if tps > 0 and peer_cpu and not cluster.get("raft_reelections"):
                text += (
                    f" The peers spend {peer_cpu / tps * 1000:.1f} ms of CPU per committed "
                    "transaction (endorsing on two organisations, the gateway, validating and "
                    "committing on all four peers): at that cost two cores carry at most "
                    f"about {2 / (peer_cpu / tps):.0f} tx/s before any orderer or client work."
                )
            lines.append(text)
    ingest = found.get("ingest")
    if ingest is not None and float(ingest.get("ratio", 0.0)) < 0.9:
        lines.append(
            f"- **Ingest** runs at {float(ingest['ratio']):.2f} of decode-only speed (goal 0.9)."
        )
    verification = found.get("verify")
    if verification is not None and float(verification.get("ratio", 0.0)) < 0.8:
        lines.append(
            f"- **Verification** runs at {float(verification['ratio']):.2f} of decode-only speed "
            "(goal 0.8)."
        )
    return lines


# -- the report ----------------------------------------------------------------------------


def render(outcomes: Sequence[Outcome], started: datetime, elapsed: float, load: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`scripts/bench_report.py`) on "
        f"{started.strftime('%Y-%m-%d %H:%M UTC')} at commit {_git_commit()}, in "
        f"{elapsed / 60:.1f} min. Every ratio is against a baseline measured in the same run "
        "on the same machine; the goals are PRODUCT.md's quality bars (section 5). Timings "
        "vary from run to run and with other work on the machine (load average below); "
        "repeat with `make bench`.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in machine()]
    lines += [f"| load average (1, 5, 15 min) at the start | {load} |", ""]

    lines += [
        "## Figures",
        "",
        "| figure | measured | same-run baseline | ratio | goal | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        if outcome.data is not None:
            for row in ROWS[outcome.bench.name](outcome.data):
                lines.append("| " + " | ".join(row) + " |")
        else:
            lines.append(
                f"| `{outcome.bench.script}` | failed: {outcome.error} "
                f"| {NA} | {NA} | {NA} | NOT MEASURED |"
            )
    missing = [b for b in BENCHMARKS if not b.path.exists()]
    for bench in missing:
        lines.append(
            f"| `{bench.script}` | not in this tree yet | {NA} | {NA} | {NA} | NOT MEASURED |"
        )
    lines.append(
        f"| Ledger bytes per camera-hour | not measured by `make bench` | {NA} | {NA} | "
        "≤ 1 MB at normal | NOT MEASURED |"
    )
    lines.append("")

    missed = notes(outcomes)
    if missed:
        lines += ["## Where the goals are missed", "", *missed, ""]

    for outcome in outcomes:
        title, details = DETAILS[outcome.bench.name]
        lines += [f"## {title}", ""]
        if outcome.seconds is not None:
            lines += [f"Ran in {outcome.seconds:.0f} s.", ""]
        if outcome.data is not None:
            lines += [*details(outcome.data), ""]
        else:
            lines += [f"Failed: {outcome.error}. Its last lines:", "", "```", *outcome.log_tail]
            lines += ["```", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--results", type=Path, help="use <name>.json found here; run (into it) what is missing"
    )
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="the report")
    args = parser.parse_args(argv)
    if args.results is not None:
        args.results.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    begin = time.monotonic()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        outcomes = collect(args.results)
    except KeyboardInterrupt:
        print("\ninterrupted; no report written", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - begin
    stamp = args.results / STARTED if args.results is not None else None
    if stamp is not None and stamp.exists():
        # make bench ran benchmarks before this process: from its stamp to the last result.
        results = list(args.results.glob("*.json"))
        end = max([p.stat().st_mtime for p in results], default=stamp.stat().st_mtime)
        ran = any(o.seconds is not None for o in outcomes)
        elapsed = (time.time() if ran else end) - stamp.stat().st_mtime
        started = datetime.fromtimestamp(stamp.stat().st_mtime, UTC)
    # The load when the first benchmark began, if it noted it (other work skews figures).
    for outcome in outcomes:
        noted = (outcome.data or {}).get("machine", {}).get("load_average")
        if isinstance(noted, str):
            load = noted
            break
    args.out.write_text(render(outcomes, started, elapsed, load), encoding="utf-8")
    print(f"\n{args.out} written")
    for outcome in outcomes:
        if outcome.data is not None:
            for figure, measured, _, ratio, goal, result in ROWS[outcome.bench.name](outcome.data):
                print(f"  {figure[:60]:<60} {measured:>22}  ratio {ratio:<16} {goal:<11} {result}")
        else:
            print(f"  {outcome.bench.script}: {outcome.error}")
    return 0 if all(o.data is not None for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
