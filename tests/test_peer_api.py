"""The peer node in-process: its routes against the OpenAPI document, what it does with
blocks it must refuse, how it refuses to start, and its small pure helpers.

The orderers here are small HTTPS servers with the real orderers' TLS and signing keys
that serve chosen blocks: one with a broken hash chain, one signed by an identity that
is no orderer, one honest. The peer must commit only the honest block.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from node_helpers import free_ports

from cctvchain.ledger.block import Block, make_block, sign_block
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp.wallet import Wallet
from cctvchain.network.acl_rules import DEFAULT_ACL
from cctvchain.network.config import load_network_config
from cctvchain.network.material import NetworkMaterial, ensure_material
from cctvchain.node import tls
from cctvchain.node.runtime import NodeContext, NodeStartError, load_context
from cctvchain.peer.events import BlockEvent
from cctvchain.peernode.api import openapi_document
from cctvchain.peernode.core import PeerCore, stored_block_event
from cctvchain.peernode.metrics import Histogram, OrdererView, PeerMetrics
from cctvchain.peernode.service import build_app
from cctvchain.peernode.wire import FRAME, parse_payload, refusal_code, refusal_error
from cctvchain.tx.messages import Response

ORDERERS = ("o0.a", "o1.b", "o2.a")


def small_toml(ports: dict[str, int]) -> str:
    return f"""
[network]
name = "peer-unit"
channel = "cams"
nodes_dir = "nodes"
acl = "{DEFAULT_ACL}"

[batch]
batch_timeout_ms = 100

[policies]
Readers = "OR('A.member', 'B.member')"
Writers = "OR('A.member', 'B.member')"
Admins = "AND('A.admin', 'B.admin')"
BlockValidation = "OR('A.orderer', 'B.orderer')"

[endorsement]
cctv = "OR('A.peer', 'B.peer')"

[[organizations]]
name = "A"
msp_id = "A"
ca = {{ name = "ca.a", host = "127.0.0.1", port = {ports["ca.a"]} }}

[[organizations]]
name = "B"
msp_id = "B"
ca = {{ name = "ca.b", host = "127.0.0.1", port = {ports["ca.b"]} }}

[[orderers]]
name = "o0.a"
org = "A"
host = "127.0.0.1"
port = {ports["o0.a"]}

[[orderers]]
name = "o1.b"
org = "B"
host = "127.0.0.1"
port = {ports["o1.b"]}

[[orderers]]
name = "o2.a"
org = "A"
host = "127.0.0.1"
port = {ports["o2.a"]}

[[peers]]
name = "p0.a"
org = "A"
host = "127.0.0.1"
port = {ports["p0.a"]}
"""


@dataclass
class Network:
    directory: Path
    config_path: Path
    material: NetworkMaterial
    ports: dict[str, int]

    def context(self, log: logging.Logger | None = None) -> NodeContext:
        return load_context(self.config_path, "p0.a", log=log)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    directory = tmp_path_factory.mktemp("peer-unit")
    names = ["ca.a", "ca.b", *ORDERERS, "p0.a"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    config_path = directory / "network.toml"
    config_path.write_text(small_toml(ports))
    material = ensure_material(load_network_config(config_path), datetime.now(UTC))
    return Network(directory, config_path, material, ports)


@pytest.fixture
def fresh_ledger(network: Network) -> Iterator[Path]:
    ledger = network.material.node_dirs["p0.a"] / "ledger"
    shutil.rmtree(ledger, ignore_errors=True)
    yield ledger
    shutil.rmtree(ledger, ignore_errors=True)


# -- the OpenAPI document describes exactly the routes the node serves -----------------------


def documented_operations(text: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation under ``paths:`` (a YAML block mapping: paths
    at two spaces of indentation, their methods at four)."""
    operations: set[tuple[str, str]] = set()
    in_paths, path = False, ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            in_paths = line.startswith("paths:")
            continue
        if not in_paths:
            continue
        if match := re.fullmatch(r"  (/\S*):\s*", line):
            path = match.group(1)
        elif match := re.fullmatch(r"    (get|post|put|delete|patch|head|options):\s*", line):
            operations.add((match.group(1).upper(), path))
    return operations


