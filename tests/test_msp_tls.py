"""Real mutual-TLS handshakes over loopback with TLS certificates issued by our CAs."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cctvchain.msp.testing import InMemoryOrg
from cctvchain.msp.tls import client_context, server_context
from cctvchain.msp.wallet import TLSFiles, Wallet

# OpenSSL checks validity against the real clock, so these certificates use it too.
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def city() -> InMemoryOrg:
    return InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW, intermediate=True)


@pytest.fixture(scope="module")
def police() -> InMemoryOrg:
    return InMemoryOrg("Police", "PoliceMSP", NOW)


def _tls_wallet(
    org: InMemoryOrg,
    directory: Path,
    name: str,
    id_type: str,
    *,
    hosts: tuple[str, ...] = (),
    attributes: dict[str, str] | None = None,
) -> TLSFiles:
    secret = org.register(name, id_type, attributes=attributes)
    enrolled = org.enroll(name, secret, profile="tls", hosts=hosts)
    wallet = Wallet(directory)
    wallet.save(
        profile="tls",
        name=name,
        msp_id=org.msp_id,
        id_type=id_type,
        key=enrolled.key,
        cert_pem=enrolled.cert_pem,
        root_pem=org.material.root_pem,
        intermediate_pems=org.material.intermediate_pems,
    )
    return wallet.load_tls()


@pytest.fixture(scope="module")
def server_files(city: InMemoryOrg, tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    directory = tmp_path_factory.mktemp("peer0")
    return _tls_wallet(city, directory, "peer0", "peer", hosts=("localhost", "127.0.0.1"))


@dataclass
class _ServerResult:
    peer_der: bytes | None = None
    errors: list[BaseException] = field(default_factory=list)


def _serve_once(listener: socket.socket, context: ssl.SSLContext, result: _ServerResult) -> None:
    conn, _ = listener.accept()
    conn.settimeout(5)
    try:
        with context.wrap_socket(conn, server_side=True) as tls:
            result.peer_der = tls.getpeercert(binary_form=True)
            data = tls.recv(1024)
            tls.sendall(b"echo:" + data)
    except (ssl.SSLError, OSError) as exc:
        result.errors.append(exc)


def _exchange(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[bytes, _ServerResult]:
    """One connection: the client sends 'hello' and reads the echo (or fails)."""
    result = _ServerResult()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        thread = threading.Thread(target=_serve_once, args=(listener, server, result))
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=5) as raw,
                client.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                tls.sendall(b"hello")
                reply = tls.recv(1024)
        except (ssl.SSLError, OSError):
            reply = b""
        finally:
            thread.join(timeout=10)
    return reply, result


def _server(files: TLSFiles) -> ssl.SSLContext:
    return server_context(files.cert_file, files.key_file, files.ca_file)


def _client(files: TLSFiles) -> ssl.SSLContext:
    return client_context(files.cert_file, files.key_file, files.ca_file)


def test_mutual_tls_with_certificates_of_the_same_ca(
    city: InMemoryOrg, server_files: TLSFiles, tmp_path: Path
) -> None:
    client_files = _tls_wallet(
        city, tmp_path / "alice", "alice", "client", attributes={"role": "CRM"}
    )
    reply, result = _exchange(_server(server_files), _client(client_files))
    assert result.errors == []
    assert reply == b"echo:hello"
    # The server identifies its caller by the client certificate, through the MSP.
    assert result.peer_der is not None
    caller = city.msp().validate(result.peer_der, datetime.now(UTC), allowed_types={"client"})
    assert (caller.name, caller.msp_id, caller.role) == ("alice", "CityCCTVMSP", "CRM")


def test_client_certificate_from_another_ca_refused_at_handshake(
    police: InMemoryOrg, server_files: TLSFiles, tmp_path: Path
) -> None:
    intruder = _tls_wallet(police, tmp_path / "officer", "officer", "client")
    reply, result = _exchange(_server(server_files), _client_trusting(intruder, server_files))
    assert reply == b""
    assert result.peer_der is None
    assert len(result.errors) == 1 and isinstance(result.errors[0], ssl.SSLError)
    assert "certificate verify failed" in str(result.errors[0]).lower()


def test_client_without_certificate_refused(server_files: TLSFiles) -> None:
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.load_verify_locations(cafile=str(server_files.ca_file))
    reply, result = _exchange(_server(server_files), anonymous)
    assert reply == b""
    assert result.peer_der is None
    assert len(result.errors) == 1 and isinstance(result.errors[0], ssl.SSLError)


def test_server_certificate_from_another_ca_refused_by_the_client(
    city: InMemoryOrg, police: InMemoryOrg, tmp_path: Path
) -> None:
    impostor = _tls_wallet(police, tmp_path / "fake", "fake-peer", "peer", hosts=("localhost",))
    client_files = _tls_wallet(city, tmp_path / "bob", "bob", "client")
    reply, result = _exchange(_server_trusting(impostor, client_files), _client(client_files))
    assert reply == b""
    assert result.peer_der is None
    assert result.errors  # the client aborted the handshake


def _client_trusting(own: TLSFiles, trusted: TLSFiles) -> ssl.SSLContext:
    """A client with its own certificate that trusts the server's CA (only its cert is bad)."""
    return client_context(own.cert_file, own.key_file, trusted.ca_file)


def _server_trusting(own: TLSFiles, trusted: TLSFiles) -> ssl.SSLContext:
    return server_context(own.cert_file, own.key_file, trusted.ca_file)
