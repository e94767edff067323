"""The CA node as a real process over loopback TLS, used through ``cctvchain ca --url``."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from node_helpers import (
    NodeProcess,
    free_ports,
    https,
    one_line_error,
    run_cli,
    running_node,
    trust_context,
    write_network,
)

from cctvchain.crypto import Domain, SigningKey
from cctvchain.msp.identity import MSP
from cctvchain.msp.requests import RegisterRequest, SignedCARequest, make_register_request
from cctvchain.msp.requests import timestamp_ms as request_time
from cctvchain.msp.wallet import Wallet
from cctvchain.network.config import load_network_config
from cctvchain.network.material import NetworkMaterial, ensure_material


@dataclass
class CANode:
    config: Path
    material: NetworkMaterial
    port: int
    url: str
    root: Path  # the City root certificate (what clients trust)
    context: ssl.SSLContext
    node: NodeProcess
    tmp: Path

    @property
    def admin(self) -> Path:
        return self.material.admin_wallets["City"]

    def healthy(self) -> bool:
        status, body, _ = https(self.port, "GET", "/healthz", self.context)
        return status == 200 and body == {"status": "ok", "node": "ca.city", "kind": "ca"}


@pytest.fixture(scope="module")
def ca_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CANode]:
    tmp = tmp_path_factory.mktemp("ca-node")
    config = write_network(tmp)
    network = load_network_config(config)
    material = ensure_material(network, datetime.now(UTC))
    port = network.org("City").ca.port
    root = material.ca_dirs["City"] / "ca-cert.pem"
    context = trust_context(root.read_bytes())
    with running_node(config, "ca.city", port, context, tmp / "ca.log") as node:
        yield CANode(config, material, port, f"https://127.0.0.1:{port}", root, context, node, tmp)


def _ok(*args: str | Path) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _secret(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("enrollment secret for")]
    assert len(lines) == 1, output
    return lines[0].rsplit(": ", 1)[1]


def _signed_b64(signed: SignedCARequest) -> str:
    return base64.b64encode(signed.encode()).decode()


def test_remote_cli_register_enroll_revoke_crl_cainfo(ca_node: CANode) -> None:
    url, admin, tmp = ca_node.url, ca_node.admin, ca_node.tmp
    # The CA's TLS is trusted through the registrar wallet's root: no --tls-ca needed.
    secret = _secret(
        _ok("ca", "register", "--url", url, "--registrar", admin, "--name", "alice",
            "--type", "client", "--attr", "role=CRM")
    )  # fmt: skip
    wallet = tmp / "alice"
    msp_out = _ok("ca", "enroll", "--url", url, "--tls-ca", ca_node.root, "--name", "alice",
                  "--secret", secret, "--wallet", wallet)  # fmt: skip
    assert "enrolled alice (client, City): msp certificate" in msp_out
    # The second enrollment trusts the CA through the root the first one stored.
    _ok("ca", "enroll", "--url", url, "--name", "alice", "--secret", secret, "--wallet", wallet,
        "--profile", "tls", "--hosts", "localhost,127.0.0.1")  # fmt: skip

    alice = Wallet(wallet).load()
    msp = MSP("City", alice.ca_certs, alice.intermediate_certs)
    identity = msp.validate(alice.cert_pem, datetime.now(UTC), allowed_types={"client"})
    assert (identity.name, identity.role) == ("alice", "CRM")
    tls_leaf = x509.load_pem_x509_certificates(Wallet(wallet).load_tls().cert_file.read_bytes())[0]
    sans = tls_leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert (Wallet(wallet).msp_key.stat().st_mode & 0o777) == 0o600

    revoked = _ok("ca", "revoke", "--url", url, "--registrar", admin, "--name", "alice",
                  "--reason", "keyCompromise")  # fmt: skip
    assert "revoked alice: 2 certificate(s)" in revoked
    assert "the CA published CRL #" in revoked

    crl_file = tmp / "city.crl"
    fetched = _ok("ca", "gencrl", "--url", url, "--dir", ca_node.material.ca_dirs["City"],
                  "--out", crl_file)  # fmt: skip
    assert "2 revoked certificate(s)" in fetched
    crl = x509.load_pem_x509_crl(crl_file.read_bytes())
    listed = {entry.serial_number for entry in crl}
    assert {identity.serial_number, tls_leaf.serial_number} <= listed
    # The CRL is the CA's: the MSP now refuses alice.
    with pytest.raises(Exception, match="revoked"):
        MSP("City", alice.ca_certs, crls=[crl_file.read_bytes()]).validate(
            alice.cert_pem, datetime.now(UTC)
        )
    # The node served the same CA directory that a local command reads.
    local = json.loads(_ok("ca", "show", "--dir", ca_node.material.ca_dirs["City"], "--json"))
    assert {i["name"]: i["status"] for i in local["identities"]}["alice"] == "revoked"

    info = json.loads(_ok("ca", "show", "--url", url, "--tls-ca", ca_node.root, "--json"))
    root = x509.load_pem_x509_certificate(ca_node.root.read_bytes())
    assert info["msp_id"] == "City"
    assert info["org_name"] == "City"
    assert info["root_fingerprint"] == local["root_fingerprint"]
    assert info["subject"] == root.subject.rfc4514_string()
    assert ca_node.healthy()


def test_cli_refusals_are_one_line_with_the_ca_code(ca_node: CANode) -> None:
    url, admin, tmp = ca_node.url, ca_node.admin, ca_node.tmp
    secret = _secret(_ok("ca", "register", "--url", url, "--registrar", admin, "--name", "bob",
                         "--type", "client"))  # fmt: skip
    wrong = run_cli("ca", "enroll", "--url", url, "--tls-ca", ca_node.root, "--name", "bob",
                    "--secret", secret + "x", "--wallet", tmp / "bob")  # fmt: skip
    line = one_line_error(wrong)
    assert "the CA at " + url in line
    assert "bad_enrollment_secret" in line and "HTTP 401" in line
    assert not (tmp / "bob").exists()
    # The secret was not spent by the refusal.
    _ok("ca", "enroll", "--url", url, "--tls-ca", ca_node.root, "--name", "bob",
        "--secret", secret, "--wallet", tmp / "bob")  # fmt: skip

    taken = run_cli("ca", "register", "--url", url, "--registrar", admin, "--name", "bob",
                    "--type", "client")  # fmt: skip
    assert "identity_exists" in one_line_error(taken) and "HTTP 409" in taken.stderr

    (down,) = free_ports(1)
    unreachable = run_cli("ca", "show", "--url", f"https://127.0.0.1:{down}",
                          "--tls-ca", ca_node.root)  # fmt: skip
    assert one_line_error(unreachable) == (
        f"cctvchain: error: cannot reach the CA at https://127.0.0.1:{down}: connection refused"
    )

    police_root = ca_node.material.ca_dirs["Police"] / "ca-cert.pem"
    untrusted = run_cli("ca", "show", "--url", url, "--tls-ca", police_root)
    line = one_line_error(untrusted)
    assert f"TLS with the CA at {url} failed: certificate verify failed" in line

    no_trust = run_cli("ca", "show", "--url", url)
    assert "pass --tls-ca FILE" in one_line_error(no_trust)
    plain = run_cli("ca", "show", "--url", f"http://127.0.0.1:{ca_node.port}", "--tls-ca",
                    ca_node.root)  # fmt: skip
    assert "not an https:// URL" in one_line_error(plain)
    assert ca_node.healthy()


def _register_request(ca_node: CANode, name: str) -> SignedCARequest:
    admin = Wallet(ca_node.admin).load()
    return make_register_request(
        admin.signing_key, admin.cert_pem, name=name, id_type="client", now=datetime.now(UTC)
    )


def test_forged_replayed_and_malformed_requests_are_refused(ca_node: CANode) -> None:
    port, context = ca_node.port, ca_node.context

    def post(
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
        chunked: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        status, answer, _ = https(
            port, "POST", path, context, body=body, raw=raw, content_type=content_type,
            chunked=chunked,
        )  # fmt: skip
        assert status == 200 or set(answer) == {"code", "message"}, answer
        assert "Traceback" not in json.dumps(answer)
        return status, answer

    # A registrar request whose signature is not the registrar's (same certificate,
    # another key).
    admin = Wallet(ca_node.admin).load()
    request = RegisterRequest(
        name="mallory",
        id_type="admin",
        attributes={},
        secret=None,
        registrar_cert=admin.cert_pem,
        timestamp_ms=request_time(datetime.now(UTC)),
        nonce=b"0123456789abcdef",
    )
    forged = SignedCARequest(
        request=request.encode(),
        signature=SigningKey.generate().sign(Domain.CA_REQUEST, request.encode()),
    )
    status, body = post("/register", body={"signed_request": _signed_b64(forged)})
    assert (status, body["code"]) == (401, "bad_request_signature")
    assert ca_node.healthy()

    # The same signed request twice: the second is a replay.
    signed = _register_request(ca_node, "carol")
    status, body = post("/register", body={"signed_request": _signed_b64(signed)})
    assert status == 200 and isinstance(body["secret"], str) and body["name"] == "carol"
    status, body = post("/register", body={"signed_request": _signed_b64(signed)})
    assert (status, body["code"]) == (409, "replayed_request")
    assert ca_node.healthy()

    # Malformed bodies.
    for raw, code in (
        (b'{"signed_request": ', "malformed_json"),
        (b"[1, 2]", "malformed_json"),
        (b'{"signed_request": NaN}', "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b'{"signed_request": "***"}', "bad_field"),
        (b'{"signed_request": "AAAA"}', "malformed_request"),
        (b'{"signed_request": "AAAA", "extra": 1}', "unknown_field"),
        (b"{}", "missing_field"),
    ):
        status, body = post("/register", raw=raw)
        assert (status, body["code"]) == (400, code), raw
    status, body = post("/enroll", body={"name": "carol", "secret": "x" * 8, "csr": "junk"})
    assert (status, body["code"]) == (400, "bad_csr")
    status, body = post("/enroll", body={"name": 7, "secret": "x", "csr": "y"})
    assert (status, body["code"]) == (400, "bad_field")
    status, body = post("/register", raw=b"{}", content_type="text/plain")
    assert (status, body["code"]) == (415, "unsupported_media_type")
    assert ca_node.healthy()

    # Over the 64 KiB limit, with a Content-Length and chunked.
    big = {"signed_request": "A" * (200 * 1024)}
    status, body = post("/register", body=big)
    assert (status, body["code"]) == (413, "body_too_large")
    status, body = post("/register", body=big, chunked=True)
    assert (status, body["code"]) == (413, "body_too_large")
    assert ca_node.healthy()

    # Unknown routes and methods.
    status, body, _ = https(port, "GET", "/nope", context)
    assert (status, body["code"]) == (404, "not_found")
    status, body, headers = https(port, "GET", "/register", context)
    assert (status, body["code"]) == (405, "method_not_allowed")
    assert headers["Allow"] == "POST"
    status, body, _ = https(port, "GET", "/readyz", context)
    assert (status, body["status"]) == (200, "ready")
    assert ca_node.node.running() and ca_node.healthy()
    # Refusals are logged with their code.
    log = ca_node.node.log()
    assert "POST /register -> 401" in log and "bad_request_signature" in log
    assert "POST /register -> 409" in log and "replayed_request" in log


def test_crl_endpoint_lists_revocations_made_by_a_node_or_locally(ca_node: CANode) -> None:
    status, body, _ = https(ca_node.port, "GET", "/crl", ca_node.context)
    assert status == 200
    crl = x509.load_pem_x509_crl(str(body["crl"]).encode())
    assert [f"{entry.serial_number:x}" for entry in crl] == body["revoked"]
    assert (
        body["crl_number"]
        == crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    )
    # With no current CRL on disk the node makes one on request.
    crl_file = ca_node.material.ca_dirs["City"] / "crl.pem"
    crl_file.unlink()
    status, again, _ = https(ca_node.port, "GET", "/crl", ca_node.context)
    assert status == 200 and crl_file.exists()
    assert again["revoked"] == body["revoked"]
    assert again["crl_number"] > body["crl_number"]


def _free_config(ca_node: CANode, name: str, **ports: int) -> Path:
    """Another TOML for the same material (same nodes_dir) with other ports."""
    return write_network(ca_node.tmp, name, **ports)


def test_idle_node_stops_promptly_on_sigterm(ca_node: CANode, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    config = _free_config(ca_node, "idle.toml", ca_city=port)
    with running_node(config, "ca.city", port, ca_node.context, tmp_path / "n.log") as node:
        log = node.log()
        assert f"ca.city: listening on https://127.0.0.1:{port}" in log
        assert "INFO ca.city: CA of City (MSP City)" in log
        # The server certificate issued on the CA's first start is reused.
        assert "issued the CA's TLS server certificate" not in log
        started = time.monotonic()
        assert node.terminate() == 0
        assert time.monotonic() - started < 3
        assert node.log().rstrip().endswith("stopped")


def test_the_ca_serves_a_tls_certificate_issued_by_its_own_root(ca_node: CANode) -> None:
    assert "issued the CA's TLS server certificate" in ca_node.node.log()
    tls_dir = ca_node.material.ca_dirs["City"] / "tls"
    assert (tls_dir / "key.pem").stat().st_mode & 0o777 == 0o600
    assert tls_dir.stat().st_mode & 0o777 == 0o700
    stored = x509.load_pem_x509_certificates((tls_dir / "cert.pem").read_bytes())[0]
    root = x509.load_pem_x509_certificate(ca_node.root.read_bytes())
    stored.verify_directly_issued_by(root)
    sans = stored.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    with (
        socket.create_connection(("127.0.0.1", ca_node.port), timeout=10) as raw,
        ca_node.context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        served = conn.getpeercert(binary_form=True)
    assert served == stored.public_bytes(serialization.Encoding.DER)


def test_port_taken_is_a_one_line_error(ca_node: CANode) -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        config = _free_config(ca_node, "taken.toml", ca_city=port)
        started = time.monotonic()
        result = run_cli("node", "start", "--config", config, "--name", "ca.city")
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert one_line_error(result) == (
        f"cctvchain: error: ca.city: cannot listen on 127.0.0.1:{port}: the address is already "
        "in use (is the node already running, or another program on that port?)"
    )


def test_missing_material_and_unknown_nodes(tmp_path: Path) -> None:
    config = write_network(tmp_path)
    missing = run_cli("node", "start", "--config", config, "--name", "ca.police")
    line = one_line_error(missing)
    assert f"ca.police: CA directory {tmp_path / 'nodes' / 'ca.police'} does not exist" in line
    assert f"cctvchain node material --config {config}" in line

    unknown = run_cli("node", "start", "--config", config, "--name", "ca.nowhere")
    line = one_line_error(unknown)
    assert "no node named 'ca.nowhere'" in line and "ca.city, ca.police" in line

    absent = run_cli("node", "start", "--config", tmp_path / "none.toml", "--name", "ca.city")
    assert "does not exist" in one_line_error(absent)


def test_a_kind_without_a_service_names_the_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cctvchain.cli.main import main
    from cctvchain.node import services

    monkeypatch.delitem(services.SERVICES, "peer", raising=False)
    config = write_network(tmp_path)
    assert main(["node", "start", "--config", str(config), "--name", "peer0.police"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "cctvchain: error: peer0.police is a peer node, but this build has no peer service "
        f"yet (services available: {', '.join(sorted(services.SERVICES))})"
    )
