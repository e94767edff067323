"""Read-write sets recorded by simulation and checked by MVCC validation at commit.

A read records the version it saw (``None``: the key did not exist). A range query
records its bounds and every key/version it returned, so that validation can re-run it
and detect a phantom (a key inserted or deleted inside the range since simulation).
"""

from __future__ import annotations

from dataclasses import dataclass

from cctvchain.codec import Message
from cctvchain.ledger.records import Version


@dataclass(frozen=True)
class KVRead(Message):
    TYPE = "tx.kv_read"
    key: str
    version: Version | None  # None: the key did not exist


@dataclass(frozen=True)
class KVWriteEntry(Message):
    TYPE = "tx.kv_write"
    key: str
    is_delete: bool
    value: bytes

    def __post_init__(self) -> None:
        if self.is_delete and self.value:
            raise ValueError(f"delete of {self.key!r} must not carry a value")


@dataclass(frozen=True)
class RangeQueryInfo(Message):
    """A range read ``[start_key, end_key)`` (empty end: unbounded) and what it saw."""

    TYPE = "tx.range_query"
    start_key: str
    end_key: str
    exhausted: bool  # False when the contract stopped iterating before the end
    reads: tuple[KVRead, ...]


@dataclass(frozen=True)
class NamespaceRWSet(Message):
    TYPE = "tx.ns_rwset"
    namespace: str
    reads: tuple[KVRead, ...]
    range_queries: tuple[RangeQueryInfo, ...]
    writes: tuple[KVWriteEntry, ...]


@dataclass(frozen=True)
class TxRWSet(Message):
    TYPE = "tx.rwset"
    namespaces: tuple[NamespaceRWSet, ...]

    def write_count(self) -> int:
        return sum(len(ns.writes) for ns in self.namespaces)
