"""Every validation code produced by a real forged, conflicting, replayed or unauthorised
transaction on the in-process network (real CAs, signatures and LevelDB ledgers).

Where the orderer's admission checks would keep a forgery out, the test first shows the
refusal, then cuts and signs the block itself with the real orderer key (``inject``), as
a faulty orderer would, to show that every peer catches the transaction independently.
For every invalid transaction: its flag in the committed block on every peer, its code
in the tx index where it has an id, the state left untouched, and the peers still
committing afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from flow_helpers import (
    Code,
    as_client,
    assert_alive,
    assert_codes,
    assert_converged,
    config_update,
    current_config,
    endorse_by_hand,
    flags,
    forge,
    inject,
    majority,
    make_envelope,
    make_proposal,
    new_network,
    peer_identities,
    response_payload,
    rwset,
    states,
    tx_id_of,
    value,
    writes,
)

from cctvchain.client.transaction import ClientIdentity, EndorsementError, assemble_envelope
from cctvchain.codec import canonical
from cctvchain.crypto import Domain
from cctvchain.inprocess.network import InProcessNetwork
from cctvchain.ledger.block import BlockHeader
from cctvchain.ledger.config import CONFIG_NAMESPACE, BatchConfig
from cctvchain.ledger.genesis import ConfigTransaction, sign_config
from cctvchain.msp.testing import InMemoryOrg
from cctvchain.ordering.orderer import BroadcastRefused
from cctvchain.tx.messages import Envelope, Response, TransactionPayload
from cctvchain.tx.rwset import KVWriteEntry, NamespaceRWSet


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNetwork]:
    with new_network(tmp_path_factory.mktemp("flow-validation")) as network:
        yield network


@pytest.fixture(scope="module")
def alice(net: InProcessNetwork) -> ClientIdentity:
    return net.client("CityCCTV", "alice")


@pytest.fixture(scope="module")
def bob(net: InProcessNetwork) -> ClientIdentity:
    return net.client("Police", "bob")


def refused(net: InProcessNetwork, envelope: bytes) -> int:
    """The orderer refuses ``envelope``: its status."""
    with pytest.raises(BroadcastRefused) as info:
        net.broadcast(envelope)
    return info.value.status


def test_valid_transaction_commits_on_every_peer(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    event = net.submit(alice, "kv", "Put", ["valid-1", "hello"])
    assert event.code == Code.VALID and event.code_name == "VALID" and event.valid
    assert event.tx_id is not None
    assert_codes(net, event.block, [Code.VALID], [event.tx_id])
    for peer in net.peers:
        assert value(peer, "valid-1") == b"hello"
    assert net.evaluate(alice, "kv", "Get", ["valid-1"]).payload == b"hello"
    assert_converged(net)


def test_nil_envelope_bad_payload_and_unknown_type(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    header = BlockHeader(1, bytes(32), bytes(32)).encode()  # a registered non-transaction
    not_a_message = canonical.encode({"key": "value"})
    undecodable_payload = Envelope(b"\x01garbage", b"signature").encode()
    bad_proposal = Envelope(
        TransactionPayload(b"not a proposal", b"", ()).encode(), b"signature"
    ).encode()
    forged = [b"", b"\xff\x00garbage", not_a_message, undecodable_payload, bad_proposal, header]
    for data in forged:
        assert refused(net, data) == 400
    before = states(net)
    event = inject(net, forged)
    expected = [Code.NIL_ENVELOPE] + [Code.BAD_PAYLOAD] * 4 + [Code.UNKNOWN_TX_TYPE]
    assert [tx.code for tx in event.transactions] == expected
    assert all(tx.tx_id is None for tx in event.transactions)
    assert_codes(net, event.number, expected, [None] * len(expected))
    assert states(net) == before
    for peer in net.peers:
        # the flagged block is stored as committed and the index agrees with it
        assert peer.ledger.verify_chain().height == peer.ledger.height
    assert_alive(net, alice)


def test_bad_creator_signature(
    net: InProcessNetwork, alice: ClientIdentity, bob: ClientIdentity
) -> None:
    results = rwset(writes("kv", creator="forged"))
    # 1. Alice's transaction, its envelope re-signed by Bob.
    tx_resigned, envelope = forge(net, alice, results)
    transaction = Envelope.decode(envelope)
    resigned = Envelope(
        transaction.payload, bob.key.sign(Domain.ENVELOPE, transaction.payload)
    ).encode()
    # 2. Bob claims his own certificate belongs to CityCCTV (tx id computed honestly).
    lying_creator = replace(bob.serialized, msp_id="CityCCTV")
    tx_wrong_msp, wrong_msp = forge(net, bob, results, creator=lying_creator)
    # 3. A certificate from a CA outside the channel, under a member's MSP id.
    outsider_org = InMemoryOrg("Police", "Police", net.start - timedelta(days=1))
    outsider = as_client(outsider_org.new_identity("impostor", "client"))
    tx_outsider, from_outsider = forge(net, outsider, results)
    # 4. An MSP the channel does not know.
    stranger = replace(alice, msp_id="Nobody")
    tx_unknown, unknown_msp = forge(net, stranger, results)
    # 5. A signature with one bit flipped.
    honest = Envelope.decode(forge(net, alice, results)[1])
    flipped_sig = bytes([honest.signature[0] ^ 1]) + honest.signature[1:]
    flipped = Envelope(honest.payload, flipped_sig).encode()
    forged = [resigned, wrong_msp, from_outsider, unknown_msp, flipped]
    for data in forged:
        assert refused(net, data) == 403
    before = states(net)
    event = inject(net, forged)
    ids = [tx_resigned, tx_wrong_msp, tx_outsider, tx_unknown, honest.tx_id]
    assert_codes(net, event.number, [Code.BAD_CREATOR_SIGNATURE] * 5, ids)
    assert [tx.tx_id for tx in event.transactions] == ids
    assert states(net) == before
    for peer in net.peers:
        assert value(peer, "creator") is None
    assert_alive(net, alice)


def test_bad_proposal_txid(net: InProcessNetwork, alice: ClientIdentity) -> None:
    wrong_id = "ab" * 32
    proposal, signed = make_proposal(net, alice, "Put", ["txid", "forged"], tx_id=wrong_id)
    assert not proposal.tx_id_is_correct()
    # The endorsers refuse it...
    for response in net.endorse(signed):
        assert response.endorsement is None
        assert response.response.status == 400
        assert "BAD_PROPOSAL_TXID" in response.response.message
    # ... so it is endorsed by hand with the peers' real keys, over a result bound to
    # this very proposal: only the tx id check can catch it.
    payload = response_payload(proposal, rwset(writes("kv", txid="forged")))
    envelope = make_envelope(
        signed, payload, endorse_by_hand(payload, peer_identities(net)), alice.key
    )
    assert refused(net, envelope) == 400
    before = states(net)
    event = inject(net, [envelope])
    assert [tx.code for tx in event.transactions] == [Code.BAD_PROPOSAL_TXID]
    # The claimed id stays attached to the forgery (its position and its code).
    assert_codes(net, event.number, [Code.BAD_PROPOSAL_TXID], [wrong_id])
    for peer in net.peers:
        assert value(peer, "txid") is None
    assert states(net) == before
    assert_alive(net, alice)


def test_bad_proposal_txid_claiming_a_pending_transactions_id_does_not_stop_the_peers(
    net: InProcessNetwork, alice: ClientIdentity, bob: ClientIdentity
) -> None:
    """A forgery claiming an honest transaction's id, ordered first in the same block:
    the block commits on every peer (the honest transaction loses its id to the forgery,
    as the ledger indexes the first transaction with an id)."""
    honest = net.prepare(alice, "kv", "Put", ["squat", "honest"])
    victim_id = tx_id_of(honest)
    _, squatter = forge(net, bob, rwset(writes("kv", squat="evil")), tx_id=victim_id)
    event = inject(net, [squatter, honest])
    assert [tx.code for tx in event.transactions] == [
        Code.BAD_PROPOSAL_TXID,
        Code.DUPLICATE_TXID,
    ]
    for peer in net.peers:
        assert value(peer, "squat") is None
    assert_alive(net, alice)


def test_duplicate_txid_replayed_in_a_later_block(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    envelope = net.prepare(alice, "kv", "Incr", ["replayed"])
    tx_id = tx_id_of(envelope)
    net.broadcast(envelope)
    net.cut()
    [first] = net.deliver()
    committed = first.tx(tx_id)
    assert committed is not None and committed.code == Code.VALID
    # The orderer admits the replay (it keeps no tx index); every peer flags it.
    before = states(net)
    net.broadcast(envelope)
    net.cut()
    [replay] = net.deliver()
    assert [tx.code for tx in replay.transactions] == [Code.DUPLICATE_TXID]
    for peer in net.peers:
        assert flags(peer, replay.number) == [Code.DUPLICATE_TXID]
        record = peer.ledger.get_tx(tx_id)
        assert record is not None  # the id still points at the first, valid, commit
        assert (record.block_number, record.validation_code) == (first.number, Code.VALID)
        assert value(peer, "replayed") == b"1"
    assert states(net) == before
    assert_alive(net, alice)


def test_duplicate_txid_twice_in_one_block(net: InProcessNetwork, alice: ClientIdentity) -> None:
    envelope = net.prepare(alice, "kv", "Incr", ["twice"])
    tx_id = tx_id_of(envelope)
    net.broadcast(envelope)
    net.broadcast(envelope)
    net.cut()
    [event] = net.deliver()
    assert [tx.code for tx in event.transactions] == [Code.VALID, Code.DUPLICATE_TXID]
    assert [tx.tx_id for tx in event.transactions] == [tx_id, tx_id]
    assert_codes(net, event.number, [Code.VALID, Code.DUPLICATE_TXID], [tx_id, None])
    for peer in net.peers:
        assert value(peer, "twice") == b"1"  # applied once
    assert_converged(net)


def test_endorsement_policy_failures(
    net: InProcessNetwork, alice: ClientIdentity, bob: ClientIdentity
) -> None:
    city, police, authority = net.endorsing_peers()
    # 1. One organisation only, under OutOf(2, ...).
    one_org = net.prepare(alice, "kv", "Put", ["policy", "1"], peers=[city])
    # 2. The same peer twice.
    same_peer = net.prepare(alice, "kv", "Put", ["policy", "2"], peers=[city, city])
    # 3. A real endorsement plus one whose signature is forged (signed over another payload).
    proposal, signed = make_proposal(net, alice, "Put", ["policy", "3"])
    responses = net.endorse(signed, [city, police])
    good = responses[0].endorsement
    assert good is not None
    payload = responses[0].payload
    fake = endorse_by_hand(b"another payload", [police.identity])[0]
    forged_sig = make_envelope(signed, payload, [good, fake], alice.key)
    # 4. A second "endorsement" by a client of another organisation (not a peer).
    carol = net.orgs["Police"].new_identity("carol", "client")
    proposal, signed = make_proposal(net, alice, "Put", ["policy", "4"])
    [real] = net.endorse(signed, [city])
    assert real.endorsement is not None
    by_client = make_envelope(
        signed, real.payload, [real.endorsement, *endorse_by_hand(real.payload, [carol])], alice.key
    )
    # 5. A peer certificate from a CA outside the channel, claiming an member MSP id.
    rogue_ca = InMemoryOrg("LocalAuthority", "LocalAuthority", net.start - timedelta(days=1))
    rogue_peer = rogue_ca.new_identity("peer9.LocalAuthority", "peer")
    proposal, signed = make_proposal(net, alice, "Put", ["policy", "5"])
    [real] = net.endorse(signed, [city])
    assert real.endorsement is not None
    by_outsider = make_envelope(
        signed,
        real.payload,
        [real.endorsement, *endorse_by_hand(real.payload, [rogue_peer])],
        alice.key,
    )
    # 6. No endorsement at all.
    proposal, signed = make_proposal(net, alice, "Put", ["policy", "6"])
    payload = response_payload(proposal, rwset(writes("kv", policy="6")))
    unendorsed = make_envelope(signed, payload, [], alice.key)
    forged = [one_org, same_peer, forged_sig, by_client, by_outsider, unendorsed]
    ids = [tx_id_of(data) for data in forged]
    before = states(net)
    for data in forged:  # the orderer does not judge endorsements: all are ordered
        net.broadcast(data)
    net.cut()
    [event] = net.deliver()
    assert_codes(net, event.number, [Code.ENDORSEMENT_POLICY_FAILURE] * 6, ids)
    assert all("do not satisfy the policy" in tx.reason for tx in event.transactions)
    assert states(net) == before
    # The same kind of transaction with two organisations' endorsements is valid.
    assert net.submit(alice, "kv", "Put", ["policy", "ok"]).code == Code.VALID
    for peer in net.peers:
        assert value(peer, "policy") == b"ok"
    assert authority.ledger.height == city.ledger.height
    assert_converged(net)


def test_two_concurrent_conflicting_updates_give_exactly_one_valid(
    net: InProcessNetwork, alice: ClientIdentity, bob: ClientIdentity
) -> None:
    # Prepared against the same state, ordered into one block.
    first = net.prepare(alice, "kv", "Incr", ["counter"])
    second = net.prepare(bob, "kv", "Incr", ["counter"])
    net.broadcast(first)
    net.broadcast(second)
    net.cut()
    [event] = net.deliver()
    expected = [Code.VALID, Code.MVCC_READ_CONFLICT]
    assert_codes(net, event.number, expected, [tx_id_of(first), tx_id_of(second)])
    for peer in net.peers:
        assert value(peer, "counter") == b"1"
    # Five at once: still exactly one.
    racing = [net.prepare(alice, "kv", "Incr", ["counter"]) for _ in range(5)]
    for data in racing:
        net.broadcast(data)
    net.cut()
    [event] = net.deliver()
    codes = [tx.code for tx in event.transactions]
    assert codes.count(Code.VALID) == 1 and codes.count(Code.MVCC_READ_CONFLICT) == 4
    for peer in net.peers:
        assert value(peer, "counter") == b"2"
    assert_converged(net)


def test_mvcc_conflict_across_consecutive_blocks(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    first = net.prepare(alice, "kv", "Incr", ["consecutive"])
    second = net.prepare(alice, "kv", "Incr", ["consecutive"])
    net.broadcast(first)
    net.cut()
    [one] = net.deliver()
    net.broadcast(second)
    net.cut()
    [two] = net.deliver()
    assert two.number == one.number + 1
    assert_codes(net, one.number, [Code.VALID], [tx_id_of(first)])
    assert_codes(net, two.number, [Code.MVCC_READ_CONFLICT], [tx_id_of(second)])
    for peer in net.peers:
        assert value(peer, "consecutive") == b"1"


def test_earlier_valid_transactions_of_the_block_count_for_mvcc(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    net.submit(alice, "kv", "Put", ["overlay", "0"])
    # A blind write (no read) then a read-modify-write simulated before it.
    blind = net.prepare(alice, "kv", "Put", ["overlay", "7"])
    stale = net.prepare(alice, "kv", "Incr", ["overlay"])
    # A delete then a read-modify-write of the deleted key.
    net.submit(alice, "kv", "Put", ["deleted", "5"])
    delete = net.prepare(alice, "kv", "Del", ["deleted"])
    after_delete = net.prepare(alice, "kv", "Incr", ["deleted"])
    # An INVALID earlier transaction does not count: its rival stays valid.
    city = net.endorsing_peers()[0]
    unendorsed = net.prepare(alice, "kv", "Incr", ["invalid-first"], peers=[city])
    rival = net.prepare(alice, "kv", "Incr", ["invalid-first"])
    batch = [blind, stale, delete, after_delete, unendorsed, rival]
    for data in batch:
        net.broadcast(data)
    net.cut()
    [event] = net.deliver()
    expected = [
        Code.VALID,
        Code.MVCC_READ_CONFLICT,
        Code.VALID,
        Code.MVCC_READ_CONFLICT,
        Code.ENDORSEMENT_POLICY_FAILURE,
        Code.VALID,
    ]
    assert_codes(net, event.number, expected, [tx_id_of(data) for data in batch])
    for peer in net.peers:
        assert value(peer, "overlay") == b"7"
        assert value(peer, "deleted") is None
        assert value(peer, "invalid-first") == b"1"
    assert_converged(net)


def test_range_read_invalidated_by_a_later_insert_is_a_phantom(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    net.submit(alice, "kv", "Put", ["r/b", "1"])
    # Insert committed in an earlier block than the range read.
    scan = net.prepare(alice, "kv", "Scan", ["r/a", "r/c", "summary-1"])
    assert net.submit(alice, "kv", "Put", ["r/b2", "1"]).code == Code.VALID
    net.broadcast(scan)
    net.cut()
    [event] = net.deliver()
    assert_codes(net, event.number, [Code.PHANTOM_READ_CONFLICT], [tx_id_of(scan)])
    # In the same block: the insert ordered first makes a phantom, ordered after does not;
    # an insert outside the range, a delete and an update inside it.
    cases = [
        (("Put", ["r/b3", "1"]), Code.PHANTOM_READ_CONFLICT),
        (("Put", ["r/z", "1"]), Code.VALID),
        (("Del", ["r/b"]), Code.PHANTOM_READ_CONFLICT),
        (("Put", ["r/b2", "changed"]), Code.PHANTOM_READ_CONFLICT),
    ]
    for index, ((function, args), scan_code) in enumerate(cases):
        scan = net.prepare(alice, "kv", "Scan", ["r/a", "r/c", f"summary-{index + 2}"])
        writer = net.prepare(alice, "kv", function, args)
        net.broadcast(writer)
        net.broadcast(scan)
        net.cut()
        [event] = net.deliver()
        assert_codes(net, event.number, [Code.VALID, scan_code], [tx_id_of(writer), tx_id_of(scan)])
    # The range read ordered before the insert is valid and saw the old range.
    scan = net.prepare(alice, "kv", "Scan", ["r/a", "r/c", "summary-last"])
    insert = net.prepare(alice, "kv", "Put", ["r/b4", "1"])
    net.broadcast(scan)
    net.broadcast(insert)
    net.cut()
    [event] = net.deliver()
    assert [tx.code for tx in event.transactions] == [Code.VALID, Code.VALID]
    for peer in net.peers:
        assert value(peer, "summary-1") is None
        assert value(peer, "summary-2") is None
        assert value(peer, "summary-3") is not None  # outside the range: valid
        assert json.loads(value(peer, "summary-last") or b"") == ["r/b2", "r/b3"]
    assert_converged(net)


def test_partial_composite_key_read_invalidated_by_an_insert_is_a_phantom(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    assert net.submit(alice, "kv", "PutTagged", ["camera", "c1", "x"]).code == Code.VALID
    scan = net.prepare(alice, "kv", "ScanTagged", ["camera", "cameras-1"])
    insert = net.prepare(alice, "kv", "PutTagged", ["camera", "c2", "x"])
    other_type = net.prepare(alice, "kv", "PutTagged", ["cameraman", "c3", "x"])
    scan_ok = net.prepare(alice, "kv", "ScanTagged", ["camera", "cameras-2"])
    # An insert of another object type does not touch the camera range.
    net.broadcast(other_type)
    net.broadcast(scan_ok)
    net.cut()
    [event] = net.deliver()
    assert [tx.code for tx in event.transactions] == [Code.VALID, Code.VALID]
    net.broadcast(insert)
    net.cut()
    net.deliver()
    net.broadcast(scan)
    net.cut()
    [event] = net.deliver()
    assert_codes(net, event.number, [Code.PHANTOM_READ_CONFLICT], [tx_id_of(scan)])
    for peer in net.peers:
        assert value(peer, "cameras-1") is None
        assert json.loads(value(peer, "cameras-2") or b"") == ["c1"]
    assert_converged(net)


def test_invalid_endorser_transaction(net: InProcessNetwork, alice: ClientIdentity) -> None:
    # 1. Real endorsements of one proposal attached to another proposal of the client.
    _, signed_first = make_proposal(net, alice, "Put", ["endorser", "endorsed"])
    _, signed_second = make_proposal(net, alice, "Put", ["endorser", "substituted"])
    responses = net.endorse(signed_first)
    mismatched = assemble_envelope(alice, signed_second, responses).encode()
    # 2. Endorsements of a failed (500) simulation: the endorsers refuse to sign those ...
    _, crash = make_proposal(net, alice, "Crash")
    for response in net.endorse(crash):
        assert response.response.status == 500 and response.endorsement is None
    with pytest.raises(EndorsementError):
        assemble_envelope(alice, crash, net.endorse(crash))
    # ... so they are signed by hand with the peers' real keys.
    _, status_500 = forge(
        net,
        alice,
        rwset(writes("kv", endorser="crashed")),
        function="Crash",
        response=Response(500, "contract bug", b""),
    )
    # 3. A response naming another contract than the proposal.
    proposal, signed = make_proposal(net, alice, "Put", ["endorser", "elsewhere"])
    payload = response_payload(proposal, rwset(writes("kv", endorser="x")), contract="audit")
    other_contract = make_envelope(
        signed, payload, endorse_by_hand(payload, peer_identities(net)), alice.key
    )
    forged = [mismatched, status_500, other_contract]
    before = states(net)
    for data in forged:
        net.broadcast(data)
    net.cut()
    [event] = net.deliver()
    ids = [tx_id_of(data) for data in forged]
    assert_codes(net, event.number, [Code.INVALID_ENDORSER_TRANSACTION] * 3, ids)
    assert states(net) == before
    assert_alive(net, alice)


def test_bad_response_payload(net: InProcessNetwork, alice: ClientIdentity) -> None:
    proposal, signed = make_proposal(net, alice, "Put", ["response", "x"])
    junk = b"\x00not a response payload"
    envelope = make_envelope(signed, junk, endorse_by_hand(junk, peer_identities(net)), alice.key)
    before = states(net)
    net.broadcast(envelope)  # well formed as far as the orderer looks
    net.cut()
    [event] = net.deliver()
    assert_codes(net, event.number, [Code.BAD_RESPONSE_PAYLOAD], [proposal.tx_id])
    assert states(net) == before
    assert_alive(net, alice)


def test_illegal_and_invalid_writesets(net: InProcessNetwork, alice: ClientIdentity) -> None:
    config_before = current_config(net)
    # A kv transaction writing into the audit contract's namespace ...
    _, other_namespace = forge(net, alice, rwset(writes("audit", stolen="yes")))
    # ... or into the channel configuration (a contract may read it, never write it) ...
    _, into_config = forge(net, alice, rwset(writes(CONFIG_NAMESPACE, channel="hijacked")))
    # ... or both its own namespace and another one.
    _, both = forge(net, alice, rwset(writes("kv", mine="1"), writes("audit", theirs="1")))
    # A write to an empty key: not a valid key at all.
    empty_key = NamespaceRWSet("kv", (), (), (KVWriteEntry("", False, b"x"),))
    _, invalid_key = forge(net, alice, rwset(empty_key))
    forged = [other_namespace, into_config, both, invalid_key]
    before = states(net)
    for data in forged:
        net.broadcast(data)
    net.cut()
    [event] = net.deliver()
    expected = [Code.ILLEGAL_WRITESET] * 3 + [Code.INVALID_WRITESET]
    assert_codes(net, event.number, expected, [tx_id_of(data) for data in forged])
    assert states(net) == before
    for peer in net.peers:
        assert value(peer, "stolen", "audit") is None
        assert peer.ledger.channel_config() == config_before
        assert peer.committer.channel.config == config_before
    assert_alive(net, alice)


def test_invalid_chaincode(net: InProcessNetwork, alice: ClientIdentity) -> None:
    _, signed = make_proposal(net, alice, "Put", ["k", "v"], contract="ghost")
    for response in net.endorse(signed):
        assert response.response.status == 404 and response.endorsement is None
    tx_id, envelope = forge(net, alice, rwset(writes("ghost", k="v")), contract="ghost")
    before = states(net)
    net.broadcast(envelope)
    net.cut()
    [event] = net.deliver()
    assert_codes(net, event.number, [Code.INVALID_CHAINCODE], [tx_id])
    assert states(net) == before


def test_target_chain_not_found(net: InProcessNetwork, alice: ClientIdentity) -> None:
    _, signed = make_proposal(net, alice, "Put", ["chain", "x"], channel_id="other-channel")
    for response in net.endorse(signed):
        assert response.response.status == 404 and response.endorsement is None
    tx_id, envelope = forge(net, alice, rwset(writes("kv", chain="x")), channel_id="other")
    assert refused(net, envelope) == 404
    before = states(net)
    event = inject(net, [envelope])
    assert_codes(net, event.number, [Code.TARGET_CHAIN_NOT_FOUND], [tx_id])
    assert states(net) == before
    assert_alive(net, alice)


def test_expired_client_certificate(net: InProcessNetwork, alice: ClientIdentity) -> None:
    org = net.orgs["CityCCTV"]
    short = as_client(
        org.new_identity("short-lived", "client", validity=timedelta(minutes=10), now=net.clock.now)
    )
    # Endorsed and signed while the certificate is valid, committed after it expired:
    # judged at the proposal's time, so valid (evidence signed in time stays valid).
    in_time = net.prepare(short, "kv", "Put", ["expiry", "in-time"])
    assert net.submit(short, "kv", "Put", ["expiry", "before"]).code == Code.VALID
    net.clock.advance(20 * 60 * 1000)
    # Now endorsers and orderer refuse the expired creator ...
    _, signed = make_proposal(net, short, "Put", ["expiry", "late"])
    for response in net.endorse(signed):
        assert response.response.status == 403 and "expired" in response.response.message
    assert refused(net, in_time) == 403
    # ... and a transaction proposed after expiry, endorsed by hand, is flagged.
    tx_id, late = forge(net, short, rwset(writes("kv", expiry="late")))
    before = states(net)
    event = inject(net, [late, in_time])
    assert_codes(
        net,
        event.number,
        [Code.EXPIRED_OR_REVOKED_IDENTITY, Code.VALID],
        [tx_id, tx_id_of(in_time)],
    )
    assert "expired" in event.transactions[0].reason
    after = states(net)
    for peer, old, new in zip(net.peers, before, after, strict=True):
        changed = {key for key in new if new[key] != old.get(key)}
        assert changed == {("kv", "expiry")}
        assert value(peer, "expiry") == b"in-time"
    assert_alive(net, alice)


def test_config_transactions_without_authority_are_invalid(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    orgs = list(net.orgs.values())
    config_before = current_config(net)

    def batch_of(count: int) -> BatchConfig:
        # A distinct configuration per case: a config tx id is derived from its content.
        return BatchConfig(max_message_count=count)

    one_admin = config_update(net, orgs[:1], batch=batch_of(3))
    wrong_sequence = config_update(
        net, orgs, sequence=config_before.sequence + 5, batch=batch_of(4)
    )
    other_channel = config_update(net, orgs, channel_id="elsewhere", batch=batch_of(5))
    # Signed by enough admins, but nodes could not load it (a policy that does not parse).
    unusable = config_update(
        net, orgs, policies={**config_before.policies, "Writers": "OR('CityCCTV.member'"}
    )
    # Signed by clients, not admins.
    clients = [net.orgs[name].new_identity(f"config-signer-{name}", "client") for name in net.orgs]
    target = config_update(net, [], batch=batch_of(6)).config
    by_clients = ConfigTransaction(
        target, tuple(sign_config(target, c.key, c.msp_id, c.cert_pem) for c in clients)
    )
    # Admin signatures over another configuration than the one carried.
    signed_other = config_update(net, orgs, batch=batch_of(7))
    swapped = ConfigTransaction(
        config_update(net, [], batch=batch_of(8)).config, signed_other.signatures
    )
    cases = [
        (one_admin, "1 valid admin signature(s)"),
        (wrong_sequence, "does not follow"),
        (other_channel, "another channel"),
        (unusable, "unusable"),
        (by_clients, "0 valid admin signature(s)"),
        (swapped, "0 valid admin signature(s)"),
    ]
    for config_tx, _ in cases:
        assert refused(net, config_tx.encode()) == 403
    for config_tx, reason in cases:
        before = states(net)
        event = inject(net, [config_tx.encode()])
        assert_codes(net, event.number, [Code.INVALID_CONFIG_TRANSACTION], [config_tx.tx_id])
        assert reason in event.transactions[0].reason
        assert states(net) == before
        assert net.orderer_ledger.channel_config() == config_before
    # A valid update that is not alone in its block is invalid too (the other tx is not).
    valid_update = config_update(net, majority(net), batch=batch_of(9))
    companion = net.prepare(alice, "kv", "Put", ["companion", "1"])
    event = inject(net, [valid_update.encode(), companion])
    assert_codes(
        net,
        event.number,
        [Code.INVALID_CONFIG_TRANSACTION, Code.VALID],
        [valid_update.tx_id, tx_id_of(companion)],
    )
    for peer in net.peers:
        assert peer.ledger.channel_config() == config_before
        assert peer.committer.channel.config == config_before
        assert value(peer, "companion") == b"1"
    assert current_config(net).batch == config_before.batch
    assert_alive(net, alice)


def test_revoked_client_after_a_crl_config_update(tmp_path: Path) -> None:
    with new_network(tmp_path) as net:
        alice = net.client("CityCCTV", "alice")
        city = net.orgs["CityCCTV"]
        enrolled = city.new_identity("mallory", "client", now=net.clock.now)
        mallory = as_client(enrolled)
        assert net.submit(mallory, "kv", "Put", ["revocation", "before"]).code == Code.VALID
        # Endorsed (for real) and signed before the revocation.
        pending = net.prepare(mallory, "kv", "Put", ["revocation", "after"])
        pending_id = tx_id_of(pending)
        # Revoke, and carry the CRL into the channel with a majority of admin signatures.
        city.revoke(name="mallory", now=net.clock.now)
        crl = city.crl(net.clock.now)
        config = current_config(net)
        organizations = tuple(
            city.organization_config(crls=[crl]) if org.msp_id == city.msp_id else org
            for org in config.organizations
        )
        update = config_update(net, majority(net), organizations=organizations)
        blocks = net.broadcast(update.encode())
        assert [len(block.transactions) for block in blocks] == [1]  # alone in its block
        [event] = net.deliver()
        assert_codes(net, event.number, [Code.VALID], [update.tx_id])
        for peer in net.peers:
            assert peer.committer.channel.config.sequence == 1
            assert peer.ledger.channel_config() == update.config
        # The orderer and the endorsers now refuse her ...
        assert refused(net, pending) == 403
        _, signed = make_proposal(net, mallory, "Put", ["revocation", "new"])
        for response in net.endorse(signed):
            assert response.response.status == 403 and "revoked" in response.response.message
        # ... and every peer flags the transaction endorsed before the revocation.
        before = states(net)
        event = inject(net, [pending])
        assert_codes(net, event.number, [Code.EXPIRED_OR_REVOKED_IDENTITY], [pending_id])
        assert "revoked" in event.transactions[0].reason
        assert states(net) == before
        for peer in net.peers:
            assert value(peer, "revocation") == b"before"
        assert_alive(net, alice)


def test_contract_reading_the_configuration_conflicts_with_a_config_update(
    tmp_path: Path,
) -> None:
    with new_network(tmp_path) as net:
        alice = net.client("CityCCTV", "alice")
        reader = net.prepare(alice, "kv", "ConfigSequence", ["seen-sequence"])
        update = config_update(net, majority(net), batch=BatchConfig(max_message_count=7))
        net.broadcast(update.encode())
        net.deliver()
        net.broadcast(reader)
        net.cut()
        [event] = net.deliver()
        assert_codes(net, event.number, [Code.MVCC_READ_CONFLICT], [tx_id_of(reader)])
        assert net.submit(alice, "kv", "ConfigSequence", ["seen-sequence"]).code == Code.VALID
        for peer in net.peers:
            assert value(peer, "seen-sequence") == b"1"
        assert_converged(net)
