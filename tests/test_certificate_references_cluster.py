"""Certificate references on the real cluster (3 Raft orderers, 4 peers as processes,
mutual TLS): the camera's client falls back to its full certificate when the nodes do
not know its reference, then names itself by reference; the orderer refuses an unknown
reference at broadcast with a machine-readable code."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Iterator

import pytest
from cctv_helpers import SEGMENT_MS, b64, make_segment
from ingest_world import IngestWorld, ingest_world
from peer_cluster import ORDERERS

from cctvchain.crypto import Domain
from cctvchain.ingest.extractor import ChainClient, NetworkSettings
from cctvchain.ledger.block import Block
from cctvchain.msp.certref import certificate_reference
from cctvchain.msp.wallet import Wallet
from cctvchain.peernode.gateway_client import SubmitResult
from cctvchain.tx.messages import (
    Envelope,
    Proposal,
    Response,
    TransactionPayload,
    compute_tx_id,
)

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestWorld]:
    yield from ingest_world(tmp_path_factory.mktemp("certref"))


def has_block(world: IngestWorld, peer: str, number: int) -> None:
    """Until ``peer`` has committed block ``number``: the submitter's answer comes when
    its gateway's peer committed it, the other peers may be a moment behind."""
    cluster = world.cluster
    deadline = time.monotonic() + 30
    while cluster.get_json(peer, "/api/v1/channel", cluster.admin)["height"] <= number:
        assert time.monotonic() < deadline, f"{peer} never committed block {number}"
        time.sleep(0.1)


def committed_envelope(world: IngestWorld, result: SubmitResult) -> Envelope:
    """The transaction as the block on a peer of another organisation holds it."""
    cluster = world.cluster
    has_block(world, "peer0.la", result.block)
    answer = cluster.get_json("peer0.la", f"/api/v1/blocks/{result.block}?raw=1", cluster.admin)
    block = Block.decode(base64.b64decode(answer["block_b64"]))
    for data in block.transactions:
        envelope = Envelope.decode(data)
        if envelope.tx_id == result.tx_id:
            return envelope
    raise AssertionError(f"{result.tx_id} is not in block {result.block}")


def test_camera_resends_in_full_when_its_reference_is_unknown_then_anchors_by_reference(
    world: IngestWorld,
) -> None:
    cluster, camera = world.cluster, "5861"
    user = cluster.user_from_wallet(Wallet(world.wallets[camera]), "CityCCTV")
    pem = user.identity.cert
    settings = NetworkSettings(user.identity, user.ssl_context, (cluster.url("peer1.city"),), ())

    async def run() -> tuple[SubmitResult, SubmitResult]:
        chain = ChainClient(settings)
        try:
            # As if one of its anchors had committed: but no block ever carried its PEM,
            # so the gateway's endorser refuses the reference and the client resends.
            chain.by_reference = True
            assert await chain.anchor_head(camera) is None
            assert not chain.by_reference
            start = int(time.time() * 1000) - 3 * SEGMENT_MS
            first = make_segment(camera, 0, start)
            in_full = await chain.submit("AnchorSegment", [b64(first)])
            assert chain.by_reference  # committed: the PEM is registered everywhere
            second = make_segment(camera, 1, first.capture_end_ms, previous=first.hash())
            by_reference = await chain.submit("AnchorSegment", [b64(second)])
            assert chain.by_reference
            return in_full, by_reference
        finally:
            await chain.close()

    in_full, by_reference = asyncio.run(run())
    assert in_full.valid and by_reference.valid
    assert committed_envelope(world, in_full).proposal.creator.cert == pem
    carried = committed_envelope(world, by_reference)
    assert carried.proposal.creator.cert == certificate_reference(pem)
    # Endorsers and the orderers name themselves by reference too by now.
    assert all(len(e.endorser.cert) == 32 for e in carried.transaction.endorsements)
    # Peers render the creator through their registry.
    has_block(world, "peer0.police", by_reference.block)
    shown = cluster.get_json("peer0.police", f"/api/v1/transactions/{by_reference.tx_id}", world.po)
    assert shown["creator"] == {"msp_id": user.identity.msp_id, "name": f"cam-{camera}"}
    assert shown["validation_code_name"] == "VALID"


def test_orderer_refuses_an_unknown_reference_at_broadcast_with_its_code(
    world: IngestWorld,
) -> None:
    cluster = world.cluster
    user = cluster.user_from_wallet(Wallet(world.wallets["5860"]), "CityCCTV")
    identity = user.identity.referenced()  # no block carried camera 5860's certificate
    creator = identity.serialized
    nonce = os.urandom(24)
    proposal = Proposal(
        channel_id="cctv",
        contract="cctv",
        function="GetAnchorHead",
        args=("5860",),
        creator=creator,
        nonce=nonce,
        timestamp_ms=int(time.time() * 1000),
        tx_id=compute_tx_id(nonce, creator),
    ).encode()
    payload = TransactionPayload(proposal, Response(200, "", b"").encode(), ()).encode()
    envelope = Envelope(payload, identity.key.sign(Domain.ENVELOPE, payload)).encode()
    for orderer in ORDERERS:  # whether it leads or would forward to the leader
        answer = cluster.request(
            orderer,
            "POST",
            "/broadcast",
            user=user,
            body=envelope,
            content_type="application/octet-stream",
        )
        assert answer.status == 400, (orderer, answer.status, answer.body[:300])
        error = answer.json()
        assert error["code"] == "unknown_certificate_reference"
        assert "full certificate" in error["message"]
