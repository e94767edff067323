"""Helpers for the node tests: small networks on free loopback ports, node subprocesses,
plain HTTPS calls, and a tiny mutual-TLS service built on the node framework."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from cctvchain.crypto import SigningKey
from cctvchain.msp import certs
from cctvchain.msp.identity import MSPManager
from cctvchain.msp.requests import make_register_request
from cctvchain.msp.store import CAStore
from cctvchain.msp.wallet import TLSFiles, Wallet
from cctvchain.node import tls
from cctvchain.node.auth import mtls_auth, whoami
from cctvchain.node.http import json_response, make_app, read_json
from cctvchain.node.runtime import NodeContext, NodeService

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
PYTHON = sys.executable
CLOCK_OFFSET_ENV = "CCTVCHAIN_TEST_CLOCK_OFFSET_S"


# Listening ports are drawn below the kernel's ephemeral range (32768-60999 here): a port
# the kernel hands out for port 0 may be given to some outgoing connection's local end a
# moment later, before the node that was meant to listen on it starts. Each xdist worker
# draws from its own band so that parallel clusters never pick the same port.
_PORT_BAND = 1200
_PORT_BASE = 20000


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports, free when drawn, from this test worker's own band."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    low = _PORT_BASE + (index % 10) * _PORT_BAND
    rng = random.Random()
    chosen: list[int] = []
    for _ in range(_PORT_BAND * 4):
        if len(chosen) == count:
            return chosen
        port = rng.randrange(low, low + _PORT_BAND)
        if port in chosen:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
    raise RuntimeError(f"no {count} free ports in {low}..{low + _PORT_BAND}")


def network_toml(ports: Mapping[str, int], nodes_dir: str = "nodes") -> str:
    """Two organisations (City, Police), one orderer (City), one peer (Police)."""
    return f"""
[network]
name = "nodetest"
channel = "cams"
nodes_dir = "{nodes_dir}"

[batch]
max_message_count = 10
batch_timeout_ms = 100

[policies]
Readers = "OR('City.member', 'Police.member')"
Writers = "OR('City.member', 'Police.member')"
Admins = "AND('City.admin', 'Police.admin')"
BlockValidation = "OR('City.orderer')"

[endorsement]
cctv = "OR('City.peer', 'Police.peer')"

[[organizations]]
name = "City"
msp_id = "City"
ca = {{ name = "ca.city", host = "127.0.0.1", port = {ports["ca.city"]} }}

[[organizations]]
name = "Police"
msp_id = "Police"
ca = {{ name = "ca.police", host = "127.0.0.1", port = {ports["ca.police"]} }}

[[orderers]]
name = "orderer0.city"
org = "City"
host = "127.0.0.1"
port = {ports["orderer0.city"]}

