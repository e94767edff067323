"""Test support for the execute-order-validate flow tests (not a test module).

Contracts used by the flow tests, a factory for the in-process network, and the tools to
build what an honest client, endorser or orderer would never produce: proposals with a
wrong tx id, endorsements signed by hand with the peers' real keys over results they did
not simulate, envelopes signed with the wrong key, and blocks the test cuts and signs
itself (with the real orderer key, or with keys that are not an orderer's).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cctvchain.chaincode import ChaincodeStub, Contract, ContractError, contract_function
from cctvchain.client.transaction import ClientIdentity
from cctvchain.crypto import Domain, SigningKey
from cctvchain.inprocess.network import CHANNEL, InProcessNetwork, InProcessPeer
from cctvchain.ledger.block import Block, make_block, sign_block
from cctvchain.ledger.config import BatchConfig, ChannelConfig
from cctvchain.ledger.genesis import ConfigTransaction, sign_config
from cctvchain.ledger.records import VersionedValue
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp.testing import EnrolledIdentity, InMemoryOrg
from cctvchain.peer.events import BlockEvent
from cctvchain.tx.messages import (
    Endorsement,
    Envelope,
    Proposal,
    ProposalResponsePayload,
    Response,
    SerializedIdentity,
    SignedProposal,
    TransactionPayload,
    compute_tx_id,
    endorsement_message,
)
from cctvchain.tx.rwset import KVWriteEntry, NamespaceRWSet, TxRWSet

Code = TxValidationCode
OK = Response(200, "", b"")


# -- contracts -----------------------------------------------------------------------------


class KV(Contract):
    """A small key-value contract exercising every kind of read the validator checks."""

    NAME = "kv"

    @contract_function
    def Put(self, stub: ChaincodeStub, key: str, value: str) -> None:
        stub.put_state(key, value.encode())
        stub.set_event("Put", f"{key}={value}".encode())

    @contract_function
    def Incr(self, stub: ChaincodeStub, key: str) -> str:
        """Read-modify-write: the transaction MVCC validation exists for."""
        current = stub.get_state(key)
        value = str(int(current or b"0") + 1)
        stub.put_state(key, value.encode())
        stub.set_event("Incr", f"{key}={value}".encode())
        stub.set_event("Touched", key.encode())
        return value

    @contract_function
    def Del(self, stub: ChaincodeStub, key: str) -> None:
        stub.del_state(key)

    @contract_function(read_only=True)
    def Get(self, stub: ChaincodeStub, key: str) -> bytes:
        value = stub.get_state(key)
        if value is None:
            raise ContractError(f"{key} not found", status=404)
        return value

    @contract_function
    def Scan(self, stub: ChaincodeStub, start: str, end: str, summary: str) -> str:
        """A range read whose result is written: a phantom must invalidate it."""
        found = [key for key, _ in stub.get_state_by_range(start, end)]
        stub.put_state(summary, json.dumps(found).encode())
        return json.dumps(found)

    @contract_function
    def PutTagged(self, stub: ChaincodeStub, object_type: str, attribute: str, value: str) -> None:
        stub.put_state(stub.create_composite_key(object_type, [attribute]), value.encode())

    @contract_function
    def ScanTagged(self, stub: ChaincodeStub, object_type: str, summary: str) -> str:
        found = [
            stub.split_composite_key(key)[1][0]
            for key, _ in stub.get_state_by_partial_composite_key(object_type)
        ]
        stub.put_state(summary, json.dumps(found).encode())
        return json.dumps(found)

    @contract_function
    def ConfigSequence(self, stub: ChaincodeStub, key: str) -> None:
        stub.put_state(key, str(stub.get_channel_config().sequence).encode())

    @contract_function
    def Crash(self, stub: ChaincodeStub) -> None:
        raise RuntimeError("contract bug")


class Audit(KV):
    """A second deployed contract: its namespace is off limits to ``kv`` transactions."""

    NAME = "audit"


CONTRACTS: dict[str, Contract] = {"kv": KV(), "audit": Audit()}


def new_network(root: Path, **options: Any) -> InProcessNetwork:
    return InProcessNetwork(root, CONTRACTS, **options)


# -- reading the outcome --------------------------------------------------------------------


def flags(peer: InProcessPeer, number: int) -> list[Code]:
    """The validation codes the peer committed for block ``number``."""
    return [Code(flag) for flag in peer.ledger.get_block(number).metadata.tx_flags]


def value(peer: InProcessPeer, key: str, namespace: str = "kv") -> bytes | None:
    found = peer.ledger.get_state(namespace, key)
    return None if found is None else found.value


def states(net: InProcessNetwork) -> list[dict[tuple[str, str], VersionedValue]]:
    return [peer.ledger.dump_state() for peer in net.peers]


def assert_converged(net: InProcessNetwork) -> None:
    """Every peer (and the orderer) at the same height and head; every peer the same state."""
    heights = {peer.ledger.height for peer in net.peers}
    assert heights == {net.orderer_ledger.height}
    assert net.head_hashes() == {net.orderer_ledger.head_hash}
    first, *others = states(net)
    for other in others:
        assert other == first


def assert_codes(
    net: InProcessNetwork, number: int, expected: Sequence[Code], tx_ids: Sequence[str | None]
) -> None:
    """Every peer flagged block ``number`` as ``expected`` and indexes each tx id with it."""
    for peer in net.peers:
        assert flags(peer, number) == list(expected)
        for index, (tx_id, code) in enumerate(zip(tx_ids, expected, strict=True)):
            if tx_id is None:
                continue
            record = peer.ledger.get_tx(tx_id)
            assert record is not None
            assert (record.block_number, record.tx_number) == (number, index)
            assert record.validation_code == code


def assert_alive(net: InProcessNetwork, client: ClientIdentity) -> None:
    """The peers still commit: a fresh valid transaction changes state everywhere."""
    key = "alive-" + os.urandom(4).hex()
    event = net.submit(client, "kv", "Put", [key, "yes"])
    assert event.code == Code.VALID
    for peer in net.peers:
        assert value(peer, key) == b"yes"
    assert_converged(net)


# -- forging transactions -------------------------------------------------------------------


def as_client(identity: EnrolledIdentity) -> ClientIdentity:
    return ClientIdentity(identity.msp_id, identity.cert_pem, identity.key, identity.name)


def serialized(identity: EnrolledIdentity | ClientIdentity) -> SerializedIdentity:
    if isinstance(identity, ClientIdentity):
        return identity.serialized
    return SerializedIdentity(identity.msp_id, identity.cert_pem)


def make_proposal(
    net: InProcessNetwork,
    client: ClientIdentity,
    function: str,
    args: Sequence[str] = (),
    *,
    contract: str = "kv",
    channel_id: str = CHANNEL,
    creator: SerializedIdentity | None = None,
    tx_id: str | None = None,
    timestamp_ms: int | None = None,
) -> tuple[Proposal, SignedProposal]:
    """A proposal signed by ``client``; ``creator`` and ``tx_id`` may be set to lies."""
    nonce = os.urandom(24)
    who = creator or client.serialized
    proposal = Proposal(
        channel_id=channel_id,
        contract=contract,
        function=function,
        args=tuple(args),
        creator=who,
        nonce=nonce,
        timestamp_ms=net.clock.now_ms if timestamp_ms is None else timestamp_ms,
        tx_id=tx_id or compute_tx_id(nonce, who),
    )
    data = proposal.encode()
    return proposal, SignedProposal(data, client.key.sign(Domain.PROPOSAL, data))


def writes(namespace: str, **values: str) -> NamespaceRWSet:
    entries = tuple(KVWriteEntry(key, False, val.encode()) for key, val in sorted(values.items()))
    return NamespaceRWSet(namespace, (), (), entries)


def rwset(*namespaces: NamespaceRWSet) -> TxRWSet:
    return TxRWSet(tuple(namespaces))


def response_payload(
    proposal: Proposal,
    results: TxRWSet,
    *,
    response: Response = OK,
    contract: str | None = None,
    proposal_hash: bytes | None = None,
) -> bytes:
    return ProposalResponsePayload(
        proposal_hash=proposal.hash() if proposal_hash is None else proposal_hash,
        contract=proposal.contract if contract is None else contract,
        results=results,
        events=(),
        response=response,
    ).encode()


def endorse_by_hand(payload: bytes, signers: Iterable[EnrolledIdentity]) -> tuple[Endorsement, ...]:
    """Endorsements of ``payload`` signed with the signers' real keys."""
    endorsements = []
    for signer in signers:
        who = serialized(signer)
        signature = signer.key.sign(Domain.PROPOSAL_RESPONSE, endorsement_message(payload, who))
        endorsements.append(Endorsement(who, signature))
    return tuple(endorsements)


