"""A default-shaped network of real processes for the peer tests (not a test module).

Three organisations, each with a CA directory (material made in-process, no CA node),
one Raft orderer and one peer, plus a second CityCCTV peer; ``peer2.city`` is declared
too but left stopped so that a test can start it fresh (no ledger) later. Every node is
``python -m cctvchain node start`` on free loopback ports with mutual TLS. Users and
cameras are enrolled into wallets with :func:`cctvchain.network.material.enroll_identity`
(msp + tls), and talk to peers as real clients: their own TLS certificate for the read
API, their own signing key for the gateway.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node_helpers import free_ports

from cctvchain.chaincode.cctv.model import SamplingPolicy, Segment
from cctvchain.client.transaction import ClientIdentity
from cctvchain.crypto import sha256
from cctvchain.msp.wallet import Wallet
from cctvchain.network.acl_rules import DEFAULT_ACL
from cctvchain.network.config import NetworkConfig, load_network_config
from cctvchain.network.material import NetworkMaterial, enroll_identity, ensure_material
from cctvchain.node import tls
from cctvchain.peernode.gateway_client import EvaluateResult, Gateway, SubmitResult

REPO = Path(__file__).resolve().parent.parent
ORGS = ("CityCCTV", "Police", "LocalAuthority")
ORDERERS = ("orderer0.city", "orderer1.police", "orderer2.la")
PEERS = {
    "peer0.city": "CityCCTV",
    "peer1.city": "CityCCTV",
    "peer0.police": "Police",
    "peer0.la": "LocalAuthority",
    "peer2.city": "CityCCTV",  # started late, from an empty node directory
}
RUNNING_PEERS = ("peer0.city", "peer1.city", "peer0.police", "peer0.la")
CA_NAMES = {"CityCCTV": "ca.city", "Police": "ca.police", "LocalAuthority": "ca.la"}


def cluster_toml(ports: dict[str, int], *, batch_timeout_ms: int = 100) -> str:
    orgs = "\n".join(
        f'[[organizations]]\nname = "{org}"\nmsp_id = "{org}"\n'
        f'ca = {{ name = "{CA_NAMES[org]}", host = "127.0.0.1", port = {ports[CA_NAMES[org]]} }}\n'
        for org in ORGS
    )
    orderers = "\n".join(
        f'[[orderers]]\nname = "{name}"\norg = "{org}"\nhost = "127.0.0.1"\nport = {ports[name]}\n'
        for name, org in zip(ORDERERS, ORGS, strict=True)
    )
    peers = "\n".join(
        f'[[peers]]\nname = "{name}"\norg = "{org}"\nhost = "127.0.0.1"\nport = {ports[name]}\n'
        for name, org in PEERS.items()
    )
    members = ", ".join(f"'{org}.member'" for org in ORGS)
    return f"""
[network]
name = "peer-test"
channel = "cctv"
nodes_dir = "nodes"
acl = "{DEFAULT_ACL}"

[batch]
max_message_count = 50
batch_timeout_ms = {batch_timeout_ms}
absolute_max_bytes = 262144
preferred_max_bytes = 131072

[policies]
Readers = "OR({members})"
Writers = "OR({members})"
Admins = "OutOf(2, 'CityCCTV.admin', 'Police.admin', 'LocalAuthority.admin')"
BlockValidation = "OR('CityCCTV.orderer', 'Police.orderer', 'LocalAuthority.orderer')"

[endorsement]
cctv = "OutOf(2, 'CityCCTV.peer', 'Police.peer', 'LocalAuthority.peer')"

