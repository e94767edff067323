"""Faults on the default-shaped cluster of real processes, under a steady submit load:
the Raft leader killed, a peer killed mid-commit, and clients whose certificates are
missing, untrusted or revoked."""

from __future__ import annotations

import dataclasses
import json
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from peer_cluster import ORDERERS, ORGS, RUNNING_PEERS, PeerCluster, make_cluster

from cctvchain.codec import decode_message, encode
from cctvchain.crypto import sha256
from cctvchain.ledger.config import ChannelConfig
from cctvchain.ledger.genesis import ConfigTransaction, sign_config
from cctvchain.ledger.store import Ledger
from cctvchain.msp.requests import make_revoke_request
from cctvchain.msp.store import CAStore
from cctvchain.msp.testing import InMemoryOrg
from cctvchain.msp.wallet import Wallet
from cctvchain.node import tls
from cctvchain.orderer.service import parse_frames
from cctvchain.peernode.gateway_client import GatewayRefused


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerCluster]:
    made = make_cluster(tmp_path_factory.mktemp("faults"))
    try:
        for name in (*ORDERERS, *RUNNING_PEERS):
            made.start(name)
        for name in RUNNING_PEERS:
            made.wait_ready(name)
        # And a Raft leader elected: a test that broadcasts straight to an orderer must not
        # meet 503 no_leader because it happened to run first.
        deadline = time.monotonic() + 30
        while not all(
            made.request(name, "GET", "/status", user=made.admin).json().get("leader")
            for name in ORDERERS
        ):
            assert time.monotonic() < deadline, "no Raft leader elected within 30 s"
            time.sleep(0.2)
        yield made
    finally:
        made.stop_all()


ORG_PEER = {"CityCCTV": "peer0.city", "Police": "peer0.police", "LocalAuthority": "peer0.la"}


class Load:
    """Each organisation's admin adds participants in a loop (distinct keys, so every
    transaction should commit VALID), recording the acknowledged tx ids."""

    def __init__(self, cluster: PeerCluster, tag: str) -> None:
        self.cluster = cluster
        self.tag = tag
        self.acknowledged: list[str] = []
        self.refusals: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(org,)) for org in ORGS]

    def _run(self, org: str) -> None:
        admin = self.cluster.users[f"admin@{org}"]
        n = 0
        while not self._stop.is_set():
            n += 1
            pid = f"{self.tag}-{org}-{n}"
            person = {
                "id": pid,
                "personId": pid,
                "name": "load",
                "department": "ops",
                "age": 30,
                "gender": "x",
                "role": "Operator",
                "identity": pid,
            }
            try:
                result = self.cluster.submit(
                    admin, "AddParticipant", json.dumps(person), peer=ORG_PEER[org]
                )
            except Exception as exc:  # refusals while the cluster heals are expected
                with self._lock:
                    self.refusals.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.2)
                continue
            with self._lock:
                self.acknowledged.append(result.tx_id)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def raft_leader(cluster: PeerCluster, among: tuple[str, ...] = ORDERERS) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for name in among:
            try:
                answer = cluster.request(name, "GET", "/status", user=cluster.admin, timeout=3)
            except OSError:
                continue
            if answer.status == 200 and answer.json()["role"] == "leader":
                return name
        time.sleep(0.2)
    raise AssertionError("no Raft leader")


def present_everywhere(cluster: PeerCluster, tx_ids: list[str]) -> None:
    for peer in RUNNING_PEERS:
        for tx_id in tx_ids:
            record = cluster.get_json(peer, f"/api/v1/transactions/{tx_id}", cluster.admin)
            assert record["validation_code_name"] == "VALID", (peer, tx_id, record)


def test_killing_the_raft_leader_under_load_loses_no_acknowledged_transaction(
    cluster: PeerCluster,
) -> None:
    leader = raft_leader(cluster)
    with Load(cluster, "lk") as load:
        time.sleep(2.0)
        before = len(load.acknowledged)
        cluster.kill(leader)
        raft_leader(cluster, tuple(name for name in ORDERERS if name != leader))
        time.sleep(4.0)
    assert before >= 3, load.refusals[:5]
    assert len(load.acknowledged) > before, f"no progress after the kill: {load.refusals[:5]}"
    cluster.wait_converged(RUNNING_PEERS)  # same height and head hash on every peer
    present_everywhere(cluster, load.acknowledged)
    cluster.start(leader)  # back for the next tests


def state_digest(ledger_dir: Path) -> bytes:
    with Ledger.open(ledger_dir) as ledger:
        state = ledger.dump_state()
    items = sorted(
        (ns, key, value.value, value.version.block, value.version.tx)
        for (ns, key), value in state.items()
    )
    return sha256(encode([list(item) for item in items]))


