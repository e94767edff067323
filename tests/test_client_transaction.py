"""The client side: proposals, the tx id rule, and assembling endorsements into envelopes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cctvchain.chaincode import ChaincodeStub, Contract, ContractError, contract_function
from cctvchain.client.transaction import (
    ClientIdentity,
    EndorsementError,
    assemble_envelope,
    new_proposal,
)
from cctvchain.codec import CodecError
from cctvchain.crypto import Domain, sha256
from cctvchain.inprocess.network import CHANNEL, InProcessNetwork
from cctvchain.ledger.transaction import KVWrite
from cctvchain.tx.messages import (
    Envelope,
    Proposal,
    ProposalResponse,
    ProposalResponsePayload,
    SerializedIdentity,
    SignedProposal,
    compute_tx_id,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
NOW_MS = int(START.timestamp() * 1000)
NONCE = b"n" * 24


class Registry(Contract):
    NAME = "registry"
    calls = 0  # shared by every instance: a deliberately non-deterministic contract

    @contract_function
    def Put(self, stub: ChaincodeStub, key: str, value: str) -> str:
        previous = stub.get_state(key)
        stub.put_state(key, value.encode())
        return "created" if previous is None else "updated"

    @contract_function
    def Counter(self, stub: ChaincodeStub) -> int:
        Registry.calls += 1
        stub.put_state("counter", str(Registry.calls).encode())
        return Registry.calls

    @contract_function
    def Refuse(self, stub: ChaincodeStub) -> None:
        raise ContractError("camera is not registered", status=404)


@dataclass
class Setup:
    net: InProcessNetwork
    alice: ClientIdentity
    bob: ClientIdentity

    def propose(
        self, function: str = "Put", args: tuple[str, ...] = ("k", "v"), nonce: bytes = NONCE
    ) -> SignedProposal:
        return new_proposal(
            self.alice,
            channel_id=CHANNEL,
            contract="registry",
            function=function,
            args=args,
            nonce=nonce,
            timestamp_ms=NOW_MS,
        )

    def endorse(self, signed: SignedProposal) -> list[ProposalResponse]:
        return self.net.endorse(signed, self.net.endorsing_peers()[:2])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("client-net")
    with InProcessNetwork(root, {"registry": Registry()}, start=START) as net:
        yield Setup(net, net.client("CityCCTV", "alice"), net.client("Police", "bob"))


# -- proposals and the tx id rule -----------------------------------------------------------


def test_new_proposal(setup: Setup) -> None:
    signed = setup.propose(args=("cam-1", "hash"))
    proposal = signed.decoded
    assert proposal == Proposal(
        channel_id=CHANNEL,
        contract="registry",
        function="Put",
        args=("cam-1", "hash"),
        creator=SerializedIdentity("CityCCTV", setup.alice.cert),
        nonce=NONCE,
        timestamp_ms=NOW_MS,
        tx_id=proposal.tx_id,
    )
    assert signed.proposal == proposal.encode()
    setup.alice.key.verifying_key.verify(Domain.PROPOSAL, signed.proposal, signed.signature)
    assert not setup.alice.key.verifying_key.is_valid(
        Domain.ENVELOPE, signed.proposal, signed.signature
    )


def test_tx_id_rule(setup: Setup) -> None:
    creator = setup.alice.serialized
    tx_id = compute_tx_id(NONCE, creator)
    assert tx_id == sha256(NONCE + creator.encode()).hex()
    assert len(tx_id) == 64 and tx_id == tx_id.lower()
    assert setup.propose().decoded.tx_id == tx_id
    assert setup.propose().decoded.tx_id_is_correct()
    # Another nonce or another creator: another id.
    assert compute_tx_id(b"m" * 24, creator) != tx_id
    assert compute_tx_id(NONCE, setup.bob.serialized) != tx_id
    # The creator's MSP id is part of it, not just the certificate.
    assert compute_tx_id(NONCE, dataclasses.replace(creator, msp_id="Police")) != tx_id
    wrong = dataclasses.replace(setup.propose().decoded, tx_id=compute_tx_id(b"m" * 24, creator))
    assert not wrong.tx_id_is_correct()


def test_proposal_field_checks(setup: Setup) -> None:
    proposal = setup.propose().decoded
    with pytest.raises(ValueError, match="nonce must be 24 bytes"):
        dataclasses.replace(proposal, nonce=b"short")
    for bad in ("A" * 64, "a" * 63, "g" * 64, ""):
        with pytest.raises(ValueError, match="tx_id must be 64 lowercase hex digits"):
            dataclasses.replace(proposal, tx_id=bad)
    with pytest.raises(ValueError, match="nonce must be 24 bytes"):
        new_proposal(
            setup.alice,
            channel_id=CHANNEL,
            contract="registry",
            function="Put",
            args=(),
            nonce=b"",
            timestamp_ms=NOW_MS,
        )


# -- assembling envelopes -------------------------------------------------------------------


def test_assemble_a_signed_envelope(setup: Setup) -> None:
    signed = setup.propose(args=("cam-9", "seg"))
    responses = setup.endorse(signed)
    envelope = assemble_envelope(setup.alice, signed, responses)
    setup.alice.key.verifying_key.verify(Domain.ENVELOPE, envelope.payload, envelope.signature)
    assert not setup.bob.key.verifying_key.is_valid(
        Domain.ENVELOPE, envelope.payload, envelope.signature
    )
    transaction = envelope.transaction
    assert transaction.proposal == signed.proposal  # the exact signed bytes
    assert transaction.response_payload == responses[0].payload
    assert transaction.endorsements == tuple(r.endorsement for r in responses)
    assert [e.endorser.msp_id for e in transaction.endorsements] == ["CityCCTV", "Police"]
    assert envelope.tx_id == signed.decoded.tx_id
    assert envelope.state_writes() == [KVWrite("registry", "cam-9", b"seg")]
    assert isinstance(envelope.response_payload, ProposalResponsePayload)
    assert Envelope.decode(envelope.encode()) == envelope
    # The envelope is accepted for ordering as it is.
    assert setup.net.orderer.admit(envelope.encode(), NOW_MS) == envelope


def test_no_endorsements(setup: Setup) -> None:
    with pytest.raises(EndorsementError, match=r"^no endorsements$"):
        assemble_envelope(setup.alice, setup.propose(), [])


def test_refused_endorsements(setup: Setup) -> None:
    signed = setup.propose("Refuse", ())
    responses = setup.endorse(signed)
    with pytest.raises(EndorsementError) as info:
        assemble_envelope(setup.alice, signed, responses)
    # Both endorsers refused for the same reason: it is said once.
    assert str(info.value) == "endorsement refused: 404 camera is not registered"
    # One refusal among good endorsements is enough to refuse.
    good = setup.endorse(setup.propose())
    with pytest.raises(EndorsementError, match=r"^endorsement refused: 404 camera is not"):
        assemble_envelope(setup.alice, setup.propose(), [good[0], responses[0]])


def test_refusal_by_the_endorser_itself(setup: Setup) -> None:
    signed = setup.propose()
    stale = dataclasses.replace(signed.decoded, timestamp_ms=NOW_MS - 3_600_000)
    data = stale.encode()
    stale_signed = SignedProposal(data, setup.alice.key.sign(Domain.PROPOSAL, data))
    with pytest.raises(EndorsementError, match="endorsement refused: 400 proposal timestamp"):
        assemble_envelope(setup.alice, stale_signed, setup.endorse(stale_signed))


def test_a_response_without_an_endorsement_is_a_refusal(setup: Setup) -> None:
    signed = setup.propose()
    good = setup.endorse(signed)
    unsigned = dataclasses.replace(good[1], endorsement=None)
    assert unsigned.response.ok
    with pytest.raises(EndorsementError, match=r"^endorsement refused: 200 $"):
        assemble_envelope(setup.alice, signed, [good[0], unsigned])


def test_disagreeing_endorsements(setup: Setup) -> None:
    signed = setup.propose("Counter", ())
    responses = setup.endorse(signed)
    assert all(r.response.ok and r.endorsement is not None for r in responses)
    with pytest.raises(EndorsementError) as info:
        assemble_envelope(setup.alice, signed, responses)
    assert str(info.value) == (
        "the 2 endorsers simulated different results (state differs between peers, or "
        "the contract is not deterministic)"
    )


def test_disagreement_from_divergent_peer_state(tmp_path: Path) -> None:
    with InProcessNetwork(tmp_path, {"registry": Registry()}, start=START) as net:
        alice = net.client("CityCCTV", "alice")
        first, second = net.endorsing_peers()[:2]
        net.broadcast(net.prepare(alice, "registry", "Put", ["k", "v1"], [first, second]))
        (block,) = net.cut()
        first.committer.commit(block, net.clock.now)  # the second peer lags behind
        signed = net.propose(alice, "registry", "Put", ["k", "v2"])
        responses = net.endorse(signed, [first, second])
        assert [r.response.payload for r in responses] == [b"updated", b"created"]
        with pytest.raises(EndorsementError, match="simulated different results"):
            assemble_envelope(alice, signed, responses)


def test_envelope_payload_decoding_is_lazy_and_strict(setup: Setup) -> None:
    envelope = Envelope(b"\x00not a payload", b"sig")
    with pytest.raises(CodecError):
        _ = envelope.transaction
