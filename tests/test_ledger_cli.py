"""``cctvchain ledger ...`` run as a real subprocess against a real ledger directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ledger_helpers import kv_tx, next_block, sample_config

from cctvchain.ledger.blockfile import BlockFiles, GoodFrame
from cctvchain.ledger.genesis import ConfigTransaction, make_genesis_block
from cctvchain.ledger.store import Ledger
from cctvchain.ledger.validation import TxValidationCode

REPO = Path(__file__).resolve().parent.parent
CONFIG_TX_ID = ConfigTransaction(sample_config()).tx_id


# The real entry point, in a process that also knows the test transaction type (as a
# node's process knows the endorser transaction types).
WITH_TEST_TYPES = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); import ledger_helpers; "
    "from cctvchain.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def cli(*args: str | Path, test_types: bool = False) -> subprocess.CompletedProcess[str]:
    if test_types:
        command = [sys.executable, "-c", WITH_TEST_TYPES, str(REPO / "tests")]
    else:
        command = [sys.executable, "-m", "cctvchain"]
    return subprocess.run(
        [*command, "ledger", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def ok(*args: str | Path, test_types: bool = False) -> str:
    result = cli(*args, test_types=test_types)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(*args: str | Path, test_types: bool = False) -> str:
    result = cli(*args, test_types=test_types)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cctvchain: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    config_file = root / "channel.config"
    config_file.write_bytes(sample_config().encode())
    path = root / "ledger"
    assert "created ledger" in ok("init", "--ledger", path, "--genesis", config_file)
    with Ledger.open(path) as led:
        led.append_block(
            next_block(
                led,
                [
                    kv_tx("tx-ok", ("cctv", "cam1", b"approved")),
                    kv_tx("tx-late", ("cctv", "cam1", b"x")),
                ],
                [TxValidationCode.VALID, TxValidationCode.MVCC_READ_CONFLICT],
            )
        )
        led.append_block(next_block(led, [kv_tx("tx-del", ("cctv", "cam1", None))]))
    return path


def test_info(ledger_dir: Path) -> None:
    text = ok("info", "--ledger", ledger_dir)
    assert "height:      3" in text
    assert "channel:     cctv-channel" in text
    assert "CityCCTV (CityCCTVMSP), Police (PoliceMSP), LocalAuthority (LocalAuthorityMSP)" in text
    data = json.loads(ok("info", "--ledger", ledger_dir, "--json"))
    with Ledger.open(ledger_dir) as led:
        head = led.head_hash.hex()
    assert data["height"] == 3 and data["head_hash"] == head
    assert data["config_sequence"] == 0
    assert [o["msp_id"] for o in data["organizations"]] == [
        "CityCCTVMSP",
        "PoliceMSP",
        "LocalAuthorityMSP",
    ]


def test_block(ledger_dir: Path) -> None:
    text = ok("block", "0", "--ledger", ledger_dir)
    assert "block:         0" in text
    assert "previous hash: " + "00" * 32 in text
    assert f"VALID                        {CONFIG_TX_ID}  [ledger.config_tx]" in text
    data = json.loads(ok("block", "1", "--ledger", ledger_dir, "--json", test_types=True))
    assert data["tx_count"] == 2
    assert [(t["tx_id"], t["validation_code"]) for t in data["transactions"]] == [
        ("tx-ok", "VALID"),
        ("tx-late", "MVCC_READ_CONFLICT"),
    ]
    assert data["signers"] == []


def test_tx(ledger_dir: Path) -> None:
    text = ok("tx", CONFIG_TX_ID, "--ledger", ledger_dir)
    assert (
        "block:      0" in text
        and "validation: VALID" in text
        and "type:       ledger.config_tx" in text
    )
    data = json.loads(ok("tx", "tx-late", "--ledger", ledger_dir, "--json", test_types=True))
    assert (data["block"], data["position"], data["validation_code"], data["type"]) == (
        1,
        1,
        "MVCC_READ_CONFLICT",
        "test.kv_tx",
    )


def test_history_verify_rebuild(ledger_dir: Path) -> None:
    # History entries hold no values: they are read from the block, so (as for rebuild)
    # the process must know the transaction's type.
    refused = fails("history", "cam1", "--ledger", ledger_dir)
    assert "cannot read transaction 0 of block 1 for its history" in refused
    assert "unknown message type 'test.kv_tx'" in refused
    text = ok("history", "cam1", "--ledger", ledger_dir, test_types=True)
    assert "cctv / cam1: 2 write(s)" in text
    assert "block 1 tx 0  tx-ok  approved" in text and "block 2 tx 0  tx-del  (deleted)" in text
    data = json.loads(
        ok("history", "channel", "--namespace", "_config", "--ledger", ledger_dir, "--json")
    )
    assert [h["tx_id"] for h in data["history"]] == [CONFIG_TX_ID]
    verified = ok("verify", "--ledger", ledger_dir, test_types=True)
    assert "ledger OK: 3 blocks, 4 transactions" in verified
    # A process that does not know a committed VALID transaction's type must not
    # rebuild a state without its writes: it refuses, and the index stays as it was.
    refused = fails("rebuild", "--ledger", ledger_dir)
    assert "block 1 in blockfile_000000" in refused
    assert "unknown message type 'test.kv_tx'" in refused
    rebuilt = ok("rebuild", "--ledger", ledger_dir, test_types=True)
    assert "rebuilt the index from 3 blocks" in rebuilt
    assert json.loads(ok("info", "--ledger", ledger_dir, "--json"))["height"] == 3


def test_clean_errors(ledger_dir: Path, tmp_path: Path) -> None:
    assert "block 7 does not exist (the ledger has blocks 0 to 2)" in fails(
        "block", "7", "--ledger", ledger_dir
    )
    assert "transaction nope is not in the ledger" in fails("tx", "nope", "--ledger", ledger_dir)
    assert "no ledger at" in fails("info", "--ledger", tmp_path / "nothing")
    with Ledger.open(ledger_dir):
        assert "in use by another process" in fails("info", "--ledger", ledger_dir)
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a block")
    assert "is not a genesis block or channel configuration" in fails(
        "init", "--ledger", tmp_path / "new", "--genesis", junk
    )
    other = tmp_path / "other.block"
    other.write_bytes(make_genesis_block(sample_config("another-channel")).encode())
    assert "already holds another chain" in fails(
        "init", "--ledger", ledger_dir, "--genesis", other
    )
    usage = cli("block", "--ledger", ledger_dir)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_corruption_is_reported_naming_the_block(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    genesis_file = tmp_path / "genesis.block"
    genesis_file.write_bytes(make_genesis_block(sample_config()).encode())
    ok("init", "--ledger", path, "--genesis", genesis_file)
    assert "already" not in ok("init", "--ledger", path, "--genesis", genesis_file)  # idempotent
    with Ledger.open(path) as led:
        for n in range(3):
            led.append_block(next_block(led, [kv_tx(f"t{n}", ("cctv", "k", b"v" * 100))]))
    frame = list(BlockFiles(path / "blocks").scan())[2]
    assert isinstance(frame, GoodFrame)
    blockfile = path / "blocks" / "blockfile_000000"
    data = bytearray(blockfile.read_bytes())
    data[frame.location.offset + 40] ^= 0xFF
    blockfile.write_bytes(bytes(data))
    line = fails("verify", "--ledger", path, test_types=True)
    assert line == (
        f"cctvchain: error: block 2 in blockfile_000000 at offset {frame.location.offset} "
        "is damaged: frame payload checksum mismatch"
    )
    assert "block 2 in blockfile_000000" in fails("block", "2", "--ledger", path)
    assert "blocks 0 to 3" in fails("block", "4", "--ledger", path)
