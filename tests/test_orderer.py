"""The orderer core: what it admits, and the signed, hash-chained blocks it cuts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cctvchain.chaincode import ChaincodeStub, Contract, contract_function
from cctvchain.client.transaction import ClientIdentity, new_proposal
from cctvchain.crypto import Domain, SigningKey, merkle_root
from cctvchain.inprocess.network import CHANNEL, InProcessNetwork
from cctvchain.ledger.block import Block, make_block, sign_block, verify_block_signature
from cctvchain.ledger.config import BatchConfig, ChannelConfig
from cctvchain.ledger.genesis import ConfigTransaction, make_genesis_block, sign_config
from cctvchain.ledger.store import Ledger
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp.certref import certificate_reference
from cctvchain.msp.identity import ValidationCache
from cctvchain.msp.testing import InMemoryOrg
from cctvchain.ordering.orderer import BroadcastRefused, Orderer, OrdererSigner
from cctvchain.peer.channel import ChannelContext
from cctvchain.peer.committer import Committer
from cctvchain.peer.validator import BlockValidator
from cctvchain.tx.messages import Envelope, Proposal, TransactionPayload

V = TxValidationCode
START = datetime(2026, 1, 1, tzinfo=UTC)
T0 = int(START.timestamp() * 1000)
BATCH = BatchConfig(
    max_message_count=3,
    absolute_max_bytes=64 * 1024,
    preferred_max_bytes=32 * 1024,
    batch_timeout_ms=1000,
)


class Registry(Contract):
    NAME = "registry"

    @contract_function
    def Put(self, stub: ChaincodeStub, key: str, value: str) -> None:
        stub.put_state(key, value.encode())


@dataclass
class ChannelView:
    """The channel configuration in force, as the orderer's caller provides it."""

    context: ChannelContext | None = None

    def __call__(self) -> ChannelContext:
        assert self.context is not None
        return self.context


@dataclass
class Setup:
    net: InProcessNetwork
    alice: ClientIdentity
    envelopes: list[bytes]  # real endorsed envelopes, each writing its own key

    @property
    def config(self) -> ChannelConfig:
        return self.net.genesis_config

    @property
    def genesis(self) -> Block:
        return make_genesis_block(self.config)

    def orderer(self, channel: ChannelContext | ChannelView | None = None) -> Orderer:
        view = channel if isinstance(channel, ChannelView) else ChannelView(channel)
        if view.context is None:
            view.context = ChannelContext.from_config(self.config)
        identity = self.net.orderer_identity
        return Orderer(
            channel=view,
            signer=OrdererSigner(identity.msp_id, identity.cert_pem, identity.key),
            height=1,
            head_hash=self.genesis.hash(),
        )

    def config_update(self, config: ChannelConfig, signers: tuple[str, ...]) -> bytes:
        signatures = tuple(
            sign_config(
                config,
                self.net.orgs[org].admin.key,
                self.net.orgs[org].admin.msp_id,
                self.net.orgs[org].admin.cert_pem,
            )
            for org in signers
        )
        return ConfigTransaction(config, signatures).encode()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("orderer-net")
    with InProcessNetwork(root, {"registry": Registry()}, batch=BATCH, start=START) as net:
        alice = net.client("CityCCTV", "alice")
        envelopes = [net.prepare(alice, "registry", "Put", [f"k{i}", f"v{i}"]) for i in range(8)]
        yield Setup(net, alice, envelopes)


def sign_envelope(payload: TransactionPayload, key: SigningKey) -> bytes:
    data = payload.encode()
    return Envelope(data, key.sign(Domain.ENVELOPE, data)).encode()


def unendorsed(who: ClientIdentity, *, channel: str = CHANNEL, nonce: bytes = bytes(24)) -> bytes:
    """An envelope signed by ``who`` around a proposal that was never endorsed."""
    signed = new_proposal(
        who,
        channel_id=channel,
        contract="registry",
        function="Put",
        args=("k", "v"),
        nonce=nonce,
        timestamp_ms=T0,
    )
    return sign_envelope(TransactionPayload(signed.proposal, b"", ()), who.key)


def refusal(orderer: Orderer, data: bytes) -> BroadcastRefused:
    with pytest.raises(BroadcastRefused) as info:
        orderer.broadcast(data, T0)
    assert orderer.cutter.pending_count == 0  # nothing refused is ever pending
    return info.value


# -- admission ------------------------------------------------------------------------------


