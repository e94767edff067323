"""Mutual TLS between nodes: a node process built on the framework (runtime + tls + auth)
refuses unknown, foreign and expired certificates at the handshake and revoked ones at
the first request, and identifies every other caller through the channel's MSPs."""

from __future__ import annotations

import dataclasses
import http.client
import logging
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from node_helpers import (
    NodeProcess,
    enroll_tls,
    free_ports,
    https,
    running_node,
    write_network,
)

from cctvchain.ledger.config import ChannelConfig
from cctvchain.msp.identity import MSPManager
from cctvchain.msp.requests import make_revoke_request
from cctvchain.msp.store import CAStore
from cctvchain.msp.testing import InMemoryOrg
from cctvchain.msp.wallet import TLSFiles, Wallet
from cctvchain.network.config import NetworkConfig, load_network_config
from cctvchain.network.material import NetworkMaterial, ensure_material
from cctvchain.node import tls
from cctvchain.node.auth import mtls_auth, whoami
from cctvchain.node.ca_service import ensure_server_certificate
from cctvchain.node.client import NodeClient, NodeRefused, NodeTLSError
from cctvchain.node.http import make_app
from cctvchain.node.runtime import NodeServer

# OpenSSL checks validity against the real clock. The network's material is made as of
# yesterday so that a certificate valid for an hour, issued then, is expired now.
REAL_NOW = datetime.now(UTC)
PAST = REAL_NOW - timedelta(days=1)


@dataclass
class Mesh:
    tmp: Path
    config_path: Path
    network: NetworkConfig
    material: NetworkMaterial
    channel: ChannelConfig
    bundle: bytes
    port: int
    node: NodeProcess
    revoked: TLSFiles
    expired: TLSFiles
    foreign: TLSFiles

    def wallet_tls(self, node: str) -> TLSFiles:
        return Wallet(self.material.node_wallet(node)).load_tls()

    def context(self, files: TLSFiles | None) -> ssl.SSLContext:
        return tls.client_context(files, self.bundle)


def _revoke_tls(material: NetworkMaterial, org: str, name: str, now: datetime) -> bytes:
    """Revoke every certificate of ``name`` at ``org``'s CA; store and return the CRL."""
    store = CAStore(material.ca_dirs[org])
    admin = Wallet(material.admin_wallets[org]).load()
    request = make_revoke_request(admin.signing_key, admin.cert_pem, now=now, name=name)
    with store.open() as ca:
        assert ca.revoke(request, now)
        crl = ca.generate_crl(now, now + timedelta(days=7))
        store.write_crl(crl)
    return crl


def _foreign_tls(directory: Path) -> TLSFiles:
    intruder = InMemoryOrg("Intruder", "Intruder", PAST)
    secret = intruder.register("spy", "peer")
    enrolled = intruder.enroll(secret=secret, name="spy", profile="tls", hosts=("127.0.0.1",))
    Wallet(directory).save(
        profile="tls",
        name="spy",
        msp_id="Intruder",
        id_type="peer",
        key=enrolled.key,
        cert_pem=enrolled.cert_pem,
        root_pem=intruder.material.root_pem,
    )
    return Wallet(directory).load_tls()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    tmp = tmp_path_factory.mktemp("mtls")
    config_path = write_network(tmp)
    network = load_network_config(config_path)
    material = ensure_material(network, PAST)
    city = CAStore(material.ca_dirs["City"])
    police = CAStore(material.ca_dirs["Police"])
    city_admin = Wallet(material.admin_wallets["City"])
    police_admin = Wallet(material.admin_wallets["Police"])
    revoked = enroll_tls(city, city_admin, tmp / "revokee", "revokee", "client", now=REAL_NOW)
    _revoke_tls(material, "City", "revokee", REAL_NOW)
    expired = enroll_tls(
        police, police_admin, tmp / "expired", "lapsed", "client", now=PAST,
        validity=timedelta(hours=1),
    )  # fmt: skip
    # The genesis block again, now with City's CRL in the channel configuration.
    material.genesis.unlink()
    material = ensure_material(network, PAST)
    channel = material.channel_config()
    assert channel.organization("City") is not None
    assert channel.organization("City").crls  # type: ignore[union-attr]
    mesh_bundle = tls.trust_bundle(channel)
    port = network.node("orderer0.city").port
    peer_files = Wallet(material.node_wallet("peer0.police")).load_tls()
    with running_node(
        config_path,
        "orderer0.city",
        port,
        tls.client_context(peer_files, mesh_bundle),
        tmp / "orderer.log",
        test_service=True,
    ) as node:
        yield Mesh(
            tmp=tmp,
            config_path=config_path,
            network=network,
            material=material,
            channel=channel,
            bundle=mesh_bundle,
            port=port,
            node=node,
            revoked=revoked,
            expired=expired,
            foreign=_foreign_tls(tmp / "foreign"),
        )


