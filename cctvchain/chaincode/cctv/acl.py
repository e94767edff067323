"""ACL rules as data (the paper's Figure 14), evaluated first-match-wins, default deny.

A rule's role, operation, resource and transaction may list alternatives as ``A|B``.

As in Hyperledger Composer, submitting a transaction ``T`` that changes a resource ``R``
takes two permissions: ``CREATE`` on ``T`` itself (may this participant submit it?) and
the operation on ``R`` through ``T`` (may it have this effect?). Conditions are named
predicates over the requesting participant ``p`` and the resource ``r`` — data that every
organisation can read and sign in a configuration update, never code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cctvchain.ledger.config import AclRule

ANY_ROLE = "ANY"
ALL_OPERATIONS = "ALL"
ANY_TRANSACTION = "*"


@dataclass(frozen=True)
class Subject:
    """The requesting participant ``p``."""

    id: str
    role: str
    org: str
    control_room: str


@dataclass(frozen=True)
class Target:
    """The resource ``r`` a request is about (for a transaction: what it acts on)."""

    type: str
    id: str
    org: str
    control_room: str


Predicate = Callable[[Subject, Target], bool]

CONDITIONS: dict[str, Predicate] = {
    "true": lambda p, r: True,
    # Figure 14: p.getIdentifier() === r.loc.getIdentifier()
    "same_control_room": lambda p, r: bool(p.control_room) and p.control_room == r.control_room,
    "same_org": lambda p, r: bool(p.org) and p.org == r.org,
    "self": lambda p, r: p.id == r.id,
}


class AclConfigError(ValueError):
    """A rule names a condition the contract does not define."""


def parse_condition(text: str) -> list[Predicate]:
    names = [part.strip() for part in text.split("||")]
    unknown = [name for name in names if name not in CONDITIONS]
    if unknown or not names:
        raise AclConfigError(
            f"unknown condition(s) {', '.join(unknown)} (known: {', '.join(CONDITIONS)})"
        )
    return [CONDITIONS[name] for name in names]


def check_rules(rules: Sequence[AclRule]) -> None:
    for rule in rules:
        try:
            parse_condition(rule.condition)
        except AclConfigError as exc:
            raise AclConfigError(f"rule {rule.name}: {exc}") from exc


def _matches(pattern: str, value: str, wildcard: str | None) -> bool:
    """``A|B|C`` lists alternatives; ``wildcard`` (if any) matches everything."""
    alternatives = [part.strip() for part in pattern.split("|")]
    return value in alternatives or (wildcard is not None and wildcard in alternatives)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str  # the deciding rule's name, or "" for the default deny
    reason: str


def decide(
    rules: Sequence[AclRule],
    subject: Subject,
    operation: str,
    resource: str,
    transaction: str,
    target: Target,
) -> Decision:
    """The first matching rule decides; without one, the request is denied."""
    for rule in rules:
        if not _matches(rule.role, subject.role, ANY_ROLE):
            continue
        if not _matches(rule.operation, operation, ALL_OPERATIONS):
            continue
        if not _matches(rule.resource, resource, None):
            continue
        if not _matches(rule.transaction, transaction, ANY_TRANSACTION):
            continue
        try:
            predicates = parse_condition(rule.condition)
        except AclConfigError:
            continue  # a malformed rule never grants anything
        if not any(predicate(subject, target) for predicate in predicates):
            continue
        allowed = rule.action == "ALLOW"
        verb = "allows" if allowed else "denies"
        return Decision(allowed, rule.name, f"rule {rule.name} {verb} it")
    return Decision(
        False,
        "",
        f"no rule allows {subject.role} {subject.id} to {operation} {resource} "
        f"via {transaction} (default deny)",
    )