def test_admits_a_good_envelope(setup: Setup) -> None:
    orderer = setup.orderer()
    admitted = orderer.admit(setup.envelopes[0], T0)
    assert isinstance(admitted, Envelope)
    assert admitted.encode() == setup.envelopes[0]
    assert orderer.broadcast(setup.envelopes[0], T0) == []
    assert orderer.cutter.pending_count == 1


def test_oversize_envelope_is_413(setup: Setup) -> None:
    error = refusal(setup.orderer(), b"x" * (BATCH.absolute_max_bytes + 1))
    assert error.status == 413
    assert "exceeds AbsoluteMaxBytes (65536)" in str(error)


def test_malformed_envelopes_are_400(setup: Setup) -> None:
    orderer = setup.orderer()
    error = refusal(orderer, b"\xffnot an envelope")
    assert (error.status, str(error).startswith("malformed envelope:")) == (400, True)
    bad_payload = Envelope(b"\x01\x02", b"sig").encode()
    error = refusal(orderer, bad_payload)
    assert (error.status, str(error).startswith("malformed envelope payload:")) == (400, True)
    proposal = Envelope.decode(setup.envelopes[0]).transaction.proposal
    error = refusal(orderer, proposal)  # a registered message, but not a transaction
    assert error.status == 400
    assert str(error) == "unsupported transaction type tx.proposal"


def test_non_member_is_403(setup: Setup) -> None:
    outsider_org = InMemoryOrg("Intruder", "Intruder", setup.net.start)
    enrolled = outsider_org.new_identity("eve", "client")
    eve = ClientIdentity(enrolled.msp_id, enrolled.cert_pem, enrolled.key, enrolled.name)
    error = refusal(setup.orderer(), unendorsed(eve))
    assert error.status == 403
    assert "creator refused: unknown MSP 'Intruder'" in str(error)
    # A non-member certificate claimed under a member MSP id.
    posing = dataclasses.replace(eve, msp_id="Police")
    error = refusal(setup.orderer(), unendorsed(posing))
    assert error.status == 403 and "does not chain to a CA of MSP Police" in str(error)


def test_forged_envelope_signature_is_403(setup: Setup) -> None:
    orderer = setup.orderer()
    envelope = Envelope.decode(setup.envelopes[0])
    forged = Envelope(
        envelope.payload, SigningKey.generate().sign(Domain.ENVELOPE, envelope.payload)
    )
    error = refusal(orderer, forged.encode())
    assert error.status == 403 and "creator refused: signature does not verify" in str(error)
    # The creator's signature, but made for a proposal rather than an envelope.
    wrong_domain = Envelope(
        envelope.payload, setup.alice.key.sign(Domain.PROPOSAL, envelope.payload)
    )
    assert refusal(orderer, wrong_domain.encode()).status == 403
    # The creator's envelope signature moved onto another payload.
    other = Envelope.decode(setup.envelopes[1])
    assert refusal(orderer, Envelope(other.payload, envelope.signature).encode()).status == 403


def test_other_channel_is_404(setup: Setup) -> None:
    error = refusal(setup.orderer(), unendorsed(setup.alice, channel="elsewhere"))
    assert error.status == 404 and str(error) == "unknown channel 'elsewhere'"


def test_claimed_tx_id_must_be_derived_from_nonce_and_creator(setup: Setup) -> None:
    # Regression: a member claiming another client's tx id, ordered first in the same
    # block, used to make every peer refuse the block (the ledger indexed the claimed id).
    victim = Envelope.decode(setup.envelopes[0])
    signed = new_proposal(
        setup.alice,
        channel_id=CHANNEL,
        contract="registry",
        function="Put",
        args=("k0", "stolen"),
        nonce=bytes(24),
        timestamp_ms=T0,
    )
    claimed = dataclasses.replace(signed.decoded, tx_id=victim.tx_id)
    bogus = sign_envelope(TransactionPayload(claimed.encode(), b"", ()), setup.alice.key)
    error = refusal(setup.orderer(), bogus)
    assert error.status == 400 and "BAD_PROPOSAL_TXID" in str(error)


