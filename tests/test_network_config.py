"""The network TOML parser: the shipped default and each kind of mistake."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from cctvchain.network.config import (
    NetworkConfigError,
    load_network_config,
    parse_network_config,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO / "configs" / "local.toml"


def raw_default() -> dict[str, Any]:
    with DEFAULT.open("rb") as fh:
        return tomllib.load(fh)


def test_default_network_matches_the_product_defaults() -> None:
    config = load_network_config(DEFAULT)
    assert [org.msp_id for org in config.organizations] == ["CityCCTV", "Police", "LocalAuthority"]
    assert len(config.orderers) == 3
    assert len(config.peers) == 4
    assert config.batch.batch_timeout_ms == 250
    assert config.batch.max_message_count == 500
    assert config.endorsement["cctv"] == (
        "OutOf(2, 'CityCCTV.peer', 'Police.peer', 'LocalAuthority.peer')"
    )
    assert config.nodes_dir.resolve() == REPO / "nodes"
    assert config.node("peer0.police").port == 8051
    assert config.org("Police").ca.name == "ca.police"


def test_unknown_node_and_org_are_named() -> None:
    config = load_network_config(DEFAULT)
    with pytest.raises(NetworkConfigError, match="peer9"):
        config.node("peer9")
    with pytest.raises(NetworkConfigError, match="Nowhere"):
        config.org("Nowhere")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw.pop("network"), r"missing table \[network\]"),
        (lambda raw: raw.__setitem__("peers", []), r"at least one \[\[peers\]\]"),
        (lambda raw: raw["peers"][0].__setitem__("org", "Nowhere"), "'Nowhere' is not declared"),
        (lambda raw: raw["peers"][1].__setitem__("name", "peer0.city"), "repeated: peer0.city"),
        (lambda raw: raw["peers"][1].__setitem__("port", 7051), "share an address"),
        (lambda raw: raw["peers"][0].__setitem__("port", 70000), "out of range"),
        (lambda raw: raw["peers"][0].__setitem__("port", "7051"), "'port' must be an integer"),
        (lambda raw: raw["batch"].__setitem__("max_message_count", 0), "at least 1"),
        (lambda raw: raw["batch"].__setitem__("bogus", 1), "bogus"),
        (lambda raw: raw["organizations"][0].pop("ca"), "missing 'ca' table"),
        (lambda raw: raw["organizations"][1].__setitem__("name", "CityCCTV"), "unique"),
    ],
)
def test_mistakes_are_refused_with_a_precise_error(mutate: Any, message: str) -> None:
    raw = raw_default()
    mutate(raw)
    with pytest.raises(NetworkConfigError, match=message):
        parse_network_config(raw, base_dir=REPO / "configs")


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(NetworkConfigError, match="does not exist"):
        load_network_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[network\nname=")
    with pytest.raises(NetworkConfigError, match="not valid TOML"):
        load_network_config(bad)


def test_default_network_ships_the_papers_acl_rules() -> None:
    rules = load_network_config(DEFAULT).acl_rules
    names = [rule.name for rule in rules]
    assert "CRSApproveApplication" in names and "CRMAddApproval" in names
    assert names[0] == "OperatorsNeverDecide"  # the DENY must come before any ALLOW
    assert rules[0].action == "DENY"


def test_acl_file_problems_are_named(tmp_path: Path) -> None:
    raw = raw_default()
    raw["network"]["acl"] = "missing.toml"
    with pytest.raises(NetworkConfigError, match="cannot read ACL rules"):
        parse_network_config(raw, base_dir=tmp_path)
    (tmp_path / "bad.toml").write_text(
        '[[rule]]\nname = "X"\ndescription = "d"\nrole = "CRM"\noperation = "FLY"\n'
        'resource = "CCTV"\ntransaction = "*"\ncondition = "true"\naction = "ALLOW"\n'
    )
    raw["network"]["acl"] = "bad.toml"
    with pytest.raises(NetworkConfigError, match="unknown operation 'FLY'"):
        parse_network_config(raw, base_dir=tmp_path)
    (tmp_path / "cond.toml").write_text(
        '[[rule]]\nname = "X"\ndescription = "d"\nrole = "CRM"\noperation = "READ"\n'
        'resource = "CCTV"\ntransaction = "*"\ncondition = "is_friendly"\naction = "ALLOW"\n'
    )
    raw["network"]["acl"] = "cond.toml"
    with pytest.raises(NetworkConfigError, match="unknown condition"):
        parse_network_config(raw, base_dir=tmp_path)
