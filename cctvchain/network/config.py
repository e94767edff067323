"""Parse a network TOML file (``configs/*.toml``) into typed, validated settings.

Pure: takes the parsed TOML mapping (``tomllib``), returns dataclasses, and raises
:class:`NetworkConfigError` naming the offending entry for anything wrong.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cctvchain.chaincode.cctv.acl import AclConfigError
from cctvchain.ledger.config import AclRule, BatchConfig
from cctvchain.network.acl_rules import load_acl_rules


class NetworkConfigError(ValueError):
    """The network configuration is missing a setting or has a wrong one."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    org: str
    host: str
    port: int


@dataclass(frozen=True)
class OrgSettings:
    name: str
    msp_id: str
    ca: Endpoint


@dataclass(frozen=True)
class RaftSettings:
    """Timing of the Raft ordering service ([raft] in the TOML)."""

    tick_ms: int = 100
    election_ticks: int = 10  # a follower campaigns after 10..20 ticks without a leader
    snapshot_interval: int = 256  # applied entries between two compactions of the log


@dataclass(frozen=True)
class PeerSettings:
    """Settings every peer applies ([peer] in the TOML)."""

    # The largest clip POST /api/v1/cameras/{id}/verify accepts (streamed to disk).
    max_clip_bytes: int = 2 * 1024**3
    # The longest capture span one evidence bundle covers (GET .../evidence); a client
    # fetches a longer clip's evidence in windows of at most this span.
    max_evidence_span_s: int = 7200


@dataclass(frozen=True)
class NetworkConfig:
    name: str
    channel: str
    nodes_dir: Path
    batch: BatchConfig
    policies: dict[str, str]
    endorsement: dict[str, str]
    organizations: tuple[OrgSettings, ...]
    orderers: tuple[Endpoint, ...]
    peers: tuple[Endpoint, ...]
    acl_rules: tuple[AclRule, ...] = ()
    raft: RaftSettings = field(default_factory=RaftSettings)
    peer: PeerSettings = field(default_factory=PeerSettings)
    source: Path | None = field(default=None, compare=False)

    def org(self, name: str) -> OrgSettings:
        for org in self.organizations:
            if org.name == name:
                return org
        raise NetworkConfigError(f"unknown organisation {name!r}")

    def node(self, name: str) -> Endpoint:
        for endpoint in (*self.orderers, *self.peers, *(o.ca for o in self.organizations)):
            if endpoint.name == name:
                return endpoint
        raise NetworkConfigError(f"no node named {name!r} in the network configuration")


