"""``cctvchain node start|material``: run one node of a network in the foreground.

``node start --config FILE --name NODE`` looks ``NODE`` up in the network configuration:
an organisation's CA endpoint (e.g. ``ca.city``) runs the CA service, an orderer or a
peer runs the service registered for its kind in :mod:`cctvchain.node.services`. The
node logs to stderr and stops cleanly (exit 0) on SIGTERM or Ctrl-C.
``node material --config FILE`` creates whatever certificates, keys and genesis block
of the network are missing (what ``node start`` needs).
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cctvchain.cli.errors import CliError
from cctvchain.msp.errors import CAError, MSPError, StoreError
from cctvchain.network.config import NetworkConfigError, load_network_config
from cctvchain.network.genesis import GenesisError
from cctvchain.network.material import MaterialError, ensure_material

if TYPE_CHECKING:  # the node runtime (aiohttp) is loaded only when a node starts
    from cctvchain.node.runtime import NodeContext

LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "node",
        help="run one node (CA, orderer, peer) in the foreground",
        description="Run one node of the network described by a configuration file.",
    )
    actions = parser.add_subparsers(dest="node_command", metavar="ACTION")
    actions.required = True

    start = actions.add_parser(
        "start",
        help="run a node in the foreground until SIGTERM or Ctrl-C",
        description="Run the named node (an organisation's CA, an orderer or a peer) in "
        "the foreground over HTTPS, logging to stderr; SIGTERM or Ctrl-C stops it "
        "cleanly. Its material must exist (see `cctvchain node material`).",
    )
    start.add_argument("--config", required=True, type=Path, help="network configuration (TOML)")
    start.add_argument("--name", required=True, help="node name, e.g. ca.city or orderer0.city")
    start.add_argument(
        "--log-level", choices=LOG_LEVELS, default="info", help="log level (default: info)"
    )
    start.add_argument(
        "--shutdown-timeout",
        type=float,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="how long requests in flight may finish on stop "
        f"(default {DEFAULT_SHUTDOWN_TIMEOUT:g})",
    )
    start.set_defaults(func=_start)

    material = actions.add_parser(
        "material",
        help="create the network's missing certificates, keys and genesis block",
        description="Create the CAs, admin and node wallets and the genesis block of the "
        "network under its nodes_dir, where missing; existing material is kept.",
    )
    material.add_argument("--config", required=True, type=Path, help="network configuration (TOML)")
    material.set_defaults(func=_material)


def _context(config: Path, name: str) -> NodeContext:
    from cctvchain.node.runtime import load_context

    try:
        return load_context(config, name)
    except NetworkConfigError as exc:
        message = str(exc)
        if message.startswith("no node named"):
            known = load_network_config(config)
            names = [
                *(org.ca.name for org in known.organizations),
                *(node.name for node in known.orderers),
                *(node.name for node in known.peers),
            ]
            message += f" (nodes: {', '.join(names)})"
        raise CliError(message) from exc


def _start(args: argparse.Namespace) -> int:
    from cctvchain.node.runtime import NodeStartError, configure_logging, run_node
    from cctvchain.node.services import SERVICES

    if args.shutdown_timeout < 0:
        raise CliError("--shutdown-timeout must not be negative")
    context = _context(args.config, args.name)
    factory = SERVICES.get(context.kind)
    if factory is None:
        available = ", ".join(sorted(SERVICES)) or "none"
        raise CliError(
            f"{context.name} is {_article(context.kind)} {context.kind} node, but this build "
            f"has no {context.kind} service yet (services available: {available})"
        )
    log = configure_logging(context.name, args.log_level.upper())
    try:
        return run_node(
            dataclasses.replace(context, log=log),
            factory,
            shutdown_timeout=args.shutdown_timeout,
        )
    except NodeStartError as exc:
        raise CliError(str(exc)) from exc


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _material(args: argparse.Namespace) -> int:
    try:
        config = load_network_config(args.config)
        result = ensure_material(config, datetime.now(UTC), log=print)
    except (NetworkConfigError, MaterialError, GenesisError) as exc:
        raise CliError(str(exc)) from exc
    except (CAError, MSPError, StoreError) as exc:
        raise CliError(str(exc)) from exc
    if result.created:
        print(f"created {len(result.created)} item(s) under {result.nodes_dir}")
    else:
        print(f"all material of {config.name} already exists under {result.nodes_dir}")
    return 0
