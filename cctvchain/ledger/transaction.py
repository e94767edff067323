"""The ledger's view of a transaction (pure).

The ledger does not know proposal or envelope formats: it decodes each transaction of a
block with :func:`~cctvchain.codec.decode_message` and asks the result, through the
:class:`LedgerTransaction` protocol, for its id and the state writes it makes. Message
types that implement the protocol (the config transaction here, endorser transactions
later) plug in by registering with the codec.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from cctvchain.codec import CodecError, Message, decode_message
from cctvchain.ledger.block import Block


@dataclass(frozen=True)
class KVWrite:
    """One write of a transaction; ``value=None`` deletes the key."""

    namespace: str
    key: str
    value: bytes | None

    @property
    def is_delete(self) -> bool:
        return self.value is None


@runtime_checkable
class LedgerTransaction(Protocol):
    @property
    def tx_id(self) -> str: ...

    def state_writes(self) -> Sequence[KVWrite]: ...


@dataclass(frozen=True)
class DecodedTx:
    """One transaction of a block as the ledger sees it."""

    index: int
    data: bytes
    code: int  # the block's validation flag for it
    message: Message | None  # None if the bytes do not decode
    tx: LedgerTransaction | None  # the message, if it implements LedgerTransaction
    error: str | None = None  # why ``message`` or ``tx`` is None

    @property
    def tx_id(self) -> str | None:
        return self.tx.tx_id if self.tx is not None else None

    @property
    def type_name(self) -> str | None:
        return self.message.TYPE if self.message is not None else None


# The modules that register the message types a block's transactions can have. They are
# all imported before any block is decoded, so that what the ledger indexes never depends
# on which other modules a process happened to import: `cctvchain ledger rebuild` must
# index exactly what the node indexed. A listed module that is not installed is skipped.
TRANSACTION_TYPE_MODULES: tuple[str, ...] = ("cctvchain.ledger.genesis", "cctvchain.tx.messages")
_types_loaded = False


def load_transaction_types() -> None:
    global _types_loaded
    if _types_loaded:
        return
    for name in TRANSACTION_TYPE_MODULES:
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # its parent package does not exist
            spec = None
        if spec is not None:
            importlib.import_module(name)
    _types_loaded = True


# Message classes seen to implement LedgerTransaction. A runtime protocol check costs
# attribute look-ups on every call; a frozen message class that implements it once
# implements it for every instance (only positive answers are remembered).
_LEDGER_TX_CLASSES: set[type[Message]] = set()


def _is_ledger_transaction(message: Message) -> bool:
    if type(message) in _LEDGER_TX_CLASSES:
        return True
    if isinstance(message, LedgerTransaction):
        _LEDGER_TX_CLASSES.add(type(message))
        return True
    return False


def decode_transaction(
    index: int, data: bytes, code: int, decoded: Message | None = None
) -> DecodedTx:
    """One transaction of a block; ``decoded``: ``data`` already decoded by the caller."""
    if decoded is not None:
        message = decoded
    else:
        try:
            message = decode_message(data)
        except CodecError as exc:
            return DecodedTx(index, data, code, None, None, f"does not decode: {exc}")
    try:
        # The id of an envelope is inside its payload, which may not decode: that is an
        # invalid transaction without an id, not a reason to refuse the block.
        if not _is_ledger_transaction(message):
            return DecodedTx(index, data, code, message, None, f"{message.TYPE} has no tx id")
        tx = cast(LedgerTransaction, message)
        tx_id = tx.tx_id
    except CodecError as exc:
        return DecodedTx(index, data, code, message, None, f"its tx id does not decode: {exc}")
    if not isinstance(tx_id, str) or not tx_id:
        return DecodedTx(index, data, code, message, None, f"{message.TYPE} has an empty tx id")
    return DecodedTx(index, data, code, message, tx)


def decode_block_transactions(
    block: Block, decoded: Sequence[Message | None] | None = None
) -> list[DecodedTx]:
    """The block's transactions as the ledger sees them. ``decoded``: the messages a
    caller already decoded from ``block.transactions`` (one per transaction, None where
    they did not decode); without it every transaction is decoded here."""
    load_transaction_types()
    flags = block.metadata.tx_flags
    if decoded is None or len(decoded) != len(block.transactions):
        return [decode_transaction(i, tx, flags[i]) for i, tx in enumerate(block.transactions)]
    return [
        decode_transaction(i, tx, flags[i], decoded[i]) for i, tx in enumerate(block.transactions)
    ]
