"""Fabric-style signature policies: ``AND``, ``OR``, ``OutOf`` over 'MSPID.role'."""

from cctvchain.policy.ast import ROLES, OutOf, Policy, Principal, principals
from cctvchain.policy.evaluate import MAX_SIGNERS, PolicySigner, Signer, evaluate, satisfies
from cctvchain.policy.parser import PolicyParseError, parse_policy

__all__ = [
    "MAX_SIGNERS",
    "ROLES",
    "OutOf",
    "Policy",
    "PolicyParseError",
    "PolicySigner",
    "Principal",
    "Signer",
    "evaluate",
    "parse_policy",
    "principals",
    "satisfies",
]
