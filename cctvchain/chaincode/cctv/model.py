"""The CCTV contract's state records (canonical messages) and their keys.

Keys are Fabric composite keys in the contract's namespace; numbers inside keys are
zero-padded so that key order is numeric order (anchors by sequence, history by time).
"""

from __future__ import annotations

from dataclasses import dataclass

from cctvchain.codec import Message
from cctvchain.crypto import sha256

NAMESPACE = "cctv"

PARTICIPANT_ROLES = ("CRM", "CRS", "Operator", "PO", "PCRO", "LAS")
NETWORK_ADMIN = "NetworkAdmin"
CAMERA_ROLE = "Camera"

PENDING = "PENDING"
APPROVED = "APPROVED"
REJECTED = "REJECTED"
DECOMMISSIONED = "DECOMMISSIONED"

POLICY_NORMAL = "normal"
POLICY_HIGH = "high"
POLICY_ALL = "all"

# Composite-key object types.
K_PARTICIPANT = "participant"
K_PARTICIPANT_BY_IDENTITY = "participant~identity"
K_CAMERA = "camera"
K_CAMERA_BY_IDENTITY = "camera~identity"
K_GRANT = "grant"
K_ANCHOR = "anchor"
K_ANCHOR_HEAD = "anchor~head"
K_ANCHOR_BY_TX = "anchor~tx"
K_HISTORY = "history"
K_HISTORY_BY_CAMERA = "history~camera"
K_HISTORY_BY_PARTICIPANT = "history~participant"
K_HISTORY_BY_TYPE = "history~type"

SEQ_WIDTH = 20  # digits: enough for any u64


def padded(number: int) -> str:
    return str(number).zfill(SEQ_WIDTH)


@dataclass(frozen=True)
class Participant(Message):
    """A person of Table 3 (or an organisation's NetworkAdmin), bound to an enrolled
    identity: ``msp_id`` + ``identity`` (the certificate's CN)."""

    TYPE = "cctv.participant"
    id: str
    person_id: str
    name: str
    department: str
    age: int
    gender: str
    role: str
    msp_id: str
    identity: str
    control_room: str


@dataclass(frozen=True)
class SamplingPolicy(Message):
    """How many frames per second get perceptual fingerprints (paper §3.3.1)."""

    TYPE = "cctv.sampling_policy"
    mode: str  # normal (1/s) | high (rate/s) | all
    rate: int  # frames per second for "high"; 1 for normal; 0 for all

    def __post_init__(self) -> None:
        if self.mode == POLICY_NORMAL and self.rate != 1:
            raise ValueError("the normal policy samples 1 frame per second")
        if self.mode == POLICY_HIGH and not 2 <= self.rate <= 120:
            raise ValueError("the high policy samples 2..120 frames per second")
        if self.mode == POLICY_ALL and self.rate != 0:
            raise ValueError("the all policy has no rate")
        if self.mode not in (POLICY_NORMAL, POLICY_HIGH, POLICY_ALL):
            raise ValueError(f"unknown sampling policy {self.mode!r}")


@dataclass(frozen=True)
class Camera(Message):
    """A camera asset (Figure 8) and its lifecycle."""

    TYPE = "cctv.camera"
    id: str
    ip_address: str
    location: str
    model: str
    specs: str
    owner_org: str
    control_room: str
    policy: SamplingPolicy
    status: str
    requested_by: str  # participant id
    decided_by: str  # participant id of the approver / rejecter, "" while pending
    close_reason: str
    identity: str  # CN of the bound camera certificate in owner_org, "" until approved
    key_version: int  # incremented by RotateCameraKey


@dataclass(frozen=True)
class AccessGrant(Message):
    """An entry of a camera's granted list: a user (participant id) or a role."""

    TYPE = "cctv.grant"
    camera_id: str
    subject_kind: str  # "user" | "role"
    subject: str
    granted_by: str
    granted_at_ms: int
    expires_ms: int  # 0: no expiry


@dataclass(frozen=True)
class Segment(Message):
    """What a camera anchors for S seconds of video; its hash chains the segments.

    Version 2 carries no perceptual fingerprints: the frame records (kept by the peers,
    each bound by ``merkle_root`` and served with an inclusion proof) hold the full ones,
    and a second, compact copy here cost ~150 bytes per sampled frame on the ledger.
    """

    TYPE = "cctv.segment"
    VERSION = 2
    camera_id: str
    sequence: int
    capture_start_ms: int
    capture_end_ms: int
    frame_count: int
    merkle_root: bytes  # RFC 6962 root over the segment's frame records
    previous_hash: bytes  # hash of the camera's previous segment; 32 zero bytes first
    policy: SamplingPolicy

    def hash(self) -> bytes:
        return sha256(self.encode())


@dataclass(frozen=True)
class Anchor(Message):
    """A committed segment, with how it was received.

    It is also the historian's entry of its ``AnchorSegment`` transaction (see
    :mod:`cctvchain.chaincode.cctv.historian`): anchors leave no separate record. Version 2
    stores nothing the ledger already has: not the segment hash (``segment.hash()``; the
    chain head keeps the tip's), nor the transaction id (the id of the very transaction
    that wrote this value: the key's first entry in the ledger's history index).
    """

    TYPE = "cctv.anchor"
    VERSION = 2
    segment: Segment
    received_ms: int  # the transaction's timestamp
    late: bool  # committed well after its capture ended (e.g. drained from a spool)


@dataclass(frozen=True)
class AnchorHead(Message):
    """The tip of a camera's segment chain."""

    TYPE = "cctv.anchor_head"
    sequence: int
    segment_hash: bytes
    capture_end_ms: int


@dataclass(frozen=True)
class AnchorEvent(Message):
    """The payload of an ``AnchorSegment`` contract event: which segment was anchored.

    Deliberately small (one per camera every 10 s). The transaction id, event id and
    time are the event's own (the committer's ``ContractEvent`` and the block carry
    them); the historian entry, if needed, is ``GetHistoryRecord(tx_id)``.
    """

    TYPE = "cctv.anchor_event"
    camera_id: str
    sequence: int
    late: bool


@dataclass(frozen=True)
class HistorianRecord(Message):
    """One transaction of the contract as the historian lists it (Figures 12-13): stored
    for every transaction but ``AnchorSegment``, whose entry is derived from its anchor."""

    TYPE = "cctv.history"
    tx_id: str
    event_id: str
    timestamp_ms: int
    entry_type: str
    participant: str  # e.g. "p-3881 (CRM)", "admin (NetworkAdmin)", "camera cam-1"
    org: str  # the participant's organisation
    camera_id: str
    details: dict[str, str]
