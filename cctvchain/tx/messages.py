"""Proposal → proposal response → transaction envelope, as in Fabric, over the codec.

Nested signed parts are carried as bytes (``SignedProposal.proposal``,
``TransactionPayload.response_payload``, ...) so that a signature always covers the exact
bytes that were signed, never a re-encoding of them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cctvchain.codec import CodecError, Message, encode
from cctvchain.crypto import sha256
from cctvchain.ledger.transaction import KVWrite
from cctvchain.tx.rwset import TxRWSet

NONCE_SIZE = 24
_TX_ID = re.compile(r"[0-9a-f]{64}")
STATUS_OK = 200
STATUS_ERROR = 500


@dataclass(frozen=True)
class SerializedIdentity(Message):
    """Who signed: the MSP id claimed and the PEM certificate (validated by the MSP), or
    the certificate's 32-byte reference (SHA-256 of the PEM, :mod:`cctvchain.msp.certref`)
    once an earlier block carried the PEM: the checker resolves it, then validates the
    PEM as if it had been carried."""

    TYPE = "tx.identity"
    msp_id: str
    cert: bytes


# The canonical bytes of the identities seen lately: the same few creators and endorsers
# sign transaction after transaction, and their encoding (a PEM certificate in a map) is
# needed for every tx id and every endorsement checked. Bounded; cleared when full.
_IDENTITY_BYTES: dict[tuple[str, bytes], bytes] = {}
_IDENTITY_BYTES_MAX = 4096


def identity_bytes(identity: SerializedIdentity) -> bytes:
    """``identity.encode()``, remembered for identities seen before."""
    key = (identity.msp_id, identity.cert)
    encoded = _IDENTITY_BYTES.get(key)
    if encoded is None:
        encoded = identity.encode()
        if len(_IDENTITY_BYTES) >= _IDENTITY_BYTES_MAX:
            _IDENTITY_BYTES.clear()
        _IDENTITY_BYTES[key] = encoded
    return encoded


def compute_tx_id(nonce: bytes, creator: SerializedIdentity) -> str:
    """Fabric's rule: tx id = hex(SHA-256(nonce ‖ creator))."""
    return sha256(nonce + identity_bytes(creator)).hex()


@dataclass(frozen=True)
class Proposal(Message):
    TYPE = "tx.proposal"
    channel_id: str
    contract: str
    function: str
    args: tuple[str, ...]
    creator: SerializedIdentity
    nonce: bytes
    timestamp_ms: int
    tx_id: str

    def __post_init__(self) -> None:
        if len(self.nonce) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
        if not _TX_ID.fullmatch(self.tx_id):
            raise ValueError("tx_id must be 64 lowercase hex digits")

    def tx_id_is_correct(self) -> bool:
        return self.tx_id == compute_tx_id(self.nonce, self.creator)

    def hash(self) -> bytes:
        return sha256(self.encode())


@dataclass(frozen=True)
class SignedProposal(Message):
    """A proposal and its creator's signature (``Domain.PROPOSAL``) over its bytes."""

    TYPE = "tx.signed_proposal"
    proposal: bytes
    signature: bytes

    @functools.cached_property
    def decoded(self) -> Proposal:
        return Proposal.decode(self.proposal)


@dataclass(frozen=True)
class Response(Message):
    TYPE = "tx.response"
    status: int
    message: str
    payload: bytes

    @property
    def ok(self) -> bool:
        return STATUS_OK <= self.status < 400


@dataclass(frozen=True)
class ContractEvent(Message):
    TYPE = "tx.contract_event"
    name: str
    payload: bytes


def contract_event_id(tx_id: str, position: int) -> str:
    """The unique id of the ``position``-th event set by transaction ``tx_id``."""
    return sha256(f"{tx_id}/{position}".encode()).hex()


@dataclass(frozen=True)
class ProposalResponsePayload(Message):
    """What an endorser vouches for: the simulation result of one proposal."""

    TYPE = "tx.proposal_response_payload"
    proposal_hash: bytes
    contract: str
    results: TxRWSet
    events: tuple[ContractEvent, ...]
    response: Response


@dataclass(frozen=True)
class Endorsement(Message):
    """An endorser's signature (``Domain.PROPOSAL_RESPONSE``) over
    ``endorsement_message(payload, endorser)``."""

    TYPE = "tx.endorsement"
    endorser: SerializedIdentity
    signature: bytes


def endorsement_message(response_payload: bytes, endorser: SerializedIdentity) -> bytes:
    """The bytes an endorser signs: the response payload bound to the endorser's identity."""
    return encode([response_payload, identity_bytes(endorser)])


@dataclass(frozen=True)
class ProposalResponse(Message):
    """An endorser's answer. Without an endorsement, ``response`` says why."""

    TYPE = "tx.proposal_response"
    response: Response
    payload: bytes
    endorsement: Endorsement | None


@dataclass(frozen=True)
class TransactionPayload(Message):
    TYPE = "tx.transaction_payload"
    proposal: bytes
    response_payload: bytes
    endorsements: tuple[Endorsement, ...]


@dataclass(frozen=True)
class Envelope(Message):
    """A transaction as ordered: its payload signed (``Domain.ENVELOPE``) by the creator.

    It is what a block carries, and it implements the ledger's transaction protocol
    (``tx_id``, ``state_writes``) so that commit and crash replay read it the same way.
    """

    TYPE = "tx.envelope"
    payload: bytes
    signature: bytes

    @functools.cached_property
    def transaction(self) -> TransactionPayload:
        return TransactionPayload.decode(self.payload)

    @functools.cached_property
    def proposal(self) -> Proposal:
        return Proposal.decode(self.transaction.proposal)

    @functools.cached_property
    def response_payload(self) -> ProposalResponsePayload:
        return ProposalResponsePayload.decode(self.transaction.response_payload)

    @functools.cached_property
    def proposal_hash(self) -> bytes:
        """``self.proposal.hash()`` without re-encoding: the hash of the proposal's bytes
        as carried (the strict canonical decoder accepts only bytes that re-encode to
        themselves, so once ``proposal`` decodes the two are equal)."""
        _ = self.proposal  # the same CodecError as proposal.hash() for bytes that do not decode
        return sha256(self.transaction.proposal)

    @property
    def tx_id(self) -> str:
        return self.proposal.tx_id

    def state_writes(self) -> Sequence[KVWrite]:
        return [
            KVWrite(ns.namespace, write.key, None if write.is_delete else write.value)
            for ns in self.response_payload.results.namespaces
            for write in ns.writes
        ]

    def certificates(self) -> Sequence[bytes]:
        """The certificates it carries as given (creator first, then the endorsers'; PEMs
        or references), for the ledger's certificate registry. Empty if the payload
        does not decode: such a transaction carries nothing anyone can rely on."""
        try:
            transaction = self.transaction
            creator = self.proposal.creator
        except CodecError:
            return []
        return [creator.cert, *(e.endorser.cert for e in transaction.endorsements)]
