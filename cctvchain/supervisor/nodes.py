"""The nodes of a network configuration as the supervisor sees them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cctvchain.network.config import Endpoint, NetworkConfig

LOG_FILE: Final = "node.log"
PID_FILE: Final = "node.pid"
# Start CAs first and stop them last: the orderers and peers are their organisations'.
START_ORDER: Final = ("ca", "orderer", "peer")
STOP_ORDER: Final = ("peer", "orderer", "ca")


@dataclass(frozen=True)
class ManagedNode:
    """One node of the configuration and the files the supervisor keeps for it."""

    name: str
    kind: str  # "ca", "orderer" or "peer"
    org: str
    host: str
    port: int
    directory: Path  # <nodes_dir>/<name>/ (a CA's is its CA directory)

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_FILE

    @property
    def pid_path(self) -> Path:
        return self.directory / PID_FILE


def _managed(endpoint: Endpoint, kind: str, nodes_dir: Path) -> ManagedNode:
    return ManagedNode(
        name=endpoint.name,
        kind=kind,
        org=endpoint.org,
        host=endpoint.host,
        port=endpoint.port,
        directory=nodes_dir / endpoint.name,
    )


def managed_nodes(config: NetworkConfig) -> list[ManagedNode]:
    """Every node of ``config`` in start order: CAs, orderers, peers (each as configured)."""
    nodes_dir = config.nodes_dir
    return [
        *(_managed(org.ca, "ca", nodes_dir) for org in config.organizations),
        *(_managed(endpoint, "orderer", nodes_dir) for endpoint in config.orderers),
        *(_managed(endpoint, "peer", nodes_dir) for endpoint in config.peers),
    ]


def by_kind(nodes: list[ManagedNode], order: tuple[str, ...]) -> list[list[ManagedNode]]:
    """``nodes`` grouped by kind in ``order`` (empty groups left out)."""
    groups = [[node for node in nodes if node.kind == kind] for kind in order]
    return [group for group in groups if group]
