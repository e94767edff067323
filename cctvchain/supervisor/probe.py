"""Asking a node how it is: its port, ``/healthz``, ``/readyz`` and what its kind reports.

Calls go over TLS with an organisation admin's TLS certificate (every node accepts its
channel's members) and trust every organisation's TLS roots from the genesis block, so
the CA, the orderers and the peers are all checked by name and chain, like any client.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cctvchain.msp.wallet import Wallet
from cctvchain.network.material import NetworkMaterial
from cctvchain.node import tls
from cctvchain.node.client import NodeClient
from cctvchain.node.errors import NodeClientError, NodeRefused
from cctvchain.supervisor.nodes import ManagedNode

PROBE_TIMEOUT: Final = 3.0
ORDERER_STATUS_KEYS: Final = ("role", "term", "leader", "height", "commit_index", "halted")
PEER_CHANNEL_PATH: Final = "/api/v1/channel"


class ProbeSetupError(Exception):
    """No usable admin wallet or genesis block to call the nodes with."""


class ClientContexts:
    """A TLS client context per organisation: its admin's certificate, trusting every
    organisation's TLS roots. A node is called with its own organisation's (a CA checks a
    presented client certificate against its organisation's root alone)."""

    def __init__(self, material: NetworkMaterial, orgs: Iterable[str]) -> None:
        try:
            trusted = tls.trust_bundle(material.channel_config())
        except Exception as exc:  # a missing or unreadable genesis block, bad certificates
            raise ProbeSetupError(f"cannot read the network's TLS roots: {exc}") from exc
        self._by_org: dict[str, ssl.SSLContext] = {}
        for org in orgs:
            wallet = Wallet(material.admin_wallets[org])
            if wallet.has_profile("tls"):
                self._by_org[org] = tls.client_context(wallet.load_tls(), trusted)
        if not self._by_org:
            raise ProbeSetupError(
                f"no admin wallet with a TLS certificate under {material.nodes_dir}"
            )

    def for_node(self, node: ManagedNode) -> ssl.SSLContext:
        context = self._by_org.get(node.org)
        return context if context is not None else next(iter(self._by_org.values()))


def bind_error(host: str, port: int) -> OSError | None:
    """Why ``host:port`` cannot be listened on now (None if it can), tried by binding it
    the way the node will (SO_REUSEADDR, so a closed node's TIME_WAIT does not count)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return OSError(errno.EADDRNOTAVAIL, f"cannot resolve {host}: {exc.strerror}")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return exc
    return None


@dataclass(frozen=True)
class Probe:
    """One look at a node over HTTPS."""

    answered: bool  # /healthz answered with a JSON object
    node: str | None = None  # the name it answered with
    kind: str | None = None
    error: str | None = None  # why /healthz did not answer
    ready: bool = False
    not_ready: str | None = None  # /readyz's reason
    orderer: Mapping[str, Any] | None = None  # an orderer's /status (selected keys)
    channel: Mapping[str, Any] | None = None  # a peer's /api/v1/channel, if it has one
    detail_error: str | None = None  # /status or /api/v1/channel failed

    def is_node(self, node: ManagedNode) -> bool:
        return self.answered and self.node == node.name

    def to_json(self) -> dict[str, Any]:
        return {
            "healthy": self.answered,
            "answered_as": self.node,
            "error": self.error,
            "ready": self.ready,
            "not_ready": self.not_ready,
        }


async def probe(
    node: ManagedNode,
    contexts: ClientContexts,
    *,
    ready: bool = True,
    details: bool = False,
    timeout: float = PROBE_TIMEOUT,
) -> Probe:
    """``/healthz``; then, if it is this node, ``/readyz`` (``ready``) and the orderer's
    ``/status`` or the peer's channel info (``details``; orderers always with ``ready``,
    since an orderer is ready for the network only once it knows a Raft leader)."""
    context = contexts.for_node(node)
    async with NodeClient(node.url, context, what=node.name, timeout=timeout) as client:
        try:
            health = await client.get_json("/healthz")
        except NodeClientError as exc:
            return Probe(answered=False, error=str(exc))
        name, kind = health.get("node"), health.get("kind")
        answered = Probe(
            answered=True,
            node=name if isinstance(name, str) else None,
            kind=kind if isinstance(kind, str) else None,
        )
        if answered.node != node.name or not (ready or details):
            return answered
        is_ready, not_ready = False, None
        try:
            await client.get_json("/readyz")
            is_ready = True
        except NodeRefused as exc:
            not_ready = exc.message if exc.code == "not_ready" else str(exc)
        except NodeClientError as exc:
            not_ready = str(exc)
        orderer: dict[str, Any] | None = None
        channel: dict[str, Any] | None = None
        detail_error: str | None = None
        try:
            if node.kind == "orderer":
                status = await client.get_json("/status")
                orderer = {key: status.get(key) for key in ORDERER_STATUS_KEYS}
            elif node.kind == "peer" and details:
                channel = await client.get_json(PEER_CHANNEL_PATH)
        except NodeRefused as exc:
            if not (node.kind == "peer" and exc.status in (404, 405)):
                detail_error = str(exc)  # a peer without the channel API is no error
        except NodeClientError as exc:
            detail_error = str(exc)
        return Probe(
            answered=True,
            node=answered.node,
            kind=answered.kind,
            ready=is_ready,
            not_ready=not_ready,
            orderer=orderer,
            channel=channel,
            detail_error=detail_error,
        )


async def probe_many(
    nodes: Iterable[ManagedNode],
    contexts: ClientContexts,
    *,
    ready: bool = True,
    details: bool = False,
    timeout: float = PROBE_TIMEOUT,
) -> dict[str, Probe]:
    """:func:`probe` for every node at once; by node name."""
    listed = list(nodes)
    results = await asyncio.gather(
        *(probe(n, contexts, ready=ready, details=details, timeout=timeout) for n in listed)
    )
    return {node.name: result for node, result in zip(listed, results, strict=True)}


def probe_all(
    nodes: Iterable[ManagedNode],
    contexts: ClientContexts,
    *,
    ready: bool = True,
    details: bool = False,
    timeout: float = PROBE_TIMEOUT,
) -> dict[str, Probe]:
    """:func:`probe_many` from synchronous code."""
    return asyncio.run(probe_many(nodes, contexts, ready=ready, details=details, timeout=timeout))