def _refused_at_handshake(mesh: Mesh, files: TLSFiles | None, probe: str) -> str:
    """The node never sees a request (not even as a 4xx): the TLS handshake fails.

    Over TLS 1.3 the client may finish its half of the handshake before the server has
    judged its certificate, so the refusal shows as a connection closed without an
    answer; over TLS 1.2 the handshake itself fails (the error is returned).
    """
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        https(mesh.port, "GET", probe, mesh.context(files))
    tls12 = mesh.context(files)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", mesh.port), timeout=10) as raw,
        tls12.wrap_socket(raw, server_hostname="127.0.0.1", do_handshake_on_connect=False) as conn,
        pytest.raises(ssl.SSLError) as failed,
    ):
        conn.do_handshake()
    assert probe not in mesh.node.log()
    assert mesh.node.running()
    return str(failed.value)


def test_a_node_of_another_org_is_accepted_and_identified(mesh: Mesh) -> None:
    status, body, _ = https(
        mesh.port, "GET", "/whoami", mesh.context(mesh.wallet_tls("peer0.police"))
    )
    assert status == 200
    assert (body["msp_id"], body["name"], body["type"]) == ("Police", "peer0.police", "peer")
    # An admin of the node's own organisation, with the admin wallet's TLS certificate.
    admin = Wallet(mesh.material.admin_wallets["City"]).load_tls()
    status, body, _ = https(mesh.port, "GET", "/whoami", mesh.context(admin))
    assert (status, body["msp_id"], body["type"]) == (200, "City", "admin")
    assert "GET /whoami -> 200" in mesh.node.log()
    # The same TLS 1.2 handshake the refusal tests use succeeds with a good certificate.
    tls12 = mesh.context(mesh.wallet_tls("peer0.police"))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", mesh.port), timeout=10) as raw,
        tls12.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        assert conn.version() == "TLSv1.2"
    assert "(Police/peer0.police)" in mesh.node.log()


async def test_node_to_node_client_context(mesh: Mesh) -> None:
    """The orderer's own client context: presents its TLS certificate, checks the server."""
    wallet = Wallet(mesh.material.node_wallet("orderer0.city"))
    url = f"https://127.0.0.1:{mesh.port}"
    async with NodeClient(url, tls.node_client_context(wallet, mesh.channel)) as client:
        me = await client.get_json("/whoami")
    assert (me["msp_id"], me["name"], me["type"]) == ("City", "orderer0.city", "orderer")
    # A client that trusts only Police's root refuses the City node's server certificate.
    police_only = dataclasses.replace(
        mesh.channel,
        organizations=tuple(o for o in mesh.channel.organizations if o.msp_id == "Police"),
    )
    peer = Wallet(mesh.material.node_wallet("peer0.police"))
    async with NodeClient(url, tls.node_client_context(peer, police_only)) as client:
        with pytest.raises(NodeTLSError, match="certificate verify failed"):
            await client.get_json("/whoami")


def test_no_client_certificate_is_refused_at_the_handshake(mesh: Mesh) -> None:
    error = _refused_at_handshake(mesh, None, "/nocert-probe")
    assert error, error


def test_a_foreign_ca_is_refused_at_the_handshake(mesh: Mesh) -> None:
    error = _refused_at_handshake(mesh, mesh.foreign, "/foreign-probe")
    assert error, error


def test_an_expired_certificate_is_refused_at_the_handshake(mesh: Mesh) -> None:
    error = _refused_at_handshake(mesh, mesh.expired, "/expired-probe")
    assert error, error


