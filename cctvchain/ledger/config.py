"""The channel configuration: organisations and their MSP roots, orderers, policies, batching.

It is carried by the genesis block (block 0) and by later configuration transactions,
and is committed into the world state under ``(CONFIG_NAMESPACE, CONFIG_KEY)`` so the
configuration in force at any height is a state read away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cctvchain.codec import Message
from cctvchain.crypto import sha256

CONFIG_NAMESPACE = "_config"
CONFIG_KEY = "channel"


@dataclass(frozen=True)
class OrganizationConfig(Message):
    """One organisation's MSP: the certificates and CRLs that define its members."""

    TYPE = "config.organization"
    msp_id: str
    name: str
    root_certs: tuple[bytes, ...]  # PEM
    intermediate_certs: tuple[bytes, ...] = ()  # PEM
    crls: tuple[bytes, ...] = ()  # PEM, as issued by `ca gencrl`
    tls_root_certs: tuple[bytes, ...] = ()  # PEM; trust anchors for mutual TLS


@dataclass(frozen=True)
class OrdererConfig(Message):
    """One orderer (Raft consenter): where it listens and who it is."""

    TYPE = "config.orderer"
    name: str
    msp_id: str
    host: str
    port: int
    identity_cert: bytes = b""  # PEM; signs the blocks it cuts
    tls_cert: bytes = b""  # PEM


@dataclass(frozen=True)
class BatchConfig(Message):
    """Block cutting parameters (Fabric's BatchSize and BatchTimeout)."""

    TYPE = "config.batch"
    max_message_count: int = 500
    absolute_max_bytes: int = 10 * 1024 * 1024
    preferred_max_bytes: int = 2 * 1024 * 1024
    batch_timeout_ms: int = 250

    def __post_init__(self) -> None:
        if self.max_message_count < 1:
            raise ValueError("max_message_count must be at least 1")
        if not 0 < self.preferred_max_bytes <= self.absolute_max_bytes:
            raise ValueError("need 0 < preferred_max_bytes <= absolute_max_bytes")
        if self.batch_timeout_ms < 1:
            raise ValueError("batch_timeout_ms must be at least 1")


@dataclass(frozen=True)
class AclRule(Message):
    """One application access-control rule, in the style of the paper's Figure 14.

    A request (participant role, operation, resource, transaction) is matched against the
    channel's rules in order; the first rule whose role, operation, resource, transaction
    and condition all match decides (ALLOW or DENY); no match means deny. ``condition``
    is a ``||``-separated list of named predicates (the contract defines them), never
    code, so that rules stay data that every organisation can read and sign.
    """

    TYPE = "config.acl_rule"
    name: str
    description: str
    role: str  # a participant role, "NetworkAdmin", "Camera" or "ANY"
    operation: str  # CREATE, READ, UPDATE, DELETE or ALL; alternatives as "CREATE|UPDATE"
    resource: str  # an asset/participant type, or a transaction name (Composer style)
    transaction: str  # the transaction the rule is limited to, or "*"
    condition: str  # e.g. "same_control_room || same_org", or "true"
    action: str  # ALLOW | DENY

    def __post_init__(self) -> None:
        operations = {part.strip() for part in self.operation.split("|")}
        if not operations <= {"CREATE", "READ", "UPDATE", "DELETE", "ALL"}:
            raise ValueError(f"rule {self.name}: unknown operation {self.operation!r}")
        if self.action not in ("ALLOW", "DENY"):
            raise ValueError(f"rule {self.name}: action must be ALLOW or DENY")
        if not self.name:
            raise ValueError("rule name must not be empty")


@dataclass(frozen=True)
class ChannelConfig(Message):
    """Everything a node must agree on to validate the channel's blocks."""

    TYPE = "config.channel"
    channel_id: str
    sequence: int
    organizations: tuple[OrganizationConfig, ...]
    orderers: tuple[OrdererConfig, ...] = ()
    batch: BatchConfig = field(default_factory=BatchConfig)
    # Channel policies by name (Readers, Writers, Admins, BlockValidation, ...), in
    # Fabric's signature-policy syntax, e.g. "OR('CityCCTVMSP.member')".
    policies: dict[str, str] = field(default_factory=dict)
    # Endorsement policy per contract name.
    endorsement_policies: dict[str, str] = field(default_factory=dict)
    # Application access-control rules (first match wins, default deny); changed only
    # by a configuration transaction signed according to the Admins policy.
    acl_rules: tuple[AclRule, ...] = ()

    def __post_init__(self) -> None:
        if not self.channel_id:
            raise ValueError("channel_id must not be empty")
        ids = [org.msp_id for org in self.organizations]
        if len(ids) != len(set(ids)):
            raise ValueError("organisation MSP ids must be unique")

    def organization(self, msp_id: str) -> OrganizationConfig | None:
        for org in self.organizations:
            if org.msp_id == msp_id:
                return org
        return None

    def digest(self) -> bytes:
        return sha256(self.encode())
