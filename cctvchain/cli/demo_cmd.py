"""``cctvchain demo``: the foundation walkthrough (see :mod:`cctvchain.demo.walkthrough`)."""

from __future__ import annotations

import argparse
import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path

from cctvchain.cli.errors import CliError

DEFAULT_CONFIG = Path("configs") / "local.toml"
# The checkout the package runs from (an editable install), for `cctvchain demo` started
# outside the repository.
_REPO = Path(__file__).resolve().parent.parent.parent


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the foundation walkthrough (CAs, identities, genesis, ledger, revocation)",
        description="Create the three organisations' CAs and identities, the genesis block "
        "and a peer's ledger, check identities against the channel's MSPs, revoke an "
        "operator and commit the new CRL in a config block. Every run starts from an "
        "empty directory.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"network configuration (default: {DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="working directory (default: nodes/demo beside the configuration's nodes)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="delete DIR first even if an earlier demo did not make it",
    )
    parser.set_defaults(func=run)


def _config_path(given: Path | None) -> Path:
    if given is not None:
        return given
    for candidate in (DEFAULT_CONFIG, _REPO / DEFAULT_CONFIG):
        if candidate.is_file():
            return candidate
    raise CliError(f"no {DEFAULT_CONFIG} here; pass --config FILE")


def run(args: argparse.Namespace) -> int:
    # Imported here so that `cctvchain --help` does not load plyvel and the crypto stack.
    from cctvchain.codec import CodecError
    from cctvchain.demo import DemoError, walkthrough, workspace
    from cctvchain.ledger.errors import LedgerError
    from cctvchain.msp.errors import CAError, MSPError, StoreError
    from cctvchain.network.config import NetworkConfigError, load_network_config
    from cctvchain.network.genesis import GenesisError
    from cctvchain.network.material import MaterialError

    started = time.monotonic()
    config_path = _config_path(args.config)
    try:
        config = load_network_config(config_path)
        directory: Path = args.dir if args.dir is not None else config.nodes_dir / "demo"
        workspace.prepare(directory, fresh=args.fresh, protect=[Path.cwd(), config_path])
        print(
            f"cctvchain demo: network {config.name} from {walkthrough.display_path(config_path)}, "
            f"working in {walkthrough.display_path(directory)}"
        )
        demo_config = dataclasses.replace(config, nodes_dir=directory.resolve())
        result = walkthrough.run(demo_config, datetime.now(UTC), _print)
    except (
        DemoError,
        NetworkConfigError,
        MaterialError,
        GenesisError,
        CAError,
        MSPError,
        StoreError,
        LedgerError,
        CodecError,
    ) as exc:
        raise CliError(f"demo failed: {exc}") from exc
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise CliError(f"demo failed: {exc.strerror or exc}{where}") from exc
    print(
        f"demo finished in {time.monotonic() - started:.1f} s: ledger height {result.height}, "
        f"config sequence {result.config_sequence}"
    )
    return 0


def _print(line: str) -> None:
    print(line, flush=True)  # each step shows as it happens, also through a pipe