def load_network_config(path: Path) -> NetworkConfig:
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise NetworkConfigError(f"configuration file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise NetworkConfigError(f"{path}: not valid TOML: {exc}") from exc
    config = parse_network_config(raw, base_dir=path.resolve().parent)
    return NetworkConfig(**{**config.__dict__, "source": path})


def parse_network_config(raw: Mapping[str, Any], *, base_dir: Path) -> NetworkConfig:
    """Validate the TOML mapping; a relative ``nodes_dir`` is taken from ``base_dir``
    (the directory of the configuration file, as Fabric resolves its paths)."""
    network = _table(raw, "network")
    nodes_dir = Path(_str(network, "nodes_dir", "network", default="nodes"))
    batch_raw = _table(raw, "batch", required=False)
    try:
        batch = BatchConfig(**{k: _int(batch_raw, k, "batch") for k in batch_raw})
    except TypeError as exc:
        raise NetworkConfigError(f"[batch]: {exc}") from exc
    except ValueError as exc:
        raise NetworkConfigError(f"[batch]: {exc}") from exc

    organizations = tuple(_org(entry, i) for i, entry in enumerate(_array(raw, "organizations")))
    org_names = {org.name for org in organizations}
    if len(org_names) != len(organizations):
        raise NetworkConfigError("[[organizations]]: names must be unique")
    orderers = tuple(
        _endpoint(entry, f"orderers[{i}]", org_names)
        for i, entry in enumerate(_array(raw, "orderers"))
    )
    peers = tuple(
        _endpoint(entry, f"peers[{i}]", org_names) for i, entry in enumerate(_array(raw, "peers"))
    )
    all_nodes = [*orderers, *peers, *(org.ca for org in organizations)]
    names = [node.name for node in all_nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise NetworkConfigError(f"node names must be unique; repeated: {', '.join(duplicates)}")
    addresses = [(node.host, node.port) for node in all_nodes]
    clashes = sorted({f"{h}:{p}" for h, p in addresses if addresses.count((h, p)) > 1})
    if clashes:
        raise NetworkConfigError(f"two nodes share an address: {', '.join(clashes)}")
    acl_rules: tuple[AclRule, ...] = ()
    acl_file = network.get("acl")
    if acl_file is not None:
        if not isinstance(acl_file, str) or not acl_file:
            raise NetworkConfigError("[network]: 'acl' must be a file name")
        acl_path = Path(acl_file) if Path(acl_file).is_absolute() else base_dir / acl_file
        try:
            acl_rules = load_acl_rules(acl_path)
        except AclConfigError as exc:
            raise NetworkConfigError(f"[network] acl: {exc}") from exc
    raft_raw = _table(raw, "raft", required=False)
    unknown_raft = sorted(set(raft_raw) - {"tick_ms", "election_ticks", "snapshot_interval"})
    if unknown_raft:
        raise NetworkConfigError(f"[raft]: unknown setting(s) {', '.join(unknown_raft)}")
    raft = RaftSettings(**{k: _int(raft_raw, k, "raft") for k in raft_raw})
    if raft.tick_ms < 10 or raft.election_ticks < 2 or raft.snapshot_interval < 1:
        raise NetworkConfigError(
            "[raft]: need tick_ms >= 10, election_ticks >= 2, snapshot_interval >= 1"
        )
    peer_raw = _table(raw, "peer", required=False)
    unknown_peer = sorted(set(peer_raw) - {"max_clip_bytes", "max_evidence_span_s"})
    if unknown_peer:
        raise NetworkConfigError(f"[peer]: unknown setting(s) {', '.join(unknown_peer)}")
    peer = PeerSettings(**{k: _int(peer_raw, k, "peer") for k in peer_raw})
    if peer.max_clip_bytes < 1:
        raise NetworkConfigError("[peer]: max_clip_bytes must be at least 1")
    if peer.max_evidence_span_s < 1:
        raise NetworkConfigError("[peer]: max_evidence_span_s must be at least 1")
    return NetworkConfig(
        name=_str(network, "name", "network"),
        channel=_str(network, "channel", "network"),
        nodes_dir=nodes_dir if nodes_dir.is_absolute() else base_dir / nodes_dir,
        batch=batch,
        policies=_str_table(raw, "policies"),
        endorsement=_str_table(raw, "endorsement"),
        organizations=organizations,
        orderers=orderers,
        peers=peers,
        acl_rules=acl_rules,
        raft=raft,
        peer=peer,
    )


def _table(raw: Mapping[str, Any], key: str, *, required: bool = True) -> Mapping[str, Any]:
    value = raw.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise NetworkConfigError(f"missing table [{key}]")
    return value


def _array(raw: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = raw.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise NetworkConfigError(f"need at least one [[{key}]] entry")
    return value


def _str(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise NetworkConfigError(f"[{where}]: '{key}' must be a non-empty string")
    return value


def _int(table: Mapping[str, Any], key: str, where: str) -> int:
    value = table.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise NetworkConfigError(f"[{where}]: '{key}' must be an integer")
    return value


def _str_table(raw: Mapping[str, Any], key: str) -> dict[str, str]:
    table = _table(raw, key, required=False)
    return {name: _str(table, name, key) for name in table}


def _endpoint(entry: Mapping[str, Any], where: str, org_names: set[str]) -> Endpoint:
    org = _str(entry, "org", where)
    if org not in org_names:
        raise NetworkConfigError(f"[{where}]: organisation {org!r} is not declared")
    port = _int(entry, "port", where)
    if not 0 < port < 65536:
        raise NetworkConfigError(f"[{where}]: port {port} out of range")
    return Endpoint(_str(entry, "name", where), org, _str(entry, "host", where), port)


def _org(entry: Mapping[str, Any], index: int) -> OrgSettings:
    where = f"organizations[{index}]"
    name = _str(entry, "name", where)
    ca = entry.get("ca")
    if not isinstance(ca, dict):
        raise NetworkConfigError(f"[{where}]: missing 'ca' table")
    return OrgSettings(
        name=name,
        msp_id=_str(entry, "msp_id", where),
        ca=_endpoint({**ca, "org": name}, f"{where}.ca", {name}),
    )
