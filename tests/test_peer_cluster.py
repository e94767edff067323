"""Peers as real processes: 3 organisations, 3 Raft orderers, 4 peers (+1 started later),
over mutual TLS, driven through the gateway and the HTTP API as real clients.

One cluster per module (per xdist worker). The fixture runs the paper's flow: each
organisation's NetworkAdmin adds its participants, an operator requests a camera, the
control room manager approves it (binding the camera's identity) and grants one police
officer access, the camera anchors two segments. Every test leaves the cluster running
with every started node up, so the tests do not depend on their order.
"""

from __future__ import annotations

import asyncio
import base64
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from peer_cluster import (
    ORDERERS,
    ORGS,
    RUNNING_PEERS,
    PeerCluster,
    SegmentChain,
    User,
    make_cluster,
    person,
    read_sse,
)

from cctvchain.chaincode.cctv.model import AnchorEvent, HistorianRecord
from cctvchain.crypto import Domain
from cctvchain.ledger.block import Block
from cctvchain.ledger.genesis import genesis_config
from cctvchain.peer.channel import ChannelContext
from cctvchain.peer.validator import BlockValidator
from cctvchain.peernode.gateway_client import GatewayRefused, TransactionInvalid
from cctvchain.tx.messages import Envelope, SignedProposal, TransactionPayload

CAMERA = "5859"
OCTET = "application/octet-stream"


@dataclass
class World:
    cluster: PeerCluster
    crm: User
    operator: User
    po: User  # P-77: granted access to the camera (as a user)
    po2: User  # P-78: a police officer without access
    las: User  # L-11: local authority staff, no access
    stranger: User  # enrolled with role PO, never added as a participant
    camera: User
    chain: SegmentChain
    flow_tx: dict[str, str]  # function -> tx id of the flow's transactions

    def anchor(self, peer: str = "peer0.city") -> Any:
        segment = self.chain.next_b64()
        result = self.cluster.submit(self.camera, "AnchorSegment", segment, peer=peer)
        self.chain.accepted(segment)
        return result


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    cluster = make_cluster(tmp_path_factory.mktemp("peers"))
    try:
        for name in ORDERERS:
            cluster.start(name)
        for name in RUNNING_PEERS:
            cluster.start(name)
        for name in RUNNING_PEERS:
            cluster.wait_ready(name)
        city, police, la = (cluster.users[f"admin@{org}"] for org in ORGS)
        users = {
            "crm": cluster.enroll("CityCCTV", "crm", role="CRM"),
            "operator": cluster.enroll("CityCCTV", "operator", role="Operator"),
            "po": cluster.enroll("Police", "po", role="PO"),
            "po2": cluster.enroll("Police", "po2", role="PO"),
            "las": cluster.enroll("LocalAuthority", "las", role="LAS"),
            "stranger": cluster.enroll("CityCCTV", "stranger", role="PO"),
            "camera": cluster.enroll("CityCCTV", f"cam-{CAMERA}", id_type="camera"),
        }
        flow: dict[str, str] = {}

        def step(user: User, function: str, *args: str, peer: str = "peer0.city") -> None:
            result = cluster.submit(user, function, *args, peer=peer)
            assert result.validation_code_name == "VALID"
            flow.setdefault(function, result.tx_id)

        step(city, "AddParticipant", person("3881", "CRM", "crm", "CR-North"))
        step(city, "AddParticipant", person("3690", "Operator", "operator", "CR-North"))
        step(police, "AddParticipant", person("P-77", "PO", "po"), peer="peer0.police")
        step(police, "AddParticipant", person("P-78", "PO", "po2"), peer="peer0.police")
        step(la, "AddParticipant", person("L-11", "LAS", "las"), peer="peer0.la")
        camera = (
            '{"id": "5859", "ipAddress": "10.20.0.7", "location": "Main St", '
            '"model": "Axis P1448-LE", "policy": "normal"}'
        )
        step(users["operator"], "RequestCamera", camera, peer="peer1.city")
        step(users["crm"], "Approve", CAMERA, f"cam-{CAMERA}")
        step(users["crm"], "GrantAccess", CAMERA, "user", "P-77")
        world = World(cluster=cluster, chain=SegmentChain(CAMERA), flow_tx=flow, **users)
        for _ in range(2):
            flow.setdefault("AnchorSegment", world.anchor().tx_id)
        cluster.wait_converged(RUNNING_PEERS)
        yield world
    finally:
        cluster.stop_all()


