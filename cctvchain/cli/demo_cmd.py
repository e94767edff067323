"""``cctvchain demo``: placeholder registration, filled in below."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="run the end-to-end walkthrough")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return 0
