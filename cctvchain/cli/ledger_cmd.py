"""``cctvchain ledger ...``: inspect, verify and repair a ledger directory.

Every sub-command takes ``--ledger DIR`` (the directory holding ``blocks/`` and
``index/``) and ``--json``. Ledger failures (no ledger, block out of range, unknown
transaction, ledger in use, corruption) become a one-line :class:`CliError`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cctvchain.cli.errors import CliError
from cctvchain.cli.session import add_session_options, open_session
from cctvchain.codec import CodecError, decode_message
from cctvchain.ledger.block import Block, MetadataSignature
from cctvchain.ledger.config import ChannelConfig
from cctvchain.ledger.errors import LedgerError
from cctvchain.ledger.genesis import NotAGenesisBlock, genesis_config, make_genesis_block
from cctvchain.ledger.transaction import decode_block_transactions
from cctvchain.ledger.validation import code_name
from cctvchain.msp.certref import CertificateResolver, certificate_reference, is_reference
from cctvchain.peer.validator import orderer_certificates

DEFAULT_NAMESPACE = "cctv"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "ledger",
        help="inspect, verify and repair a ledger",
        description="Read a node's ledger directory: blocks, transactions, history.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--ledger", required=True, metavar="DIR", help="ledger directory (blocks/ and index/)"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    # info, block and tx also work against a running peer, as a wallet identity.
    either = argparse.ArgumentParser(add_help=False)
    either.add_argument(
        "--ledger", metavar="DIR", help="a ledger directory (or ask a peer: --wallet …)"
    )
    add_session_options(either)
    cmds = parser.add_subparsers(dest="ledger_command", metavar="COMMAND")
    cmds.required = True

    def command(
        name: str, help_text: str, func: Any, parent: argparse.ArgumentParser = common
    ) -> argparse.ArgumentParser:
        p = cmds.add_parser(name, parents=[parent], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    command("info", "height, head hash and channel configuration", run_info, either)
    p = command(
        "block", "one block: header, transactions, validation codes, signers", run_block, either
    )
    p.add_argument("number", type=int, metavar="N", help="block number")
    p = command("tx", "where a transaction is and how it was validated", run_tx, either)
    p.add_argument("tx_id", metavar="ID", help="transaction id")
    p = command("history", "every committed write of a key, oldest first", run_history)
    p.add_argument("key", metavar="KEY")
    p.add_argument(
        "--namespace", default=DEFAULT_NAMESPACE, help=f"namespace (default {DEFAULT_NAMESPACE})"
    )
    command("verify", "check every block file against the hash chain and the index", run_verify)
    command("rebuild", "rebuild the index, state and history from the block files", run_rebuild)
    p = command("init", "create a ledger holding a genesis block", run_init)
    p.add_argument(
        "--genesis",
        required=True,
        metavar="FILE",
        help="a genesis block, or a channel configuration to make one from (canonical bytes)",
    )


# -- helpers ------------------------------------------------------------------------------


@contextmanager
def _ledger_errors() -> Iterator[None]:
    try:
        yield
    except LedgerError as exc:
        raise CliError(str(exc)) from exc


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[Any]:
    from cctvchain.ledger.store import Ledger  # plyvel only where a ledger is opened

    with _ledger_errors(), Ledger.open(args.ledger) as ledger:
        yield ledger


def _emit(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        json.dump(data, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(lines) + "\n")


def _cert_subject(cert: bytes, resolve: CertificateResolver | None = None) -> str:
    """The subject of ``cert``: a PEM, or a certificate reference ``resolve`` looks up."""
    from cryptography import x509

    if is_reference(cert):
        pem = resolve(cert) if resolve is not None else None
        if pem is None or certificate_reference(pem) != cert:
            return f"(certificate reference {cert.hex()}, not in this ledger's configuration)"
        cert = pem
    try:
        return x509.load_pem_x509_certificate(cert).subject.rfc4514_string()
    except ValueError:
        return "(unreadable certificate)"


def _signer(sig: MetadataSignature, resolve: CertificateResolver | None = None) -> dict[str, str]:
    return {"msp_id": sig.msp_id, "subject": _cert_subject(sig.cert, resolve)}


_SHOWN_BYTES = 48


def _value_text(value: bytes | None) -> str:
    if value is None:
        return "(deleted)"
    shown = value[:_SHOWN_BYTES]
    more = f"... ({len(value)} bytes)" if len(value) > _SHOWN_BYTES else ""
    try:
        text = shown.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + shown.hex() + more
    return (text if text.isprintable() else repr(text)) + more


# -- commands -----------------------------------------------------------------------------


def _from_peer(args: argparse.Namespace, path: str) -> bool:
    """Without --ledger: print what a peer answers for ``path`` (True if so)."""
    if args.ledger is not None:
        return False
    if args.wallet is None:
        raise CliError("give a ledger directory (--ledger DIR) or a wallet to ask a peer", 2)
    answer = open_session(args).get(path)
    _emit(args, answer, [f"{key}: {value}" for key, value in sorted(answer.items())])
    return True


def run_info(args: argparse.Namespace) -> int:
    if _from_peer(args, "/api/v1/channel"):
        return 0
    with _open(args) as ledger:
        height, head = ledger.height, ledger.head_hash
        config: ChannelConfig | None = ledger.channel_config() if height else None
    data: dict[str, Any] = {"ledger": str(args.ledger), "height": height, "head_hash": head.hex()}
    lines = [f"ledger:      {args.ledger}", f"height:      {height}", f"head hash:   {head.hex()}"]
    if config is not None:
        orgs = [{"msp_id": o.msp_id, "name": o.name} for o in config.organizations]
        data.update(
            channel_id=config.channel_id,
            config_sequence=config.sequence,
            organizations=orgs,
            orderers=[o.name for o in config.orderers],
        )
        lines += [
            f"channel:     {config.channel_id}",
            f"config seq:  {config.sequence}",
            "organisations: " + ", ".join(f"{o['name']} ({o['msp_id']})" for o in orgs),
            "orderers:    " + (", ".join(o.name for o in config.orderers) or "(none)"),
        ]
    _emit(args, data, lines)
    return 0


def run_block(args: argparse.Namespace) -> int:
    if _from_peer(args, f"/api/v1/blocks/{args.number}"):
        return 0
    with _open(args) as ledger:
        block: Block = ledger.get_block(args.number)
        # Orderers sign by certificate reference when the configuration lists them.
        orderers = orderer_certificates(ledger.channel_config()) if ledger.height else None
    header = block.header
    txs = [
        {
            "index": tx.index,
            "tx_id": tx.tx_id,
            "type": tx.type_name,
            "validation_code": code_name(tx.code),
        }
        for tx in decode_block_transactions(block)
    ]
    signers = [_signer(sig, orderers) for sig in block.metadata.signatures]
    data = {
        "number": header.number,
        "hash": block.hash().hex(),
        "previous_hash": header.previous_hash.hex(),
        "data_hash": header.data_hash.hex(),
        "tx_count": len(txs),
        "transactions": txs,
        "signers": signers,
    }
    lines = [
        f"block:         {header.number}",
        f"hash:          {data['hash']}",
        f"previous hash: {data['previous_hash']}",
        f"data hash:     {data['data_hash']}",
        f"transactions:  {len(txs)}",
    ]
    lines += [
        f"  {t['index']:>4}  {t['validation_code']:<28} {t['tx_id'] or '(no tx id)'}  [{t['type']}]"
        for t in txs
    ]
    lines.append(
        "signed by:     "
        + (", ".join(f"{s['msp_id']} {s['subject']}" for s in signers) or "(unsigned)")
    )
    _emit(args, data, lines)
    return 0


def run_tx(args: argparse.Namespace) -> int:
    if _from_peer(args, f"/api/v1/transactions/{args.tx_id}"):
        return 0
    with _open(args) as ledger:
        record = ledger.get_tx(args.tx_id)
    if record is None:
        raise CliError(f"transaction {args.tx_id} is not in the ledger")
    try:
        type_name = decode_message(record.data).TYPE
    except CodecError:
        type_name = "(undecodable)"
    data = {
        "tx_id": record.tx_id,
        "block": record.block_number,
        "position": record.tx_number,
        "validation_code": record.validation_code_name,
        "type": type_name,
        "size": len(record.data),
    }
    lines = [
        f"tx id:      {record.tx_id}",
        f"block:      {record.block_number}",
        f"position:   {record.tx_number}",
        f"validation: {record.validation_code_name}",
        f"type:       {type_name}",
        f"size:       {len(record.data)} bytes",
    ]
    _emit(args, data, lines)
    return 0


def run_history(args: argparse.Namespace) -> int:
    with _open(args) as ledger:
        try:
            entries = ledger.get_history(args.namespace, args.key)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    data = {
        "namespace": args.namespace,
        "key": args.key,
        "history": [
            {
                "block": e.version.block,
                "tx": e.version.tx,
                "tx_id": e.tx_id,
                "deleted": e.is_delete,
                "value_hex": None if e.value is None else e.value.hex(),
            }
            for e in entries
        ],
    }
    lines = [f"{args.namespace} / {args.key}: {len(entries)} write(s)"]
    lines += [
        f"  block {e.version.block} tx {e.version.tx}  {e.tx_id}  {_value_text(e.value)}"
        for e in entries
    ]
    _emit(args, data, lines)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    with _open(args) as ledger:
        report = ledger.verify_chain()
    data = {
        "ok": True,
        "height": report.height,
        "head_hash": report.head_hash.hex(),
        "files": report.files,
        "transactions": report.transactions,
    }
    lines = [
        f"ledger OK: {report.height} blocks, {report.transactions} transactions in "
        f"{report.files} block file(s); head {report.head_hash.hex()}"
    ]
    _emit(args, data, lines)
    return 0


def run_rebuild(args: argparse.Namespace) -> int:
    from cctvchain.ledger.store import Ledger

    with _ledger_errors(), Ledger.rebuild(args.ledger) as ledger:
        height, head = ledger.height, ledger.head_hash
    _emit(
        args,
        {"height": height, "head_hash": head.hex()},
        [f"rebuilt the index from {height} blocks; head {head.hex()}"],
    )
    return 0


def _read_genesis(path: Path) -> Block:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        message = decode_message(raw)
    except CodecError as exc:
        raise CliError(f"{path} is not a genesis block or channel configuration: {exc}") from exc
    if isinstance(message, ChannelConfig):
        return make_genesis_block(message)
    if isinstance(message, Block):
        try:
            genesis_config(message)
        except NotAGenesisBlock as exc:
            raise CliError(f"{path}: {exc}") from exc
        return message
    raise CliError(f"{path} holds a {message.TYPE}, not a genesis block or channel configuration")


def run_init(args: argparse.Namespace) -> int:
    from cctvchain.ledger.store import Ledger

    block = _read_genesis(Path(args.genesis))
    with _ledger_errors(), Ledger.open(args.ledger, create=True) as ledger:
        if ledger.height == 0:
            ledger.append_block(block)
        elif ledger.get_block_hash(0) != block.hash():
            raise CliError(f"ledger {args.ledger} already holds another chain")
        height, head = ledger.height, ledger.head_hash
    config = genesis_config(block)
    _emit(
        args,
        {"height": height, "head_hash": head.hex(), "channel_id": config.channel_id},
        [f"created ledger {args.ledger} for channel {config.channel_id}; genesis {head.hex()}"],
    )
    return 0
