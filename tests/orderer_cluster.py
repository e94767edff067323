"""A Raft ordering cluster of real processes for tests: 3 organisations, one orderer
each, on free loopback ports, with envelopes signed by a real client identity."""

from __future__ import annotations

import os
import signal
import ssl
import struct
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node_helpers import free_ports

from cctvchain.client.transaction import ClientIdentity
from cctvchain.crypto import Domain
from cctvchain.ledger.block import Block
from cctvchain.msp.wallet import Wallet
from cctvchain.network.config import load_network_config
from cctvchain.network.material import ensure_material
from cctvchain.node import tls
from cctvchain.tx.messages import (
    Envelope,
    Proposal,
    SerializedIdentity,
    TransactionPayload,
    compute_tx_id,
)

REPO = Path(__file__).resolve().parent.parent
ORGS = ("CityCCTV", "Police", "LocalAuthority")
ORDERERS = ("orderer0.city", "orderer1.police", "orderer2.la")
FRAME = struct.Struct(">I")


def cluster_toml(ports: dict[str, int], *, batch_timeout_ms: int = 200, max_count: int = 20) -> str:
    orgs = "\n".join(
        f'[[organizations]]\nname = "{org}"\nmsp_id = "{org}"\n'
        f'ca = {{ name = "ca.{org.lower()}", host = "127.0.0.1", '
        f"port = {ports['ca.' + org.lower()]} }}\n"
        for org in ORGS
    )
    orderers = "\n".join(
        f'[[orderers]]\nname = "{name}"\norg = "{org}"\nhost = "127.0.0.1"\nport = {ports[name]}\n'
        for name, org in zip(ORDERERS, ORGS, strict=True)
    )
    members = ", ".join(f"'{org}.member'" for org in ORGS)
    return f"""
[network]
name = "raft-test"
channel = "cctv"
nodes_dir = "nodes"

[batch]
max_message_count = {max_count}
batch_timeout_ms = {batch_timeout_ms}
absolute_max_bytes = 65536
preferred_max_bytes = 32768

[policies]
Readers = "OR({members})"
Writers = "OR({members})"
Admins = "OutOf(2, 'CityCCTV.admin', 'Police.admin', 'LocalAuthority.admin')"
BlockValidation = "OR('CityCCTV.orderer', 'Police.orderer', 'LocalAuthority.orderer')"

[endorsement]
cctv = "OutOf(2, 'CityCCTV.peer', 'Police.peer', 'LocalAuthority.peer')"

{orgs}
{orderers}
[[peers]]
name = "peer0.city"
org = "CityCCTV"
host = "127.0.0.1"
port = {ports["peer0.city"]}
"""


@dataclass
class Cluster:
    directory: Path
    config_path: Path
    ports: dict[str, int]
    client: ClientIdentity
    ssl_context: ssl.SSLContext
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # -- processes -------------------------------------------------------------------

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
        if sig in (signal.SIGKILL, signal.SIGTERM):
            process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    # -- HTTP ---------------------------------------------------------------------------

    def url(self, name: str, path: str) -> str:
        return f"https://127.0.0.1:{self.ports[name]}{path}"

    def get(self, name: str, path: str, timeout: float = 5) -> bytes:
        with urllib.request.urlopen(
            self.url(name, path), context=self.ssl_context, timeout=timeout
        ) as r:
            return bytes(r.read())

    def status(self, name: str) -> dict[str, Any]:
        import json

        return dict(json.loads(self.get(name, "/status")))

    def broadcast(self, name: str, envelope: bytes, timeout: float = 15) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.url(name, "/broadcast"),
            data=envelope,
            method="POST",
            headers={"Content-Type": "application/octet-stream"},
        )
        try:
            with urllib.request.urlopen(request, context=self.ssl_context, timeout=timeout) as r:
                return r.status, bytes(r.read())
        except urllib.error.HTTPError as error:
            return error.code, bytes(error.read())

    def blocks(self, name: str, start: int = 0, stop: int | None = None) -> list[Block]:
        if stop is None:
            stop = int(self.status(name)["height"])
        raw = self.get(name, f"/deliver?from={start}&to={stop}", timeout=30)
        blocks, offset = [], 0
        while offset < len(raw):
            (length,) = FRAME.unpack_from(raw, offset)
            offset += FRAME.size
            blocks.append(Block.decode(raw[offset : offset + length]))
            offset += length
        return blocks

    def wait_healthy(self, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.get(name, "/healthz", timeout=2)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name} not healthy:\n{self.log(name)[-3000:]}") from None
                time.sleep(0.1)

    def leader(self, among: tuple[str, ...] = ORDERERS, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in among:
                try:
                    if self.status(name)["role"] == "leader":
                        return name
                except OSError:
                    continue
            time.sleep(0.1)
        raise AssertionError("no leader elected")

    # -- envelopes ----------------------------------------------------------------------

    def envelope(self, payload: str = "") -> bytes:
        """A signed envelope from the client (no endorsements: orderers do not judge
        those; peers would flag it ENDORSEMENT_POLICY_FAILURE)."""
        creator = SerializedIdentity(self.client.msp_id, self.client.cert)
        nonce = os.urandom(24)
        proposal = Proposal(
            "cctv",
            "cctv",
            "Anchor",
            (payload,),
            creator,
            nonce,
            int(time.time() * 1000),
            compute_tx_id(nonce, creator),
        ).encode()
        body = TransactionPayload(proposal, b"", ()).encode()
        return Envelope(body, self.client.key.sign(Domain.ENVELOPE, body)).encode()


def make_cluster(directory: Path, **toml_options: Any) -> Cluster:
    names = [*ORDERERS, *(f"ca.{org.lower()}" for org in ORGS), "peer0.city"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    config_path = directory / "network.toml"
    config_path.write_text(cluster_toml(ports, **toml_options))
    config = load_network_config(config_path)
    material = ensure_material(config, datetime.now(UTC))
    wallet = Wallet(material.admin_wallets["CityCCTV"])
    loaded = wallet.load()
    client = ClientIdentity(loaded.msp_id, loaded.cert_pem, loaded.signing_key, loaded.name)
    context = tls.node_client_context(wallet, material.channel_config())
    return Cluster(directory, config_path, ports, client, context)
