"""``cctvchain demo`` end to end, as a subprocess, and the ledger it leaves behind."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from cctvchain.ledger.store import Ledger
from cctvchain.msp import certs
from cctvchain.msp.errors import CertificateRevoked
from cctvchain.msp.identity import MSPManager
from cctvchain.msp.wallet import Wallet

REPO = Path(__file__).resolve().parent.parent


def _demo(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cctvchain", "demo", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _fails(result: subprocess.CompletedProcess[str], expect: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cctvchain: error: ")
    assert expect in lines[0]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("demo") / "nodes"
    result = _demo("--dir", directory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    return directory, result.stdout


def test_demo_narrates_every_step(demo_run: tuple[Path, str]) -> None:
    _, out = demo_run
    headings = re.findall(r"^\[(\d)/6\] ", out, flags=re.MULTILINE)
    assert headings == ["1", "2", "3", "4", "5", "6"]
    for role in ("CRM", "CRS", "Operator", "PO", "PCRO", "LAS"):
        assert f"role={role}" in out
    assert re.search(r"camera-001@CityCCTV\s+camera", out)
    assert re.search(r"refused .*officer@Police.* as CityCCTV: NotChainedToMSP", out)
    assert re.search(r"refused .*camera-001@CityCCTV.*: WrongIdentityType", out)
    assert re.search(r"refused\s+operator2@CityCCTV: CertificateRevoked", out)
    assert re.search(r"accepted\s+operator1@CityCCTV \(still\): MSP CityCCTV", out)
    assert "channel config sequence 1" in out
    assert "ledger height 2" in out
    assert "reopened: height 2 preserved" in out
    assert "cctvchain ledger info --ledger " in out
    assert "cctvchain ca show --dir " in out


def test_the_ledger_it_leaves_holds_the_crl(demo_run: tuple[Path, str]) -> None:
    directory, _ = demo_run
    revoked = Wallet(directory / "wallets" / "operator2@CityCCTV").load().cert_pem
    kept = Wallet(directory / "wallets" / "operator1@CityCCTV").load().cert_pem
    orderer = Wallet(directory / "orderer0.city" / "wallet").load().cert_pem
    with Ledger.open(directory / "peer0.city" / "ledger") as ledger:
        assert ledger.height == 2
        assert ledger.verify_chain().height == 2
        config = ledger.channel_config()
        (signature,) = ledger.get_block(1).metadata.signatures
    assert config.sequence == 1
    assert signature.cert == orderer
    city = config.organization("CityCCTV")
    assert city is not None
    (crl_pem,) = city.crls
    crl = x509.load_pem_x509_crl(crl_pem)
    listed = {entry.serial_number for entry in crl}
    assert certs.parse_certificate(revoked).serial_number in listed
    assert certs.parse_certificate(kept).serial_number not in listed
    assert crl_pem == (directory / "ca.city" / "crl.pem").read_bytes()
    msps = MSPManager.from_channel_config(config)
    now = datetime.now(UTC)
    with pytest.raises(CertificateRevoked):
        msps.validate("CityCCTV", revoked, now)
    assert msps.validate("CityCCTV", kept, now).role == "Operator"


def test_a_rerun_starts_fresh_and_a_foreign_directory_is_kept(tmp_path: Path) -> None:
    directory = tmp_path / "mine"
    directory.mkdir()
    (directory / "keep.txt").write_text("not the demo's")
    _fails(_demo("--dir", directory), "--fresh")
    assert (directory / "keep.txt").exists()

    assert _demo("--dir", directory, "--fresh").returncode == 0
    assert not (directory / "keep.txt").exists()
    # The second run deletes what the first made: same height, not a longer chain.
    again = _demo("--dir", directory)
    assert again.returncode == 0, again.stderr
    with Ledger.open(directory / "peer0.city" / "ledger") as ledger:
        assert ledger.height == 2


def test_a_missing_config_is_a_one_line_error(tmp_path: Path) -> None:
    result = _demo("--config", tmp_path / "nope.toml", "--dir", tmp_path / "d")
    _fails(result, "nope.toml does not exist")
    assert result.stdout == ""


def test_a_network_without_the_demo_organisations_is_refused(tmp_path: Path) -> None:
    toml = (REPO / "configs" / "local.toml").read_text().replace('"Police"', '"Constabulary"')
    config = tmp_path / "other.toml"
    config.write_text(toml)
    (tmp_path / "acl.toml").write_text((REPO / "configs" / "acl.toml").read_text())
    _fails(_demo("--config", config, "--dir", tmp_path / "d"), "needs the organisations")
