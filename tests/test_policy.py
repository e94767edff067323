"""Signature policies: the parser's errors, and the evaluator against brute force."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cctvchain.policy import (
    ROLES,
    OutOf,
    Policy,
    PolicyParseError,
    Principal,
    Signer,
    evaluate,
    parse_policy,
    principals,
    satisfies,
)

MSPS = ("CityCCTV", "Police", "LocalAuthority")
NODE_TYPES = ("admin", "client", "peer", "orderer", "camera")


def test_parses_fabric_syntax_case_insensitively_with_both_quotes() -> None:
    policy = parse_policy(
        """outof(2, 'CityCCTV.peer', "Police.peer", AND('LocalAuthority.peer', 'Police.admin'))"""
    )
    assert policy == OutOf(
        2,
        (
            Principal("CityCCTV", "peer"),
            Principal("Police", "peer"),
            OutOf(2, (Principal("LocalAuthority", "peer"), Principal("Police", "admin"))),
        ),
    )
    assert parse_policy("OR('A.member')") == OutOf(1, (Principal("A", "member"),))
    assert parse_policy("'A.orderer'") == Principal("A", "orderer")


@pytest.mark.parametrize(
    ("text", "column", "reason"),
    [
        ("", 1, "empty policy"),
        ("AND(", 5, "got end"),
        ("AND('A.peer' 'B.peer')", 14, "expected ',' or ')'"),
        ("OutOf(3, 'A.peer', 'B.peer')", 7, "threshold 3 must be between 1 and the 2"),
        ("OutOf(0, 'A.peer')", 7, "threshold 0"),
        ("OutOf('A.peer', 'B.peer')", 7, "integer threshold"),
        ("XOR('A.peer')", 1, "unknown operator 'XOR'"),
        ("OR('A.peeer')", 4, "unknown role 'peeer'"),
        ("OR('Apeer')", 4, "must have the form 'MSPID.role'"),
        ("OR('A B.peer')", 4, "invalid MSP id"),
        ("OR('A.member'))", 15, "unexpected ')' after policy"),
        ("OR(A.member)", 4, "must be quoted"),
        ("OR('A.member' ; 'B.member')", 15, "unexpected character ';'"),
        ("AND()", 5, "expected a principal"),
    ],
)
def test_parse_errors_name_the_column_and_the_reason(text: str, column: int, reason: str) -> None:
    with pytest.raises(PolicyParseError) as info:
        parse_policy(text)
    assert info.value.column == column
    assert reason in info.value.reason


def test_deep_and_long_policies_are_refused() -> None:
    deep = "AND(" * 40 + "'A.peer'" + ")" * 40
    with pytest.raises(PolicyParseError, match="nested deeper"):
        parse_policy(deep)
    with pytest.raises(PolicyParseError, match="longer than"):
        parse_policy("OR(" + ", ".join(["'A.peer'"] * 1000) + ")")


def test_principal_roles() -> None:
    peer = Signer("CityCCTV", "peer")
    assert satisfies(peer, Principal("CityCCTV", "member"))
    assert satisfies(peer, Principal("CityCCTV", "peer"))
    assert not satisfies(peer, Principal("CityCCTV", "admin"))
    assert not satisfies(peer, Principal("Police", "member"))


def test_default_endorsement_policy() -> None:
    policy = parse_policy("OutOf(2, 'CityCCTV.peer', 'Police.peer', 'LocalAuthority.peer')")
    city, police, la = (Signer(m, "peer") for m in MSPS)
    assert evaluate(policy, [city, police])
    assert evaluate(policy, [la, police, city])
    assert not evaluate(policy, [city])
    assert not evaluate(policy, [city, Signer("CityCCTV", "peer")])  # one org twice
    assert not evaluate(policy, [city, Signer("Police", "client")])
    # The same identity counted twice is still one signer.
    assert not evaluate(
        parse_policy("AND('CityCCTV.peer', 'CityCCTV.member')"), [city, city], keys=["x", "x"]
    )
    assert evaluate(
        parse_policy("AND('CityCCTV.peer', 'CityCCTV.member')"), [city, city], keys=["x", "y"]
    )


def test_exact_where_a_greedy_evaluator_fails() -> None:
    # A greedy left-to-right assignment gives the only peer to 'member' and then fails
    # 'peer'; a valid assignment (admin -> member, peer -> peer) exists.
    policy = parse_policy("AND('A.member', 'A.peer')")
    assert evaluate(policy, [Signer("A", "peer"), Signer("A", "admin")])


# -- property test against brute force ---------------------------------------------------


def brute_force(policy: Policy, signers: list[Signer]) -> bool:
    """Try every injective assignment of signers to principal leaves."""
    leaves = principals(policy)
    choices = [None, *range(len(signers))]
    for assignment in itertools.product(choices, repeat=len(leaves)):
        used = [a for a in assignment if a is not None]
        if len(used) != len(set(used)):
            continue
        if _holds(policy, iter(assignment), signers):
            return True
    return False


def _holds(node: Policy, position: Iterator[int | None], signers: list[Signer]) -> bool:
    if isinstance(node, Principal):
        chosen = next(position)
        return chosen is not None and satisfies(signers[chosen], node)
    results = [_holds(rule, position, signers) for rule in node.rules]  # consume in order
    return sum(results) >= node.threshold


principal_strategy = st.builds(
    Principal, st.sampled_from(MSPS[:2]), st.sampled_from(("member", "peer", "admin"))
)


def gate(children: st.SearchStrategy[Policy]) -> st.SearchStrategy[Policy]:
    return st.lists(children, min_size=1, max_size=3).flatmap(
        lambda rules: st.integers(1, len(rules)).map(lambda n: OutOf(n, tuple(rules)))
    )


policy_strategy = st.recursive(principal_strategy, gate, max_leaves=5)
signer_strategy = st.lists(
    st.builds(Signer, st.sampled_from(MSPS[:2]), st.sampled_from(("peer", "admin", "client"))),
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(policy_strategy, signer_strategy)
def test_evaluator_agrees_with_brute_force(policy: Policy, signers: list[Signer]) -> None:
    assert evaluate(policy, signers) == brute_force(policy, signers)


@settings(max_examples=200, deadline=None)
@given(policy_strategy)
def test_printed_policy_parses_back_to_the_same_tree(policy: Policy) -> None:
    assert parse_policy(str(policy)) == policy


def test_roles_cover_every_node_type() -> None:
    assert set(NODE_TYPES) <= set(ROLES)
