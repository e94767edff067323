"""The CCTV contract's state records (canonical messages) and their keys.

Keys are Fabric composite keys in the contract's namespace; numbers inside keys are
zero-padded so that key order is numeric order (anchors by sequence, history by time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from cctvchain.codec import DecodeError, Message, canonical
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
# Ledgers written before 2026-11 also hold an ``anchor~head`` key per camera (the chain's
# tip, rewritten by every anchor); nothing reads it any more: see :func:`last_anchored`.
K_ANCHOR_BY_TX = "anchor~tx"
K_HISTORY = "history"
K_HISTORY_BY_CAMERA = "history~camera"
K_HISTORY_BY_PARTICIPANT = "history~participant"
K_HISTORY_BY_TYPE = "history~type"

SEQ_WIDTH = 20  # digits: enough for any u64


def padded(number: int) -> str:
    return str(number).zfill(SEQ_WIDTH)


def last_anchored(is_anchored: Callable[[int], bool]) -> int:
    """A camera's last anchored sequence (-1 before its first), from ``is_anchored``
    (whether ``anchor|camera|sequence`` exists).

    A camera's anchors are exactly the sequences 0..head: AnchorSegment accepts only the
    next one and nothing deletes an anchor. So existence is monotone and an exponential
    then binary search finds the head in ~2·log2(head) point reads (~36 for a year of
    10 s segments), where a range scan would read every anchor of the camera and stop
    at the stub's range limit. No head record is kept: it cost every anchor a read and
    a ~170-byte write."""
    if not is_anchored(0):
        return -1
    present, absent = 0, 1
    while is_anchored(absent):
        present, absent = absent, absent * 2
    while absent - present > 1:
        middle = (present + absent) // 2
        if is_anchored(middle):
            present = middle
        else:
            absent = middle
    return present


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
    :mod:`cctvchain.chaincode.cctv.historian`): anchors leave no separate record. It
    stores nothing the ledger already has: not the segment hash (``segment.hash()``),
    nor the transaction id (the id of the very transaction that wrote this value: the
    key's first entry in the ledger's history index).

    Stored (:meth:`encode`) as the canonical array ``[segment, received_ms, late]``, the
    segment being its own typed map, exactly as the camera signed it: the key's object
    type (``anchor``) says what the value is, so the type tag, version and field names
    of a typed message would only repeat it in every anchor (~44 bytes, 360 times a
    camera-hour). Ledgers written before 2026-11 hold the typed ``cctv.anchor`` version 2
    map instead: :meth:`decode` reads both.
    """

    TYPE = "cctv.anchor"
    VERSION = 2  # of the typed form (read only)
    segment: Segment
    received_ms: int  # the transaction's timestamp
    late: bool  # committed well after its capture ended (e.g. drained from a spool)

    def encode(self) -> bytes:
        return canonical.encode([self.segment.to_wire(), self.received_ms, self.late])

    @classmethod
    def decode(cls, data: bytes, *, max_size: int | None = None) -> Self:
        value = canonical.decode(data, max_size=max_size)
        if isinstance(value, dict):
            return cls.from_wire(value)
        if not isinstance(value, list) or len(value) != 3:
            raise DecodeError("$", "an anchor is [segment, received_ms, late]")
        segment, received_ms, late = value
        if type(received_ms) is not int:
            raise DecodeError("$[1]", "received_ms must be an integer")
        if type(late) is not bool:
            raise DecodeError("$[2]", "late must be a boolean")
        return cls(Segment.from_wire(segment, "$[0]"), received_ms, late)


@dataclass(frozen=True)
class AnchorEvent:
    """The payload of an ``AnchorSegment`` contract event: which segment was anchored.

    One per camera every 10 s, so it holds only what the event cannot tell by itself:
    the canonical array ``[camera_id, sequence]`` (7 bytes for a 4-character camera id).
    No type tag: the event's name says what the payload is. No lateness: that is the
    anchor's (GetAnchor). The transaction id, event id and time are the event's own
    (the committer's ``ContractEvent`` and the block carry them); the historian entry,
    if needed, is ``GetHistoryRecord(tx_id)``. Blocks written before 2026-11 carry the
    typed ``cctv.anchor_event`` message (with a late flag) instead: :meth:`decode`
    reads both.
    """

    camera_id: str
    sequence: int

    def encode(self) -> bytes:
        return canonical.encode([self.camera_id, self.sequence])

    @classmethod
    def decode(cls, raw: bytes) -> AnchorEvent:
        value = canonical.decode(raw)
        if isinstance(value, dict):
            legacy = _AnchorEventV1.from_wire(value)
            return cls(legacy.camera_id, legacy.sequence)
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not isinstance(value[0], str)
            or type(value[1]) is not int
            or value[1] < 0
        ):
            raise DecodeError("$", "an anchor event is [camera id, sequence >= 0]")
        return cls(value[0], value[1])


@dataclass(frozen=True)
class _AnchorEventV1(Message):
    """The anchor event's payload in blocks written before 2026-11 (read only)."""

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
