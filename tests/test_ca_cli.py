"""``cctvchain ca ...`` end to end, through real subprocesses."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from cctvchain.msp.errors import CertificateRevoked
from cctvchain.msp.identity import MSP
from cctvchain.msp.wallet import Wallet


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cctvchain", "ca", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _ok(*args: str | Path, cwd: Path) -> str:
    result = _run(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _secret(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("enrollment secret for")]
    assert len(lines) == 1, output
    return lines[0].rsplit(": ", 1)[1]


def _fails(*args: str | Path, cwd: Path, expect: str) -> None:
    result = _run(*args, cwd=cwd)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cctvchain: error: ")
    assert expect in lines[0]


def test_ca_lifecycle_through_the_cli(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    init = _ok(
        "init", "--dir", ca, "--org", "CityCCTV", "--msp-id", "CityCCTVMSP", "--intermediate",
        cwd=tmp_path,
    )  # fmt: skip
    admin_secret = _secret(init)
    assert "fingerprint" in init
    assert stat.S_IMODE((ca / "ca-key.pem").stat().st_mode) == 0o600

    _ok("enroll", "--dir", ca, "--name", "admin", "--secret", admin_secret,
        "--wallet", tmp_path / "admin", cwd=tmp_path)  # fmt: skip
    registered = _ok(
        "register", "--dir", ca, "--registrar", tmp_path / "admin", "--name", "alice",
        "--type", "client", "--attr", "role=CRM", cwd=tmp_path,
    )  # fmt: skip
    alice_secret = _secret(registered)
    _ok("enroll", "--dir", ca, "--name", "alice", "--secret", alice_secret,
        "--wallet", tmp_path / "alice", cwd=tmp_path)  # fmt: skip
    _ok("enroll", "--dir", ca, "--name", "alice", "--secret", alice_secret,
        "--wallet", tmp_path / "alice", "--profile", "tls", "--hosts", "localhost,127.0.0.1",
        cwd=tmp_path)  # fmt: skip

    alice = Wallet(tmp_path / "alice").load()
    assert stat.S_IMODE(Wallet(tmp_path / "alice").msp_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(Wallet(tmp_path / "alice").tls_files.key_file.stat().st_mode) == 0o600
    msp = MSP("CityCCTVMSP", alice.ca_certs, alice.intermediate_certs)
    identity = msp.validate(alice.cert_pem, datetime.now(UTC), allowed_types={"client"})
    assert (identity.name, identity.role) == ("alice", "CRM")

    # A single-use secret, and a clean one-line error when it is reused.
    _fails("enroll", "--dir", ca, "--name", "alice", "--secret", alice_secret,
           "--wallet", tmp_path / "alice2", cwd=tmp_path, expect="already")  # fmt: skip
    # A client is not a registrar.
    _fails("register", "--dir", ca, "--registrar", tmp_path / "alice", "--name", "bob",
           "--type", "client", cwd=tmp_path, expect="not a registrar")  # fmt: skip

    revoked = _ok("revoke", "--dir", ca, "--registrar", tmp_path / "admin", "--name", "alice",
                  "--reason", "keyCompromise", cwd=tmp_path)  # fmt: skip
    assert f"{identity.serial_number:x}" in revoked
    gencrl = _ok("gencrl", "--dir", ca, "--out", tmp_path / "crl.pem", cwd=tmp_path)
    assert "2 revoked certificate(s)" in gencrl
    crl_pem = (tmp_path / "crl.pem").read_bytes()
    assert crl_pem == (ca / "crl.pem").read_bytes()
    crl = x509.load_pem_x509_crl(crl_pem)
    assert crl.get_revoked_certificate_by_serial_number(identity.serial_number) is not None
    with pytest.raises(CertificateRevoked):
        MSP("CityCCTVMSP", alice.ca_certs, alice.intermediate_certs, [crl_pem]).validate(
            alice.cert_pem, datetime.now(UTC)
        )

    shown = json.loads(_ok("show", "--dir", ca, "--json", cwd=tmp_path))
    assert shown["msp_id"] == "CityCCTVMSP"
    assert shown["intermediate"] == "CN=CityCCTV Intermediate CA,O=CityCCTV"
    by_name = {item["name"]: item for item in shown["identities"]}
    assert by_name["alice"]["status"] == "revoked"
    assert by_name["alice"]["attributes"] == {"role": "CRM"}
    assert [c["profile"] for c in by_name["alice"]["certificates"]] == ["msp", "tls"]
    assert by_name["admin"]["status"] == "enrolled"
    text = _ok("show", "--dir", ca, cwd=tmp_path)
    assert shown["root_fingerprint"] in text and "alice" in text and "revoked" in text


def test_user_mistakes_give_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    _fails("show", "--dir", missing, cwd=tmp_path, expect="does not exist")
    ca = tmp_path / "ca"
    init = _ok("init", "--dir", ca, "--org", "Police", "--msp-id", "PoliceMSP",
               "--admin", "chief", "--admin-secret", "chief-secret-1", cwd=tmp_path)  # fmt: skip
    assert _secret(init) == "chief-secret-1"
    _fails("init", "--dir", ca, "--org", "Police", "--msp-id", "PoliceMSP",
           cwd=tmp_path, expect="already holds a CA")  # fmt: skip
    _fails("enroll", "--dir", ca, "--name", "chief", "--secret", "wrong-secret",
           "--wallet", tmp_path / "w", cwd=tmp_path, expect="wrong enrollment secret")  # fmt: skip
    _fails("enroll", "--dir", ca, "--name", "nobody", "--secret", "whatever",
           "--wallet", tmp_path / "w", cwd=tmp_path, expect="no identity named nobody")  # fmt: skip
    _fails("register", "--dir", ca, "--registrar", tmp_path / "nowallet", "--name", "x",
           "--type", "client", cwd=tmp_path, expect="does not exist")  # fmt: skip
    _ok("enroll", "--dir", ca, "--name", "chief", "--secret", "chief-secret-1",
        "--wallet", tmp_path / "chief", cwd=tmp_path)  # fmt: skip
    _fails("register", "--dir", ca, "--registrar", tmp_path / "chief", "--name", "x",
           "--type", "client", "--attr", "novalue", cwd=tmp_path, expect="KEY=VALUE")  # fmt: skip
    _fails("revoke", "--dir", ca, "--registrar", tmp_path / "chief", "--serial", "zz",
           cwd=tmp_path, expect="not hexadecimal")  # fmt: skip
    _fails("revoke", "--dir", ca, "--registrar", tmp_path / "chief", "--name", "ghost",
           cwd=tmp_path, expect="no identity named ghost")  # fmt: skip
    (tmp_path / "chief" / "msp" / "keystore" / "key.pem").chmod(0o644)
    _fails("register", "--dir", ca, "--registrar", tmp_path / "chief", "--name", "x",
           "--type", "client", cwd=tmp_path, expect="must not be accessible")  # fmt: skip

    usage = _run("register", "--dir", ca, cwd=tmp_path)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


@pytest.mark.parametrize(
    "action", ["", "init", "register", "enroll", "revoke", "gencrl", "show"]
)  # fmt: skip
def test_help(action: str, tmp_path: Path) -> None:
    args = [action, "--help"] if action else ["--help"]
    result = _run(*args, cwd=tmp_path)
    assert result.returncode == 0
    assert "usage: cctvchain ca" in result.stdout
    assert "--dir" in result.stdout or not action
