"""What the ledger returns and what its index stores (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from cctvchain.codec import Message
from cctvchain.ledger.validation import code_name


@dataclass(frozen=True, order=True)
class Version(Message):
    """Fabric's height: the block and the position in it of the transaction that last
    wrote a key. A message so that read sets can carry it."""

    TYPE = "ledger.version"
    block: int
    tx: int


@dataclass(frozen=True)
class VersionedValue:
    value: bytes
    version: Version


@dataclass(frozen=True)
class HistoryEntry:
    """One committed write of a key, as kept by the history index."""

    tx_id: str
    version: Version
    value: bytes | None  # None: the transaction deleted the key

    @property
    def is_delete(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class TxRecord:
    """A transaction found by id: where it is, how it was judged, its bytes."""

    tx_id: str
    block_number: int
    tx_number: int
    validation_code: int
    data: bytes

    @property
    def validation_code_name(self) -> str:
        return code_name(self.validation_code)


# -- index records (stored in LevelDB) -----------------------------------------------------


@dataclass(frozen=True)
class BlockIndexEntry(Message):
    """Where a block's frame is, and the hash its header must have."""

    TYPE = "ledger.index.block"
    file: int
    offset: int  # of the frame, header included
    length: int  # of the payload
    hash: bytes


@dataclass(frozen=True)
class TxIndexEntry(Message):
    TYPE = "ledger.index.tx"
    block: int
    tx: int
    code: int


@dataclass(frozen=True)
class HistoryRecord(Message):
    TYPE = "ledger.index.history"
    tx_id: str
    value: bytes | None


@dataclass(frozen=True)
class Savepoint(Message):
    """What the index covers: blocks ``0 .. height-1``, whose frames end at
    ``(file, offset)`` in the block files. Written in the same batch as the blocks'
    index entries, so it can never disagree with them."""

    TYPE = "ledger.index.savepoint"
    height: int
    head_hash: bytes
    file: int
    offset: int