def test_a_peer_killed_mid_commit_catches_up_with_identical_state(cluster: PeerCluster) -> None:
    victim, witness = "peer1.city", "peer0.city"
    with Load(cluster, "pk") as load:
        time.sleep(1.5)
        cluster.kill(victim)  # SIGKILL while blocks keep arriving
        time.sleep(2.0)
    cluster.start(victim)
    cluster.wait_ready(victim)
    cluster.wait_converged(RUNNING_PEERS)
    present_everywhere(cluster, load.acknowledged)
    # Stop both peers cleanly and compare the world states they committed.
    for name in (victim, witness):
        cluster.kill(name, signal.SIGTERM)
    nodes = cluster.material.node_dirs
    assert state_digest(nodes[victim] / "ledger") == state_digest(nodes[witness] / "ledger")
    for name in (victim, witness):
        cluster.start(name)
    for name in (victim, witness):
        cluster.wait_ready(name)


def _context_without_certificate(cluster: PeerCluster) -> ssl.SSLContext:
    return tls.client_context(None, tls.trust_bundle(cluster.material.channel_config()))


def test_missing_untrusted_and_revoked_client_certificates_are_refused(
    cluster: PeerCluster,
) -> None:
    peer = "peer0.city"
    # No client certificate: refused at the TLS handshake.
    anonymous = dataclasses.replace(
        cluster.admin, ssl_context=_context_without_certificate(cluster)
    )
    with pytest.raises((ssl.SSLError, ConnectionError)):
        cluster.request(peer, "GET", "/api/v1/channel", user=anonymous)
    # A certificate from a CA outside the channel: refused at the handshake.
    outsider = InMemoryOrg("Outsiders", "CityCCTV", datetime.now(UTC) - timedelta(days=1))
    eve = outsider.new_identity("eve", "client")
    tls_eve = outsider.enroll(
        "eve-tls", outsider.register("eve-tls", "client"), profile="tls", hosts=["localhost"]
    )
    eve_dir = cluster.directory / "eve"
    eve_dir.mkdir()
    (eve_dir / "cert.pem").write_bytes(tls_eve.cert_pem)
    (eve_dir / "key.pem").write_bytes(tls_eve.key.to_pem())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(eve_dir / "cert.pem", eve_dir / "key.pem")
    context.load_verify_locations(
        cadata=tls.trust_bundle(cluster.material.channel_config()).decode()
    )
    stranger = dataclasses.replace(cluster.admin, name=eve.name, ssl_context=context)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        cluster.request(peer, "GET", "/api/v1/channel", user=stranger)

    # A revoked identity: refused at its first request once the CRL is in the channel.
    doomed = cluster.enroll("CityCCTV", "doomed", role="CRM")
    assert cluster.request(peer, "GET", "/api/v1/whoami", user=doomed).status == 200
    revoke_and_publish_crl(cluster, "doomed")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = cluster.request(peer, "GET", "/api/v1/whoami", user=doomed)
        if answer.status == 403:
            break
        time.sleep(0.2)
    assert answer.status == 403 and answer.code == "certificate_revoked"
    with pytest.raises(GatewayRefused) as refused:
        cluster.submit(doomed, "WhoAmI")
    assert refused.value.status == 403
    assert cluster.request(peer, "GET", "/api/v1/whoami", user=cluster.admin).status == 200


def revoke_and_publish_crl(cluster: PeerCluster, name: str) -> None:
    """Revoke at CityCCTV's CA, then a config update carrying the CRL, signed by two
    organisations' admins and broadcast to an orderer."""
    now = datetime.now(UTC)
    admin_wallet = Wallet(cluster.material.admin_wallets["CityCCTV"]).load()
    store = CAStore(cluster.material.ca_dirs["CityCCTV"])
    with store.open() as ca:
        ca.revoke(
            make_revoke_request(
                admin_wallet.signing_key, admin_wallet.cert_pem, now=now, name=name
            ),
            now,
        )
        crl = ca.generate_crl(now, now + timedelta(days=7))
    current = cluster.get_json("peer0.city", "/api/v1/channel", cluster.admin)
    config = ledger_config(cluster)
    assert config.sequence == current["config_sequence"]
    organizations = tuple(
        dataclasses.replace(org, crls=(crl,)) if org.msp_id == "CityCCTV" else org
        for org in config.organizations
    )
    updated = dataclasses.replace(config, sequence=config.sequence + 1, organizations=organizations)
    signatures = []
    for org in ("CityCCTV", "Police"):
        admin = Wallet(cluster.material.admin_wallets[org]).load()
        signatures.append(sign_config(updated, admin.signing_key, admin.msp_id, admin.cert_pem))
    envelope = ConfigTransaction(updated, tuple(signatures)).encode()
    answer = cluster.request(
        ORDERERS[1],
        "POST",
        "/broadcast",
        user=cluster.admin,
        body=envelope,
        content_type="application/octet-stream",
    )
    assert answer.status == 200, answer.body


def ledger_config(cluster: PeerCluster) -> ChannelConfig:
    """The channel configuration in force: the last config transaction an orderer ordered."""
    height = cluster.request(ORDERERS[1], "GET", "/status", user=cluster.admin).json()["height"]
    raw = cluster.request(
        ORDERERS[1], "GET", f"/deliver?from=0&to={height}", user=cluster.admin
    ).body
    config: ChannelConfig | None = None
    for block in parse_frames(raw):
        for data in block.transactions:
            message = decode_message(data)
            if isinstance(message, ConfigTransaction):
                config = message.config
    assert config is not None
    return config
