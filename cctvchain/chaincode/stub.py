"""The stub a contract function works through; it records the read-write set.

Reads go to a consistent snapshot of committed state and never see this transaction's
own writes (Fabric's semantics: the read set must describe committed state only). Writes
are buffered; nothing touches the ledger until the transaction is validated and committed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cctvchain.chaincode.contract import ContractError
from cctvchain.ledger import keys
from cctvchain.ledger.config import CONFIG_KEY, CONFIG_NAMESPACE, ChannelConfig
from cctvchain.ledger.records import HistoryEntry, Version, VersionedValue
from cctvchain.tx.rwset import KVRead, KVWriteEntry, NamespaceRWSet, RangeQueryInfo, TxRWSet


class StateReader(Protocol):
    """What simulation needs of committed state (the ledger's snapshot provides it)."""

    def get_state(self, namespace: str, key: str) -> VersionedValue | None: ...

    def get_state_range(
        self, namespace: str, start_key: str = "", end_key: str | None = None
    ) -> Iterator[tuple[str, VersionedValue]]: ...

    def get_history(self, namespace: str, key: str) -> Sequence[HistoryEntry]: ...


# The configuration changes rarely and is read by every simulation that checks an ACL:
# decode each distinct configuration once (the result is an immutable message).
_decode_config = functools.lru_cache(maxsize=8)(ChannelConfig.decode)


@dataclass(frozen=True)
class Creator:
    """The validated identity that signed the proposal."""

    msp_id: str
    name: str
    id_type: str
    attributes: Mapping[str, str]
    cert: bytes

    def attribute(self, name: str) -> str | None:
        return self.attributes.get(name)


@dataclass(frozen=True)
class TxContext:
    channel_id: str
    tx_id: str
    timestamp_ms: int
    creator: Creator


@dataclass(frozen=True)
class SimulationLimits:
    max_key_bytes: int = 1024
    max_value_bytes: int = 1024 * 1024
    max_write_set_bytes: int = 4 * 1024 * 1024
    max_range_results: int = 10_000
    max_events: int = 16
    max_event_bytes: int = 64 * 1024


@dataclass(frozen=True)
class KeyModification:
    """One entry of a key's history, oldest first."""

    tx_id: str
    block: int
    tx: int
    value: bytes | None

    @property
    def is_delete(self) -> bool:
        return self.value is None


def _version(value: VersionedValue | None) -> Version | None:
    return None if value is None else value.version


@dataclass
class ChaincodeStub:
    namespace: str
    reader: StateReader
    context: TxContext
    limits: SimulationLimits = field(default_factory=SimulationLimits)
    _reads: dict[str, KVRead] = field(default_factory=dict)
    _range_queries: list[RangeQueryInfo] = field(default_factory=list)
    _writes: dict[str, KVWriteEntry] = field(default_factory=dict)
    _events: list[tuple[str, bytes]] = field(default_factory=list)
    _write_bytes: int = 0
    _config_read: KVRead | None = None

    # -- identity and context -------------------------------------------------------------

    def get_creator(self) -> Creator:
        return self.context.creator

    def get_tx_id(self) -> str:
        return self.context.tx_id

    def get_tx_timestamp(self) -> int:
        """The proposal's timestamp in milliseconds (the contract's only clock)."""
        return self.context.timestamp_ms

    def get_channel_id(self) -> str:
        return self.context.channel_id

    def get_channel_config(self) -> ChannelConfig:
        """The channel configuration in force (recorded as a read of the config key, so a
        transaction simulated under a configuration that has since changed is invalid)."""
        current = self.reader.get_state(CONFIG_NAMESPACE, CONFIG_KEY)
        if current is None:
            raise ContractError("the channel has no configuration", status=500)
        self._config_read = KVRead(CONFIG_KEY, current.version)
        return _decode_config(current.value)

    # -- state ----------------------------------------------------------------------------

    def _check_key(self, key: str, *, allow_composite: bool = True) -> None:
        try:
            raw = keys.encode_key(key)
        except keys.KeyEncodingError as exc:
            raise ContractError(str(exc)) from exc
        if len(raw) > self.limits.max_key_bytes:
            raise ContractError(f"key longer than {self.limits.max_key_bytes} bytes")
        if not allow_composite and key.startswith(keys.COMPOSITE_KEY_NAMESPACE):
            raise ContractError("simple keys must not start with NUL (reserved for composite keys)")

    def get_state(self, key: str) -> bytes | None:
        self._check_key(key)
        current = self.reader.get_state(self.namespace, key)
        self._reads.setdefault(key, KVRead(key, _version(current)))
        return None if current is None else current.value

    def put_state(self, key: str, value: bytes) -> None:
        self._check_key(key)
        if not isinstance(value, bytes):
            raise ContractError(f"value for {key!r} must be bytes, got {type(value).__name__}")
        if len(value) > self.limits.max_value_bytes:
            raise ContractError(f"value for {key!r} exceeds {self.limits.max_value_bytes} bytes")
        self._record_write(KVWriteEntry(key, False, value))

    def del_state(self, key: str) -> None:
        self._check_key(key)
        self._record_write(KVWriteEntry(key, True, b""))

    def _record_write(self, write: KVWriteEntry) -> None:
        previous = self._writes.get(write.key)
        total = self._write_bytes + len(write.key) + len(write.value)
        if previous is not None:
            total -= len(previous.key) + len(previous.value)
        if total > self.limits.max_write_set_bytes:
            # Nothing recorded: a contract that catches this keeps a consistent write set.
            raise ContractError(
                f"write set exceeds {self.limits.max_write_set_bytes} bytes", status=413
            )
        self._write_bytes = total
        self._writes[write.key] = write

    def get_state_by_range(self, start_key: str, end_key: str) -> list[tuple[str, bytes]]:
        """Keys in ``[start_key, end_key)``; an empty ``end_key`` means no upper bound.

        Composite keys are not returned (as in Fabric), and the whole result is recorded
        for phantom detection at validation.
        """
        # Simple keys only (as Fabric): validation re-runs a range whose start is a
        # composite key as a composite-key range, which would then always conflict.
        if start_key:
            self._check_key(start_key, allow_composite=False)
        if end_key:
            self._check_key(end_key, allow_composite=False)
        results: list[tuple[str, bytes]] = []
        reads: list[KVRead] = []
        for key, value in self.reader.get_state_range(self.namespace, start_key, end_key or None):
            if key.startswith(keys.COMPOSITE_KEY_NAMESPACE):
                continue
            self._append_range_result(key, value, results, reads)
        self._range_queries.append(RangeQueryInfo(start_key, end_key, True, tuple(reads)))
        return results

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str] = ()
    ) -> list[tuple[str, bytes]]:
        try:
            prefix = keys.create_composite_key(object_type, attributes)
        except keys.KeyEncodingError as exc:
            raise ContractError(str(exc)) from exc
        end = prefix + keys.MAX_UNICODE_RUNE
        results: list[tuple[str, bytes]] = []
        reads: list[KVRead] = []
        for key, value in self.reader.get_state_range(self.namespace, prefix, end):
            self._append_range_result(key, value, results, reads)
        self._range_queries.append(RangeQueryInfo(prefix, end, True, tuple(reads)))
        return results

    def _append_range_result(
        self,
        key: str,
        value: VersionedValue,
        results: list[tuple[str, bytes]],
        reads: list[KVRead],
    ) -> None:
        if len(results) >= self.limits.max_range_results:
            raise ContractError(
                f"range query returned more than {self.limits.max_range_results} results",
                status=413,
            )
        results.append((key, value.value))
        reads.append(KVRead(key, _version(value)))

    def get_history_for_key(self, key: str) -> list[KeyModification]:
        """Every committed change of ``key``, oldest first (not re-validated at commit)."""
        self._check_key(key)
        return [
            KeyModification(entry.tx_id, entry.version.block, entry.version.tx, entry.value)
            for entry in self.reader.get_history(self.namespace, key)
        ]

    # -- composite keys ---------------------------------------------------------------------

    @staticmethod
    def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
        try:
            return keys.create_composite_key(object_type, attributes)
        except keys.KeyEncodingError as exc:
            raise ContractError(str(exc)) from exc

    @staticmethod
    def split_composite_key(key: str) -> tuple[str, list[str]]:
        try:
            return keys.split_composite_key(key)
        except keys.KeyEncodingError as exc:
            raise ContractError(str(exc)) from exc

    # -- events -------------------------------------------------------------------------------

    def set_event(self, name: str, payload: bytes) -> None:
        if not isinstance(name, str) or not name:
            raise ContractError("event name must be non-empty text")
        if not isinstance(payload, bytes):
            raise ContractError(f"event payload must be bytes, got {type(payload).__name__}")
        if len(payload) > self.limits.max_event_bytes:
            raise ContractError(f"event payload exceeds {self.limits.max_event_bytes} bytes")
        if len(self._events) >= self.limits.max_events:
            raise ContractError(f"more than {self.limits.max_events} events in one transaction")
        self._events.append((name, payload))

    # -- results --------------------------------------------------------------------------------

    @property
    def events(self) -> list[tuple[str, bytes]]:
        return list(self._events)

    def rwset(self) -> TxRWSet:
        """The recorded read-write set, in key order so every endorser produces the same."""
        namespaces = []
        if self._reads or self._range_queries or self._writes:
            namespaces.append(
                NamespaceRWSet(
                    namespace=self.namespace,
                    reads=tuple(self._reads[k] for k in sorted(self._reads)),
                    range_queries=tuple(self._range_queries),
                    writes=tuple(self._writes[k] for k in sorted(self._writes)),
                )
            )
        if self._config_read is not None:
            namespaces.append(NamespaceRWSet(CONFIG_NAMESPACE, (self._config_read,), (), ()))
        return TxRWSet(tuple(namespaces))
