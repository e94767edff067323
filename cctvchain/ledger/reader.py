"""Reads of world state, history and the transaction index over a LevelDB handle.

The source is anything with LevelDB's ``get(key)`` and ``iterator(start=, stop=)``: the
live database, or a snapshot of it (what the contract runtime simulates against, so that
a simulation sees one consistent state while blocks keep committing). This module never
imports plyvel itself.

History entries hold no values (Fabric's history database design): the index key says
which block and transaction wrote the key, and :class:`HistoryResolver` reads the tx id
and the written value from that block when asked. Committed blocks never change, and an
entry in a snapshot names a block below the snapshot's height, so reading the block files
from a snapshot is as deterministic as reading the snapshot itself.
"""

from __future__ import annotations

import abc
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from cctvchain.codec import CodecError
from cctvchain.ledger import keys
from cctvchain.ledger.block import ZERO_HASH, Block
from cctvchain.ledger.errors import LedgerCorruptError, LedgerError
from cctvchain.ledger.records import (
    HistoryEntry,
    HistoryRecord,
    Savepoint,
    Version,
    VersionedValue,
    WrittenBy,
)
from cctvchain.ledger.transaction import decode_transaction, load_transaction_types


def _versioned(raw: bytes) -> VersionedValue:
    block, tx, value = keys.decode_versioned_value(raw)
    return VersionedValue(value, Version(block, tx))


def read_savepoint(source: Any) -> Savepoint | None:
    raw = source.get(keys.SAVEPOINT_KEY)
    if raw is None:
        return None
    try:
        return Savepoint.decode(raw)
    except CodecError as exc:
        raise LedgerCorruptError(f"the index savepoint is damaged: {exc}") from exc


# A transaction as history reads it: its id and what it wrote, by (namespace, key).
_TxWrites = tuple[str, dict[tuple[str, str], bytes | None]]


class HistoryResolver:
    """Reads history entries' tx ids and values from committed blocks, with small LRU
    caches of blocks and of decoded transactions, so that a query over many entries of
    the same blocks reads and decodes each once. Shared by a ledger and its snapshots;
    safe from any thread."""

    def __init__(
        self, load_block: Callable[[int], Block], *, max_blocks: int = 8, max_txs: int = 256
    ) -> None:
        self._load_block = load_block
        self._max_blocks = max_blocks
        self._max_txs = max_txs
        self._blocks: OrderedDict[int, Block] = OrderedDict()
        self._txs: OrderedDict[tuple[int, int], _TxWrites] = OrderedDict()
        self._lock = threading.Lock()
        self.blocks_read = 0  # how many times a block was read from the files (for tests)

    def written(self, namespace: str, key: str, version: Version) -> WrittenBy:
        """The tx id of the transaction at ``version`` and what it wrote to ``key``."""
        tx_id, writes = self._tx_writes(version.block, version.tx)
        try:
            return tx_id, writes[namespace, key]
        except KeyError:
            raise LedgerCorruptError(
                f"the history index has a write of {namespace}/{key!r} by transaction "
                f"{version.tx} of block {version.block}, which does not write it",
                block_number=version.block,
            ) from None

    def _tx_writes(self, number: int, index: int) -> _TxWrites:
        with self._lock:
            cached = self._txs.get((number, index))
            if cached is not None:
                self._txs.move_to_end((number, index))
                return cached
        block = self._block(number)
        where = f"transaction {index} of block {number}"
        if not 0 <= index < len(block.transactions):
            raise LedgerCorruptError(
                f"the history index names {where}, which has "
                f"{len(block.transactions)} transactions",
                block_number=number,
            )
        load_transaction_types()
        decoded = decode_transaction(
            index, block.transactions[index], block.metadata.tx_flags[index]
        )
        if decoded.tx is None:
            # Committed VALID, so it decoded when committed: either this process lacks
            # its message type (as a rebuild would) or the block is not what was indexed.
            raise LedgerError(f"this process cannot read {where} for its history: {decoded.error}")
        # In write order, as the commit indexed them: a later write of a key wins.
        writes = {(w.namespace, w.key): w.value for w in decoded.tx.state_writes()}
        entry = (decoded.tx.tx_id, writes)
        with self._lock:
            self._txs[number, index] = entry
            while len(self._txs) > self._max_txs:
                self._txs.popitem(last=False)
        return entry

    def _block(self, number: int) -> Block:
        with self._lock:
            block = self._blocks.get(number)
            if block is not None:
                self._blocks.move_to_end(number)
                return block
        block = self._load_block(number)
        with self._lock:
            self.blocks_read += 1
            self._blocks[number] = block
            while len(self._blocks) > self._max_blocks:
                self._blocks.popitem(last=False)
        return block