[[peers]]
name = "peer0.police"
org = "Police"
host = "127.0.0.1"
port = {ports["peer0.police"]}
"""


NODE_NAMES = ("ca.city", "ca.police", "orderer0.city", "peer0.police")


def write_network(directory: Path, file_name: str = "net.toml", **fixed: int) -> Path:
    """A network TOML on free ports (``fixed`` overrides, e.g. ``ca_city=PORT``)."""
    ports = dict(zip(NODE_NAMES, free_ports(len(NODE_NAMES)), strict=True))
    for key, port in fixed.items():
        ports[key.replace("_", ".")] = port
    path = directory / file_name
    path.write_text(network_toml(ports))
    return path


# -- plain HTTPS ---------------------------------------------------------------------------


def trust_context(trusted_pem: bytes, files: TLSFiles | None = None) -> ssl.SSLContext:
    return tls.client_context(files, trusted_pem)


def https(
    port: int,
    method: str,
    path: str,
    context: ssl.SSLContext,
    *,
    body: Any = None,
    raw: bytes | None = None,
    content_type: str | None = "application/json",
    chunked: bool = False,
    host: str = "127.0.0.1",
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One request; the status, the JSON object answered, and the headers."""
    conn = http.client.HTTPSConnection(host, port, context=context, timeout=15)
    try:
        headers: dict[str, str] = {}
        payload: Any = raw if raw is not None else None
        if body is not None:
            payload = json.dumps(body).encode()
        if content_type is not None and payload is not None:
            headers["Content-Type"] = content_type
        if chunked and payload is not None:
            data = payload
            payload = (data[i : i + 16384] for i in range(0, len(data), 16384))
            headers["Transfer-Encoding"] = "chunked"
        conn.request(method, path, body=payload, headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        answer = response.read()
        parsed = json.loads(answer) if answer else {}
        assert isinstance(parsed, dict), answer
        return response.status, parsed, dict(response.getheaders())
    finally:
        conn.close()


# -- node processes ------------------------------------------------------------------------

# Runs the real CLI with a test service registered for orderers (the orderer service
# proper is not in this build): the runtime, TLS and auth are the framework's.
_WITH_TEST_SERVICE = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from node_helpers import whoami_service
from cctvchain.node import services
services.SERVICES["orderer"] = whoami_service
from cctvchain.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


class NodeProcess:
    """``cctvchain node start`` as a subprocess, its log in a file."""

    def __init__(
        self,
        config: Path,
        name: str,
        log_file: Path,
        *,
        test_service: bool = False,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.name = name
        self.log_file = log_file
        args = ["node", "start", "--config", str(config), "--name", name, "--log-level", "debug"]
        args.extend(extra_args)
        prefix = [PYTHON, "-c", _WITH_TEST_SERVICE] if test_service else [PYTHON, "-m", "cctvchain"]
        self.command = [*prefix, *args]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeProcess:
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=self.env
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_healthy(self, port: int, context: ssl.SSLContext, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise AssertionError(f"{self.name} exited early:\n{self.log()}")
            try:
                status, body, _ = https(port, "GET", "/healthz", context)
                if status == 200 and body.get("status") == "ok":
                    return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not healthy in {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def terminate(self, timeout: float = 15) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def running_node(
    config: Path,
    name: str,
    port: int,
    context: ssl.SSLContext,
    log_file: Path,
    **kwargs: Any,
) -> Iterator[NodeProcess]:
    node = NodeProcess(config, name, log_file, **kwargs).start()
    try:
        node.wait_healthy(port, context)
        yield node
    finally:
        node.kill()


def run_cli(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "cctvchain", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``cctvchain: error:`` line of a failed command (no traceback)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("cctvchain: error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# -- identities for the tests ----------------------------------------------------------------


def enroll_tls(
    store: CAStore,
    registrar: Wallet,
    wallet: Path,
    name: str,
    id_type: str,
    *,
    now: datetime,
    validity: timedelta = timedelta(days=30),
    attributes: Mapping[str, str] | None = None,
) -> TLSFiles:
    """Register ``name`` and enroll only a TLS certificate, issued as of ``now``."""
    admin = registrar.load()
    request = make_register_request(
        admin.signing_key,
        admin.cert_pem,
        name=name,
        id_type=id_type,
        now=now,
        attributes=attributes,
    )
    key = SigningKey.generate()
    with store.open() as ca:
        secret = ca.register(request, now)
        cert_pem = ca.enroll(
            name,
            secret,
            certs.build_csr(key, name),
            now,
            profile="tls",
            hosts=("localhost", "127.0.0.1"),
            validity=validity,
        )
    root, intermediates = store.ca_chain_pems()
    Wallet(wallet).save(
        profile="tls",
        name=name,
        msp_id=store.info()["msp_id"],
        id_type=id_type,
        key=key,
        cert_pem=cert_pem,
        root_pem=root,
        intermediate_pems=intermediates,
    )
    return Wallet(wallet).load_tls()


# -- the test service: runtime + tls + auth, nothing else -------------------------------------


async def whoami_service(context: NodeContext) -> NodeService:
    """A mutual-TLS node answering ``GET /whoami`` (and a failing ``GET /boom``)."""
    config = context.channel_config()
    wallet = context.node_wallet()
    manager = MSPManager.from_channel_config(config)
    offset = timedelta(seconds=float(os.environ.get(CLOCK_OFFSET_ENV, "0")))

    def now() -> datetime:
        return datetime.now(UTC) + offset

    app = make_app(
        context.name,
        context.kind,
        log=context.log,
        middlewares=[mtls_auth(lambda: manager, now=now)],
        max_body=4096,
    )
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/boom", _boom)
    app.router.add_post("/echo", _echo)
    app.router.add_get("/slow", _slow)
    return NodeService(
        app=app,
        ssl_context=tls.node_server_context(wallet, config),
        description=f"test service of {context.name}",
    )


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


async def _slow(request: web.Request) -> web.Response:
    """Answers after ``?ms=`` milliseconds: a request still in flight when asked to stop."""
    await asyncio.sleep(int(request.query.get("ms", "1000")) / 1000)
    return json_response({"slept_ms": int(request.query.get("ms", "1000"))})


async def _echo(request: web.Request) -> web.Response:
    return json_response(await read_json(request))
