"""Exact evaluation of a signature policy against a set of signers.

Each distinct signer (deduplicated by its key, e.g. the certificate hash) may satisfy at
most one principal, as in Fabric. Fabric's evaluator is greedy and can miss a valid
assignment in crafted cases; this one is exact: for every sub-policy it computes the sets
of signers (as bit masks) that can satisfy it, and a gate combines disjoint sets. The
number of endorsements on a transaction is small, so the sets stay small.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cctvchain.policy.ast import Policy, Principal

# Above this many distinct signers the exact search could blow up; no legitimate
# transaction carries that many endorsements, so such input is refused outright.
MAX_SIGNERS = 24


class PolicySigner(Protocol):
    """What the evaluator needs of a validated identity."""

    @property
    def msp_id(self) -> str: ...

    @property
    def id_type(self) -> str: ...


@dataclass(frozen=True)
class Signer:
    msp_id: str
    id_type: str


def satisfies(signer: PolicySigner, principal: Principal) -> bool:
    if signer.msp_id != principal.msp_id:
        return False
    return principal.role == "member" or signer.id_type == principal.role


def _minimal(masks: set[int]) -> set[int]:
    """Drop every mask that is a superset of another: it can never help more."""
    ordered = sorted(masks, key=int.bit_count)
    kept: list[int] = []
    for mask in ordered:
        if not any(mask & smaller == smaller for smaller in kept):
            kept.append(mask)
    return set(kept)


def _satisfying_sets(policy: Policy, signers: Sequence[PolicySigner]) -> set[int]:
    if isinstance(policy, Principal):
        return {1 << i for i, signer in enumerate(signers) if satisfies(signer, policy)}
    # states[k] = signer sets that satisfy k of the rules seen so far, using disjoint signers
    states: list[set[int]] = [{0}] + [set() for _ in range(policy.threshold)]
    for rule in policy.rules:
        options = _satisfying_sets(rule, signers)
        if not options:
            continue
        for k in range(policy.threshold - 1, -1, -1):
            for used in states[k]:
                for option in options:
                    if used & option == 0:
                        states[k + 1].add(used | option)
            states[k + 1] = _minimal(states[k + 1])
    return states[policy.threshold]


def evaluate(
    policy: Policy, signers: Sequence[PolicySigner], keys: Sequence[Hashable] | None = None
) -> bool:
    """True when ``signers`` satisfy ``policy``; ``keys`` identify duplicates (optional)."""
    if keys is not None:
        unique: dict[Hashable, PolicySigner] = {}
        for key, signer in zip(keys, signers, strict=True):
            unique.setdefault(key, signer)
        signers = list(unique.values())
    if len(signers) > MAX_SIGNERS:
        return False
    return bool(_satisfying_sets(policy, signers))