def test_every_route_is_documented_and_every_documented_route_exists(
    network: Network, fresh_ledger: Path
) -> None:
    core = PeerCore(network.context())
    try:
        app = build_app(core)
        served = {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.method != "HEAD" and route.resource is not None
        }
    finally:
        core.ledger.close()
    document = openapi_document().decode()
    documented = documented_operations(document)
    assert served == documented, (
        f"undocumented: {sorted(served - documented)}; not served: {sorted(documented - served)}"
    )
    assert len(served) >= 20
    assert document.startswith("openapi: 3.1.0")
    # Every operation documents its answers; every error answer is a shared response
    # whose body is the one error schema {code, message}.
    assert document.count("      responses:") == len(documented)
    errors = set(re.findall(r'"[45]\d\d": \{\$ref: "#/components/responses/(\w+)"\}', document))
    assert {"BadRequest", "Forbidden", "NotFound", "Conflict", "TooLarge"} <= errors
    for name in errors:
        section = re.search(rf"\n    {name}:\n((?:      .*\n)+)", document)
        assert section is not None, name
        assert '$ref: "#/components/schemas/Error"' in section.group(1), name
    assert not re.search(r'"[45]\d\d":\s*\n\s+description', document)  # no inline errors
    assert re.search(r"Error:\n\s+type: object\n\s+required: \[code, message\]", document)


def test_openapi_parser_sees_methods_of_each_path() -> None:
    text = "openapi: 3.1.0\npaths:\n  /a:\n    get:\n      x: 1\n    post:\n  /b/{c}:\n    get:\n"
    text += "components:\n  x:\n    get:\n"
    assert documented_operations(text) == {("GET", "/a"), ("POST", "/a"), ("GET", "/b/{c}")}


# -- blocks the peer must refuse ---------------------------------------------------------------


class FakeOrderer:
    """An HTTPS server with an orderer's TLS certificate serving fixed blocks."""

    def __init__(self, network: Network, name: str, blocks: list[Block], height: int) -> None:
        self.network = network
        self.name = name
        self.blocks = blocks
        self.height = height
        self.deliveries = 0
        self.runner: web.AppRunner | None = None

    async def deliver(self, request: web.Request) -> web.StreamResponse:
        self.deliveries += 1
        start = int(request.query.get("from", "0"))
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for block in self.blocks:
            if block.number >= start:
                data = block.encode()
                await response.write(FRAME.pack(len(data)) + data)
        await response.write_eof()
        return response

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"term": 3, "leader": "o1.b", "height": self.height, "role": "follower"}
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/deliver", self.deliver)
        app.router.add_get("/status", self.status)
        wallet = Wallet(self.network.material.node_wallet(self.name))
        context = tls.node_server_context(wallet, self.network.material.channel_config())
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, "127.0.0.1", self.network.ports[self.name], ssl_context=context
        )
        await site.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def signed_by(network: Network, block: Block, wallet: Path) -> Block:
    identity = Wallet(wallet).load()
    signature = sign_block(block.header, identity.signing_key, identity.msp_id, identity.cert_pem)
    return block.with_signatures([signature])


@pytest.fixture
async def orderers_serving_forgeries(
    network: Network, fresh_ledger: Path
) -> AsyncIterator[tuple[list[FakeOrderer], Block]]:
    genesis = network.material.genesis_block()
    garbage = b"not a transaction"
    honest = make_block(1, genesis.hash(), [garbage])
    material = network.material
    broken_chain = signed_by(
        network, make_block(1, b"\x07" * 32, [garbage]), material.node_wallet("o0.a")
    )
    not_an_orderer = signed_by(network, honest, material.admin_wallets["A"])
    good = signed_by(network, honest, material.node_wallet("o2.a"))
    # The peer (of A) starts with A's first orderer; then o1.b, then o2.a.
    fakes = [
        FakeOrderer(network, "o0.a", [broken_chain], 2),
        FakeOrderer(network, "o1.b", [not_an_orderer], 2),
        FakeOrderer(network, "o2.a", [good], 2),
    ]
    for fake in fakes:
        await fake.start()
    try:
        yield fakes, good
    finally:
        for fake in fakes:
            await fake.stop()