def refused(call: Any) -> GatewayRefused:
    with pytest.raises(GatewayRefused) as caught:
        call()
    return caught.value


# -- reads as the TLS caller: Algorithm 1 and the ACL decide ------------------------------


def test_camera_data_is_served_only_where_algorithm_1_grants_access(world: World) -> None:
    cluster = world.cluster
    for peer in ("peer0.city", "peer0.la"):
        camera = cluster.get_json(peer, f"/api/v1/cameras/{CAMERA}", world.po)
        assert (camera["id"], camera["status"]) == (CAMERA, "APPROVED")
        access = cluster.get_json(peer, f"/api/v1/cameras/{CAMERA}/access", world.po)
        assert access["decision"] == "granted" and "P-77" in access["reason"]
        anchors = cluster.get_json(peer, f"/api/v1/cameras/{CAMERA}/anchors", world.po)
        assert [a["sequence"] for a in anchors][:2] == [0, 1]
        assert all(isinstance(a["block"], int) and a["txId"] for a in anchors)
        first = cluster.get_json(peer, f"/api/v1/cameras/{CAMERA}/anchors/0", world.po)
        assert first["segmentHash"] == anchors[0]["segmentHash"]
        assert first["txId"] == world.flow_tx["AnchorSegment"]
        head = cluster.get_json(peer, f"/api/v1/cameras/{CAMERA}/anchors/head", world.po)
        assert head["sequence"] >= 1
        history = cluster.get_json(peer, f"/api/v1/history?camera={CAMERA}", world.po)
        kinds = {record["entryType"] for record in history}
        assert {"RequestCamera", "Approve", "GrantAccess", "AnchorSegment"} <= kinds

    # Denied: neither the LAS nor the other officer holds a grant; the stranger is no
    # participant. Each refusal carries the contract's code and Algorithm 1's reason.
    denials = [
        (world.las, f"/api/v1/cameras/{CAMERA}", "neither user L-11 nor role LAS"),
        (world.las, f"/api/v1/cameras/{CAMERA}/anchors", "neither user L-11 nor role LAS"),
        (world.las, f"/api/v1/history?camera={CAMERA}", "neither user L-11 nor role LAS"),
        (world.po2, f"/api/v1/cameras/{CAMERA}/anchors/0", "neither user P-78 nor role PO"),
        (world.stranger, f"/api/v1/cameras/{CAMERA}", "not a registered participant"),
    ]
    for user, path, reason in denials:
        answer = cluster.request("peer1.city", "GET", path, user=user)
        assert (answer.status, answer.code) == (403, "ACCESS_DENIED"), (path, answer.body)
        assert reason in answer.json()["message"]
    check = cluster.get_json("peer0.police", f"/api/v1/cameras/{CAMERA}/access", world.las)
    assert check["decision"] == "denied"
    answer = cluster.request("peer0.city", "GET", "/api/v1/cameras", user=world.stranger)
    assert (answer.status, answer.code) == (403, "NOT_A_PARTICIPANT")
    listed = cluster.get_json("peer0.city", "/api/v1/cameras", world.operator)
    assert [c["id"] for c in listed] == [CAMERA]
    who = cluster.get_json("peer0.city", "/api/v1/whoami", world.po)
    assert who["identity"]["role"] == "PO" and who["participant"]["id"] == "P-77"

    # The same through the gateway with signed queries.
    answer = cluster.evaluate(world.po, "GetCamera", CAMERA, peer="peer0.police")
    assert answer.status == 200 and answer.json()["id"] == CAMERA
    error = refused(lambda: cluster.evaluate(world.las, "GetCamera", CAMERA))
    assert (error.status, error.code) == (403, "ACCESS_DENIED")


