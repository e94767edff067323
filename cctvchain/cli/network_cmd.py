"""``cctvchain network up|status|down``: the whole network as processes on this machine.

``up`` creates missing material, starts every node of the configuration (each
organisation's CA, the orderers, the peers) as a detached ``cctvchain node start``
process logging to ``<nodes_dir>/<node>/node.log``, waits until each is ready and prints
the endpoints. ``status`` reports each node; ``down`` stops them. The work is done by
:mod:`cctvchain.supervisor`; this module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cctvchain.cli.errors import CliError
from cctvchain.supervisor import DEFAULT_DOWN_TIMEOUT, DEFAULT_UP_TIMEOUT

if TYPE_CHECKING:  # aiohttp and the node runtime load only when a command runs
    from cctvchain.supervisor.network import NetworkSupervisor

DEFAULT_CONFIG: Final = Path("configs/local.toml")
EXIT_NOT_ALL_RUNNING: Final = 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "network",
        help="start, inspect and stop every node of a network on this machine",
        description="Run the network described by a configuration file as one process "
        "per node (CAs, orderers, peers) on this machine.",
    )
    actions = parser.add_subparsers(dest="network_command", metavar="ACTION")
    actions.required = True

    def config_option(action: argparse.ArgumentParser) -> None:
        action.add_argument(
            "--config",
            type=Path,
            default=None,
            metavar="FILE",
            help=f"network configuration (TOML; default {DEFAULT_CONFIG})",
        )

    up = actions.add_parser(
        "up",
        help="create missing material, start every node, wait until all are ready",
        description="Create the network's missing certificates and genesis block, start "
        "each node not running yet as a detached process (log and pid file in "
        "<nodes_dir>/<node>/), and wait until every node is ready (an orderer once it "
        "knows a Raft leader). A port held by another program stops the command before "
        "anything starts; if a node fails, the nodes started are stopped again.",
    )
    config_option(up)
    up.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_UP_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the nodes to be ready (default {DEFAULT_UP_TIMEOUT:g})",
    )
    up.add_argument(
        "--keep-going",
        action="store_true",
        help="leave started nodes running when another fails, and start the nodes whose "
        "kind this build has a service for when some have none",
    )
    up.set_defaults(func=_up)

    status = actions.add_parser(
        "status",
        help="show each node's process, health, readiness and ledger",
        description="Show each node's pid, /healthz and /readyz over TLS, an orderer's Raft "
        "role, term, leader and height, and a peer's channel height. Exit status 0 when "
        f"every node is running and ready, {EXIT_NOT_ALL_RUNNING} otherwise.",
    )
    config_option(status)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(func=_status)

    down = actions.add_parser(
        "down",
        help="stop the nodes `network up` started (peers, orderers, then CAs)",
        description="Send SIGTERM to every node `network up` started, peers first, then "
        "orderers, then CAs; SIGKILL a node that has not exited after the timeout. "
        "Removes the pid files. Running it again does nothing.",
    )
    config_option(down)
    down.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_DOWN_TIMEOUT,
        metavar="SECONDS",
        help="how long each kind of node may take to stop before SIGKILL "
        f"(default {DEFAULT_DOWN_TIMEOUT:g})",
    )
    down.set_defaults(func=_down)


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _out(line: str) -> None:
    print(line, flush=True)


def _supervisor(args: argparse.Namespace) -> NetworkSupervisor:
    from cctvchain.network.config import NetworkConfigError, load_network_config
    from cctvchain.supervisor.network import NetworkSupervisor

    path: Path = args.config if args.config is not None else DEFAULT_CONFIG
    if args.config is None and not path.exists():
        raise CliError(f"no {DEFAULT_CONFIG} here; name the network's configuration: --config FILE")
    try:
        config = load_network_config(path)
    except NetworkConfigError as exc:
        raise CliError(str(exc)) from exc
    return NetworkSupervisor(config, path, out=_out, err=_err)


def _command(args: argparse.Namespace, action: str) -> str:
    config = f" --config {args.config}" if args.config is not None else ""
    return f"cctvchain network {action}{config}"


def _failures() -> tuple[type[Exception], ...]:
    from cctvchain.msp.errors import CAError, MSPError, StoreError
    from cctvchain.network.genesis import GenesisError
    from cctvchain.network.material import MaterialError
    from cctvchain.supervisor.network import SupervisorError
    from cctvchain.supervisor.probe import ProbeSetupError
    from cctvchain.supervisor.process import ProcessError

    return (
        SupervisorError,
        ProcessError,
        ProbeSetupError,
        MaterialError,
        GenesisError,
        CAError,
        MSPError,
        StoreError,
    )


def _up(args: argparse.Namespace) -> int:
    from cctvchain.supervisor.network import NO_SERVICE, RUNNING, status_table

    if args.timeout <= 0:
        raise CliError("--timeout must be positive")
    supervisor = _supervisor(args)
    _out(f"network {supervisor.config.name} ({supervisor.config_path})")
    try:
        statuses = supervisor.up(timeout=args.timeout, keep_going=args.keep_going)
    except _failures() as exc:
        raise CliError(str(exc)) from exc
    running = sum(1 for status in statuses if status.state == RUNNING)
    # With --keep-going, nodes of a kind this build cannot run were left out on purpose.
    expected = sum(1 for status in statuses if status.state != NO_SERVICE)
    _out("")
    _out(f"network {supervisor.config.name} is up: {running} of {len(statuses)} node(s) running")
    _out(status_table(statuses))
    _out("")
    _out(f"  status: {_command(args, 'status')}")
    _out(f"  logs:   {supervisor.config.nodes_dir}/<node>/node.log")
    _out(f"  stop:   {_command(args, 'down')}")
    return 0 if running == expected else 1


def _status(args: argparse.Namespace) -> int:
    from cctvchain.supervisor.network import RUNNING, leader_of, status_json, status_table

    supervisor = _supervisor(args)
    try:
        statuses = supervisor.status(details=True)
    except _failures() as exc:
        raise CliError(str(exc)) from exc
    running = sum(1 for status in statuses if status.state == RUNNING)
    if args.json:
        print(json.dumps(status_json(supervisor, statuses), indent=2))
    else:
        leader = leader_of(statuses)
        _out(
            f"network {supervisor.config.name}: {running} of {len(statuses)} node(s) running"
            + (f"; Raft leader {leader}" if leader else "")
        )
        _out(status_table(statuses, details=True))
        _out(f"  logs: {supervisor.config.nodes_dir}/<node>/node.log")
    return 0 if running == len(statuses) else EXIT_NOT_ALL_RUNNING


def _down(args: argparse.Namespace) -> int:
    if args.timeout < 0:
        raise CliError("--timeout must not be negative")
    supervisor = _supervisor(args)
    try:
        report = supervisor.down(timeout=args.timeout)
    except _failures() as exc:
        raise CliError(str(exc)) from exc
    for node in report.stale:
        _out(f"{node.name}: removed a stale pid file (its process was already gone)")
    for warning in report.warnings:
        _err(f"warning: {warning}")
    if report.survivors:
        names = ", ".join(node.name for node in report.survivors)
        raise CliError(f"{names} still running after SIGKILL; their pid files are kept")
    if report.stopped:
        _out(f"network {supervisor.config.name} is down: {len(report.stopped)} node(s) stopped")
    else:
        _out(f"nothing to stop: no node of network {supervisor.config.name} was running")
    return 0