async def test_blocks_failing_the_hash_chain_or_orderer_signature_are_never_committed(
    network: Network,
    orderers_serving_forgeries: tuple[list[FakeOrderer], Block],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fakes, good = orderers_serving_forgeries
    log = logging.getLogger("cctvchain.test.peer")
    core = PeerCore(network.context(log))
    seen: list[BlockEvent] = []
    core.hub.subscribe(seen.append)
    with caplog.at_level(logging.INFO, logger="cctvchain.test.peer"):
        await core.start()
        try:
            for _ in range(200):
                if core.ledger.height >= 2 and core.caught_up:
                    break
                await asyncio.sleep(0.05)
        finally:
            await core.shutdown()
            height, head = core.ledger.height, core.ledger.head_hash
            rejected = core.metrics.blocks_rejected
            await core.cleanup()
    assert height == 2 and head == good.with_flags([TxValidationCode.BAD_PAYLOAD]).hash()
    assert [event.number for event in seen] == [1]
    assert seen[0].transactions[0].code == TxValidationCode.BAD_PAYLOAD
    assert rejected >= 2
    assert all(fake.deliveries >= 1 for fake in fakes)
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert re.search(
        r"deliver from o0\.a: it delivered a block this peer refuses: block 1 refused: .*"
        r"previous hash 0707.* does not match the hash of block 0",
        messages,
    )
    assert re.search(r"deliver from o1\.b: .*block 1 refused: no valid orderer signature", messages)
    assert "caught up with the ordering service at height 2" in messages


# -- refusing to start -------------------------------------------------------------------------


def test_a_second_peer_on_the_same_ledger_and_a_foreign_ledger_are_refused(
    network: Network, fresh_ledger: Path, tmp_path: Path
) -> None:
    core = PeerCore(network.context())
    try:
        with pytest.raises(NodeStartError, match="in use by another process"):
            PeerCore(network.context())
    finally:
        core.ledger.close()
    # A ledger made from another network's genesis block is not adopted.
    other_ports = dict.fromkeys(["ca.a", "ca.b", *ORDERERS, "p0.a"], 0)
    other_ports.update(zip(other_ports, free_ports(len(other_ports)), strict=True))
    other_path = tmp_path / "other.toml"
    other_path.write_text(small_toml(other_ports))
    other = ensure_material(load_network_config(other_path), datetime.now(UTC))
    foreign = fresh_ledger.parent / "foreign-genesis"
    saved = network.material.genesis.read_bytes()
    shutil.copy(other.genesis, foreign)
    try:
        network.material.genesis.write_bytes(foreign.read_bytes())
        with pytest.raises(NodeStartError, match="made from another genesis block"):
            # The ledger exists (made above from this network's genesis block).
            PeerCore(network.context())
    finally:
        network.material.genesis.write_bytes(saved)
        foreign.unlink()


def test_missing_material_is_a_one_line_start_error(network: Network, tmp_path: Path) -> None:
    toml = network.config_path.read_text().replace('nodes_dir = "nodes"', 'nodes_dir = "empty"')
    path = tmp_path / "network.toml"
    path.write_text(toml)
    with pytest.raises(NodeStartError, match=r"p0\.a: wallet .* does not exist; create"):
        PeerCore(load_context(path, "p0.a"))


# -- helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "status", "code"),
    [
        ("ACCESS_DENIED: access to camera 1 denied: ...", 403, "ACCESS_DENIED"),
        ("BAD_CREATOR_SIGNATURE: signature does not verify", 403, "BAD_CREATOR_SIGNATURE"),
        ("DUPLICATE_TXID: ab is already on the ledger", 409, "DUPLICATE_TXID"),
        ("creator refused (certificate_revoked): revoked", 403, "certificate_revoked"),
        ("malformed proposal: truncated", 400, "malformed_proposal"),
        ("proposal timestamp is more than 300 s from the endorser's clock", 400, "bad_timestamp"),
        ("this peer is not on channel 'x'", 404, "unknown_channel"),
        ("contract 'y' is not deployed", 404, "unknown_contract"),
        ("contract 'cctv' has no function 'Nope'", 404, "unknown_function"),
        ("Put: wrong arguments (missing a required argument)", 400, "bad_arguments"),
        ("x of A does not satisfy the channel's Writers policy", 403, "not_a_writer"),
        ("something else", 409, "conflict"),
        ("Boom failed: KeyError: 'k'", 500, "contract_error"),
    ],
)
def test_refusals_get_stable_codes(message: str, status: int, code: str) -> None:
    response = Response(status, message, b"")
    assert refusal_code(response) == code
    error = refusal_error(response)
    assert (error.http_status, error.code) == (status, code)
    assert not error.message.startswith(f"{code}: ")  # the code is not repeated


