"""The orderer core: admit envelopes, cut them into signed, hash-chained blocks.

Pure: envelopes and time in, blocks out. The caller persists each block (the same
ledger block store the peers use) before announcing it. A single orderer here; the Raft
ordering service puts consensus between ``broadcast`` and the blocks coming out, behind
the same two calls (``broadcast``, ``tick``).

A creator given as a certificate reference resolves through ``certificates`` (the
orderer's own ledger registry); an unknown one is refused (``unknown_certificate_reference``)
so the client resends with the full certificate. Blocks are signed with the orderer's
certificate reference when the channel configuration lists that certificate (peers
resolve it there), else with the PEM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cctvchain.codec import CodecError, decode_message
from cctvchain.crypto import Domain, SignatureError, SigningKey
from cctvchain.ledger.block import Block, make_block, sign_block
from cctvchain.ledger.config import BatchConfig, ChannelConfig
from cctvchain.ledger.genesis import ConfigTransaction
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp.certref import (
    CertificateResolver,
    UnknownCertificateReference,
    certificate_reference,
    resolve_certificate,
)
from cctvchain.msp.errors import MSPError
from cctvchain.ordering.blockcutter import Batch, BlockCutter, EnvelopeTooLarge
from cctvchain.peer.channel import WRITERS, ChannelContext
from cctvchain.peer.validator import BlockValidator
from cctvchain.policy import evaluate
from cctvchain.tx.messages import Envelope


class BroadcastRefused(ValueError):
    """The envelope will not be ordered; ``status`` is an HTTP-like code for clients."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code  # a machine-readable reason where a client must act on it


UNKNOWN_CERTIFICATE_REFERENCE = UnknownCertificateReference.code


@dataclass(frozen=True)
class OrdererSigner:
    msp_id: str
    cert: bytes  # PEM
    key: SigningKey

    def block_cert(self, config: ChannelConfig) -> bytes:
        """What to put in this orderer's block signatures under ``config``: the reference
        of its certificate when the configuration lists it (every checker resolves it
        there), else the PEM."""
        if any(o.identity_cert == self.cert for o in config.orderers):
            return certificate_reference(self.cert)
        return self.cert

    def sign(self, block: Block, config: ChannelConfig) -> Block:
        """``block`` with this orderer's signature as its metadata signatures."""
        signature = sign_block(block.header, self.key, self.msp_id, self.block_cert(config))
        return block.with_signatures([signature])


@dataclass
class Orderer:
    channel: Callable[[], ChannelContext]
    signer: OrdererSigner
    height: int
    head_hash: bytes
    _cutter: BlockCutter | None = field(default=None, repr=False)
    # The orderer's certificate registry (its ledger's), for creators' references.
    certificates: CertificateResolver | None = None

    @property
    def cutter(self) -> BlockCutter:
        batch: BatchConfig = self.channel().config.batch
        if self._cutter is None:
            self._cutter = BlockCutter(batch)
        elif self._cutter.config != batch:
            self._cutter.reconfigure(batch)
        return self._cutter

    @property
    def next_deadline_ms(self) -> int | None:
        return self.cutter.deadline_ms

    def admit(self, data: bytes, now_ms: int) -> Envelope | ConfigTransaction:
        """Refuse what can never be valid: oversize, malformed, or from a non-member."""
        try:
            self.cutter.check_size(data)
        except EnvelopeTooLarge as exc:
            raise BroadcastRefused(413, str(exc)) from exc
        try:
            message = decode_message(data)
        except CodecError as exc:
            raise BroadcastRefused(400, f"malformed envelope: {exc}") from exc
        if isinstance(message, ConfigTransaction):
            # Orderers judge config updates as validators will (Fabric does the same), so
            # that their own channel view follows only valid configurations.
            now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
            verdict = BlockValidator(self.channel()).check_config(message, now)
            if verdict.code != TxValidationCode.VALID:
                raise BroadcastRefused(403, f"invalid config update: {verdict.reason}")
            return message
        if not isinstance(message, Envelope):
            raise BroadcastRefused(400, f"unsupported transaction type {message.TYPE}")
        channel = self.channel()
        try:
            proposal = message.proposal
        except CodecError as exc:
            raise BroadcastRefused(400, f"malformed envelope payload: {exc}") from exc
        if proposal.channel_id != channel.channel_id:
            raise BroadcastRefused(404, f"unknown channel {proposal.channel_id!r}")
        if not proposal.tx_id_is_correct():
            # Else a member could claim another client's tx id and, ordered first in the
            # same block, make that transaction a duplicate.
            raise BroadcastRefused(400, "BAD_PROPOSAL_TXID: tx id is not SHA-256(nonce ‖ creator)")
        now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        try:
            cert = resolve_certificate(proposal.creator.cert, self.certificates)
        except UnknownCertificateReference as exc:
            raise BroadcastRefused(
                400, f"creator refused: {exc}", UNKNOWN_CERTIFICATE_REFERENCE
            ) from exc
        try:
            identity = channel.msps.validate(proposal.creator.msp_id, cert, now)
            identity.verify(Domain.ENVELOPE, message.payload, message.signature)
        except (MSPError, SignatureError) as exc:
            raise BroadcastRefused(403, f"creator refused: {exc}") from exc
        if not evaluate(channel.policy(WRITERS), [identity]):
            raise BroadcastRefused(403, f"{identity.name} may not write to this channel")
        return message

    def broadcast(self, data: bytes, now_ms: int) -> list[Block]:
        """Admit one envelope; return the blocks it completes (often none)."""
        if isinstance(self.admit(data, now_ms), ConfigTransaction):
            # A configuration change is always alone in its block, as in Fabric.
            blocks = self.flush()
            blocks.append(self._make_block((data,), is_config=True))
            return blocks
        return [self._make_block(batch) for batch in self.cutter.ordered(data, now_ms)]

    def tick(self, now_ms: int) -> list[Block]:
        batch = self.cutter.tick(now_ms)
        return [] if batch is None else [self._make_block(batch)]

    def flush(self) -> list[Block]:
        """Cut whatever is pending now (used when stopping cleanly)."""
        if not self.cutter.pending_count:
            return []
        return [self._make_block(self.cutter.cut())]

    def _make_block(self, batch: Batch, *, is_config: bool = False) -> Block:
        # A config block is marked VALID (it was checked in ``admit``) so that the
        # orderer's own ledger applies it; peers set their own flags when validating.
        flags = [TxValidationCode.VALID] if is_config else None
        block = make_block(self.height, self.head_hash, batch, flags)
        block = self.signer.sign(block, self.channel().config)
        self.height += 1
        self.head_hash = block.hash()
        return block
