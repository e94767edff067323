"""The syntax tree of a signature policy: principals combined by N-out-of gates.

``AND(a, b)`` is ``OutOf(2, a, b)`` and ``OR(a, b)`` is ``OutOf(1, a, b)``, as in Fabric;
the tree keeps only ``OutOf`` so the evaluator has one rule.
"""

from __future__ import annotations

from dataclasses import dataclass

# The roles a principal may name: Fabric's four MSP roles plus our camera node type.
ROLES = ("member", "admin", "client", "peer", "orderer", "camera")


@dataclass(frozen=True)
class Principal:
    msp_id: str
    role: str

    def __str__(self) -> str:
        return f"'{self.msp_id}.{self.role}'"


@dataclass(frozen=True)
class OutOf:
    threshold: int
    rules: tuple[Policy, ...]

    def __str__(self) -> str:
        inner = ", ".join(str(rule) for rule in self.rules)
        if self.threshold == len(self.rules):
            return f"AND({inner})"
        if self.threshold == 1:
            return f"OR({inner})"
        return f"OutOf({self.threshold}, {inner})"


Policy = Principal | OutOf


def principals(policy: Policy) -> list[Principal]:
    """Every principal leaf, left to right."""
    if isinstance(policy, Principal):
        return [policy]
    return [leaf for rule in policy.rules for leaf in principals(rule)]
