"""The ordering state machine that every Raft orderer runs on the same committed log.

Envelopes are replicated one Raft entry each (after the receiving orderer admitted
them), and every orderer cuts blocks *deterministically* from the committed sequence —
size limits as they are applied, the batch timeout through a "time to cut block N"
entry that the leader proposes when its timer fires. So an envelope whose entry
committed is in a block on every orderer, whoever leads when, and every orderer's blocks
have the same header hash; each orderer signs the copy it writes (metadata, outside the
hash). This is Fabric 1.x's Kafka-based ordering design with Raft as the log.

Pure: the entries carry the only time used (the proposer's clock, for config checks).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cctvchain.codec import CodecError, Message, decode_message
from cctvchain.ledger.block import Block, make_block
from cctvchain.ledger.genesis import ConfigTransaction
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.ordering.blockcutter import Batch, BlockCutter
from cctvchain.ordering.orderer import OrdererSigner
from cctvchain.peer.channel import ChannelContext
from cctvchain.peer.validator import BlockValidator


class EntryType(enum.IntEnum):
    ENVELOPE = 0
    TIME_TO_CUT = 1


@dataclass(frozen=True)
class OrdererEntry(Message):
    """The data of one Raft entry of the ordering service."""

    TYPE = "orderer.entry"
    kind: EntryType
    envelope: bytes  # ENVELOPE: the admitted envelope
    block: int  # TIME_TO_CUT: the number of the block to cut
    timestamp_ms: int  # the proposer's clock (config updates are judged at this time)


@dataclass(frozen=True)
class OrderingSnapshot(Message):
    """The state machine at a Raft index: the ledger height and the pending batch."""

    TYPE = "orderer.snapshot"
    height: int
    head_hash: bytes
    pending: tuple[bytes, ...]


@dataclass
class BlockAssembler:
    """Applies committed entries; returns the blocks they complete, signed by us."""

    channel: ChannelContext
    signer: OrdererSigner
    height: int  # number of the next block to cut
    head_hash: bytes
    _cutter: BlockCutter | None = field(default=None, repr=False)
    pending_since_ms: int | None = None  # proposer time of the oldest pending envelope

    @property
    def cutter(self) -> BlockCutter:
        if self._cutter is None:
            self._cutter = BlockCutter(self.channel.config.batch)
        elif self._cutter.config != self.channel.config.batch:
            self._cutter.reconfigure(self.channel.config.batch)
        return self._cutter

    @property
    def pending(self) -> tuple[bytes, ...]:
        return self.cutter.pending

    def restore(self, snapshot: OrderingSnapshot) -> None:
        self.height = snapshot.height
        self.head_hash = snapshot.head_hash
        self.cutter.cut()
        for envelope in snapshot.pending:
            self.cutter.ordered(envelope, 0)
        self.pending_since_ms = 0 if snapshot.pending else None

    def snapshot(self) -> OrderingSnapshot:
        return OrderingSnapshot(self.height, self.head_hash, self.pending)

    def apply(self, data: bytes) -> list[Block]:
        """Apply one committed entry (NOOP entries are never passed in)."""
        try:
            entry = OrdererEntry.decode(data)
        except CodecError:
            return []  # cannot happen for entries we proposed; never let it stop the log
        if entry.kind == EntryType.TIME_TO_CUT:
            if entry.block != self.height or not self.cutter.pending_count:
                return []  # stale: that block was already cut by size
            self.pending_since_ms = None
            return [self._make_block(self.cutter.cut())]
        return self._apply_envelope(entry)

    def _apply_envelope(self, entry: OrdererEntry) -> list[Block]:
        try:
            message = decode_message(entry.envelope)
        except CodecError:
            return []
        if isinstance(message, ConfigTransaction):
            now = datetime.fromtimestamp(entry.timestamp_ms / 1000, tz=UTC)
            verdict = BlockValidator(self.channel).check_config(message, now)
            if verdict.code != TxValidationCode.VALID:
                return []  # a config update that a racing one made stale
            blocks = [self._make_block(self.cutter.cut())] if self.cutter.pending_count else []
            blocks.append(self._make_block((entry.envelope,), is_config=True))
            self.pending_since_ms = None
            self.channel = ChannelContext.from_config(message.config)
            return blocks
        before = self.cutter.pending_count
        try:
            batches = self.cutter.ordered(entry.envelope, entry.timestamp_ms)
        except ValueError:
            return []  # over AbsoluteMaxBytes under a newer config: never orderable
        blocks = [self._make_block(batch) for batch in batches]
        after = self.cutter.pending_count
        if after == 0:
            self.pending_since_ms = None
        elif after == 1 and (before == 0 or blocks):
            self.pending_since_ms = entry.timestamp_ms  # a new batch starts with this one
        return blocks

    def _make_block(self, batch: Batch, *, is_config: bool = False) -> Block:
        flags = [TxValidationCode.VALID] if is_config else None
        block = make_block(self.height, self.head_hash, batch, flags)
        # By reference when the configuration in force lists this orderer's certificate.
        block = self.signer.sign(block, self.channel.config)
        self.height += 1
        self.head_hash = block.hash()
        return block