def test_a_police_officer_without_access_cannot_submit_for_the_camera(world: World) -> None:
    cluster = world.cluster
    before = cluster.wait_converged(RUNNING_PEERS)
    error = refused(lambda: cluster.submit(world.po2, "GetAnchors", CAMERA, "0", "9" * 15))
    assert (error.status, error.code) == (403, "ACCESS_DENIED")
    assert "neither user P-78 nor role PO holds access" in error.message
    error = refused(lambda: cluster.submit(world.po2, "GrantAccess", CAMERA, "user", "P-78"))
    assert (error.status, error.code) == (403, "ACCESS_DENIED")
    error = refused(lambda: cluster.submit(world.las, "Approve", CAMERA, "cam-x"))
    assert (error.status, error.code) == (403, "ACCESS_DENIED")
    time.sleep(0.5)  # a refused proposal is never ordered: nothing may be committed
    assert cluster.wait_converged(RUNNING_PEERS) == before
    # The granted officer's submission of the same read is endorsed and committed.
    result = cluster.submit(world.po, "GetAnchors", CAMERA, "0", "9" * 15)
    assert result.validation_code_name == "VALID" and len(result.json()) >= 2


# -- the ledger: convergence, blocks, transactions, validation codes -------------------------


def test_every_peer_converges_and_serves_blocks_and_transactions(world: World) -> None:
    cluster = world.cluster
    height, head = cluster.wait_converged(RUNNING_PEERS)
    assert height >= 11
    channel = cluster.get_json("peer0.police", "/api/v1/channel", world.po)
    assert channel["channel_id"] == "cctv" and channel["caught_up"] is True
    assert {o["msp_id"] for o in channel["organizations"]} == set(ORGS)

    tx_id = world.flow_tx["RequestCamera"]
    tx = cluster.get_json("peer0.la", f"/api/v1/transactions/{tx_id}", world.las)
    assert tx["validation_code_name"] == "VALID" and tx["validation_code"] == 0
    assert (tx["contract"], tx["function"]) == ("cctv", "RequestCamera")
    assert tx["creator"] == {"msp_id": "CityCCTV", "name": "operator"}
    assert len(tx["endorsers"]) >= 2
    assert "args" not in tx and "data_b64" not in tx  # camera data: not for every member
    admin_view = cluster.get_json("peer0.la", f"/api/v1/transactions/{tx_id}", cluster.admin)
    assert '"id": "5859"' in admin_view["args"][0]

    block = cluster.get_json("peer0.city", f"/api/v1/blocks/{tx['block']}", world.po)
    assert {"tx_id": tx_id, "validation_code_name": "VALID"}.items() <= next(
        t for t in block["transactions"] if t["tx_id"] == tx_id
    ).items()
    assert block["signers"][0]["msp_id"] in set(ORGS)
    previous = cluster.get_json("peer0.city", f"/api/v1/blocks/{tx['block'] - 1}", world.po)
    assert block["previous_hash"] == previous["hash"]

    # Raw blocks only for peers, orderers and admins; they verify against genesis.
    answer = cluster.request("peer0.city", "GET", "/api/v1/blocks/1?raw=1", user=world.po)
    assert (answer.status, answer.code) == (403, "wrong_identity_type")
    blocks = [
        Block.decode(
            base64.b64decode(
                cluster.get_json("peer1.city", f"/api/v1/blocks/{n}?raw=1", cluster.admin)[
                    "block_b64"
                ]
            )
        )
        for n in range(height)
    ]
    assert blocks[-1].hash().hex() == head
    validator = BlockValidator(ChannelContext.from_config(genesis_config(blocks[0])))
    for number in range(1, height):
        validator.check_block(blocks[number], number, blocks[number - 1].hash(), datetime.now(UTC))


