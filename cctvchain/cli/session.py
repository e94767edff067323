"""Who the CLI acts as and which peer it talks to: a wallet, and a peer of its organisation.

Every network command takes ``--wallet DIR`` (an enrolled identity with msp and tls
profiles, e.g. ``nodes/wallets/operator@CityCCTV``) and either ``--peer URL`` or a network
``--config`` (default ``configs/local.toml``) from which the first peer of the wallet's
organisation is taken. Failures become one-line :class:`CliError`\\ s that say what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cctvchain.cli.errors import CliError
from cctvchain.client.transaction import ClientIdentity
from cctvchain.msp.errors import StoreError
from cctvchain.msp.wallet import Wallet
from cctvchain.network.config import NetworkConfigError, load_network_config
from cctvchain.node import tls
from cctvchain.node.errors import NodeClientError, NodeRefused, NodeUnreachable
from cctvchain.node.runtime import format_url
from cctvchain.peernode.gateway_client import (
    EvaluateResult,
    Gateway,
    SubmitResult,
    TransactionInvalid,
)

DEFAULT_CONFIG = Path("configs/local.toml")
WALLET_ENV = "CCTVCHAIN_WALLET"
T = TypeVar("T")


def add_session_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wallet",
        type=Path,
        default=os.environ.get(WALLET_ENV),
        help=f"the identity to act as (a wallet directory; default ${WALLET_ENV})",
    )
    parser.add_argument("--peer", help="the peer's URL, e.g. https://127.0.0.1:7051")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="network configuration used to find a peer of your organisation",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")


@dataclass(frozen=True)
class Session:
    identity: ClientIdentity
    peer_url: str
    ssl_context: ssl.SSLContext

    def submit(self, function: str, *args: str) -> SubmitResult:
        return self._run(lambda gateway: gateway.submit(self.identity, "cctv", function, args))

    def evaluate(self, function: str, *args: str) -> Any:
        result: EvaluateResult = self._run(
            lambda gateway: gateway.evaluate(self.identity, "cctv", function, args)
        )
        return result.json()

    def get(self, path: str) -> Any:
        """A read of the peer's HTTP API (as this wallet's TLS identity)."""
        return self._run(lambda gateway: gateway.request("GET", path))

    def _run(self, call: Callable[[Gateway], Awaitable[T]]) -> T:
        async def go() -> T:
            async with Gateway(self.peer_url, self.ssl_context) as gateway:
                return await call(gateway)

        try:
            return asyncio.run(go())
        except TransactionInvalid as exc:
            raise CliError(str(exc)) from None
        except NodeRefused as exc:
            said = exc.message if exc.message.startswith(exc.code) else f"{exc.code}: {exc.message}"
            raise CliError(f"refused by the network: {said}") from None
        except NodeUnreachable as exc:
            raise CliError(f"{exc} (is the network up? try: cctvchain network up)") from None
        except NodeClientError as exc:
            raise CliError(str(exc)) from None


def open_session(args: argparse.Namespace) -> Session:
    if args.wallet is None:
        raise CliError(f"say who you are: --wallet DIR (or set {WALLET_ENV})", exit_code=2)
    wallet = Wallet(args.wallet)
    try:
        loaded = wallet.load()
        files = wallet.load_tls()
    except StoreError as exc:
        raise CliError(f"cannot use wallet {args.wallet}: {exc}") from None
    identity = ClientIdentity(loaded.msp_id, loaded.cert_pem, loaded.signing_key, loaded.name)
    trusted = files.ca_file.read_bytes()
    url = args.peer or _peer_of_org(args.config, loaded.msp_id)
    return Session(identity, url, tls.client_context(files, trusted))


def _peer_of_org(config_path: Path, msp_id: str) -> str:
    try:
        config = load_network_config(config_path)
    except NetworkConfigError as exc:
        raise CliError(f"{exc} (or name the peer with --peer URL)") from None
    orgs = {org.name for org in config.organizations if org.msp_id == msp_id}
    for peer in config.peers:
        if peer.org in orgs:
            return format_url(peer.host, peer.port)
    raise CliError(f"{config_path} lists no peer of {msp_id}; name one with --peer URL")


def print_answer(args: argparse.Namespace, answer: Any, lines: Sequence[str]) -> None:
    import json

    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        for line in lines:
            print(line)


def committed_line(result: SubmitResult, what: str) -> str:
    return (
        f"{what}: {result.validation_code_name} in block {result.block} (tx {result.tx_id[:16]}…)"
    )
