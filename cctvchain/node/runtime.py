"""Run one node in the foreground: its service over HTTPS, logs on stderr, clean stops.

A *service* (the CA, the orderer, the peer) is a factory ``async (NodeContext) ->
NodeService``: it checks and loads its material, builds an application with
:func:`cctvchain.node.http.make_app` (routes, middlewares, ``on_startup`` /
``on_cleanup`` hooks for background tasks and resources) and the TLS context to serve
it with. :func:`run_node` then

* listens on the node's host:port (a port in use, or missing material, is a
  :class:`NodeStartError` with a one-line message; nothing is left running);
* marks the node ready (``GET /readyz``) once it listens;
* on SIGTERM or SIGINT stops accepting connections, lets requests in flight finish
  within ``shutdown_timeout``, runs the cleanup hooks, logs "stopped" and returns 0.

:class:`NodeServer` is the same server without the process concerns (signals,
``asyncio.run``), for tests and for embedding several nodes in one event loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiohttp import web

from cctvchain.ledger.config import ChannelConfig
from cctvchain.msp.errors import CAError, MSPError, StoreError
from cctvchain.msp.store import CAStore
from cctvchain.msp.wallet import Wallet
from cctvchain.network.config import Endpoint, NetworkConfig, OrgSettings, load_network_config
from cctvchain.network.genesis import GenesisError
from cctvchain.network.material import NetworkMaterial
from cctvchain.node.auth import Clock, utc_now
from cctvchain.node.http import readiness

DEFAULT_SHUTDOWN_TIMEOUT: Final = 10.0
KINDS: Final = ("ca", "orderer", "peer")
LOGGER_NAME: Final = "cctvchain.node"


class NodeStartError(Exception):
    """The node cannot start; the message is one line meant for the operator."""


class MissingMaterial(NodeStartError):
    """The node's certificates, keys or genesis block have not been created yet."""


def material_command(config_path: Path | None) -> str:
    where = str(config_path) if config_path is not None else "FILE"
    return f"cctvchain node material --config {where}"


def node_kind(config: NetworkConfig, name: str) -> str:
    """``ca``, ``orderer`` or ``peer``: what the configuration declares ``name`` to be."""
    if any(org.ca.name == name for org in config.organizations):
        return "ca"
    if any(endpoint.name == name for endpoint in config.orderers):
        return "orderer"
    if any(endpoint.name == name for endpoint in config.peers):
        return "peer"
    config.node(name)  # raises NetworkConfigError naming the node
    raise AssertionError("unreachable")


def format_url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


@dataclass(frozen=True)
class NodeContext:
    """Everything a service factory gets: the network, this node, its material, a log."""

    config: NetworkConfig
    endpoint: Endpoint
    kind: str
    material: NetworkMaterial
    log: logging.Logger
    now: Clock = field(default=utc_now)
    config_path: Path | None = None

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def url(self) -> str:
        return format_url(self.endpoint.host, self.endpoint.port)

    @property
    def org(self) -> OrgSettings:
        return self.config.org(self.endpoint.org)

    def missing(self, what: str, path: Path) -> MissingMaterial:
        return MissingMaterial(
            f"{self.name}: {what} {path} does not exist; create the network's material "
            f"first: {material_command(self.config_path)}"
        )

    def ca_store(self) -> CAStore:
        """The organisation's CA directory (for the CA node)."""
        store = CAStore(self.material.ca_dirs[self.endpoint.org])
        if not store.exists:
            raise self.missing("CA directory", store.directory)
        return store

    def node_wallet(self) -> Wallet:
        """The orderer's or peer's wallet, checked to hold its msp and tls certificates."""
        if self.kind == "ca":
            raise NodeStartError(f"{self.name} is a CA; it has no node wallet")
        wallet = Wallet(self.material.node_wallet(self.name))
        if not wallet.directory.is_dir():
            raise self.missing("wallet", wallet.directory)
        for profile in ("msp", "tls"):
            if not wallet.has_profile(profile):
                raise self.missing(f"{profile} certificate in wallet", wallet.directory)
        return wallet

    def channel_config(self) -> ChannelConfig:
        """The channel configuration of the genesis block."""
        if not self.material.genesis.exists():
            raise self.missing("genesis block", self.material.genesis)
        try:
            return self.material.channel_config()
        except GenesisError as exc:
            raise NodeStartError(f"{self.name}: {exc}") from exc