def make_envelope(
    signed: SignedProposal,
    payload: bytes,
    endorsements: Sequence[Endorsement],
    key: SigningKey,
) -> bytes:
    """An envelope over (proposal, response, endorsements), signed with ``key``."""
    data = TransactionPayload(signed.proposal, payload, tuple(endorsements)).encode()
    return Envelope(data, key.sign(Domain.ENVELOPE, data)).encode()


def peer_identities(net: InProcessNetwork, *orgs: str) -> list[EnrolledIdentity]:
    chosen = [peer for peer in net.endorsing_peers() if not orgs or peer.org in orgs]
    return [peer.identity for peer in chosen]


def forge(
    net: InProcessNetwork,
    client: ClientIdentity,
    results: TxRWSet,
    *,
    function: str = "Put",
    args: Sequence[str] = (),
    contract: str = "kv",
    signers: Sequence[EnrolledIdentity] | None = None,
    response: Response = OK,
    **proposal_options: Any,
) -> tuple[str, bytes]:
    """A transaction endorsed by hand (default: one peer of every organisation), signed
    by ``client``: ``(tx id, envelope bytes)``."""
    proposal, signed = make_proposal(
        net, client, function, args, contract=contract, **proposal_options
    )
    payload = response_payload(proposal, results, response=response)
    endorsements = endorse_by_hand(payload, peer_identities(net) if signers is None else signers)
    return proposal.tx_id, make_envelope(signed, payload, endorsements, client.key)


