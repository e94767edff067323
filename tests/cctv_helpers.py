"""Test support for the CCTV contract tests (not a test module).

Everything runs through the real in-process network: certificates from the
organisations' CAs, endorsement by real peers, ordering by the orderer, validation and
commit on every peer's LevelDB ledger. Nothing is mocked.

* :func:`build_world` sets up the standard cast: three organisations, a NetworkAdmin
  each, control room staff of two control rooms (CR-North, CR-South) in CityCCTV, a
  police officer and a police control room operator, a member of local-authority staff,
  an enrolled client that is no participant and one whose certificate role disagrees
  with its registration.
* :func:`invoke` submits and waits for commit (asserting ``VALID``) and returns the
  contract's answer; :func:`refuse` proves that a request is refused by the endorsers with
  a given code, both as a query and as a submission, and that nothing reached the ledger.
* Segment builders for anchors, and configuration updates signed by org admins.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from cctvchain.chaincode.cctv import CctvContract
from cctvchain.chaincode.cctv.model import SamplingPolicy, Segment
from cctvchain.client.transaction import ClientIdentity, EndorsementError, assemble_envelope
from cctvchain.crypto import sha256
from cctvchain.inprocess.network import InProcessNetwork
from cctvchain.ledger.block import Block, make_block, sign_block
from cctvchain.ledger.config import AclRule, ChannelConfig
from cctvchain.ledger.genesis import ConfigTransaction, sign_config
from cctvchain.ledger.records import VersionedValue
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp.testing import InMemoryOrg
from cctvchain.network.acl_rules import load_acl_rules
from cctvchain.peer.events import BlockEvent, TxEvent
from cctvchain.tx.messages import Envelope, Response

CONTRACT = "cctv"
ACL_RULES: tuple[AclRule, ...] = load_acl_rules()
NORMAL = SamplingPolicy("normal", 1)
HIGH = SamplingPolicy("high", 5)
ZERO_HASH = bytes(32)
SEGMENT_MS = 10_000

CITY, POLICE, LA = "CityCCTV", "Police", "LocalAuthority"
NORTH, SOUTH = "CR-North", "CR-South"


# -- the network ---------------------------------------------------------------------------


def new_network(root: Path, acl_rules: Sequence[AclRule] = ACL_RULES) -> InProcessNetwork:
    return InProcessNetwork(root, {CONTRACT: CctvContract()}, acl_rules=tuple(acl_rules))


def as_json(response: Response) -> Any:
    return json.loads(response.payload) if response.payload else None


def call(net: InProcessNetwork, client: ClientIdentity, function: str, *args: str) -> Response:
    """A query: simulated and answered by a real endorsing peer, never ordered."""
    return net.evaluate(client, CONTRACT, function, list(args))


def query(net: InProcessNetwork, client: ClientIdentity, function: str, *args: str) -> Any:
    response = call(net, client, function, *args)
    assert response.status == 200, response.message
    return as_json(response)


@dataclass(frozen=True)
class Committed:
    event: TxEvent
    result: Any  # the contract's answer (JSON), as the endorsers returned it
    raw: bytes  # the answer's bytes (a function returning text answers with the text)
    block_event: BlockEvent


def invoke(net: InProcessNetwork, client: ClientIdentity, function: str, *args: str) -> Committed:
    """Propose, endorse (one peer per org), order, commit; assert ``VALID``."""
    signed = net.propose(client, CONTRACT, function, list(args))
    responses = net.endorse(signed)
    envelope = assemble_envelope(client, signed, responses)
    net.broadcast(envelope.encode())
    net.cut()
    for block_event in net.deliver():
        event = block_event.tx(envelope.tx_id)
        if event is not None:
            assert event.code == TxValidationCode.VALID, (function, event.code_name, event.reason)
            payload = responses[0].response.payload
            if payload[:1] in (b"{", b"["):
                return Committed(event, as_json(responses[0].response), payload, block_event)
            return Committed(event, None, payload, block_event)
    raise AssertionError(f"{function}: transaction {envelope.tx_id} was not committed")


def fingerprint(net: InProcessNetwork) -> tuple[object, ...]:
    """What a refused request must leave untouched: every ledger's height and head, and
    the world state."""
    return (
        net.orderer_ledger.height,
        tuple(peer.ledger.height for peer in net.peers),
        net.head_hashes(),
        state(net),
    )


def state(net: InProcessNetwork) -> dict[tuple[str, str], VersionedValue]:
    return net.peers[0].ledger.dump_state()


def refuse(
    net: InProcessNetwork,
    client: ClientIdentity,
    function: str,
    *args: str,
    code: str,
    status: int | None = None,
) -> str:
    """``function(*args)`` by ``client`` is refused by the endorsers with ``code``: as a
    query (the response names the code first) and as a submission (``EndorsementError``,
    nothing broadcast); the ledgers are untouched. Returns the refusal message."""
    before = fingerprint(net)
    response = call(net, client, function, *args)
    assert 400 <= response.status < 500, (response.status, response.message)
    assert response.message.startswith(f"{code}: "), response.message
    if status is not None:
        assert response.status == status, response.message
    assert response.payload == b""
    with pytest.raises(EndorsementError) as refused:
        net.submit(client, CONTRACT, function, list(args))
    assert f"{response.status} {code}: " in str(refused.value)
    assert fingerprint(net) == before
    return response.message


# -- the cast ------------------------------------------------------------------------------


def person(
    pid: str, role: str, identity: str, control_room: str = "", **extra: Any
) -> dict[str, Any]:
    return {
        "id": pid,
        "personId": f"person-{pid}",
        "name": f"name of {pid}",
        "department": "South block",
        "age": 30,
        "gender": "female",
        "role": role,
        "identity": identity,
        "controlRoom": control_room,
        **extra,
    }


@dataclass
class World:
    net: InProcessNetwork
    city_admin: ClientIdentity
    police_admin: ClientIdentity
    la_admin: ClientIdentity
    crm_n: ClientIdentity  # participant 3881, CRM of CR-North (Figure 10's approver)
    crs_n: ClientIdentity  # participant 0454, CRS of CR-North (Figure 9b)
    op_n: ClientIdentity  # participant 3690, Operator of CR-North (Figure 9a)
    crm_s: ClientIdentity  # S-CRM, CR-South
    crs_s: ClientIdentity  # S-CRS, CR-South
    op_s: ClientIdentity  # S-OP, CR-South
    po: ClientIdentity  # P-77, police officer
    pcro: ClientIdentity  # P-88, police control room operator
    las: ClientIdentity  # L-11, local authority staff
    stranger: ClientIdentity  # enrolled at CityCCTV, no participant
    mismatch: ClientIdentity  # certificate role LAS, registered as PO (M-1)

    @property
    def city(self) -> InMemoryOrg:
        return self.net.orgs[CITY]

    def camera_identity(self, name: str, org: str = CITY) -> ClientIdentity:
        return self.net.client(org, name, "camera")

    def request_camera(
        self, camera_id: str, operator: ClientIdentity | None = None, **fields: Any
    ) -> Committed:
        data = {
            "id": camera_id,
            "ipAddress": "10.0.0.7",
            "location": "Main St",
            "model": "Axis P1375",
            **fields,
        }
        return invoke(self.net, operator or self.op_n, "RequestCamera", json.dumps(data))

    def approved_camera(
        self,
        camera_id: str,
        *,
        operator: ClientIdentity | None = None,
        approver: ClientIdentity | None = None,
        **fields: Any,
    ) -> ClientIdentity:
        """Request, approve and bind a freshly enrolled camera identity; return it."""
        self.request_camera(camera_id, operator, **fields)
        identity = self.camera_identity(f"cam-{camera_id}")
        invoke(self.net, approver or self.crm_n, "Approve", camera_id, identity.name)
        return identity


def build_world(root: Path, acl_rules: Sequence[AclRule] = ACL_RULES) -> World:
    net = new_network(root, acl_rules)
    city_admin = net.client(CITY, "netadmin", "admin")
    police_admin = net.client(POLICE, "poladmin", "admin")
    la_admin = net.client(LA, "laadmin", "admin")
    staff = [
        ("crm_n", CITY, person("3881", "CRM", "crm-n", NORTH)),
        ("crs_n", CITY, person("0454", "CRS", "crs-n", NORTH)),
        ("op_n", CITY, person("3690", "Operator", "op-n", NORTH)),
        ("crm_s", CITY, person("S-CRM", "CRM", "crm-s", SOUTH)),
        ("crs_s", CITY, person("S-CRS", "CRS", "crs-s", SOUTH)),
        ("op_s", CITY, person("S-OP", "Operator", "op-s", SOUTH)),
        ("po", POLICE, person("P-77", "PO", "po1")),
        ("pcro", POLICE, person("P-88", "PCRO", "pcro1")),
        ("las", LA, person("L-11", "LAS", "las1")),
    ]
    admins = {CITY: city_admin, POLICE: police_admin, LA: la_admin}
    clients: dict[str, ClientIdentity] = {}
    for key, org, data in staff:
        clients[key] = net.client(org, data["identity"], role=data["role"])
        invoke(net, admins[org], "AddParticipant", json.dumps(data))
    mismatch = net.client(CITY, "mismatch1", role="LAS")
    invoke(net, city_admin, "AddParticipant", json.dumps(person("M-1", "PO", "mismatch1")))
    return World(
        net=net,
        city_admin=city_admin,
        police_admin=police_admin,
        la_admin=la_admin,
        stranger=net.client(CITY, "stranger", role="PO"),
        mismatch=mismatch,
        **clients,
    )


# -- segments ------------------------------------------------------------------------------


def make_segment(
    camera_id: str,
    sequence: int,
    start_ms: int,
    end_ms: int | None = None,
    previous: bytes = ZERO_HASH,
    *,
    frames: int = 250,
    policy: SamplingPolicy = NORMAL,
    merkle_root: bytes | None = None,
) -> Segment:
    end = start_ms + SEGMENT_MS if end_ms is None else end_ms
    root = merkle_root if merkle_root is not None else sha256(f"{camera_id}/{sequence}".encode())
    return Segment(camera_id, sequence, start_ms, end, frames, root, previous, policy)


def b64(segment: Segment) -> str:
    return base64.b64encode(segment.encode()).decode("ascii")


class Chain:
    """A camera's segments, each linked to the previous one's hash."""

    def __init__(self, camera_id: str, start_ms: int) -> None:
        self.camera_id = camera_id
        self.next_start = start_ms
        self.sequence = 0
        self.previous = ZERO_HASH
        self.anchored: list[Segment] = []

    def next(self, **options: Any) -> Segment:
        """The segment that continues the chain (``options`` may override any part)."""
        options.setdefault("previous", self.previous)
        return make_segment(self.camera_id, self.sequence, self.next_start, **options)

    def accept(self, segment: Segment) -> None:
        self.anchored.append(segment)
        self.sequence = segment.sequence + 1
        self.previous = segment.hash()
        self.next_start = segment.capture_end_ms


# -- configuration updates ----------------------------------------------------------------


def current_config(net: InProcessNetwork) -> ChannelConfig:
    return net.peers[0].ledger.channel_config()


def majority(net: InProcessNetwork) -> list[InMemoryOrg]:
    orgs = list(net.orgs.values())
    return orgs[: len(orgs) // 2 + 1]


def config_tx(
    net: InProcessNetwork, signers: Sequence[InMemoryOrg], **changes: Any
) -> ConfigTransaction:
    """The next configuration (sequence + 1) with ``changes``, signed by the admins of
    ``signers`` as each organisation would sign it."""
    current = current_config(net)
    new = replace(current, sequence=current.sequence + 1, **changes)
    signatures = tuple(
        sign_config(new, org.admin.key, org.msp_id, org.admin.cert_pem) for org in signers
    )
    return ConfigTransaction(new, signatures)


def commit_config(net: InProcessNetwork, tx: ConfigTransaction) -> BlockEvent:
    """Broadcast a config update; it is alone in its block, and every peer applies it."""
    blocks = net.broadcast(tx.encode())
    assert [len(block.transactions) for block in blocks][-1:] == [1]
    events = net.deliver()
    event = events[-1]
    assert [(t.tx_id, t.code) for t in event.transactions] == [(tx.tx_id, TxValidationCode.VALID)]
    for peer in net.peers:
        assert peer.ledger.channel_config() == tx.config
        assert peer.committer.channel.config == tx.config
    return event


def set_acl(net: InProcessNetwork, rules: Sequence[AclRule]) -> None:
    commit_config(net, config_tx(net, majority(net), acl_rules=tuple(rules)))


def rule(
    name: str,
    role: str,
    operation: str,
    resource: str,
    transaction: str = "*",
    condition: str = "true",
    action: str = "ALLOW",
) -> AclRule:
    return AclRule(
        name, f"test rule {name}", role, operation, resource, transaction, condition, action
    )


def inject(net: InProcessNetwork, transactions: Sequence[bytes]) -> BlockEvent:
    """Cut a block the orderer admitted before it learnt of a configuration change (as
    a Raft leader may): signed with the real orderer key, delivered to every peer."""
    assert net.orderer.height == net.orderer_ledger.height
    block: Block = make_block(net.orderer.height, net.orderer.head_hash, list(transactions))
    identity = net.orderer_identity
    block = block.with_signatures(
        [sign_block(block.header, identity.key, identity.msp_id, identity.cert_pem)]
    )
    net.orderer_ledger.append_block(block)
    net.orderer.height += 1
    net.orderer.head_hash = block.hash()
    [event] = net.deliver()
    return event


def tx_id_of(envelope: bytes) -> str:
    return Envelope.decode(envelope).tx_id
