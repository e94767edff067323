"""Load the application ACL rules (``configs/acl.toml``) into channel-config records."""

from __future__ import annotations

import tomllib
from pathlib import Path

from cctvchain.chaincode.cctv.acl import AclConfigError, check_rules
from cctvchain.ledger.config import AclRule

DEFAULT_ACL = Path(__file__).resolve().parents[2] / "configs" / "acl.toml"
_FIELDS = (
    "name",
    "description",
    "role",
    "operation",
    "resource",
    "transaction",
    "condition",
    "action",
)


def parse_acl_rules(text: str, source: str = "acl rules") -> tuple[AclRule, ...]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AclConfigError(f"{source}: not valid TOML: {exc}") from exc
    entries = raw.get("rule")
    if not isinstance(entries, list) or not entries:
        raise AclConfigError(f"{source}: no [[rule]] entries")
    rules = []
    for i, entry in enumerate(entries):
        missing = [f for f in _FIELDS if not isinstance(entry.get(f), str)]
        extra = sorted(set(entry) - set(_FIELDS))
        if missing or extra:
            problem = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(extra)}"
            raise AclConfigError(f"{source}: rule {i + 1}: {problem}")
        try:
            rules.append(AclRule(**{f: entry[f] for f in _FIELDS}))
        except ValueError as exc:
            raise AclConfigError(f"{source}: {exc}") from exc
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise AclConfigError(f"{source}: rule names must be unique")
    check_rules(rules)
    return tuple(rules)


def load_acl_rules(path: Path = DEFAULT_ACL) -> tuple[AclRule, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AclConfigError(f"cannot read ACL rules {path}: {exc.strerror}") from exc
    return parse_acl_rules(text, str(path))
