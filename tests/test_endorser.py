"""The endorser: every refusal names its reason; a good proposal is simulated and signed."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cctvchain.chaincode import (
    ChaincodeStub,
    Contract,
    ContractError,
    SimulationLimits,
    contract_function,
)
from cctvchain.client.transaction import ClientIdentity, assemble_envelope, new_proposal
from cctvchain.codec import decode
from cctvchain.crypto import Domain, SigningKey, sha256
from cctvchain.inprocess.network import default_channel_config
from cctvchain.ledger.block import make_block
from cctvchain.ledger.config import BatchConfig, ChannelConfig
from cctvchain.ledger.genesis import make_genesis_block
from cctvchain.ledger.records import Version
from cctvchain.ledger.store import Ledger
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp.testing import EnrolledIdentity, InMemoryOrg
from cctvchain.peer.channel import ChannelContext
from cctvchain.peer.endorser import DEFAULT_MAX_CLOCK_SKEW_MS, Endorser
from cctvchain.tx.messages import (
    ContractEvent,
    Proposal,
    ProposalResponse,
    ProposalResponsePayload,
    SerializedIdentity,
    SignedProposal,
    endorsement_message,
)
from cctvchain.tx.rwset import KVRead, KVWriteEntry

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
CHANNEL = "cctv"
ORGS = ("CityCCTV", "Police", "LocalAuthority")
ENDORSEMENT = "OutOf(2, 'CityCCTV.peer', 'Police.peer', 'LocalAuthority.peer')"
NONCE = bytes(range(24))


class Registry(Contract):
    NAME = "registry"

    @contract_function
    def Put(self, stub: ChaincodeStub, key: str, value: str) -> str:
        previous = stub.get_state(key)
        stub.put_state(key, value.encode())
        stub.set_event("Put", key.encode())
        return "created" if previous is None else "updated"

    @contract_function(read_only=True)
    def WhoAmI(self, stub: ChaincodeStub) -> dict[str, object]:
        creator = stub.get_creator()
        return {
            "msp": creator.msp_id,
            "name": creator.name,
            "type": creator.id_type,
            "attributes": dict(creator.attributes),
            "tx": stub.get_tx_id(),
            "time": stub.get_tx_timestamp(),
            "channel": stub.get_channel_id(),
        }

    @contract_function
    def Refuse(self, stub: ChaincodeStub) -> None:
        raise ContractError("not allowed today", status=403)


class Undeployed(Registry):
    NAME = "undeployed"


@dataclass
class World:
    orgs: dict[str, InMemoryOrg]
    orderer: EnrolledIdentity
    peers: dict[str, EnrolledIdentity]
    alice: ClientIdentity  # CityCCTV client with role=CRM
    bob: ClientIdentity  # Police client
    config: ChannelConfig

    def context(self, config: ChannelConfig | None = None) -> ChannelContext:
        return ChannelContext.from_config(config or self.config)

    def endorser(self, org: str, context: ChannelContext | None = None) -> Endorser:
        ctx = context or self.context()
        peer = self.peers[org]
        return Endorser(
            channel=lambda: ctx,
            identity=SerializedIdentity(peer.msp_id, peer.cert_pem),
            key=peer.key,
            contracts={"registry": Registry(), "undeployed": Undeployed()},
        )


def client(enrolled: EnrolledIdentity) -> ClientIdentity:
    return ClientIdentity(enrolled.msp_id, enrolled.cert_pem, enrolled.key, enrolled.name)


@pytest.fixture(scope="module")
def world() -> World:
    ca_time = NOW - timedelta(days=1)
    orgs = {name: InMemoryOrg(name, name, ca_time) for name in ORGS}
    orderer = orgs["CityCCTV"].new_identity("orderer0", "orderer")
    peers = {name: org.new_identity(f"peer0.{name}", "peer") for name, org in orgs.items()}
    alice = client(orgs["CityCCTV"].new_identity("alice", "client", attributes={"role": "CRM"}))
    bob = client(orgs["Police"].new_identity("bob", "client"))
    config = default_channel_config(orgs, orderer, BatchConfig(), {"registry": ENDORSEMENT})
    return World(orgs, orderer, peers, alice, bob, config)


@pytest.fixture
def ledger(tmp_path: Path, world: World) -> Iterator[Ledger]:
    led = Ledger.open(tmp_path / "peer", create=True)
    led.append_block(make_genesis_block(world.config))
    yield led
    led.close()


def propose(
    who: ClientIdentity,
    function: str = "Put",
    args: tuple[str, ...] = ("cam-1", "segment-hash"),
    *,
    contract: str = "registry",
    channel: str = CHANNEL,
    timestamp_ms: int = NOW_MS,
    nonce: bytes = NONCE,
) -> SignedProposal:
    return new_proposal(
        who,
        channel_id=channel,
        contract=contract,
        function=function,
        args=args,
        nonce=nonce,
        timestamp_ms=timestamp_ms,
    )


def endorse(
    endorser: Endorser, ledger: Ledger, signed: SignedProposal, now_ms: int = NOW_MS
) -> ProposalResponse:
    with ledger.snapshot() as snap:
        return endorser.process(signed, snap, now_ms)


def resign(proposal: Proposal, key: SigningKey) -> SignedProposal:
    data = proposal.encode()
    return SignedProposal(data, key.sign(Domain.PROPOSAL, data))


def refused(response: ProposalResponse, status: int, *fragments: str) -> None:
    assert response.endorsement is None
    assert response.payload == b""
    assert response.response.status == status, response.response.message
    assert not response.response.ok
    for fragment in fragments:
        assert fragment in response.response.message


# -- refusals -------------------------------------------------------------------------------


def test_malformed_proposal_bytes(world: World, ledger: Ledger) -> None:
    endorser = world.endorser("CityCCTV")
    garbage = SignedProposal(b"\xff\x00not cbor", b"sig")
    refused(endorse(endorser, ledger, garbage), 400, "malformed proposal")
    # Well-formed bytes of another message type are malformed as a proposal too.
    other = SignedProposal(SerializedIdentity("CityCCTV", b"x").encode(), b"sig")
    refused(endorse(endorser, ledger, other), 400, "malformed proposal", "tx.proposal")


def test_wrong_channel(world: World, ledger: Ledger) -> None:
    signed = propose(world.alice, channel="elsewhere")
    refused(
        endorse(world.endorser("CityCCTV"), ledger, signed),
        404,
        "this peer is not on channel 'elsewhere'",
    )


def test_tx_id_not_derived_from_nonce_and_creator(world: World, ledger: Ledger) -> None:
    proposal = propose(world.alice).decoded
    forged = dataclasses.replace(proposal, tx_id="0" * 64)
    refused(
        endorse(world.endorser("CityCCTV"), ledger, resign(forged, world.alice.key)),
        400,
        "BAD_PROPOSAL_TXID",
    )


def test_clock_skew(world: World, ledger: Ledger) -> None:
    endorser = world.endorser("CityCCTV")
    skew = DEFAULT_MAX_CLOCK_SKEW_MS
    for offset in (skew + 1, -skew - 1):
        signed = propose(world.alice, timestamp_ms=NOW_MS + offset)
        refused(endorse(endorser, ledger, signed), 400, "more than 300 s from the endorser's clock")
    for offset in (skew, -skew):  # exactly at the limit is still accepted
        signed = propose(world.alice, timestamp_ms=NOW_MS + offset)
        assert endorse(endorser, ledger, signed).response.status == 200


def test_unknown_msp(world: World, ledger: Ledger) -> None:
    who = dataclasses.replace(world.alice, msp_id="Nobody")
    refused(
        endorse(world.endorser("CityCCTV"), ledger, propose(who)),
        403,
        "creator refused (unknown_msp)",
        "'Nobody'",
    )


def test_certificate_of_another_org_claimed_as_this_org(world: World, ledger: Ledger) -> None:
    impostor = dataclasses.replace(world.alice, msp_id="Police")  # a CityCCTV certificate
    refused(
        endorse(world.endorser("Police"), ledger, propose(impostor)),
        403,
        "creator refused (not_chained_to_msp)",
    )


def test_revoked_creator(world: World, ledger: Ledger) -> None:
    org = world.orgs["Police"]
    mallory = client(org.new_identity("mallory", "client"))
    org.revoke(name="mallory")
    crl = org.crl()
    organizations = tuple(
        org.organization_config(crls=[crl]) if o.msp_id == "Police" else o
        for o in world.config.organizations
    )
    context = world.context(dataclasses.replace(world.config, organizations=organizations))
    endorser = world.endorser("CityCCTV", context)
    refused(
        endorse(endorser, ledger, propose(mallory)), 403, "creator refused (certificate_revoked)"
    )
    # Other members of the organisation are unaffected by the CRL.
    assert endorse(endorser, ledger, propose(world.bob)).response.status == 200


def test_expired_creator(world: World, ledger: Ledger) -> None:
    short = client(
        world.orgs["CityCCTV"].new_identity("short-lived", "client", validity=timedelta(hours=1))
    )
    later = NOW_MS + 2 * 3600 * 1000
    signed = propose(short, timestamp_ms=later)
    refused(
        endorse(world.endorser("CityCCTV"), ledger, signed, later),
        403,
        "creator refused (certificate_expired)",
    )


def test_forged_proposal_signature(world: World, ledger: Ledger) -> None:
    endorser = world.endorser("CityCCTV")
    proposal = propose(world.alice).decoded
    forged = resign(proposal, SigningKey.generate())
    refused(endorse(endorser, ledger, forged), 403, "BAD_CREATOR_SIGNATURE")
    # The creator's own key, but a signature made for another purpose.
    data = proposal.encode()
    wrong_domain = SignedProposal(data, world.alice.key.sign(Domain.ENVELOPE, data))
    refused(endorse(endorser, ledger, wrong_domain), 403, "BAD_CREATOR_SIGNATURE")
    # The creator's signature over other bytes.
    other = propose(world.alice, args=("cam-2", "x"))
    swapped = SignedProposal(other.proposal, propose(world.alice).signature)
    refused(endorse(endorser, ledger, swapped), 403, "BAD_CREATOR_SIGNATURE")
    truncated = SignedProposal(data, world.alice.key.sign(Domain.PROPOSAL, data)[:63])
    refused(endorse(endorser, ledger, truncated), 403, "BAD_CREATOR_SIGNATURE", "64 bytes")


def test_creator_not_satisfying_writers(world: World, ledger: Ledger) -> None:
    policies = dict(world.config.policies, Writers="OR('Police.member', 'CityCCTV.admin')")
    context = world.context(dataclasses.replace(world.config, policies=policies))
    endorser = world.endorser("CityCCTV", context)
    refused(
        endorse(endorser, ledger, propose(world.alice)),
        403,
        "alice of CityCCTV does not satisfy the channel's Writers policy",
    )
    assert endorse(endorser, ledger, propose(world.bob)).response.status == 200


def test_duplicate_tx_id_already_on_the_ledger(world: World, ledger: Ledger) -> None:
    signed = propose(world.alice)
    responses = [endorse(world.endorser(org), ledger, signed) for org in ("CityCCTV", "Police")]
    envelope = assemble_envelope(world.alice, signed, responses)
    block = make_block(
        ledger.height, ledger.head_hash, [envelope.encode()], [TxValidationCode.VALID]
    )
    ledger.append_block(block)
    refused(
        endorse(world.endorser("LocalAuthority"), ledger, signed),
        409,
        f"DUPLICATE_TXID: {signed.decoded.tx_id} is already on the ledger",
    )
    # A fresh nonce makes a fresh transaction.
    again = propose(world.alice, nonce=bytes(24))
    assert endorse(world.endorser("LocalAuthority"), ledger, again).response.status == 200


def test_unknown_or_undeployed_contract(world: World, ledger: Ledger) -> None:
    endorser = world.endorser("CityCCTV")
    refused(
        endorse(endorser, ledger, propose(world.alice, contract="nothing")),
        404,
        "contract 'nothing' is not deployed",
    )
    # Installed on the peer, but the channel has no endorsement policy for it.
    refused(
        endorse(endorser, ledger, propose(world.alice, contract="undeployed")),
        404,
        "contract 'undeployed' is not deployed",
    )


def test_contract_refusal_and_unknown_function_are_not_endorsed(
    world: World, ledger: Ledger
) -> None:
    endorser = world.endorser("CityCCTV")
    refused(endorse(endorser, ledger, propose(world.alice, "Refuse", ())), 403, "not allowed today")
    refused(
        endorse(endorser, ledger, propose(world.alice, "Missing", ())),
        404,
        "has no function 'Missing'",
    )
    refused(endorse(endorser, ledger, propose(world.alice, "Put", ("k",))), 400, "wrong arguments")


def test_oversize_write_set_is_a_413_refusal(world: World, ledger: Ledger) -> None:
    endorser = dataclasses.replace(
        world.endorser("CityCCTV"), limits=SimulationLimits(max_write_set_bytes=16)
    )
    refused(
        endorse(endorser, ledger, propose(world.alice, args=("cam-1", "x" * 12))),
        413,
        "write set exceeds 16 bytes",
    )
    assert endorse(endorser, ledger, propose(world.alice, args=("cam-1", "x" * 11))).endorsement


# -- endorsements ---------------------------------------------------------------------------


def payload_of(response: ProposalResponse) -> ProposalResponsePayload:
    return ProposalResponsePayload.decode(response.payload)


def test_a_good_proposal_is_endorsed(world: World, ledger: Ledger) -> None:
    signed = propose(world.alice)
    response = endorse(world.endorser("Police"), ledger, signed)
    assert response.response.status == 200 and response.response.payload == b"created"
    endorsement = response.endorsement
    assert endorsement is not None
    peer = world.peers["Police"]
    assert endorsement.endorser == SerializedIdentity("Police", peer.cert_pem)
    peer.key.verifying_key.verify(
        Domain.PROPOSAL_RESPONSE,
        endorsement_message(response.payload, endorsement.endorser),
        endorsement.signature,
    )
    # The endorser is a peer of its MSP in the channel, as the validator will check.
    identity = world.context().msps.validate("Police", peer.cert_pem, NOW, allowed_types=["peer"])
    identity.verify(
        Domain.PROPOSAL_RESPONSE,
        endorsement_message(response.payload, endorsement.endorser),
        endorsement.signature,
    )
    # Bound to the endorser: the same signature does not pass for another identity.
    other = SerializedIdentity("CityCCTV", world.peers["CityCCTV"].cert_pem)
    assert not peer.key.verifying_key.is_valid(
        Domain.PROPOSAL_RESPONSE,
        endorsement_message(response.payload, other),
        endorsement.signature,
    )
    payload = payload_of(response)
    assert payload.proposal_hash == sha256(signed.proposal)
    assert payload.contract == "registry"
    assert payload.response == response.response
    assert payload.events == (ContractEvent("Put", b"cam-1"),)
    (ns,) = payload.results.namespaces
    assert ns.namespace == "registry"
    assert ns.reads == (KVRead("cam-1", None),)
    assert ns.writes == (KVWriteEntry("cam-1", False, b"segment-hash"),)
    assert decode(response.payload)["_t"] == "tx.proposal_response_payload"


def test_the_endorser_simulates_against_the_snapshot_it_is_given(
    world: World, ledger: Ledger
) -> None:
    first = propose(world.alice)
    responses = [endorse(world.endorser(org), ledger, first) for org in ("CityCCTV", "Police")]
    envelope = assemble_envelope(world.alice, first, responses)
    ledger.append_block(
        make_block(ledger.height, ledger.head_hash, [envelope.encode()], [TxValidationCode.VALID])
    )
    second = endorse(world.endorser("CityCCTV"), ledger, propose(world.alice, nonce=bytes(24)))
    assert second.response.payload == b"updated"
    (ns,) = payload_of(second).results.namespaces
    assert ns.reads == (KVRead("cam-1", Version(1, 0)),)
    assert ledger.get_state("registry", "cam-1") is not None  # endorsing wrote nothing more
    assert ledger.height == 2


def test_endorsers_of_different_orgs_produce_identical_payloads(
    world: World, ledger: Ledger
) -> None:
    signed = propose(world.alice)
    responses = {org: endorse(world.endorser(org), ledger, signed) for org in ORGS}
    payloads = {r.payload for r in responses.values()}
    assert len(payloads) == 1 and b"" not in payloads
    signatures = set()
    for org, response in responses.items():
        assert response.endorsement is not None
        assert response.endorsement.endorser.msp_id == org
        world.peers[org].key.verifying_key.verify(
            Domain.PROPOSAL_RESPONSE,
            endorsement_message(response.payload, response.endorsement.endorser),
            response.endorsement.signature,
        )
        signatures.add(response.endorsement.signature)
    assert len(signatures) == len(ORGS)


def test_the_contract_sees_the_validated_creator_and_proposal_context(
    world: World, ledger: Ledger
) -> None:
    signed = propose(world.alice, "WhoAmI", (), timestamp_ms=NOW_MS - 1234)
    response = endorse(world.endorser("LocalAuthority"), ledger, signed)
    assert response.response.status == 200
    seen: Mapping[str, object] = json.loads(response.response.payload)
    assert seen == {
        "msp": "CityCCTV",
        "name": "alice",
        "type": "client",
        "attributes": {"role": "CRM"},
        "tx": signed.decoded.tx_id,
        "time": NOW_MS - 1234,
        "channel": CHANNEL,
    }
    assert payload_of(response).results.namespaces == ()  # a query: no reads, no writes
