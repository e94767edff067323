"""The peer node: a process that keeps the ledger and serves the peer's HTTP API.

* :mod:`~cctvchain.peernode.service` -- ``create_peer_service`` (``SERVICES["peer"]``):
  the routes over mutual TLS;
* :mod:`~cctvchain.peernode.core` -- ledger, committer, endorser, the deliver loop with
  orderer fail-over, the orderers' status, commit waiters and event queues;
* :mod:`~cctvchain.peernode.gateway` -- endorse (gathering endorsements from peers of
  other organisations until the policy is met), submit (order, then wait for the commit
  status) and evaluate, plus the peer-to-peer endorser;
* :mod:`~cctvchain.peernode.api` -- reads as the TLS caller (the ``cctv`` contract's
  queries, so the ACL and Algorithm 1 apply), ledger reads, Server-Sent Events,
  Prometheus metrics and the OpenAPI document;
* :mod:`~cctvchain.peernode.gateway_client` -- propose, endorse, sign and submit in one
  call, for the CLI, tools and tests.
"""
