"""The README's quickstart, as a user types it: network up, enroll at a CA node, add
participants, request and approve a camera, grant and check access, network down."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_helpers import free_ports
from peer_cluster import CA_NAMES, ORDERERS, PEERS, cluster_toml

REPO = Path(__file__).resolve().parent.parent


def cctvchain(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "cctvchain", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("quickstart")
    names = [*ORDERERS, *PEERS, *CA_NAMES.values()]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    config = directory / "network.toml"
    config.write_text(cluster_toml(ports))
    try:
        up = cctvchain("network", "up", "--config", config, "--timeout", "120")
        assert "is up" in up.stdout
        yield config
    finally:
        down = cctvchain("network", "down", "--config", config, check=False)
        assert down.returncode == 0, down.stderr


def enroll(config: Path, org: str, name: str, id_type: str, role: str | None = None) -> Path:
    """Register with the org admin's wallet at the CA node, then enroll msp and tls."""
    nodes = config.parent / "nodes"
    ca_port = re.search(
        rf'name = "{CA_NAMES[org]}", host = "127.0.0.1", port = (\d+)', config.read_text()
    )
    assert ca_port is not None
    url = f"https://127.0.0.1:{ca_port.group(1)}"
    admin = nodes / "wallets" / f"admin@{org}"
    extra = ["--attr", f"role={role}"] if role else []
    registered = cctvchain(
        "ca",
        "register",
        "--url",
        url,
        "--registrar",
        admin,
        "--name",
        name,
        "--type",
        id_type,
        *extra,
    )
    secret = registered.stdout.strip().rsplit(" ", 1)[-1]
    wallet = nodes / "wallets" / f"{name}@{org}"
    for profile in ("msp", "tls"):
        cctvchain(
            "ca",
            "enroll",
            "--url",
            url,
            "--name",
            name,
            "--secret",
            secret,
            "--wallet",
            wallet,
            "--profile",
            profile,
            "--tls-ca",
            admin / "tls" / "ca.pem",
        )
    return wallet


def test_the_quickstart_works_from_the_command_line(network: Path) -> None:
    config = network
    nodes = config.parent / "nodes"
    city_admin = nodes / "wallets" / "admin@CityCCTV"
    police_admin = nodes / "wallets" / "admin@Police"
    crm = enroll(config, "CityCCTV", "crm", "client", "CRM")
    operator = enroll(config, "CityCCTV", "operator", "client", "Operator")
    officer = enroll(config, "Police", "officer", "client", "PO")
    las = enroll(config, "LocalAuthority", "clerk", "client", "LAS")
    enroll(config, "CityCCTV", "cam-5859", "camera")

    def run(wallet: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cctvchain(*args, "--wallet", wallet, "--config", config, check=check)

    person = ["--person-id", "p1", "--department", "Head", "--age", "40", "--gender", "female"]
    added = run(
        city_admin,
        "participant",
        "add",
        "--id",
        "3881",
        "--role",
        "CRM",
        "--identity",
        "crm",
        "--name",
        "Ann",
        "--control-room",
        "CR-North",
        *person,
    )
    assert "participant 3881 added: VALID in block" in added.stdout
    run(
        city_admin,
        "participant",
        "add",
        "--id",
        "3690",
        "--role",
        "Operator",
        "--identity",
        "operator",
        "--name",
        "Veronica",
        "--control-room",
        "CR-North",
        *person,
    )
    run(
        police_admin,
        "participant",
        "add",
        "--id",
        "P-77",
        "--role",
        "PO",
        "--identity",
        "officer",
        "--name",
        "Bob",
        *person,
    )
    assert "role: Operator" in run(operator, "participant", "whoami").stdout

    requested = run(
        operator,
        "camera",
        "request",
        "--id",
        "5859",
        "--ip",
        "10.20.0.7",
        "--location",
        "Main St",
        "--model",
        "Axis P1448-LE",
    )
    assert "camera 5859 requested: VALID" in requested.stdout
    assert "status: PENDING" in requested.stdout
    refused = run(
        operator, "camera", "approve", "5859", "--camera-identity", "cam-5859", check=False
    )
    assert refused.returncode == 1
    assert "ACCESS_DENIED" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    approved = run(crm, "camera", "approve", "5859", "--camera-identity", "cam-5859")
    assert "status: APPROVED" in approved.stdout

    denied = run(officer, "access", "check", "5859", check=False)
    assert denied.returncode == 3
    assert "DENIED: camera 5859 is not on the granted list" in denied.stdout
    run(crm, "access", "grant", "5859", "--role", "PO")
    granted = run(officer, "access", "check", "5859", "--record", "incident 42")
    assert "decision recorded: VALID" in granted.stdout
    assert "GRANTED: role PO holds access to 5859" in granted.stdout
    shown = run(officer, "camera", "show", "5859", "--json")
    assert '"ipAddress": "10.20.0.7"' in shown.stdout

    # The local-authority clerk is not even a participant: refused, precisely.
    clerk = run(las, "camera", "show", "5859", check=False)
    assert clerk.returncode == 1 and "ACCESS_DENIED" in clerk.stderr

    # The ledger, read through a peer of the caller's organisation.
    added_json = run(
        city_admin,
        "participant",
        "add",
        "--id",
        "3882",
        "--role",
        "CRS",
        "--identity",
        "crs",
        "--name",
        "Sam",
        *person,
        "--json",
    )
    tx_id = json.loads(added_json.stdout)["tx_id"]
    info = json.loads(run(city_admin, "ledger", "info", "--json").stdout)
    assert info["height"] >= 9 and len(info["head_hash"]) == 64
    tx = json.loads(run(city_admin, "ledger", "tx", tx_id, "--json").stdout)
    assert tx["validation_code_name"] == "VALID" and tx["block"] < info["height"] + 1
    block = json.loads(run(city_admin, "ledger", "block", str(tx["block"]), "--json").stdout)
    assert tx_id in json.dumps(block)

    status = cctvchain("network", "status", "--config", config)
    assert "running" in status.stdout and "head " in status.stdout


def test_commands_without_a_network_or_a_wallet_fail_clearly(network: Path, tmp_path: Path) -> None:
    no_wallet = cctvchain("camera", "list", "--peer", "https://127.0.0.1:9", check=False)
    assert no_wallet.returncode == 2
    assert "--wallet" in no_wallet.stderr and "Traceback" not in no_wallet.stderr
    missing = cctvchain(
        "camera",
        "list",
        "--wallet",
        tmp_path / "nobody",
        "--peer",
        "https://127.0.0.1:9",
        check=False,
    )
    assert missing.returncode == 1
    assert "cannot use wallet" in missing.stderr
    admin = network.parent / "nodes" / "wallets" / "admin@CityCCTV"
    (port,) = free_ports(1)
    down = cctvchain(
        "camera", "list", "--wallet", admin, "--peer", f"https://127.0.0.1:{port}", check=False
    )
    assert down.returncode == 1
    assert "cannot reach" in down.stderr and "cctvchain network up" in down.stderr