def test_a_revoked_certificate_is_refused_at_the_first_request(mesh: Mesh) -> None:
    status, body, _ = https(mesh.port, "GET", "/whoami", mesh.context(mesh.revoked))
    assert (status, body["code"]) == (403, "certificate_revoked")
    assert "revokee" in body["message"]
    # Health stays reachable for any certificate that passed the handshake.
    status, _, _ = https(mesh.port, "GET", "/healthz", mesh.context(mesh.revoked))
    assert status == 200
    assert "WARNING orderer0.city: GET /whoami -> 403" in mesh.node.log()


def test_the_ca_server_certificate_is_no_caller_identity(mesh: Mesh) -> None:
    store = CAStore(mesh.material.ca_dirs["City"])
    files, _ = ensure_server_certificate(store, mesh.network.org("City").ca, REAL_NOW)
    status, body, _ = https(mesh.port, "GET", "/whoami", mesh.context(files))
    assert (status, body["code"]) == (403, "wrong_identity_type")


def test_failures_are_500_without_details_and_bodies_are_limited(mesh: Mesh) -> None:
    context = mesh.context(mesh.wallet_tls("peer0.police"))
    status, body, _ = https(mesh.port, "GET", "/boom", context)
    assert status == 500
    assert body == {
        "code": "internal_error",
        "message": "internal error; the node's log has the details",
    }
    log = mesh.node.log()
    assert "Traceback" in log and "secret internal detail" in log
    status, body, _ = https(mesh.port, "POST", "/echo", context, body={"a": [1, "b"]})
    assert (status, body) == (200, {"a": [1, "b"]})
    status, body, _ = https(mesh.port, "POST", "/echo", context, body={"a": "x" * 5000})
    assert (status, body["code"]) == (413, "body_too_large")
    assert mesh.node.running()


def test_sigterm_lets_a_request_in_flight_finish(mesh: Mesh, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    config = write_network(mesh.tmp, "inflight.toml", orderer0_city=port)
    context = mesh.context(mesh.wallet_tls("peer0.police"))
    with running_node(
        config, "orderer0.city", port, context, tmp_path / "n.log", test_service=True
    ) as node:
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                result["answer"] = https(port, "GET", "/slow?ms=1500", context)
            except Exception as exc:  # reported below
                result["error"] = exc

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.6)
        signalled = time.monotonic()
        node.process.send_signal(15)  # type: ignore[union-attr]
        caller.join(timeout=10)
        assert "error" not in result, result
        status, body, _ = result["answer"]
        assert (status, body) == (200, {"slept_ms": 1500})
        assert node.wait(timeout=10) == 0
        assert time.monotonic() - signalled < 5
        log = node.log()
        stopping = log.index("received SIGTERM; stopping")
        assert log.index("GET /slow -> 200") > stopping
        assert log.rstrip().endswith("stopped")
        # New connections are refused once stopped.
        with pytest.raises(OSError):
            https(port, "GET", "/healthz", context)


async def test_the_msp_view_and_clock_are_read_per_request(mesh: Mesh) -> None:
    """In-process server on a real loopback TLS socket: swapping the MSP view (a new
    CRL) or moving the clock changes the verdict on the next request."""
    police = CAStore(mesh.material.ca_dirs["Police"])
    auditor = enroll_tls(
        police, Wallet(mesh.material.admin_wallets["Police"]), mesh.tmp / "auditor",
        "auditor", "client", now=REAL_NOW, attributes={"role": "LAS"},
    )  # fmt: skip
    original = MSPManager.from_channel_config(mesh.channel)
    state: dict[str, Any] = {"manager": original, "now": datetime.now(UTC)}
    log = logging.getLogger("cctvchain.node.test")
    app = make_app(
        "inproc",
        "orderer",
        log=log,
        middlewares=[mtls_auth(lambda: state["manager"], now=lambda: state["now"])],
    )
    app.router.add_get("/whoami", whoami)
    server = NodeServer(
        app,
        host="127.0.0.1",
        port=0,
        ssl_context=tls.node_server_context(
            Wallet(mesh.material.node_wallet("orderer0.city")), mesh.channel
        ),
        log=log,
        name="inproc",
    )
    await server.start()
    try:
        assert server.port != 0
        async with NodeClient(server.url, tls.client_context(auditor, mesh.bundle)) as client:
            me = await client.get_json("/whoami")
            assert (me["name"], me["role"], me["msp_id"]) == ("auditor", "LAS", "Police")
            assert await client.get_json("/readyz") == {
                "status": "ready",
                "node": "inproc",
                "kind": "orderer",
            }

            crl = _revoke_tls(mesh.material, "Police", "auditor", datetime.now(UTC))
            assert (await client.get_json("/whoami"))["name"] == "auditor"  # old view
            updated = dataclasses.replace(
                mesh.channel,
                organizations=tuple(
                    dataclasses.replace(org, crls=(*org.crls, crl))
                    if org.msp_id == "Police"
                    else org
                    for org in mesh.channel.organizations
                ),
            )
            state["manager"] = MSPManager.from_channel_config(updated)
            with pytest.raises(NodeRefused) as refused:
                await client.get_json("/whoami")
            assert (refused.value.status, refused.value.code) == (403, "certificate_revoked")

            state["manager"] = original
            state["now"] = datetime.now(UTC) + timedelta(days=60)  # past the 30-day cert
            with pytest.raises(NodeRefused) as refused:
                await client.get_json("/whoami")
            assert (refused.value.status, refused.value.code) == (403, "certificate_expired")
            state["now"] = datetime.now(UTC)
            assert (await client.get_json("/whoami"))["name"] == "auditor"
    finally:
        await server.stop()


