"""Reads of world state, history and the transaction index over a LevelDB handle.

The source is anything with LevelDB's ``get(key)`` and ``iterator(start=, stop=)``: the
live database, or a snapshot of it (what the contract runtime simulates against, so that
a simulation sees one consistent state while blocks keep committing). This module never
imports plyvel itself.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from typing import Any

from cctvchain.codec import CodecError
from cctvchain.ledger import keys
from cctvchain.ledger.block import ZERO_HASH
from cctvchain.ledger.errors import LedgerCorruptError
from cctvchain.ledger.records import HistoryEntry, HistoryRecord, Savepoint, Version, VersionedValue


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


class StateReader(abc.ABC):
    """State, history and tx-id reads; subclasses provide the LevelDB source."""

    @abc.abstractmethod
    def _source(self) -> Any:
        """The live database or a snapshot: anything with ``get`` and ``iterator``."""

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

    def get_history(self, namespace: str, key: str) -> list[HistoryEntry]:
        """Every committed write of ``key``, oldest first."""
        prefix = keys.history_prefix(namespace, key)
        entries = []
        for raw_key, raw_value in self._source().iterator(prefix=prefix):
            block, tx = keys.decode_history_version(raw_key)
            record = HistoryRecord.decode(raw_value)
            entries.append(HistoryEntry(record.tx_id, Version(block, tx), record.value))
        return entries

    def has_tx(self, tx_id: str) -> bool:
        return self._source().get(keys.tx_key(tx_id)) is not None


class LedgerSnapshot(StateReader):
    """A consistent read view of the ledger at one height (a LevelDB snapshot)."""

    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot
        savepoint = read_savepoint(snapshot)
        self.height = savepoint.height if savepoint else 0
        self.head_hash = savepoint.head_hash if savepoint else ZERO_HASH

    def _source(self) -> Any:
        return self._snapshot

    def close(self) -> None:
        self._snapshot.close()

    def __enter__(self) -> LedgerSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