def test_payloads_parse_as_json_only_when_they_are() -> None:
    assert parse_payload(b'{"a": 1}') == {"a": 1}
    assert parse_payload(b"[1]") == [1]
    assert parse_payload(b"revoked") is None
    assert parse_payload(b"") is None
    assert parse_payload(b"{broken") is None


def test_metrics_exposition_format() -> None:
    metrics = PeerMetrics()
    metrics.committed(["VALID", "VALID", "MVCC_READ_CONFLICT"])
    metrics.endorsement_seconds.observe(0.003)
    metrics.endorsement_seconds.observe(7.0)
    text = metrics.render(
        height=5,
        orderers=[OrdererView("o0", True, 4, "o1", 5), OrdererView("o1", True, 4, "o1", 5)],
        event_streams=2,
        caught_up=True,
    )
    lines = text.splitlines()
    assert "cctvchain_ledger_height 5" in lines
    assert 'cctvchain_committed_transactions_total{code="VALID"} 2' in lines
    assert 'cctvchain_committed_transactions_total{code="MVCC_READ_CONFLICT"} 1' in lines
    assert 'cctvchain_endorsement_seconds_bucket{le="0.005"} 1' in lines
    assert 'cctvchain_endorsement_seconds_bucket{le="5"} 1' in lines
    assert 'cctvchain_endorsement_seconds_bucket{le="+Inf"} 2' in lines
    assert "cctvchain_endorsement_seconds_count 2" in lines
    assert 'cctvchain_raft_leader{name="o1"} 1' in lines
    assert 'cctvchain_raft_leader{name="o0"} 0' in lines
    assert "cctvchain_raft_term 4" in lines
    # Every sample belongs to a declared metric family.
    families = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    for line in lines:
        if not line.startswith("#"):
            name = re.split(r"[{ ]", line)[0]
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in families or base in families, line


def test_histogram_buckets_are_cumulative() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.5, 0.5, 3.0):
        histogram.observe(value)
    assert histogram.lines("h") == [
        'h_bucket{le="0.1"} 1',
        'h_bucket{le="1"} 3',
        'h_bucket{le="+Inf"} 4',
        "h_sum 4.05",
        "h_count 4",
    ]


def test_stored_block_events_carry_codes_and_ids(network: Network) -> None:
    genesis = network.material.genesis_block()
    event = stored_block_event(genesis)
    assert event.number == 0 and event.block_hash == genesis.hash()
    [tx] = event.transactions
    assert tx.code == TxValidationCode.VALID and tx.tx_id is not None
    garbage = make_block(1, genesis.hash(), [b"junk"], tx_flags=[TxValidationCode.BAD_PAYLOAD])
    [junk] = stored_block_event(garbage).transactions
    assert (junk.tx_id, junk.code_name) == (None, "BAD_PAYLOAD")