{orgs}
{orderers}
{peers}
"""


@dataclass
class User:
    """An enrolled identity: signs proposals, and is its TLS certificate to the peers."""

    name: str
    org: str
    identity: ClientIdentity
    ssl_context: ssl.SSLContext


@dataclass
class HttpAnswer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        data = self.json()
        assert isinstance(data, dict) and set(data) == {"code", "message"}, data
        return str(data["code"])


@dataclass
class PeerCluster:
    directory: Path
    config_path: Path
    config: NetworkConfig
    material: NetworkMaterial
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    seen_height: int = 0  # the highest block + 1 a test's transaction was committed in

    # -- processes ---------------------------------------------------------------------

    def start(self, name: str) -> None:
        log = (self.directory / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cctvchain",
                "node",
                "start",
                "--config",
                str(self.config_path),
                "--name",
                name,
                "--log-level",
                "info",
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes[name]
        process.send_signal(sig)
        process.wait(timeout=30)

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def wait_ready(self, name: str, timeout: float = 60) -> None:
        """Until ``GET /readyz`` answers 200 (a peer: caught up with the orderers)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.alive(name):
                raise AssertionError(f"{name} exited:\n{self.log(name)[-3000:]}")
            try:
                answer = self.request(name, "GET", "/readyz", user=self.admin, timeout=3)
                if answer.status == 200:
                    return
                last = answer.body.decode(errors="replace")
            except OSError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise AssertionError(f"{name} not ready ({last}):\n{self.log(name)[-3000:]}")

    # -- identities --------------------------------------------------------------------

    def enroll(self, org: str, name: str, id_type: str = "client", role: str | None = None) -> User:
        wallet_path = enroll_identity(
            self.config,
            org,
            name,
            id_type,
            {"role": role} if role else None,
            now=datetime.now(UTC),
        )
        user = self.user_from_wallet(Wallet(wallet_path), org)
        self.users[name] = user
        return user

    def user_from_wallet(self, wallet: Wallet, org: str) -> User:
        loaded = wallet.load()
        identity = ClientIdentity(loaded.msp_id, loaded.cert_pem, loaded.signing_key, loaded.name)
        context = tls.node_client_context(wallet, self.material.channel_config())
        return User(loaded.name, org, identity, context)

    @property
    def admin(self) -> User:
        return self.users["admin@CityCCTV"]

    # -- HTTP ----------------------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"https://127.0.0.1:{self.ports[name]}"

    def request(
        self,
        name: str,
        method: str,
        path: str,
        *,
        user: User,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> HttpAnswer:
        """One HTTPS call as ``user`` (its TLS certificate); any status is returned."""
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.ports[name], context=user.ssl_context, timeout=timeout
        )
        try:
            sent = dict(headers or {})
            if content_type is not None:
                sent["Content-Type"] = content_type
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return HttpAnswer(
                response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
            )
        finally:
            connection.close()

    def get_json(self, name: str, path: str, user: User) -> Any:
        answer = self.request(name, "GET", path, user=user)
        assert answer.status == 200, (name, path, answer.status, answer.body[:500])
        return answer.json()

    def height(self, name: str) -> int:
        return int(self.get_json(name, "/api/v1/channel", self.admin)["height"])

    def head(self, name: str) -> str:
        return str(self.get_json(name, "/api/v1/channel", self.admin)["head_hash"])

    def wait_converged(self, names: Sequence[str], timeout: float = 30) -> tuple[int, str]:
        """Until every peer of ``names`` has the same height and head hash."""
        deadline = time.monotonic() + timeout
        seen: dict[str, tuple[int, str]] = {}
        while time.monotonic() < deadline:
            seen = {}
            for name in names:
                channel = self.get_json(name, "/api/v1/channel", self.admin)
                seen[name] = (channel["height"], channel["head_hash"])
            if len(set(seen.values())) == 1:
                return next(iter(seen.values()))
            time.sleep(0.2)
        raise AssertionError(f"peers did not converge: {seen}")

    # -- the gateway ---------------------------------------------------------------------

    def submit(
        self, user: User, function: str, *args: str, peer: str = "peer0.city", check: bool = True
    ) -> SubmitResult:
        async def call() -> SubmitResult:
            async with self.gateway(peer, user) as gateway:
                try:
                    return await gateway.submit(user.identity, "cctv", function, args, check=check)
                finally:
                    self.seen_height = max(self.seen_height, gateway.min_height)

        return asyncio.run(call())

    def gateway(self, peer: str, user: User) -> Gateway:
        """A gateway client that reads the writes of every earlier call of the test."""
        return Gateway(
            self.url(peer), user.ssl_context, channel_id="cctv", min_height=self.seen_height
        )

    def evaluate(
        self, user: User, function: str, *args: str, peer: str = "peer0.city"
    ) -> EvaluateResult:
        async def call() -> EvaluateResult:
            async with self.gateway(peer, user) as gateway:
                return await gateway.evaluate(user.identity, "cctv", function, args)

        return asyncio.run(call())


def make_cluster(directory: Path, extra_toml: str = "") -> PeerCluster:
    """The cluster's material and configuration (``extra_toml`` appended to it, e.g. a
    ``[peer]`` table of settings under test); nothing started yet."""
    names = [*ORDERERS, *PEERS, *CA_NAMES.values()]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    config_path = directory / "network.toml"
    config_path.write_text(cluster_toml(ports) + extra_toml)
    config = load_network_config(config_path)
    material = ensure_material(config, datetime.now(UTC))
    cluster = PeerCluster(directory, config_path, config, material, ports)
    for org in ORGS:
        cluster.users[f"admin@{org}"] = cluster.user_from_wallet(
            Wallet(material.admin_wallets[org]), org
        )
    return cluster


# -- camera segments ---------------------------------------------------------------------


class SegmentChain:
    """A camera's chained segments (10 s each, ending before now)."""

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self.sequence = 0
        self.previous = bytes(32)
        self.start_ms = int(time.time() * 1000) - 3_600_000

    def next_b64(self) -> str:
        segment = Segment(
            self.camera_id,
            self.sequence,
            self.start_ms,
            self.start_ms + 9_960,
            250,
            sha256(f"{self.camera_id}/{self.sequence}".encode()),
            self.previous,
            SamplingPolicy("normal", 1),
        )
        return base64.b64encode(segment.encode()).decode("ascii")

    def accepted(self, segment_b64: str) -> None:
        segment = Segment.decode(base64.b64decode(segment_b64))
        self.previous = segment.hash()
        self.sequence += 1
        self.start_ms = segment.capture_end_ms + 40


def person(pid: str, role: str, identity: str, control_room: str = "") -> str:
    return json.dumps(
        {
            "id": pid,
            "personId": f"person-{pid}",
            "name": f"name of {pid}",
            "department": "Control",
            "age": 41,
            "gender": "female",
            "role": role,
            "identity": identity,
            "controlRoom": control_room,
        }
    )


def read_sse(
    cluster: PeerCluster,
    name: str,
    path: str,
    user: User,
    until: Any,
    *,
    timeout: float = 20,
    headers: dict[str, str] | None = None,
) -> list[tuple[str, dict[str, Any], str | None]]:
    """Read ``text/event-stream`` events (kind, data, id) until ``until(events)`` holds."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1", cluster.ports[name], context=user.ssl_context, timeout=timeout
    )
    events: list[tuple[str, dict[str, Any], str | None]] = []
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        assert response.status == 200, response.read()
        assert response.getheader("Content-Type", "").startswith("text/event-stream")
        kind, data, event_id = "", "", None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            raw = response.readline()
            if not raw:
                break  # the stream ended
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line == "" and kind:
                events.append((kind, json.loads(data), event_id))
                kind, data, event_id = "", "", None
                if until(events):
                    return events
        raise AssertionError(f"stream ended or timed out after {len(events)} events")
    finally:
        connection.close()