def test_conflicting_transactions_are_committed_with_their_validation_code(world: World) -> None:
    """Two endorsements of the same next segment: both are ordered, the first is VALID,
    the second MVCC_READ_CONFLICT (it read the chain head the first one moved)."""
    cluster = world.cluster
    segment = world.chain.next_b64()

    async def race() -> tuple[Any, Any]:
        async with (
            cluster.gateway("peer0.city", world.camera) as one,
            cluster.gateway("peer0.la", world.camera) as two,
        ):
            first = await one.prepare(world.camera.identity, "cctv", "AnchorSegment", [segment])
            second = await two.prepare(world.camera.identity, "cctv", "AnchorSegment", [segment])
            committed = await one.commit(first)
            with pytest.raises(TransactionInvalid) as invalid:
                await two.commit(second)
            cluster.seen_height = max(cluster.seen_height, one.min_height, two.min_height)
            return committed, invalid.value.result

    committed, conflicted = asyncio.run(race())
    world.chain.accepted(segment)
    assert committed.validation_code_name == "VALID"
    assert conflicted.validation_code_name == "MVCC_READ_CONFLICT"
    assert conflicted.validation_code == 11 and conflicted.block >= committed.block
    for peer in ("peer0.police", "peer1.city"):
        cluster.wait_converged(RUNNING_PEERS)
        tx = cluster.get_json(peer, f"/api/v1/transactions/{conflicted.tx_id}", world.po)
        assert tx["validation_code_name"] == "MVCC_READ_CONFLICT"
        block = cluster.get_json(peer, f"/api/v1/blocks/{conflicted.block}", world.po)
        codes = {t["tx_id"]: t["validation_code_name"] for t in block["transactions"]}
        assert codes[conflicted.tx_id] == "MVCC_READ_CONFLICT"
    anchors = cluster.get_json("peer0.city", f"/api/v1/cameras/{CAMERA}/anchors", world.po)
    assert [a["sequence"] for a in anchors] == list(range(world.chain.sequence))


# -- bad input: precise JSON errors, the node stays up ---------------------------------------