def tx_id_of(envelope: bytes) -> str:
    return Envelope.decode(envelope).tx_id


# -- forging blocks -------------------------------------------------------------------------


def signed_block(
    number: int,
    previous_hash: bytes,
    transactions: Sequence[bytes],
    signer: EnrolledIdentity,
) -> Block:
    block = make_block(number, previous_hash, transactions)
    signature = sign_block(block.header, signer.key, signer.msp_id, signer.cert_pem)
    return block.with_signatures([signature])


def inject(net: InProcessNetwork, transactions: Sequence[bytes]) -> BlockEvent:
    """Cut and sign a block of arbitrary transactions with the real orderer key (what the
    orderer's admission checks would have kept out), then deliver it to every peer."""
    assert net.orderer.height == net.orderer_ledger.height
    block = signed_block(
        net.orderer.height, net.orderer.head_hash, transactions, net.orderer_identity
    )
    net.orderer_ledger.append_block(block)
    net.orderer.height += 1
    net.orderer.head_hash = block.hash()
    events = net.deliver()
    assert [event.number for event in events] == [block.number]
    return events[0]


# -- configuration updates ------------------------------------------------------------------


def current_config(net: InProcessNetwork) -> ChannelConfig:
    return net.peers[0].ledger.channel_config()


def config_update(
    net: InProcessNetwork,
    signers: Sequence[InMemoryOrg],
    *,
    sequence: int | None = None,
    **changes: Any,
) -> ConfigTransaction:
    """The next configuration with ``changes``, signed by the admins of ``signers``."""
    current = current_config(net)
    new = replace(
        current,
        sequence=current.sequence + 1 if sequence is None else sequence,
        **changes,
    )
    signatures = tuple(
        sign_config(new, org.admin.key, org.msp_id, org.admin.cert_pem) for org in signers
    )
    return ConfigTransaction(new, signatures)


def majority(net: InProcessNetwork) -> list[InMemoryOrg]:
    orgs = list(net.orgs.values())
    return orgs[: len(orgs) // 2 + 1]


def batch(max_message_count: int) -> BatchConfig:
    return BatchConfig(max_message_count=max_message_count, batch_timeout_ms=250)