def test_a_missing_node_wallet_is_reported(mesh: Mesh, tmp_path: Path) -> None:
    """A node whose wallet is gone does not start: one line naming the material step."""
    copy = tmp_path / "net.toml"
    shutil.copy(mesh.config_path, copy)
    shutil.copytree(mesh.material.nodes_dir / "orderer0.city", tmp_path / "keep")
    (tmp_path / "nodes").mkdir()
    shutil.copy(mesh.material.genesis, tmp_path / "nodes" / "genesis.block")
    node = NodeProcess(copy, "orderer0.city", tmp_path / "n.log", test_service=True).start()
    assert node.wait(timeout=30) == 1
    log = node.log()
    assert "Traceback" not in log
    assert (
        f"cctvchain: error: orderer0.city: wallet {tmp_path / 'nodes' / 'orderer0.city' / 'wallet'}"
        " does not exist; create the network's material first: cctvchain node material "
        f"--config {copy}"
    ) in log


def _in_memory_tls(org: InMemoryOrg, directory: Path, name: str, id_type: str) -> TLSFiles:
    secret = org.register(name, id_type)
    enrolled = org.enroll(name, secret, profile="tls", hosts=("127.0.0.1", "localhost"))
    Wallet(directory).save(
        profile="tls",
        name=name,
        msp_id=org.msp_id,
        id_type=id_type,
        key=enrolled.key,
        cert_pem=enrolled.cert_pem,
        root_pem=org.material.root_pem,
        intermediate_pems=org.material.intermediate_pems,
    )
    return Wallet(directory).load_tls()


async def test_organisations_issuing_through_intermediate_cas(tmp_path: Path) -> None:
    """Both sides' certificates come from intermediate CAs: the trust bundle and the
    issuer index hold the intermediates, so the handshake and the MSP lookup succeed."""
    now = datetime.now(UTC)
    city = InMemoryOrg("CityCCTV", "CityMSP", now, intermediate=True)
    police = InMemoryOrg("Police", "PoliceMSP", now, intermediate=True)
    channel = ChannelConfig(
        channel_id="cams",
        sequence=0,
        organizations=(city.organization_config(), police.organization_config()),
    )
    bundle = tls.trust_bundle(channel)
    # Each organisation's TLS root and its intermediate CA.
    assert len(x509.load_pem_x509_certificates(bundle)) == 4
    server_files = _in_memory_tls(city, tmp_path / "orderer", "orderer0", "orderer")
    client_files = _in_memory_tls(police, tmp_path / "peer", "peer0", "peer")
    manager = MSPManager.from_channel_config(channel)
    log = logging.getLogger("cctvchain.node.test")
    app = make_app("inter", "orderer", log=log, middlewares=[mtls_auth(lambda: manager)])
    app.router.add_get("/whoami", whoami)
    server = NodeServer(
        app,
        host="127.0.0.1",
        port=0,
        ssl_context=tls.server_context(server_files, bundle),
        log=log,
        name="inter",
    )
    await server.start()
    try:
        async with NodeClient(server.url, tls.client_context(client_files, bundle)) as client:
            me = await client.get_json("/whoami")
        assert (me["msp_id"], me["name"], me["type"]) == ("PoliceMSP", "peer0", "peer")
    finally:
        await server.stop()
