"""The transaction ids an orderer was handed a moment ago.

A replayed envelope is refused at broadcast. The ledger knows a tx id only once its block
is cut, so the ids of the last ``window_s`` seconds are held here too. Ids are added with
a clock that only moves forward, so the oldest is always at the front and expiry looks at
the front only: the cost per broadcast does not grow with traffic (a scan of the whole
window on every broadcast did).
"""

from __future__ import annotations

from collections import OrderedDict


class RecentTxIds:
    """Tx ids seen within the last ``window_s`` seconds of a monotonic clock."""

    def __init__(self, window_s: float) -> None:
        if window_s <= 0:
            raise ValueError("the window must be positive")
        self.window_s = window_s
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._latest = float("-inf")

    def expire(self, now: float) -> None:
        """Forget the ids seen more than ``window_s`` before ``now``."""
        seen = self._seen
        while seen and now - seen[next(iter(seen))] > self.window_s:
            seen.popitem(last=False)

    def add(self, tx_id: str, now: float) -> None:
        """Remember ``tx_id`` as seen at ``now`` (not before any earlier ``now``)."""
        if now < self._latest:
            raise ValueError("the clock went backwards")
        self._latest = now
        self._seen.pop(tx_id, None)  # re-added: it moves to the back with its new time
        self._seen[tx_id] = now

    def forget(self, tx_id: str) -> None:
        """Drop ``tx_id`` (it was not ordered after all: its sender may retry it)."""
        self._seen.pop(tx_id, None)

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)