def test_forged_replayed_oversized_and_malformed_requests(world: World) -> None:
    cluster = world.cluster
    peer = "peer1.city"

    def call(method: str, path: str, body: bytes | None = None, ctype: str | None = OCTET) -> Any:
        return cluster.request(peer, method, path, user=world.po, body=body, content_type=ctype)

    def expect(answer: Any, status: int, code: str) -> None:
        assert (answer.status, answer.code) == (status, code), answer.body[:300]
        assert answer.headers["content-type"].startswith("application/json")

    # Malformed, wrongly typed, empty, oversized.
    expect(call("POST", "/api/v1/gateway/endorse", b"\x00garbage"), 400, "malformed_proposal")
    expect(call("POST", "/api/v1/gateway/evaluate", b"{}"), 400, "malformed_proposal")
    expect(call("POST", "/api/v1/gateway/submit", b"\x01\x02"), 400, "malformed_envelope")
    expect(call("POST", "/api/v1/endorse", b"nope"), 400, "malformed_proposal")
    expect(call("POST", "/api/v1/gateway/submit", b""), 400, "empty_body")
    expect(
        call("POST", "/api/v1/gateway/endorse", b"{}", "application/json"),
        415,
        "unsupported_media_type",
    )
    expect(
        call("POST", "/api/v1/gateway/submit", b"x", "text/plain"), 415, "unsupported_media_type"
    )
    expect(call("POST", "/api/v1/gateway/submit", b"\x00" * 300_000), 413, "body_too_large")
    expect(
        call("POST", "/api/v1/gateway/endorse", b"\x00" * (1024 * 1024 + 1)), 413, "body_too_large"
    )

    # Routes, methods, parameters.
    expect(call("GET", "/api/v1/nothing-here"), 404, "not_found")
    expect(call("GET", "/api/v1/gateway/submit"), 405, "method_not_allowed")
    expect(call("GET", f"/api/v1/cameras/{CAMERA}/anchors?from=yesterday"), 400, "bad_query")
    expect(call("GET", f"/api/v1/cameras/{CAMERA}/anchors?frm=1"), 400, "unknown_parameter")
    expect(call("GET", "/api/v1/cameras/%2Fetc%2Fpasswd"), 400, "bad_camera_id")
    expect(call("GET", "/api/v1/blocks/99999999"), 404, "unknown_block")
    expect(call("GET", "/api/v1/transactions/XYZ"), 400, "bad_tx_id")
    expect(call("GET", "/api/v1/transactions/" + "ab" * 32), 404, "unknown_transaction")
    expect(call("GET", "/api/v1/events?from=-1"), 400, "bad_query")
    expect(call("GET", "/api/v1/cameras/nope-0"), 403, "ACCESS_DENIED")

    # Forged: the proposal's signature does not verify (a byte flipped; another's key).
    async def proposals() -> tuple[SignedProposal, SignedProposal]:
        async with cluster.gateway(peer, world.po) as gw:
            good = await gw.proposal(world.po.identity, "cctv", "CheckAccess", [CAMERA])
            other = await gw.proposal(world.po2.identity, "cctv", "CheckAccess", [CAMERA])
        return good, other

    good, other = asyncio.run(proposals())
    flipped = bytearray(good.signature)
    flipped[-1] ^= 0x01
    forged = SignedProposal(good.proposal, bytes(flipped)).encode()
    impostor = SignedProposal(
        good.proposal, world.po2.identity.key.sign(Domain.PROPOSAL, good.proposal)
    ).encode()
    for body in (forged, impostor):
        for path in ("/api/v1/gateway/endorse", "/api/v1/gateway/evaluate"):
            expect(call("POST", path, body), 403, "BAD_CREATOR_SIGNATURE")
    assert other.decoded.tx_id != good.decoded.tx_id

    # Replayed: a committed envelope, and a committed proposal.
    async def committed() -> Any:
        async with cluster.gateway(peer, world.po) as gw:
            prepared = await gw.prepare(world.po.identity, "cctv", "RequestAccess", [CAMERA, "x"])
            await gw.commit(prepared)
            cluster.seen_height = max(cluster.seen_height, gw.min_height)
            return prepared

    prepared = asyncio.run(committed())
    for target in (peer, "peer0.police"):
        answer = cluster.request(
            target,
            "POST",
            "/api/v1/gateway/submit",
            user=world.po,
            body=prepared.envelope.encode(),
            content_type=OCTET,
        )
        expect(answer, 409, "replayed")
    expect(call("POST", "/api/v1/gateway/endorse", prepared.signed.encode()), 409, "DUPLICATE_TXID")

    # Forged envelope (signature flipped): the orderer refuses it, its code passed through.
    # An envelope without endorsements is ordered, and committed as invalid.
    async def unendorsed() -> tuple[Any, Any]:
        async with cluster.gateway(peer, world.po) as gw:
            prepared = await gw.prepare(world.po.identity, "cctv", "RequestAccess", [CAMERA, "y"])
        return prepared, prepared.envelope

    prepared, envelope = asyncio.run(unendorsed())
    signature = bytearray(envelope.signature)
    signature[-1] ^= 0x01
    forged_envelope = Envelope(envelope.payload, bytes(signature)).encode()
    answer = call("POST", "/api/v1/gateway/submit", forged_envelope)
    expect(answer, 403, "forbidden")
    assert "signature" in answer.json()["message"]
    stripped = TransactionPayload.decode(envelope.payload)
    bare = TransactionPayload(stripped.proposal, stripped.response_payload, ()).encode()
    bare_envelope = Envelope(bare, world.po.identity.key.sign(Domain.ENVELOPE, bare)).encode()
    answer = call("POST", "/api/v1/gateway/submit", bare_envelope)
    assert answer.status == 200, answer.body
    status = answer.json()
    assert (status["valid"], status["validation_code_name"]) == (
        False,
        "ENDORSEMENT_POLICY_FAILURE",
    )
    assert status["tx_id"] == prepared.tx_id
    cluster.seen_height = max(cluster.seen_height, status["block"] + 1)
    tx = cluster.get_json(peer, f"/api/v1/transactions/{prepared.tx_id}", world.po)
    assert tx["validation_code_name"] == "ENDORSEMENT_POLICY_FAILURE"
    # It took no effect: the historian has no entry for it.
    expect(call("GET", f"/api/v1/history/{prepared.tx_id}"), 404, "UNKNOWN_TRANSACTION")

    # Still serving.
    assert cluster.alive(peer)
    assert cluster.request(peer, "GET", "/healthz", user=world.po).status == 200
    assert cluster.evaluate(world.po, "CheckAccess", CAMERA, peer=peer).json()["decision"] == (
        "granted"
    )


# -- events and metrics ------------------------------------------------------------------------