def test_a_block_where_a_bogus_tx_claims_a_later_valid_tx_id_still_commits(
    setup: Setup, tmp_path: Path
) -> None:
    # The same attack through an orderer that does not check tx ids: the peer must flag
    # the valid transaction a duplicate of the claimed id, not refuse the whole block.
    victim = Envelope.decode(setup.envelopes[0])
    proposal = Proposal.decode(victim.transaction.proposal)
    claimed = dataclasses.replace(proposal, nonce=bytes(24), args=("k0", "stolen"))
    bogus = sign_envelope(TransactionPayload(claimed.encode(), b"", ()), setup.alice.key)
    identity = setup.net.orderer_identity
    block = make_block(1, setup.genesis.hash(), [bogus, setup.envelopes[0]])
    block = block.with_signatures(
        [sign_block(block.header, identity.key, identity.msp_id, identity.cert_pem)]
    )
    with Ledger.open(tmp_path / "peer", create=True) as ledger:
        ledger.append_block(setup.genesis)
        event = Committer(ledger, cache=ValidationCache()).commit(block, START)
        assert [t.code for t in event.transactions] == [V.BAD_PROPOSAL_TXID, V.DUPLICATE_TXID]
        assert ledger.height == 2
        assert ledger.get_state("registry", "k0") is None


def test_writers_policy_is_enforced(setup: Setup) -> None:
    policies = dict(setup.config.policies, Writers="OR('Police.member')")
    context = ChannelContext.from_config(dataclasses.replace(setup.config, policies=policies))
    error = refusal(setup.orderer(context), setup.envelopes[0])
    assert error.status == 403 and str(error) == "alice may not write to this channel"


def test_invalid_config_updates_are_403(setup: Setup) -> None:
    orderer = setup.orderer()
    new = dataclasses.replace(setup.config, sequence=1)
    error = refusal(orderer, setup.config_update(new, ()))
    assert error.status == 403
    assert "invalid config update: 0 valid admin signature(s)" in str(error)
    error = refusal(orderer, setup.config_update(new, ("Police",)))  # Admins need 2 of 3
    assert "1 valid admin signature(s) do not satisfy the Admins policy" in str(error)
    skipped = dataclasses.replace(setup.config, sequence=2)
    error = refusal(orderer, setup.config_update(skipped, ("Police", "CityCCTV")))
    assert "config sequence 2 does not follow 0" in str(error)
    other = dataclasses.replace(setup.config, channel_id="elsewhere", sequence=1)
    error = refusal(orderer, setup.config_update(other, ("Police", "CityCCTV")))
    assert "config for another channel" in str(error)


# -- blocks ---------------------------------------------------------------------------------


def check_chain(setup: Setup, blocks: list[Block]) -> None:
    """Numbered from 1, hash-chained from genesis, right data hash, signed by the orderer."""
    identity = setup.net.orderer_identity
    validator = BlockValidator(ChannelContext.from_config(setup.config))
    previous = setup.genesis.hash()
    for number, block in enumerate(blocks, start=1):
        assert block.number == number
        assert block.header.previous_hash == previous
        assert block.header.data_hash == merkle_root(list(block.transactions))
        (signature,) = block.metadata.signatures
        # The channel configuration lists the orderer's certificate: signed by reference.
        reference = certificate_reference(identity.cert_pem)
        assert (signature.msp_id, signature.cert) == (identity.msp_id, reference)
        verify_block_signature(block.header, signature, identity.key.verifying_key)
        signer = validator.check_block(block, number, previous, START)
        assert (signer.name, signer.id_type) == ("orderer0", "orderer")
        previous = block.hash()


def test_blocks_are_cut_at_max_message_count_and_hash_chained(setup: Setup) -> None:
    orderer = setup.orderer()
    blocks: list[Block] = []
    for envelope in setup.envelopes[:7]:
        blocks += orderer.broadcast(envelope, T0)
    assert [len(b.transactions) for b in blocks] == [3, 3]
    assert [tx for b in blocks for tx in b.transactions] == setup.envelopes[:6]
    assert all(b.metadata.tx_flags == bytes([V.NOT_VALIDATED] * 3) for b in blocks)
    blocks += orderer.flush()
    assert [len(b.transactions) for b in blocks] == [3, 3, 1]
    assert orderer.flush() == []
    assert (orderer.height, orderer.head_hash) == (4, blocks[-1].hash())
    check_chain(setup, blocks)


def test_a_peer_commits_the_orderers_blocks(setup: Setup, tmp_path: Path) -> None:
    orderer = setup.orderer()
    blocks = [b for e in setup.envelopes[:4] for b in orderer.broadcast(e, T0)] + orderer.flush()
    with Ledger.open(tmp_path / "peer", create=True) as ledger:
        ledger.append_block(setup.genesis)
        committer = Committer(ledger, cache=ValidationCache())
        events = [committer.commit(block, START) for block in blocks]
        assert [t.code for e in events for t in e.transactions] == [V.VALID] * 4
        assert ledger.head_hash == orderer.head_hash
        value = ledger.get_state("registry", "k3")
        assert value is not None and value.value == b"v3"


