"""The services a node can run, by kind: ``ca``, ``orderer``, ``peer``.

``cctvchain node start --name NODE`` looks the node up in the network configuration,
takes its kind, and runs ``SERVICES[kind]`` through :func:`cctvchain.node.runtime.run_node`.
The orderer and peer services register themselves here when they exist::

    SERVICES["orderer"] = create_orderer_service   # async (NodeContext) -> NodeService
"""

from __future__ import annotations

from cctvchain.node.ca_service import create_ca_service
from cctvchain.node.runtime import KINDS, ServiceFactory, node_kind
from cctvchain.orderer.service import create_orderer_service
from cctvchain.peernode.service import create_peer_service

SERVICES: dict[str, ServiceFactory] = {
    "ca": create_ca_service,
    "orderer": create_orderer_service,
    "peer": create_peer_service,
}

__all__ = ["KINDS", "SERVICES", "ServiceFactory", "node_kind"]
