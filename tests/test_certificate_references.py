"""Certificate references (SHA-256 of a PEM in place of the PEM) through the real
in-process network: real LevelDB ledgers, real X.509 certificates from real CAs, the real
endorsers, orderer, validator and committer.

A reference resolves against the ledger's certificate registry (every PEM an earlier
block's transactions carried), and for block signatures against the channel
configuration's orderer certificates; it grants no trust — the PEM found is validated by
the MSP as if it had been carried.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import plyvel
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
    forge,
    inject,
    majority,
    make_envelope,
    make_proposal,
    new_network,
    peer_identities,
    response_payload,
    rwset,
    signed_block,
    states,
    tx_id_of,
    value,
    writes,
)
from verify_world import CAMERA, AnchoredCamera, anchored_camera, make_camera_clip

from cctvchain.crypto import Domain
from cctvchain.inprocess.network import InProcessNetwork
from cctvchain.ledger import keys
from cctvchain.ledger.block import sign_block
from cctvchain.ledger.errors import LedgerCorruptError
from cctvchain.ledger.store import Ledger
from cctvchain.msp.certref import (
    REFERENCE_SIZE,
    UnknownCertificateReference,
    certificate_reference,
    is_reference,
    resolve_certificate,
)
from cctvchain.orderer.service import _refusal
from cctvchain.ordering.orderer import BroadcastRefused
from cctvchain.peer.validator import BlockRejected
from cctvchain.peernode.wire import refusal_code
from cctvchain.tx.messages import Endorsement, Envelope, SerializedIdentity, endorsement_message
from cctvchain.verify.bundle import (
    BundleError,
    EvidenceBundle,
    build_bundle,
    check_bundle,
    config_block_numbers,
    read_bundle,
    records_with_proofs,
)

UNKNOWN = "unknown_certificate_reference"


@pytest.fixture
def net(tmp_path: Path) -> Iterator[InProcessNetwork]:
    with new_network(tmp_path) as network:
        yield network


def envelope_of(net: InProcessNetwork, number: int, index: int = 0) -> Envelope:
    return Envelope.decode(net.peers[0].ledger.get_block(number).transactions[index])


# -- the helpers ------------------------------------------------------------------------------


def test_reference_is_the_sha256_of_the_pem_and_resolves_only_by_hash(
    net: InProcessNetwork,
) -> None:
    pem = net.client("CityCCTV", "alice").cert
    reference = certificate_reference(pem)
    assert len(reference) == REFERENCE_SIZE and is_reference(reference)
    assert not is_reference(pem) and pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert resolve_certificate(pem, None) == pem  # a PEM is carried as is
    assert resolve_certificate(reference, {reference: pem}.get) == pem
    with pytest.raises(UnknownCertificateReference, match="unknown here"):
        resolve_certificate(reference, None)
    # A resolver that answers other bytes (a damaged store) is caught by the hash.
    with pytest.raises(UnknownCertificateReference, match="does not match it by hash"):
        resolve_certificate(reference, lambda _: pem[:-2] + b"X\n")


# -- creators and endorsers by reference -------------------------------------------------------


def test_creator_by_reference_commits_valid_and_its_block_is_smaller_by_the_pem(
    net: InProcessNetwork,
) -> None:
    alice = net.client("CityCCTV", "alice")
    reference = certificate_reference(alice.cert)
    for peer in net.peers:
        assert peer.ledger.certificate(reference) is None
    # Her first transaction carries the PEM: every ledger registers it with that block,
    # the orderer's included (it keeps no validation codes, yet the same registry).
    first = net.submit(alice, "kv", "Put", ["k1", "v1"])
    assert first.code == Code.VALID
    for ledger in [net.orderer_ledger, *(p.ledger for p in net.peers)]:
        assert ledger.certificate(reference) == alice.cert
    full = net.submit(alice, "kv", "Put", ["k2", "v2"])
    by_ref = net.submit(alice.referenced(), "kv", "Put", ["k3", "v3"])
    assert (full.code, by_ref.code) == (Code.VALID, Code.VALID)
    assert_codes(net, by_ref.block, [Code.VALID], [by_ref.tx_id])
    for peer in net.peers:
        assert value(peer, "k3") == b"v3"
    assert_converged(net)

    carried = envelope_of(net, by_ref.block).proposal
    assert carried.creator == SerializedIdentity(alice.msp_id, reference)
    assert carried.tx_id == by_ref.tx_id and carried.tx_id_is_correct()
    # Same function, same-length arguments: the proposals differ by the PEM exactly
    # (a 32-byte string has a 2-byte CBOR header, the PEM's a 3-byte one).
    full_proposal = envelope_of(net, full.block).transaction.proposal
    ref_proposal = envelope_of(net, by_ref.block).transaction.proposal
    assert len(full_proposal) - len(ref_proposal) == len(alice.cert) + 3 - (REFERENCE_SIZE + 2)
    # The blocks too, up to the few bytes by which ECDSA signatures vary in length.
    saved = len(net.peers[0].ledger.get_block(full.block).encode()) - len(
        net.peers[0].ledger.get_block(by_ref.block).encode()
    )
    assert abs(saved - (len(alice.cert) - 31)) <= 8


def test_endorsers_name_themselves_by_reference_once_their_certificate_is_registered(
    net: InProcessNetwork,
) -> None:
    alice = net.client("CityCCTV", "alice")
    first = net.submit(alice, "kv", "Put", ["a", "1"])
    endorsers = [e.endorser for e in envelope_of(net, first.block).transaction.endorsements]
    assert endorsers and all(not is_reference(e.cert) for e in endorsers)
    second = net.submit(alice, "kv", "Put", ["b", "2"])
    assert second.code == Code.VALID
    endorsements = envelope_of(net, second.block).transaction.endorsements
    assert endorsements and all(len(e.endorser.cert) == REFERENCE_SIZE for e in endorsements)
    for endorsement in endorsements:
        assert net.peers[0].ledger.certificate(endorsement.endorser.cert) is not None
    assert_codes(net, second.block, [Code.VALID], [second.tx_id])
    # ... and the orderer signed every block by reference (the config lists it).
    for number in (first.block, second.block):
        (signature,) = net.peers[0].ledger.get_block(number).metadata.signatures
        assert signature.cert == certificate_reference(net.orderer_identity.cert_pem)


def test_unknown_creator_reference_is_refused_by_endorsers_and_orderer_and_flagged_27(
    net: InProcessNetwork,
) -> None:
    alice = net.client("CityCCTV", "alice")
    net.submit(alice, "kv", "Put", ["seed", "1"])
    # Bob's certificate is valid, but no block ever carried it.
    bob = net.client("CityCCTV", "bob").referenced()
    # The endorsers refuse the proposal with the code the client acts on ...
    _, signed = make_proposal(net, bob, "Put", ["bob", "x"])
    for response in net.endorse(signed):
        assert response.endorsement is None and response.response.status == 400
        assert refusal_code(response.response) == UNKNOWN
        assert "resend with the full certificate" in response.response.message
    # ... the orderer refuses the envelope at broadcast, with a 4xx and that code ...
    tx_id, envelope = forge(net, bob, rwset(writes("kv", bob="x")), args=["bob", "x"])
    with pytest.raises(BroadcastRefused) as info:
        net.broadcast(envelope)
    assert (info.value.status, info.value.code) == (400, UNKNOWN)
    error = _refusal(info.value)  # as the orderer node answers it over HTTP
    assert (error.status, error.code) == (400, UNKNOWN)
    # ... and a block carrying it anyway (cut by hand) is flagged 27 on every peer.
    before = states(net)
    event = inject(net, [envelope])
    assert_codes(net, event.number, [Code.UNKNOWN_CERTIFICATE_REFERENCE], [tx_id])
    assert "creator" in event.transactions[0].reason
    assert "unknown" in event.transactions[0].reason
    assert states(net) == before
    for peer in net.peers:
        assert value(peer, "bob") is None
    assert_alive(net, alice)


def test_unknown_endorser_reference_does_not_count_and_names_the_cause(
    net: InProcessNetwork,
) -> None:
    alice = net.client("CityCCTV", "alice")
    net.submit(alice, "kv", "Put", ["seed", "1"])
    city, police = peer_identities(net, "CityCCTV")[0], peer_identities(net, "Police")[0]
    # A real peer of Police whose certificate no block carried: its reference resolves
    # nowhere, so only CityCCTV's endorsement counts and OutOf(2, ...) fails.
    stranger_peer = net.orgs["Police"].new_identity("peer9.Police", "peer")
    proposal, signed = make_proposal(net, alice, "Put", ["e", "1"])
    payload = response_payload(proposal, rwset(writes("kv", e="1")))
    (good,) = endorse_by_hand(payload, [city])
    who = SerializedIdentity(stranger_peer.msp_id, certificate_reference(stranger_peer.cert_pem))
    unknown = Endorsement(
        who, stranger_peer.key.sign(Domain.PROPOSAL_RESPONSE, endorsement_message(payload, who))
    )
    envelope = make_envelope(signed, payload, [good, unknown], alice.key)
    event = inject(net, [envelope])
    assert_codes(net, event.number, [Code.UNKNOWN_CERTIFICATE_REFERENCE], [proposal.tx_id])
    assert "refer to certificates unknown here" in event.transactions[0].reason
    # Police's registered peer by reference does count: the same endorsement by a known
    # reference makes the transaction valid.
    police_ref = SerializedIdentity(police.msp_id, certificate_reference(police.cert_pem))
    assert net.peers[0].ledger.certificate(police_ref.cert) == police.cert_pem
    proposal, signed = make_proposal(net, alice, "Put", ["f", "1"])
    payload = response_payload(proposal, rwset(writes("kv", f="1")))
    (good,) = endorse_by_hand(payload, [city])
    known = Endorsement(
        police_ref,
        police.key.sign(Domain.PROPOSAL_RESPONSE, endorsement_message(payload, police_ref)),
    )
    event = inject(net, [make_envelope(signed, payload, [good, known], alice.key)])
    assert_codes(net, event.number, [Code.VALID], [proposal.tx_id])


def test_reference_to_a_revoked_certificate_is_expired_or_revoked(tmp_path: Path) -> None:
    with new_network(tmp_path) as net:
        alice = net.client("CityCCTV", "alice")
        city = net.orgs["CityCCTV"]
        mallory = as_client(city.new_identity("mallory", "client", now=net.clock.now))
        assert net.submit(mallory, "kv", "Put", ["m", "before"]).code == Code.VALID
        # Endorsed for real, by reference, before the revocation.
        pending = net.prepare(mallory.referenced(), "kv", "Put", ["m", "after"])
        assert is_reference(Envelope.decode(pending).proposal.creator.cert)
        city.revoke(name="mallory", now=net.clock.now)
        crl = city.crl(net.clock.now)
        organizations = tuple(
            city.organization_config(crls=[crl]) if org.msp_id == city.msp_id else org
            for org in current_config(net).organizations
        )
        net.broadcast(config_update(net, majority(net), organizations=organizations).encode())
        net.deliver()
        # The reference resolves; the MSP then refuses the certificate as revoked.
        with pytest.raises(BroadcastRefused) as info:
            net.broadcast(pending)
        assert info.value.status == 403 and "revoked" in str(info.value)
        _, signed = make_proposal(net, mallory.referenced(), "Put", ["m", "new"])
        for response in net.endorse(signed):
            assert response.response.status == 403 and "revoked" in response.response.message
        before = states(net)
        event = inject(net, [pending])
        assert_codes(net, event.number, [Code.EXPIRED_OR_REVOKED_IDENTITY], [tx_id_of(pending)])
        assert states(net) == before
        assert_alive(net, alice)


# -- block signatures ---------------------------------------------------------------------------


def test_block_signed_by_orderer_reference_passes_and_an_unknown_reference_is_refused(
    net: InProcessNetwork,
) -> None:
    alice = net.client("CityCCTV", "alice")
    _, envelope = forge(net, alice, rwset(writes("kv", s="1")), args=["s", "1"])
    orderer = net.orderer_identity
    peer = net.peers[0]
    height, head = peer.ledger.height, peer.ledger.head_hash
    listed = signed_block(height, head, [envelope], orderer)
    by_reference = listed.with_signatures(
        [
            sign_block(
                listed.header, orderer.key, orderer.msp_id, certificate_reference(orderer.cert_pem)
            )
        ]
    )
    # A real orderer-type identity of the same organisation that the configuration does
    # not list: its full PEM would pass the MSP, its reference resolves nowhere.
    other = net.orgs["CityCCTV"].new_identity("orderer9", "orderer")
    unlisted = listed.with_signatures(
        [sign_block(listed.header, other.key, other.msp_id, certificate_reference(other.cert_pem))]
    )
    random_ref = listed.with_signatures(
        [sign_block(listed.header, orderer.key, orderer.msp_id, bytes(range(32)))]
    )
    for bad in (unlisted, random_ref):
        with pytest.raises(BlockRejected, match="unknown here"):
            peer.committer.commit(bad, net.clock.now)
        assert (peer.ledger.height, peer.ledger.head_hash) == (height, head)
    event = peer.committer.commit(by_reference, net.clock.now)
    assert event.transactions[0].code == Code.VALID


# -- the registry: deterministic, crash-safe, checked ------------------------------------------


def _copy_blocks(peer_ledger: Ledger, path: Path, stop: int) -> None:
    with Ledger.open(path, create=True) as copy:
        for number in range(copy.height, stop):
            copy.append_block(peer_ledger.get_block(number))


def test_registry_survives_crash_replay_and_rebuild_and_is_checked(
    net: InProcessNetwork, tmp_path: Path
) -> None:
    alice = net.client("CityCCTV", "alice")
    for k in range(3):
        assert net.submit(alice, "kv", "Put", [f"k{k}", "v"]).code == Code.VALID
    bob = net.client("Police", "bob")
    assert net.submit(bob, "kv", "Put", ["bob", "v"]).code == Code.VALID
    assert net.submit(alice.referenced(), "kv", "Put", ["ref", "v"]).code == Code.VALID
    peer = net.peers[0]
    registry = peer.ledger.certificate_references()
    expected = {certificate_reference(c) for c in (alice.cert, bob.cert)} | {
        certificate_reference(p.identity.cert_pem) for p in net.endorsing_peers()
    }
    assert registry == expected
    # Every peer and the orderer hold the same registry, as they hold the same blocks.
    for ledger in [net.orderer_ledger, *(p.ledger for p in net.peers)]:
        assert ledger.certificate_references() == registry
    assert peer.ledger.verify_chain().height == peer.ledger.height
    height = peer.ledger.height

    # A crash after the block files but before the index: the stale index (as of block
    # 2, before Bob's certificate arrived) under the complete block files is replayed.
    path = tmp_path / "copy"
    _copy_blocks(peer.ledger, path, 3)
    stale = tmp_path / "stale-index"
    shutil.copytree(path / "index", stale)
    _copy_blocks(peer.ledger, path, height)
    with Ledger.open(path) as copy:
        complete = copy.dump_index()
        assert copy.certificate_references() == registry
    shutil.rmtree(path / "index")
    shutil.copytree(stale, path / "index")
    with Ledger.open(path) as replayed:
        assert replayed.height == height
        assert replayed.certificate_references() == registry
        assert replayed.dump_index() == complete
    with Ledger.rebuild(path) as rebuilt:
        assert rebuilt.dump_index() == complete
        assert rebuilt.certificate(certificate_reference(bob.cert)) == bob.cert
        assert rebuilt.certificate(b"short") is None

    # An index written before the registry existed (no entries, no mark) is backfilled
    # when opened, so that upgraded nodes resolve exactly what new ones do.
    db = plyvel.DB(str(path / "index"))
    for key, _ in db.iterator(prefix=keys.CERTIFICATE_PREFIX):
        db.delete(key)
    db.delete(keys.CERTIFICATE_REGISTRY_KEY)
    db.close()
    with Ledger.open(path) as upgraded:
        assert upgraded.certificate_references() == registry
        assert upgraded.dump_index() == complete
        upgraded.verify_chain()

    # verify_chain finds a registry that disagrees with the blocks: a missing entry, and
    # an entry no block carried.
    db = plyvel.DB(str(path / "index"))
    db.delete(keys.certificate_key(certificate_reference(bob.cert)))
    db.close()
    with (
        Ledger.open(path) as damaged,
        pytest.raises(LedgerCorruptError, match="not in the certificate registry"),
    ):
        damaged.verify_chain()
    db = plyvel.DB(str(path / "index"))
    db.put(keys.certificate_key(certificate_reference(bob.cert)), bob.cert)
    stranger = net.client("CityCCTV", "stranger").cert
    db.put(keys.certificate_key(certificate_reference(stranger)), stranger)
    db.close()
    with Ledger.open(path) as damaged, pytest.raises(LedgerCorruptError, match="no block carries"):
        damaged.verify_chain()


def test_invalid_transactions_register_their_certificates_too(net: InProcessNetwork) -> None:
    # The orderer's ledger has no validation codes: peers must register a certificate
    # whatever the code of the transaction carrying it, or their registries would differ.
    alice = net.client("CityCCTV", "alice")
    net.submit(alice, "kv", "Put", ["seed", "1"])
    carol = net.client("LocalAuthority", "carol")
    proposal, signed = make_proposal(net, carol, "Put", ["c", "1"])
    payload = response_payload(proposal, rwset(writes("kv", c="1")))
    city = peer_identities(net, "CityCCTV")
    envelope = make_envelope(signed, payload, endorse_by_hand(payload, city), carol.key)
    event = inject(net, [envelope])  # one endorsement: the policy needs two
    assert_codes(net, event.number, [Code.ENDORSEMENT_POLICY_FAILURE], [proposal.tx_id])
    for ledger in [net.orderer_ledger, *(p.ledger for p in net.peers)]:
        assert ledger.certificate(certificate_reference(carol.cert)) == carol.cert
    assert net.submit(carol.referenced(), "kv", "Put", ["c", "2"]).code == Code.VALID


# -- evidence bundles ----------------------------------------------------------------------


def test_bundle_of_reference_carrying_blocks_checks_offline_and_a_flipped_byte_fails(
    tmp_path: Path,
) -> None:
    clip = make_camera_clip(tmp_path / "camera.mp4")
    cam = anchored_camera(tmp_path / "net", clip, by_reference=True)
    try:
        bundle = cam.bundle()
        ledger = cam.world.net.peers[0].ledger
        creators = [Envelope.decode(a.tx.transaction).proposal.creator.cert for a in bundle.anchors]
        assert not is_reference(creators[0]) and all(is_reference(c) for c in creators[1:])
        camera_pem = cam.identity.cert
        assert camera_pem in bundle.certificates and bundle.camera_certificates == (camera_pem,)
        assert len(set(bundle.certificates)) == len(bundle.certificates)
        for signed in bundle.block_signatures:
            assert all(is_reference(s.cert) for s in signed.signatures)
        # Checkable with no network, also after a round trip through the file format.
        verdict = check_bundle(read_bundle(bundle.encode()))
        assert verdict.ok, verdict.failures
        assert [c.pem for c in verdict.cameras] == [camera_pem]
        # A bundle made without the ledger's registry cannot resolve the camera.
        with pytest.raises(BundleError, match="cannot resolve"):
            bundle_for_without_registry(cam)
        # One flipped byte inside the camera's certificate: it no longer matches its
        # reference, so the anchors made by reference and the certificate list fail.
        k = bundle.certificates.index(camera_pem)
        flipped = bytearray(camera_pem)
        flipped[len(flipped) // 2] ^= 0x01
        certificates = list(bundle.certificates)
        certificates[k] = bytes(flipped)
        altered = check_bundle(replace(bundle, certificates=tuple(certificates)))
        assert not altered.ok
        assert any(
            f"bundled certificate {k} matches none of the bundle's certificate references" in f
            for f in altered.failures
        )
        assert any("reference that matches no bundled certificate" in f for f in altered.failures)
        # A version-1 bundle (no certificates part) still reads.
        wire = bundle.to_wire()
        wire["_v"] = 1
        del wire["certificates"]
        assert EvidenceBundle.from_wire(wire).certificates == ()
        assert ledger.certificate(certificate_reference(camera_pem)) == camera_pem
    finally:
        cam.world.net.close()


def bundle_for_without_registry(cam: AnchoredCamera) -> EvidenceBundle:
    ledger = cam.world.net.peers[0].ledger
    return build_bundle(
        get_block=ledger.get_block,
        channel_id="cctv",
        camera_id=CAMERA,
        anchors=cam.refs,
        records={s.sequence: records_with_proofs(s.records) for s in cam.sealed},
        config_blocks=config_block_numbers(ledger.get_block, ledger.height),
        ledger_height=ledger.height,
        created_ms=cam.world.net.clock.now_ms,
        tool="cctvchain test",
    )
