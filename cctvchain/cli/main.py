"""The ``cctvchain`` command: one argparse tree, one sub-module per command group.

Each command module exposes ``add_parser(subparsers)`` which registers its sub-commands
and sets ``func`` (``Callable[[argparse.Namespace], int]``) on its parsers. A user
mistake raises :class:`CliError` and is printed as one line, never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cctvchain import __version__
from cctvchain.cli.errors import CliError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    from cctvchain.cli import (
        app_cmd,
        ca_cmd,
        demo_cmd,
        ingest_cmd,
        ledger_cmd,
        network_cmd,
        node_cmd,
        verify_cmd,
        verify_net,
    )

    parser = argparse.ArgumentParser(
        prog="cctvchain",
        description="Permissioned blockchain that makes CCTV recordings tamper-evident.",
    )
    parser.add_argument("--version", action="version", version=f"cctvchain {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (
        network_cmd,
        node_cmd,
        ca_cmd,
        app_cmd,
        ingest_cmd,
        ledger_cmd,
        demo_cmd,
        verify_net,
        verify_cmd,
    ):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except CliError as exc:
        print(f"cctvchain: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cctvchain: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
