"""Block, transaction and contract events, and the hub that hands them to subscribers.

Each contract event carries a unique id derived from its transaction and position, so a
subscriber that reconnects and replays from a block height can drop what it has seen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cctvchain.ledger.validation import TxValidationCode, code_name
from cctvchain.tx.messages import contract_event_id

__all__ = ["BlockEvent", "ContractEvent", "EventHub", "TxEvent", "contract_event_id"]


@dataclass(frozen=True)
class TxEvent:
    block: int
    index: int
    tx_id: str | None
    code: int
    reason: str

    @property
    def code_name(self) -> str:
        return code_name(self.code)

    @property
    def valid(self) -> bool:
        return self.code == TxValidationCode.VALID


@dataclass(frozen=True)
class ContractEvent:
    event_id: str
    block: int
    index: int
    tx_id: str
    contract: str
    name: str
    payload: bytes


@dataclass(frozen=True)
class BlockEvent:
    number: int
    block_hash: bytes
    transactions: tuple[TxEvent, ...]
    contract_events: tuple[ContractEvent, ...]

    def tx(self, tx_id: str) -> TxEvent | None:
        for event in self.transactions:
            if event.tx_id == tx_id:
                return event
        return None


Subscriber = Callable[[BlockEvent], None]


class EventHub:
    """Synchronous fan-out of committed blocks to subscribers (thread-safe).

    A subscriber that raises is removed rather than allowed to stop the commit path.
    """

    def __init__(self) -> None:
        self._subscribers: dict[int, Subscriber] = {}
        self._next = 0
        self._lock = threading.Lock()
        self.failed_subscribers = 0

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        with self._lock:
            token = self._next
            self._next += 1
            self._subscribers[token] = subscriber

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(token, None)

        return unsubscribe

    def publish(self, event: BlockEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers.items())
        for token, subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                with self._lock:
                    self._subscribers.pop(token, None)
                    self.failed_subscribers += 1