class StateReader(abc.ABC):
    """State, history and tx-id reads; subclasses provide the LevelDB source."""

    @abc.abstractmethod
    def _source(self) -> Any:
        """The live database or a snapshot: anything with ``get`` and ``iterator``."""

    @abc.abstractmethod
    def _history_resolver(self) -> HistoryResolver:
        """Where history entries' tx ids and values are read from (the block files)."""

    # -- world state -----------------------------------------------------------------------

    def get_state(self, namespace: str, key: str) -> VersionedValue | None:
        raw = self._source().get(keys.state_key(namespace, key))
        return None if raw is None else _versioned(raw)

    def _scan_state(
        self, namespace: str, start: bytes, end: bytes | None
    ) -> Iterator[tuple[str, VersionedValue]]:
        lo, hi = keys.state_range(namespace, start, end)
        prefix_len = len(keys.state_prefix(namespace))
        iterator = self._source().iterator(start=lo, stop=hi)
        try:
            for raw_key, raw_value in iterator:
                yield raw_key[prefix_len:].decode("utf-8"), _versioned(raw_value)
        finally:
            iterator.close()

    def get_state_range(
        self, namespace: str, start_key: str = "", end_key: str | None = None
    ) -> Iterator[tuple[str, VersionedValue]]:
        """Keys ``start_key <= key < end_key`` of ``namespace`` in key order.

        A raw range: ``""`` starts at the first key, ``None`` (or ``""``) as the end
        runs to the last, and composite keys (which start with U+0000) are included.
        Fabric's ``GetStateByRange`` semantics (no composite keys) are the contract
        stub's job, which also records the range for phantom-read checks.
        """
        start = keys.encode_text(start_key, "range start")
        end = keys.encode_text(end_key, "range end") if end_key else None
        return self._scan_state(namespace, start, end)

    def get_state_by_partial_composite_key(
        self, namespace: str, object_type: str, attributes: Sequence[str] = ()
    ) -> Iterator[tuple[str, VersionedValue]]:
        """Every composite key that begins with ``object_type`` and ``attributes``."""
        start, end = keys.partial_composite_key_range(object_type, attributes)
        return self._scan_state(namespace, start, end)

    # -- history and transaction ids -------------------------------------------------------

    def get_history(self, namespace: str, key: str, *, values: bool = True) -> list[HistoryEntry]:
        """Every committed write of ``key``, oldest first.

        Each entry's version comes from the index; its tx id and value from its block
        (read through the resolver's caches), except for entries of an index written
        before history values were dropped, which still carry both. With
        ``values=False`` the blocks are read only when an entry's tx id or value is
        first used (needing the ledger still open then): for callers that want only
        the versions.
        """
        prefix = keys.history_prefix(namespace, key)
        resolver = self._history_resolver()
        entries = []
        iterator = self._source().iterator(prefix=prefix)
        try:
            for raw_key, raw_value in iterator:
                version = Version(*keys.decode_history_version(raw_key))
                if raw_value:
                    entries.append(_old_history_entry(namespace, key, version, raw_value))
                elif values:
                    tx_id, value = resolver.written(namespace, key, version)
                    entries.append(HistoryEntry(tx_id, version, value))
                else:
                    load = functools.partial(resolver.written, namespace, key, version)
                    entries.append(HistoryEntry.deferred(version, load))
        finally:
            iterator.close()
        return entries

    def has_tx(self, tx_id: str) -> bool:
        return self._source().get(keys.tx_key(tx_id)) is not None


def _old_history_entry(namespace: str, key: str, version: Version, raw: bytes) -> HistoryEntry:
    """An entry of an index written before history values were dropped."""
    try:
        record = HistoryRecord.decode(raw)
    except CodecError as exc:
        raise LedgerCorruptError(
            f"the history entry of {namespace}/{key!r} at {version} is damaged: {exc}",
            block_number=version.block,
        ) from exc
    return HistoryEntry(record.tx_id, version, record.value)


class LedgerSnapshot(StateReader):
    """A consistent read view of the ledger at one height (a LevelDB snapshot)."""

    def __init__(self, snapshot: Any, history: HistoryResolver) -> None:
        self._snapshot = snapshot
        self._history = history
        savepoint = read_savepoint(snapshot)
        self.height = savepoint.height if savepoint else 0
        self.head_hash = savepoint.head_hash if savepoint else ZERO_HASH

    def _source(self) -> Any:
        return self._snapshot

    def _history_resolver(self) -> HistoryResolver:
        return self._history

    def close(self) -> None:
        self._snapshot.close()

    def __enter__(self) -> LedgerSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