def test_event_stream_replays_from_the_ledger_then_follows_commits(world: World) -> None:
    cluster = world.cluster
    height, _ = cluster.wait_converged(RUNNING_PEERS)

    def through(number: int) -> Any:
        return lambda events: any(k == "block" and d["number"] >= number for k, d, _ in events)

    events = read_sse(
        cluster, "peer0.police", "/api/v1/events?from=0", world.po, through(height - 1)
    )
    blocks = [data for kind, data, _ in events if kind == "block"]
    assert [b["number"] for b in blocks] == list(range(len(blocks)))
    assert blocks[0]["transactions"][0]["validation_code_name"] == "VALID"  # genesis config
    contract = [data for kind, data, _ in events if kind == "contract"]
    names = {c["name"] for c in contract}
    assert {"AddParticipant", "RequestCamera", "Approve", "GrantAccess", "AnchorSegment"} <= names
    assert len({c["event_id"] for c in contract}) == len(contract)
    # P-77 sees this camera's events and its own organisation's, nothing else.
    for event in contract:
        if "payload_b64" in event and event["name"] == "AnchorSegment":
            anchored = AnchorEvent.decode(base64.b64decode(event["payload_b64"]))
            assert anchored.camera_id == CAMERA, anchored
        elif "payload_b64" in event:
            record = HistorianRecord.decode(base64.b64decode(event["payload_b64"]))
            assert record.camera_id == CAMERA or record.org == "Police", record
        else:
            assert event["redacted"] is True
    visible = {c["name"] for c in contract if "payload_b64" in c}
    assert "AnchorSegment" in visible and "AddParticipant" in visible  # Police's own
    redacted = [c for c in contract if c.get("redacted")]
    assert redacted  # e.g. CityCCTV adding its staff
    las_events = read_sse(
        cluster, "peer0.la", "/api/v1/events?from=0", world.las, through(height - 1)
    )
    assert not any("payload_b64" in d and d["name"] == "AnchorSegment" for k, d, _ in las_events)

    # Live: a stream opened now receives the next commit, its tx and its contract event.
    received: list[Any] = []

    def listen() -> None:
        def done(events: Any) -> bool:
            return any(k == "contract" and d["name"] == "AccessDecision" for k, d, _ in events)

        received.extend(read_sse(cluster, "peer1.city", "/api/v1/events", world.po, done))

    thread = threading.Thread(target=listen)
    thread.start()
    time.sleep(0.5)
    result = cluster.submit(world.po, "RequestAccess", CAMERA, "investigation 42")
    thread.join(timeout=20)
    block_events = [d for k, d, _ in received if k == "block"]
    assert any(
        t["tx_id"] == result.tx_id and t["validation_code_name"] == "VALID"
        for b in block_events
        for t in b["transactions"]
    )
    live = [d for k, d, _ in received if k == "contract" and d["tx_id"] == result.tx_id]
    assert [e["name"] for e in live] == ["AccessDecision"] and "payload_b64" in live[0]
    last_id = [i for k, d, i in received if i is not None][-1]
    assert int(last_id) == result.block

    # A client reconnecting with Last-Event-ID resumes with the next block.
    resumed = read_sse(
        cluster,
        "peer1.city",
        "/api/v1/events",
        world.po,
        lambda events: any(k == "block" for k, _, _ in events),
        headers={"Last-Event-ID": str(result.block - 1)},
    )
    assert next(d["number"] for k, d, _ in resumed if k == "block") == result.block


def _metrics(cluster: PeerCluster, peer: str, user: User) -> dict[str, float]:
    answer = cluster.request(peer, "GET", "/metrics", user=user)
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/plain")
    values: dict[str, float] = {}
    for line in answer.body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_report_height_codes_latencies_and_raft(world: World) -> None:
    cluster = world.cluster
    height, _ = cluster.wait_converged(RUNNING_PEERS)
    values = _metrics(cluster, "peer0.city", world.po)
    assert values["cctvchain_ledger_height"] == height
    assert values["cctvchain_caught_up"] == 1
    valid = values['cctvchain_committed_transactions_total{code="VALID"}']
    assert valid >= 11
    assert values["cctvchain_blocks_committed_total"] >= height - 1 - 0  # all since genesis
    assert values["cctvchain_endorsement_seconds_count"] >= 5
    assert 0 < values["cctvchain_endorsement_seconds_sum"] < 60
    assert (
        values['cctvchain_endorsement_seconds_bucket{le="+Inf"}']
        == values["cctvchain_endorsement_seconds_count"]
    )
    assert values["cctvchain_commit_seconds_count"] == values["cctvchain_blocks_committed_total"]
    assert values["cctvchain_gateway_submit_seconds_count"] >= 1
    assert values["cctvchain_blocks_rejected_total"] == 0
    assert values["cctvchain_raft_term"] >= 1
    leaders = [n for n, v in values.items() if n.startswith("cctvchain_raft_leader") and v == 1]
    assert len(leaders) == 1
    leader = re.fullmatch(r'cctvchain_raft_leader\{name="(.+)"\}', leaders[0])
    assert leader is not None and leader.group(1) in ORDERERS
    for name in ORDERERS:
        assert values[f'cctvchain_orderer_up{{name="{name}"}}'] == 1
    # Invalid transactions are counted under their own code.
    mvcc = 'cctvchain_committed_transactions_total{code="MVCC_READ_CONFLICT"}'
    assert values.get(mvcc, 0) in (0, 1)


