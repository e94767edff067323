"""The committer: validate a delivered block, commit it with its flags, publish events.

It owns the channel context and rebuilds it when a configuration block commits. A block
that fails the block-level checks is refused whole (:class:`BlockRejected`) and nothing
is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cctvchain.codec import CodecError, Message, decode_message
from cctvchain.ledger.block import Block
from cctvchain.ledger.config import ChannelConfig
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp.certref import CertificateResolver
from cctvchain.msp.identity import ValidationCache
from cctvchain.peer.channel import ChannelContext
from cctvchain.peer.events import BlockEvent, ContractEvent, EventHub, TxEvent, contract_event_id
from cctvchain.peer.memo import DecodedTransactions, VerifiedSignatures
from cctvchain.peer.validator import BlockValidator, BlockVerdict, CommittedState, MapFn, TxVerdict
from cctvchain.tx.messages import Envelope


class CommitLedger(CommittedState, Protocol):
    @property
    def height(self) -> int: ...

    @property
    def head_hash(self) -> bytes: ...

    def append_block(
        self, block: Block, decoded: Sequence[Message | None] | None = None
    ) -> None: ...

    def channel_config(self) -> ChannelConfig: ...

    def certificate(self, reference: bytes) -> bytes | None: ...


@dataclass
class Committer:
    ledger: CommitLedger
    hub: EventHub = field(default_factory=EventHub)
    map_fn: MapFn[bytes, TxVerdict] = field(default=map)
    cache: ValidationCache = field(default_factory=ValidationCache)
    # Resolves certificate references (default: the ledger's registry).
    certificates: CertificateResolver | None = None
    signatures: VerifiedSignatures | None = None
    decoded: DecodedTransactions | None = None
    _channel: ChannelContext | None = None

    @property
    def channel(self) -> ChannelContext:
        if self._channel is None:
            self._channel = ChannelContext.from_config(self.ledger.channel_config(), self.cache)
        return self._channel

    def commit(self, block: Block, now: datetime) -> BlockEvent:
        # Certificate references resolve against the registry of the blocks committed
        # so far: this block's certificates register only when it commits.
        validator = BlockValidator(
            self.channel,
            self.map_fn,
            self.certificates or self.ledger.certificate,
            self.signatures,
            self.decoded,
        )
        validator.check_block(block, self.ledger.height, self.ledger.head_hash, now)
        verdict = validator.validate(block, self.ledger, now)
        flagged = block.with_flags(verdict.codes)
        # The ledger indexes the transactions the validator already decoded.
        self.ledger.append_block(flagged, verdict.messages)
        if verdict.config is not None:
            self._channel = ChannelContext.from_config(verdict.config.config, self.cache)
        event = block_event(flagged, verdict)
        self.hub.publish(event)
        return event


def block_event(block: Block, verdict: BlockVerdict) -> BlockEvent:
    transactions = tuple(
        TxEvent(block.number, index, tx_id, int(code), reason)
        for index, (tx_id, code, reason) in enumerate(
            zip(verdict.tx_ids, verdict.codes, verdict.reasons, strict=True)
        )
    )
    contract_events: list[ContractEvent] = []
    decoded = verdict.messages if len(verdict.messages) == len(transactions) else None
    for tx in transactions:
        if tx.code != TxValidationCode.VALID or tx.tx_id is None:
            continue
        try:
            message = (
                decoded[tx.index]
                if decoded is not None
                else decode_message(block.transactions[tx.index])
            )
            if not isinstance(message, Envelope):
                continue
            payload = message.response_payload
        except CodecError:
            continue
        for position, event in enumerate(payload.events):
            contract_events.append(
                ContractEvent(
                    event_id=contract_event_id(tx.tx_id, position),
                    block=block.number,
                    index=tx.index,
                    tx_id=tx.tx_id,
                    contract=payload.contract,
                    name=event.name,
                    payload=event.payload,
                )
            )
    return BlockEvent(block.number, block.hash(), transactions, tuple(contract_events))
