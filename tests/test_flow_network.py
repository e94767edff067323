"""The whole channel in one process: blocks refused whole, convergence of every peer,
events, submit-and-wait, and a batch configuration update that changes block cutting.

Real components throughout (CAs, ECDSA, LevelDB ledgers); blocks the orderer would never
cut are built and signed by the test, with the orderer's key or with keys that are not
an orderer's.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flow_helpers import (
    Code,
    assert_alive,
    assert_codes,
    assert_converged,
    config_update,
    flags,
    majority,
    new_network,
    signed_block,
    states,
    tx_id_of,
    value,
)

from cctvchain.client.transaction import ClientIdentity, EndorsementError
from cctvchain.inprocess.network import InProcessNetwork, InProcessPeer
from cctvchain.ledger import keys
from cctvchain.ledger.block import Block, BlockData, sign_block
from cctvchain.ledger.config import BatchConfig
from cctvchain.ledger.store import Ledger
from cctvchain.msp.testing import EnrolledIdentity, InMemoryOrg
from cctvchain.peer.events import BlockEvent
from cctvchain.peer.validator import BlockRejected
from cctvchain.tx.messages import Envelope, contract_event_id


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessNetwork]:
    with new_network(tmp_path_factory.mktemp("flow-network")) as network:
        yield network


@pytest.fixture(scope="module")
def alice(net: InProcessNetwork) -> ClientIdentity:
    return net.client("CityCCTV", "alice")


def snapshot(net: InProcessNetwork) -> list[tuple[int, bytes]]:
    return [(peer.ledger.height, peer.ledger.head_hash) for peer in net.peers]


def assert_refused_everywhere(net: InProcessNetwork, block: Block, reason: str) -> None:
    """Every peer refuses ``block`` whole: nothing written, state and head unchanged."""
    before, before_state = snapshot(net), states(net)
    for peer in net.peers:
        with pytest.raises(BlockRejected) as info:
            peer.committer.commit(block, net.clock.now)
        assert info.value.number == block.number
        assert reason in info.value.reason
    assert snapshot(net) == before
    assert states(net) == before_state


def commit_everywhere(net: InProcessNetwork, block: Block) -> None:
    """Deliver a block the orderer did not cut itself (keeps the orderer in step)."""
    net.orderer_ledger.append_block(block)
    net.orderer.height += 1
    net.orderer.head_hash = block.hash()
    net.deliver()


def test_block_without_a_valid_orderer_signature_is_refused_whole(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    assert net.submit(alice, "kv", "Put", ["signed-by", "nobody"]).valid
    envelope = net.prepare(alice, "kv", "Put", ["signed-by", "orderer"])
    height, head = net.orderer.height, net.orderer.head_hash
    city, police = net.orgs["CityCCTV"], net.orgs["Police"]
    when = net.clock.now - timedelta(hours=1)
    not_orderers: dict[str, EnrolledIdentity] = {
        "peer": net.peers[0].identity,
        "client": city.new_identity("block-client", "client"),
        "admin": city.admin,
        # an orderer of an organisation the BlockValidation policy does not name
        "Police orderer": police.new_identity("orderer9", "orderer"),
        # an orderer certificate from a CA outside the channel, claiming CityCCTV
        "outsider": InMemoryOrg("CityCCTV", "CityCCTV", when).new_identity("orderer0", "orderer"),
    }
    reasons = {
        "peer": "peer0.CityCCTV is a peer; expected one of orderer",
        "client": "block-client is a client; expected one of orderer",
        "admin": "admin is a admin; expected one of orderer",
        "Police orderer": "orderer9 of Police is not a block signer",
        "outsider": "does not chain to a CA of MSP CityCCTV",
    }
    for label, signer in not_orderers.items():
        block = signed_block(height, head, [envelope], signer)
        assert_refused_everywhere(net, block, reasons[label])
    orderer = net.orderer_identity
    genuine = signed_block(height, head, [envelope], orderer)
    # No signature at all.
    assert_refused_everywhere(net, genuine.with_signatures([]), "no orderer signature")
    # The orderer's certificate with a signature made by another key.
    wrong_key = sign_block(
        genuine.header, net.peers[0].identity.key, orderer.msp_id, orderer.cert_pem
    )
    assert_refused_everywhere(
        net, genuine.with_signatures([wrong_key]), "signature does not verify"
    )
    # The orderer's genuine signature of another block, copied over.
    previous = net.orderer_ledger.get_block(height - 1)
    copied = genuine.with_signatures(previous.metadata.signatures)
    assert previous.metadata.signatures
    assert_refused_everywhere(net, copied, "signature does not verify")
    # The genuine orderer certificate presented under another MSP id.
    relabelled = sign_block(genuine.header, orderer.key, "Police", orderer.cert_pem)
    assert_refused_everywhere(
        net, genuine.with_signatures([relabelled]), "does not chain to a CA of MSP Police"
    )
    # One valid orderer signature among invalid ones is enough; the peers were not stuck.
    peer_signature = sign_block(
        genuine.header, net.peers[0].identity.key, "CityCCTV", net.peers[0].identity.cert_pem
    )
    accepted = genuine.with_signatures([peer_signature, *genuine.metadata.signatures])
    commit_everywhere(net, accepted)
    assert_codes(net, height, [Code.VALID], [tx_id_of(envelope)])
    for peer in net.peers:
        assert value(peer, "signed-by") == b"orderer"
    assert_converged(net)


def test_block_with_a_broken_hash_chain_is_refused_whole(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    orderer = net.orderer_identity
    for _ in range(2):
        assert net.submit(alice, "kv", "Put", ["chain", "zero"]).valid
    first = net.prepare(alice, "kv", "Put", ["chain", "first"])
    second = net.prepare(alice, "kv", "Put", ["chain", "second"])
    height, head = net.orderer.height, net.orderer.head_hash
    # Signed by the real orderer, but not following the head.
    wrong_previous = signed_block(height, bytes(32), [first], orderer)
    assert_refused_everywhere(net, wrong_previous, "previous hash")
    fork = signed_block(height, net.orderer_ledger.get_block_hash(height - 2), [first], orderer)
    assert_refused_everywhere(net, fork, "previous hash")
    skipped = signed_block(height + 1, head, [first], orderer)
    assert_refused_everywhere(net, skipped, "expected block number")
    replayed = net.orderer_ledger.get_block(height - 1)
    assert_refused_everywhere(net, replayed, "expected block number")
    # Transactions tampered with after the orderer signed: the data hash gives it away.
    genuine = signed_block(height, head, [first], orderer)
    swapped = Block(genuine.header, BlockData((second,)), genuine.metadata).with_flags(
        [Code.NOT_VALIDATED]
    )
    assert_refused_everywhere(net, swapped, "data hash")
    extra = Block(genuine.header, BlockData((first, second)), genuine.metadata).with_flags(
        [Code.NOT_VALIDATED] * 2
    )
    assert_refused_everywhere(net, extra, "data hash")
    # A header re-signed over the tampered data would need the orderer's key: signed by a
    # peer it is still refused.
    resigned = signed_block(height, head, [second], net.peers[1].identity)
    assert_refused_everywhere(net, resigned, "no valid orderer signature")
    # The genuine block still commits on every peer.
    commit_everywhere(net, genuine)
    assert_codes(net, height, [Code.VALID], [tx_id_of(first)])
    for peer in net.peers:
        assert value(peer, "chain") == b"first"
        assert peer.ledger.verify_chain().head_hash == peer.ledger.head_hash
    assert_converged(net)


def test_block_and_contract_events_reach_subscribers(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    received: list[list[BlockEvent]] = [[] for _ in net.peers]
    unsubscribe = [
        peer.committer.hub.subscribe(events.append)
        for peer, events in zip(net.peers, received, strict=True)
    ]

    def broken(event: BlockEvent) -> None:
        raise RuntimeError("a subscriber bug")

    hub = net.peers[0].committer.hub
    hub.subscribe(broken)
    failed_before = hub.failed_subscribers
    city = net.endorsing_peers()[0]
    put = net.prepare(alice, "kv", "Put", ["evented", "1"])
    incr = net.prepare(alice, "kv", "Incr", ["evented-counter"])
    conflicting = net.prepare(alice, "kv", "Incr", ["evented-counter"])
    unendorsed = net.prepare(alice, "kv", "Put", ["evented", "2"], peers=[city])
    batch = [put, incr, conflicting, unendorsed]
    for envelope in batch:
        net.broadcast(envelope)
    net.cut()
    net.deliver()
    submitted = net.submit(alice, "kv", "Incr", ["evented-counter"])
    assert hub.failed_subscribers == failed_before + 1  # dropped, the commit went on
    ids = [tx_id_of(envelope) for envelope in batch]
    for peer, events in zip(net.peers, received, strict=True):
        assert [event.number for event in events] == [submitted.block - 1, submitted.block]
        for event in events:
            block = peer.ledger.get_block(event.number)
            assert event.block_hash == block.hash()
            assert [tx.code for tx in event.transactions] == list(block.metadata.tx_flags)
        first, second = events
        assert [tx.tx_id for tx in first.transactions] == ids
        assert [tx.code for tx in first.transactions] == [
            Code.VALID,
            Code.VALID,
            Code.MVCC_READ_CONFLICT,
            Code.ENDORSEMENT_POLICY_FAILURE,
        ]
        # Contract events only for the VALID transactions, with their transaction's id.
        assert [(e.tx_id, e.name, e.payload) for e in first.contract_events] == [
            (ids[0], "Put", b"evented=1"),
            (ids[1], "Incr", b"evented-counter=1"),
            (ids[1], "Touched", b"evented-counter"),
        ]
        assert [(e.tx_id, e.index, e.name) for e in second.contract_events] == [
            (submitted.tx_id, 0, "Incr"),
            (submitted.tx_id, 0, "Touched"),
        ]
        everything = first.contract_events + second.contract_events
        for contract_event in everything:
            assert contract_event.contract == "kv"
            assert contract_event.block in (first.number, second.number)
        positions = [0, 0, 1, 0, 1]
        assert [e.event_id for e in everything] == [
            contract_event_id(e.tx_id, position)
            for e, position in zip(everything, positions, strict=True)
        ]
        assert len({e.event_id for e in everything}) == len(everything)
    # Stable: every peer reports the same events with the same ids.
    reference = [(e.number, e.transactions, e.contract_events) for e in received[0]]
    for events in received[1:]:
        assert [(e.number, e.transactions, e.contract_events) for e in events] == reference
    # An unsubscribed subscriber hears nothing more.
    for stop in unsubscribe:
        stop()
    net.submit(alice, "kv", "Put", ["evented", "3"])
    assert all(len(events) == 2 for events in received)


def test_submit_waits_for_commit_and_returns_the_validation_code(
    net: InProcessNetwork, alice: ClientIdentity
) -> None:
    event = net.submit(alice, "kv", "Incr", ["submitted"])
    assert (event.code, event.code_name, event.valid) == (Code.VALID, "VALID", True)
    for peer in net.peers:
        record = peer.ledger.get_tx(event.tx_id or "")
        assert record is not None
        assert (record.block_number, record.tx_number) == (event.block, event.index)
        assert value(peer, "submitted") == b"1"
    # A conflicting envelope already pending at the orderer: submit reports the conflict.
    rival = net.prepare(alice, "kv", "Incr", ["submitted"])
    net.broadcast(rival)
    lost = net.submit(alice, "kv", "Incr", ["submitted"])
    assert (lost.code, lost.code_name, lost.valid) == (
        Code.MVCC_READ_CONFLICT,
        "MVCC_READ_CONFLICT",
        False,
    )
    assert lost.index == 1 and "changed since simulation" in lost.reason
    assert_codes(
        net, lost.block, [Code.VALID, Code.MVCC_READ_CONFLICT], [tx_id_of(rival), lost.tx_id]
    )
    for peer in net.peers:
        assert value(peer, "submitted") == b"2"
    # A proposal the endorsers refuse is never ordered.
    height = net.orderer_ledger.height
    with pytest.raises(EndorsementError, match="not found"):
        net.submit(alice, "kv", "Get", ["no-such-key"])
    assert net.orderer_ledger.height == height and net.orderer.cutter.pending_count == 0
    assert_converged(net)


def test_batch_config_update_changes_block_cutting(tmp_path: Path) -> None:
    with new_network(tmp_path) as net:
        alice = net.client("CityCCTV", "alice")
        assert net.batch.max_message_count > 5
        # Under the genesis configuration three envelopes wait for the timeout together.
        for i in range(3):
            assert net.broadcast(net.prepare(alice, "kv", "Put", [f"pre-{i}", "x"])) == []
        [block] = net.cut()
        assert len(block.transactions) == 3
        net.deliver()
        # An envelope pending when the update arrives is cut before it, in its own block.
        pending = net.prepare(alice, "kv", "Put", ["pending", "x"])
        assert net.broadcast(pending) == []
        update = config_update(
            net, majority(net), batch=BatchConfig(max_message_count=2, batch_timeout_ms=250)
        )
        blocks = net.broadcast(update.encode())
        assert [len(b.transactions) for b in blocks] == [1, 1]
        assert blocks[0].transactions == (pending,)
        assert blocks[1].transactions == (update.encode(),)
        net.deliver()
        assert_codes(net, blocks[0].number, [Code.VALID], [tx_id_of(pending)])
        assert_codes(net, blocks[1].number, [Code.VALID], [update.tx_id])
        for peer in net.peers:
            assert peer.committer.channel.config.batch.max_message_count == 2
            assert peer.ledger.channel_config().sequence == 1
        # Now the orderer cuts a block every two envelopes.
        envelopes = [net.prepare(alice, "kv", "Put", [f"post-{i}", "x"]) for i in range(5)]
        sizes = [[len(b.transactions) for b in net.broadcast(e)] for e in envelopes]
        assert sizes == [[], [2], [], [2], []]
        [last] = net.cut()
        assert len(last.transactions) == 1
        net.deliver()
        first_after = blocks[1].number + 1
        for peer in net.peers:
            for number in range(first_after, peer.ledger.height):
                assert flags(peer, number) in ([Code.VALID] * 2, [Code.VALID])
            for i in range(5):
                assert value(peer, f"post-{i}") == b"x"
        assert net.orderer_ledger.height == first_after + 3
        assert_converged(net)


def _model_apply(model: dict[str, bytes], function: str, args: tuple[str, ...]) -> None:
    """What a VALID transaction of the workload does to state, computed independently."""
    if function == "Incr":
        model[args[0]] = str(int(model.get(args[0], b"0")) + 1).encode()
    elif function == "Put":
        model[args[0]] = args[1].encode()
    elif function == "Del":
        model.pop(args[0], None)
    elif function == "Scan":
        start, end, summary = args
        found = [k for k in sorted(model) if start <= k < end and not k.startswith("\x00")]
        model[summary] = json.dumps(found).encode()
    elif function == "PutTagged":
        model[keys.create_composite_key(args[0], [args[1]])] = args[2].encode()
    elif function == "ScanTagged":
        prefix = keys.create_composite_key(args[0], [])
        found = [keys.split_composite_key(k)[1][0] for k in sorted(model) if k.startswith(prefix)]
        model[args[1]] = json.dumps(found).encode()
    else:  # pragma: no cover - the workload uses only the functions above
        raise AssertionError(function)


def test_every_peer_converges_after_a_mixed_conflicting_workload(tmp_path: Path) -> None:
    rng = random.Random(20260101)
    with new_network(
        tmp_path,
        peers_per_org=2,
        batch=BatchConfig(max_message_count=6, batch_timeout_ms=250),
    ) as net:
        clients = [net.client(org, f"user-{org}") for org in net.orgs]
        by_org: dict[str, list[InProcessPeer]] = {}
        for peer in net.peers:
            by_org.setdefault(peer.org, []).append(peer)
        counters = [f"counter-{i}" for i in range(3)]
        plain = [f"p{i}" for i in range(6)]
        submitted = 0
        while submitted < 54:
            group = rng.randint(1, 6)
            for _ in range(group):
                roll = rng.random()
                if roll < 0.45:
                    function, args = "Incr", [rng.choice(counters)]
                elif roll < 0.65:
                    function, args = "Put", [rng.choice(plain), str(rng.randint(0, 99))]
                elif roll < 0.72:
                    function, args = "Del", [rng.choice(plain)]
                elif roll < 0.82:
                    function, args = "Scan", ["p1", "p4", f"scan-{submitted}"]
                elif roll < 0.9:
                    function, args = "PutTagged", ["cam", rng.choice("abc"), str(submitted)]
                else:
                    function, args = "ScanTagged", ["cam", f"tags-{submitted}"]
                if rng.random() < 0.08:
                    # two peers of one organisation: not two organisations
                    endorsers = by_org[rng.choice(list(by_org))]
                else:
                    orgs = rng.sample(list(by_org), rng.choice([2, 3]))
                    endorsers = [rng.choice(by_org[org]) for org in orgs]
                envelope = net.prepare(rng.choice(clients), "kv", function, args, endorsers)
                net.broadcast(envelope)
                submitted += 1
            if rng.random() < 0.5:
                net.cut()
                net.deliver()
        net.cut()
        net.deliver()

        # Same chain and state everywhere, and every ledger self-consistent.
        assert_converged(net)
        for peer in net.peers:
            report = peer.ledger.verify_chain()
            assert (report.height, report.head_hash) == (peer.ledger.height, peer.ledger.head_hash)
        # The flags tell exactly what happened: replaying only the VALID transactions in
        # block order with an independent model gives the state every peer holds.
        reference = net.peers[0].ledger
        model: dict[str, bytes] = {}
        codes: list[Code] = []
        for number in range(1, reference.height):
            block = reference.get_block(number)
            for data, flag in zip(block.transactions, block.metadata.tx_flags, strict=True):
                codes.append(Code(flag))
                if flag == Code.VALID:
                    proposal = Envelope.decode(data).proposal
                    _model_apply(model, proposal.function, proposal.args)
        assert len(codes) == submitted
        state = {key: v.value for (ns, key), v in reference.dump_state().items() if ns == "kv"}
        assert state == model
        # The workload really conflicted.
        assert set(codes) <= {
            Code.VALID,
            Code.MVCC_READ_CONFLICT,
            Code.PHANTOM_READ_CONFLICT,
            Code.ENDORSEMENT_POLICY_FAILURE,
        }
        assert codes.count(Code.MVCC_READ_CONFLICT) >= 3
        assert codes.count(Code.PHANTOM_READ_CONFLICT) >= 1
        assert codes.count(Code.ENDORSEMENT_POLICY_FAILURE) >= 1
        assert codes.count(Code.VALID) >= submitted // 3
        # Rebuilt from its block files alone, a peer's ledger holds the same state.
        peer = net.peers[-1]
        expected = peer.ledger.dump_state()
        peer.ledger.close()
        peer.ledger = Ledger.rebuild(net.root / peer.name)
        peer.committer.ledger = peer.ledger
        assert peer.ledger.dump_state() == expected
        assert peer.ledger.head_hash in net.head_hashes()
        assert_alive(net, clients[0])


def test_one_peer_endorsing_twice_counts_once(tmp_path: Path) -> None:
    """Under a policy naming one organisation's peer twice, two distinct peers of that
    organisation are needed: the same peer's endorsement twice is one endorsement."""
    twice = "AND('CityCCTV.peer', 'CityCCTV.peer')"
    with new_network(tmp_path, peers_per_org=2, endorsement={"kv": twice, "audit": twice}) as net:
        alice = net.client("CityCCTV", "alice")
        first, second = (peer for peer in net.peers if peer.org == "CityCCTV")
        police = next(peer for peer in net.peers if peer.org == "Police")
        batch = [
            net.prepare(alice, "kv", "Incr", ["twice"], [first, first]),
            net.prepare(alice, "kv", "Incr", ["twice"], [second, second, second]),
            net.prepare(alice, "kv", "Incr", ["twice"], [first, police]),
            net.prepare(alice, "kv", "Put", ["distinct", "yes"], [first, second]),
        ]
        for envelope in batch:
            net.broadcast(envelope)
        net.cut()
        [event] = net.deliver()
        failure = Code.ENDORSEMENT_POLICY_FAILURE
        expected = [failure, failure, failure, Code.VALID]
        assert_codes(net, event.number, expected, [tx_id_of(e) for e in batch])
        for peer in net.peers:
            assert value(peer, "twice") is None
            assert value(peer, "distinct") == b"yes"
        assert_converged(net)