# -- faults: endorsement fail-over, restart catch-up, orderer fail-over, late join -----------


def test_endorsement_fails_over_and_a_killed_peer_catches_up_on_restart(world: World) -> None:
    cluster = world.cluster
    try:
        cluster.kill("peer0.police")  # SIGKILL: no goodbye
        cluster.kill("peer0.la")
        # Only CityCCTV's peers are up: OutOf(2, ...) over organisations cannot be met.
        error = refused(lambda: cluster.submit(world.po, "RequestAccess", CAMERA, "all down"))
        assert (error.status, error.code) == (503, "endorsement_unavailable")
        assert "peer0.police is unreachable" in error.message
        assert "peer0.la is unreachable" in error.message
        cluster.start("peer0.la")
        cluster.wait_ready("peer0.la")
        results = [world.anchor(peer) for peer in ("peer0.city", "peer0.la", "peer1.city")]
        for result in results:
            assert result.validation_code_name == "VALID"
            assert not any(e.startswith("Police/") for e in result.endorsers), result.endorsers
            assert len({e.split("/")[0] for e in result.endorsers}) >= 2
        result = cluster.submit(
            world.po, "RequestAccess", CAMERA, "while police is down", peer="peer0.la"
        )
        assert result.validation_code_name == "VALID"
        height, _ = cluster.wait_converged(("peer0.city", "peer1.city", "peer0.la"))
    finally:
        for name in ("peer0.la", "peer0.police"):
            if not cluster.alive(name):
                cluster.start(name)
    cluster.wait_ready("peer0.la")
    cluster.wait_ready("peer0.police")
    assert cluster.wait_converged(RUNNING_PEERS)[0] >= height
    tx = cluster.get_json("peer0.police", f"/api/v1/transactions/{results[-1].tx_id}", world.po)
    assert tx["validation_code_name"] == "VALID"
    # Its gateway works again and its endorsements count.
    again = cluster.submit(world.po, "RequestAccess", CAMERA, "back", peer="peer0.police")
    assert "Police/peer0.police" in again.endorsers
    assert "caught up with the ordering service" in cluster.log("peer0.police")


def test_peer_fails_over_to_another_orderer(world: World) -> None:
    cluster = world.cluster
    # peer0.city pulls from its own organisation's orderer first: kill that one.
    cluster.kill("orderer0.city")
    try:
        for peer in ("peer0.city", "peer1.city"):
            result = world.anchor(peer)
            assert result.validation_code_name == "VALID"
        height, _ = cluster.wait_converged(RUNNING_PEERS, timeout=40)
        assert height >= result.block + 1
    finally:
        cluster.start("orderer0.city")
    log = cluster.log("peer0.city")
    assert re.search(r"deliver from orderer0\.city stopped at height \d+ .*; trying", log)
    values = _metrics(cluster, "peer0.city", world.po)
    assert values["cctvchain_deliver_failovers_total"] >= 1
    # The restarted orderer catches up; the cluster keeps committing.
    result = world.anchor("peer0.city")
    assert result.validation_code_name == "VALID"
    cluster.wait_converged(RUNNING_PEERS)