def load_context(
    config_path: Path,
    name: str,
    *,
    log: logging.Logger | None = None,
    now: Clock = utc_now,
) -> NodeContext:
    """Read the configuration and place ``name`` in it (NetworkConfigError if absent)."""
    config = load_network_config(config_path)
    return NodeContext(
        config=config,
        endpoint=config.node(name),
        kind=node_kind(config, name),
        material=NetworkMaterial.locate(config),
        log=log if log is not None else logging.getLogger(LOGGER_NAME),
        now=now,
        config_path=config_path,
    )


@dataclass
class NodeService:
    """What a service factory hands the runtime: the app, its TLS, a line for the log."""

    app: web.Application
    ssl_context: ssl.SSLContext
    description: str


ServiceFactory = Callable[[NodeContext], Awaitable[NodeService]]


# -- the server --------------------------------------------------------------------------


class NodeServer:
    """One application served over TLS on host:port (port 0 picks a free port)."""

    def __init__(
        self,
        app: web.Application,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        log: logging.Logger,
        name: str = "node",
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.log = log
        self.name = name
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
        self._started = False

    @property
    def url(self) -> str:
        return format_url(self.host, self.port)

    async def start(self) -> None:
        """Run the startup hooks and listen; NodeStartError if the address is unusable."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise NodeStartError(self._listen_error(exc)) from exc
        for address in self._runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        self._started = True
        readiness(self.app).started = True

    def _listen_error(self, exc: OSError) -> str:
        where = f"{self.host}:{self.port}"
        if exc.errno == errno.EADDRINUSE:
            reason = (
                "the address is already in use (is the node already running, or another "
                "program on that port?)"
            )
        elif exc.errno == errno.EADDRNOTAVAIL:
            reason = "this machine has no such address"
        elif exc.errno == errno.EACCES:
            reason = "permission denied"
        else:
            reason = exc.strerror or str(exc)
        return f"{self.name}: cannot listen on {where}: {reason}"

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish, run the cleanup hooks."""
        readiness(self.app).started = False
        await self._runner.cleanup()
        self._started = False


# -- the foreground process --------------------------------------------------------------


def configure_logging(name: str, level: int | str = logging.INFO) -> logging.Logger:
    """Log to stderr with timestamps and the node name; return the node's logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s.%(msecs)03d %(levelname)s {name.replace('%', '%%')}: %(message)s",
            datefmt="%Y-%m-%dT%H:%M:%S",
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("cctvchain").setLevel(level)
    return logging.getLogger(LOGGER_NAME)


def run_node(
    context: NodeContext,
    factory: ServiceFactory,
    *,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
) -> int:
    """Serve ``context``'s node until SIGTERM or SIGINT; 0 after a clean stop.

    Raises :class:`NodeStartError` (one line) if the node cannot start.
    """
    return asyncio.run(_serve(context, factory, shutdown_timeout))


async def _serve(context: NodeContext, factory: ServiceFactory, shutdown_timeout: float) -> int:
    log = context.log
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(signum: signal.Signals) -> None:
        if received:
            log.info("received %s; already stopping", signum.name)
            return
        received.append(signum.name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    where = f" from {context.config_path}" if context.config_path is not None else ""
    log.info("starting %s node%s", context.kind, where)
    try:
        service = await factory(context)
    except (StoreError, MSPError, CAError) as exc:
        raise NodeStartError(f"{context.name}: {exc}") from exc
    log.info("%s", service.description)
    server = NodeServer(
        service.app,
        host=context.endpoint.host,
        port=context.endpoint.port,
        ssl_context=service.ssl_context,
        log=log,
        name=context.name,
        shutdown_timeout=shutdown_timeout,
    )
    await server.start()
    log.info("listening on %s", server.url)
    await stop.wait()
    log.info(
        "received %s; stopping (requests in flight get up to %g s)", received[0], shutdown_timeout
    )
    await server.stop()
    log.info("stopped")
    return 0