def test_a_block_tampered_after_signing_is_refused(setup: Setup) -> None:
    orderer = setup.orderer()
    (block,) = [b for e in setup.envelopes[:3] for b in orderer.broadcast(e, T0)]
    identity = setup.net.orderer_identity
    reordered = make_block(1, setup.genesis.hash(), list(reversed(block.transactions)))
    reordered = reordered.with_signatures(block.metadata.signatures)
    assert not identity.key.verifying_key.is_valid(
        Domain.BLOCK, reordered.header.hash(), block.metadata.signatures[0].signature
    )


def test_a_config_update_is_cut_alone_after_the_pending_batch(setup: Setup) -> None:
    orderer = setup.orderer()
    assert orderer.broadcast(setup.envelopes[0], T0) == []
    assert orderer.broadcast(setup.envelopes[1], T0) == []
    new = dataclasses.replace(
        setup.config, sequence=1, batch=dataclasses.replace(BATCH, max_message_count=5)
    )
    update = setup.config_update(new, ("Police", "LocalAuthority"))
    assert isinstance(orderer.admit(update, T0), ConfigTransaction)
    pending_block, config_block = orderer.broadcast(update, T0)
    assert pending_block.transactions == tuple(setup.envelopes[:2])
    assert config_block.transactions == (update,)
    assert config_block.metadata.tx_flags == bytes([V.VALID])
    assert orderer.cutter.pending_count == 0
    check_chain(setup, [pending_block, config_block])
    # With nothing pending, the config block is the only one.
    again = setup.orderer()
    (alone,) = again.broadcast(update, T0)
    assert alone.transactions == (update,) and alone.number == 1


def test_batch_reconfiguration_keeps_pending_envelopes(setup: Setup) -> None:
    view = ChannelView()
    orderer = setup.orderer(view)
    assert orderer.broadcast(setup.envelopes[0], T0) == []
    assert orderer.broadcast(setup.envelopes[1], T0) == []
    bigger = dataclasses.replace(BATCH, max_message_count=4, batch_timeout_ms=5000)
    view.context = ChannelContext.from_config(
        dataclasses.replace(setup.config, sequence=1, batch=bigger)
    )
    assert orderer.broadcast(setup.envelopes[2], T0) == []  # the old limit (3) no longer cuts
    assert orderer.cutter.pending_count == 3
    (block,) = orderer.broadcast(setup.envelopes[3], T0)
    assert block.transactions == tuple(setup.envelopes[:4])
    # The new timeout applies to the next batch.
    assert orderer.broadcast(setup.envelopes[4], T0 + 10) == []
    assert orderer.next_deadline_ms == T0 + 10 + 5000


def test_timeouts_cut_with_the_time_passed_in(setup: Setup) -> None:
    orderer = setup.orderer()
    assert orderer.next_deadline_ms is None
    assert orderer.tick(T0 + 10**9) == []  # nothing pending: nothing to cut
    assert orderer.broadcast(setup.envelopes[0], T0) == []
    assert orderer.next_deadline_ms == T0 + 1000
    assert orderer.broadcast(setup.envelopes[1], T0 + 900) == []  # does not move the deadline
    assert orderer.next_deadline_ms == T0 + 1000
    assert orderer.tick(T0 + 999) == []
    (block,) = orderer.tick(T0 + 1000)
    assert block.transactions == tuple(setup.envelopes[:2])
    assert orderer.next_deadline_ms is None
    assert orderer.tick(T0 + 5000) == []
    assert orderer.broadcast(setup.envelopes[2], T0 + 6000) == []
    assert orderer.next_deadline_ms == T0 + 7000
    (second,) = orderer.tick(T0 + 7000)
    check_chain(setup, [block, second])


def test_an_envelope_over_preferred_max_bytes_is_cut_alone(setup: Setup) -> None:
    size = len(setup.envelopes[0])
    small = dataclasses.replace(BATCH, preferred_max_bytes=size * 2 - 1)
    context = ChannelContext.from_config(dataclasses.replace(setup.config, batch=small))
    orderer = setup.orderer(context)
    assert orderer.broadcast(setup.envelopes[0], T0) == []
    # A second one would push the batch past PreferredMaxBytes: the pending one is cut.
    (first,) = orderer.broadcast(setup.envelopes[1], T0)
    assert first.transactions == (setup.envelopes[0],)
    assert orderer.cutter.pending_count == 1
