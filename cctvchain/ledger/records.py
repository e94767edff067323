"""What the ledger returns and what its index stores (pure)."""

from __future__ import annotations

from collections.abc import Callable
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


# What a history entry reads from its block: the writing transaction's id and the value
# it wrote (None: it deleted the key).
WrittenBy = tuple[str, bytes | None]


class HistoryEntry:
    """One committed write of a key.

    The history index stores only where the write is (as Fabric's history database
    does: namespace, key, block, tx, no value); the transaction's id and the value it
    wrote are in the block. An entry made with :meth:`deferred` reads them from the
    block on first use of :attr:`tx_id`, :attr:`value` or :attr:`is_delete`, so a
    caller that needs only the versions reads no block file. Loading needs the ledger
    still open; what it reads is immutable (a committed block), so when it happens
    does not change what it returns.
    """

    __slots__ = ("_load", "_written", "version")

    def __init__(self, tx_id: str, version: Version, value: bytes | None) -> None:
        self.version = version
        self._written: WrittenBy | None = (tx_id, value)
        self._load: Callable[[], WrittenBy] | None = None

    @classmethod
    def deferred(cls, version: Version, load: Callable[[], WrittenBy]) -> HistoryEntry:
        """An entry whose tx id and value ``load`` reads from the block when asked."""
        entry = cls.__new__(cls)
        entry.version = version
        entry._written = None
        entry._load = load
        return entry

    def _resolved(self) -> WrittenBy:
        written = self._written
        if written is None:
            assert self._load is not None
            written = self._load()
            # Two threads may both load; they read the same immutable block.
            self._written = written
            self._load = None
        return written

    @property
    def tx_id(self) -> str:
        return self._resolved()[0]

    @property
    def value(self) -> bytes | None:
        """What the transaction wrote; None: it deleted the key."""
        return self._resolved()[1]

    @property
    def is_delete(self) -> bool:
        return self.value is None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HistoryEntry):
            return NotImplemented
        return self.version == other.version and self._resolved() == other._resolved()

    def __hash__(self) -> int:
        return hash((self.version, self._resolved()))

    def __repr__(self) -> str:
        if self._written is None:
            return f"HistoryEntry(version={self.version!r}, <not yet read from the block>)"
        tx_id, value = self._written
        return f"HistoryEntry(tx_id={tx_id!r}, version={self.version!r}, value={value!r})"


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
    """A history index value of an index written before history entries became empty
    (the tx id and the written value, copies of what the block holds). Still read;
    never written: an entry is now its key alone, with an empty value."""

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