def test_a_fresh_peer_joins_from_the_genesis_block(world: World) -> None:
    """peer2.city starts with an empty node directory after at least 30 blocks."""
    cluster = world.cluster
    while cluster.height("peer0.city") < 31:
        world.anchor()
    height, head = cluster.wait_converged(RUNNING_PEERS)
    node_dir = cluster.material.node_dirs["peer2.city"]
    assert not (node_dir / "ledger").exists()
    started = time.monotonic()
    cluster.start("peer2.city")
    try:
        cluster.wait_ready("peer2.city")  # ready = caught up with the ordering service
        joined_after = time.monotonic() - started
        assert cluster.height("peer2.city") >= height
        assert "created the ledger" in cluster.log("peer2.city")
        assert (
            cluster.get_json("peer2.city", "/api/v1/blocks/0", world.po)["hash"]
            == (cluster.get_json("peer0.city", "/api/v1/blocks/0", world.po)["hash"])
        )
        # State was rebuilt from the blocks: reads and the gateway work on it.
        anchors = cluster.get_json("peer2.city", f"/api/v1/cameras/{CAMERA}/anchors", world.po)
        assert len(anchors) == world.chain.sequence
        result = world.anchor("peer2.city")
        assert result.validation_code_name == "VALID"
        final = cluster.wait_converged((*RUNNING_PEERS, "peer2.city"))
        assert final[0] > height and final[1] != head
        assert joined_after < 60

        # SIGTERM with an event stream open: the stream is ended, the node stops at once
        # (not after the 10 s grace for requests in flight).
        streamed: list[Any] = []
        reader = threading.Thread(
            target=lambda: streamed.extend(
                _read_until_closed(cluster, "peer2.city", world.po, "/api/v1/events?from=0")
            )
        )
        reader.start()
        time.sleep(0.5)
        stopping = time.monotonic()
        cluster.kill("peer2.city", signal.SIGTERM)
        stopped_after = time.monotonic() - stopping
        reader.join(timeout=10)
        assert cluster.processes["peer2.city"].returncode == 0
        assert stopped_after < 5, stopped_after
        assert "stopped" in cluster.log("peer2.city").splitlines()[-1]
        assert any(line.startswith("event: block") for line in streamed)
    finally:
        if cluster.alive("peer2.city"):
            cluster.kill("peer2.city", signal.SIGTERM)


def _read_until_closed(cluster: PeerCluster, peer: str, user: User, path: str) -> list[str]:
    import http.client

    connection = http.client.HTTPSConnection(
        "127.0.0.1", cluster.ports[peer], context=user.ssl_context, timeout=15
    )
    lines: list[str] = []
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        while line := response.readline():
            lines.append(line.decode())
    except OSError:
        pass
    finally:
        connection.close()
    return lines


def test_a_hung_orderer_is_left_for_one_that_delivers(world: World) -> None:
    """SIGSTOP the orderer a peer pulls from (its TCP connection stays open, silent): the
    peer notices it is behind the other orderers and fails over."""
    cluster = world.cluster
    cluster.wait_converged(RUNNING_PEERS)
    leader = cluster.request("orderer1.police", "GET", "/status", user=cluster.admin).json()[
        "leader"
    ]
    sources = {
        peer: cluster.get_json(peer, "/api/v1/channel", cluster.admin)["deliver_from"]
        for peer in RUNNING_PEERS
    }
    victim, hung = next((p, s) for p, s in sources.items() if s not in (None, leader))
    # Submit through the peer of the leader's organisation: it broadcasts to the leader.
    submitter = {"orderer0.city": "peer0.city", "orderer1.police": "peer0.police"}.get(
        leader, "peer0.la"
    )
    cluster.processes[hung].send_signal(signal.SIGSTOP)
    try:
        for _ in range(3):
            world.anchor(submitter)
        height, _ = cluster.wait_converged(RUNNING_PEERS, timeout=30)
        now_from = cluster.get_json(victim, "/api/v1/channel", cluster.admin)["deliver_from"]
        assert now_from not in (None, hung)
    finally:
        cluster.processes[hung].send_signal(signal.SIGCONT)
    assert re.search(
        rf"deliver from {re.escape(hung)} stopped at height \d+ \(silent for [\d.]+ s while "
        r"other orderers are ahead\)",
        cluster.log(victim),
    )
    assert height > 0
