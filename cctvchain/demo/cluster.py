"""The demo's own network: the topology of a configuration (``configs/local.toml`` by
default), written to ``<demo dir>/network.toml`` with every port moved by an offset, its
node state under the demo directory, and the ACL rules copied beside it.

So the demo runs the default cluster (3 organisations, 3 Raft orderers, 4 peers, the
same policies and batch settings) without touching a cluster the user runs from
``configs/local.toml``: other ports (``+10000`` by default), other directories.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from cctvchain.demo import DemoError

CONFIG_NAME: Final = "network.toml"
ACL_NAME: Final = "acl.toml"
DEFAULT_PORT_OFFSET: Final = 10000


def write_demo_config(template: Path, directory: Path, port_offset: int) -> Path:
    """Write the demo's configuration into ``directory``; its path."""
    try:
        with template.open("rb") as fh:
            raw: dict[str, Any] = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise DemoError(f"configuration file {template} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise DemoError(f"{template}: not valid TOML: {exc}") from exc
    network = raw.get("network")
    if not isinstance(network, dict):
        raise DemoError(f"{template}: missing table [network]")
    network = dict(network)
    network["name"] = f"{network.get('name', 'cctvchain')}-demo"
    network["nodes_dir"] = "."  # node directories and wallets live in the demo directory
    acl = network.get("acl")
    if isinstance(acl, str) and acl:
        source = Path(acl) if Path(acl).is_absolute() else template.resolve().parent / acl
        try:
            shutil.copyfile(source, directory / ACL_NAME)
        except OSError as exc:
            raise DemoError(f"cannot copy the ACL rules {source}: {exc.strerror or exc}") from exc
        network["acl"] = ACL_NAME
    raw["network"] = network
    for key in ("orderers", "peers"):
        raw[key] = [_moved(entry, port_offset, f"{key}") for entry in _entries(raw, key)]
    organizations = []
    for entry in _entries(raw, "organizations"):
        ca = entry.get("ca")
        if isinstance(ca, dict):
            entry = {**entry, "ca": _moved(ca, port_offset, "organizations.ca")}
        organizations.append(entry)
    raw["organizations"] = organizations
    path = directory / CONFIG_NAME
    path.write_text(
        f"# Written by `cctvchain demo` from {template.resolve()}: the same topology, ports "
        f"moved by {port_offset}.\n" + dumps(raw)
    )
    return path


def _entries(raw: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = raw.get(key)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise DemoError(f"the configuration needs [[{key}]] entries")
    return [dict(item) for item in value]


def _moved(entry: Mapping[str, Any], offset: int, where: str) -> dict[str, Any]:
    port = entry.get("port")
    if not isinstance(port, int) or isinstance(port, bool):
        raise DemoError(f"[{where}] {entry.get('name')}: 'port' must be an integer")
    moved = port + offset
    if not 0 < moved < 65536:
        raise DemoError(
            f"[{where}] {entry.get('name')}: port {port} moved by {offset} is out of range; "
            "choose another --port-offset"
        )
    return {**entry, "port": moved}


# -- a TOML writer for what a network configuration holds ------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise DemoError(f"cannot write {type(value).__name__} values into the demo configuration")


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)


def dumps(raw: Mapping[str, Any]) -> str:
    """TOML for a mapping of scalars, tables of scalars/inline tables, and arrays of
    tables (the shape of ``configs/*.toml``)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for key, value in raw.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, table in tables:
        lines += ["", f"[{_key(key)}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    for key, entries in arrays:
        for entry in entries:
            lines += ["", f"[[{_key(key)}]]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in entry.items()]
    return "\n".join(lines) + "\n"
