"""Fabric's block cutter as a pure state machine: envelopes and time in, batches out.

Rules (as Fabric's ``blockcutter.receiver``):

* an envelope larger than ``absolute_max_bytes`` is refused;
* an envelope larger than ``preferred_max_bytes`` is cut into a batch of its own, after
  cutting whatever was pending;
* if adding an envelope would push the pending batch past ``preferred_max_bytes``, the
  pending batch is cut first;
* the pending batch is cut when it holds ``max_message_count`` envelopes;
* a pending batch is cut when ``batch_timeout_ms`` has passed since its first envelope —
  the caller passes ``now_ms`` in; the core never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cctvchain.ledger.config import BatchConfig

Batch = tuple[bytes, ...]


class EnvelopeTooLarge(ValueError):
    """The envelope exceeds AbsoluteMaxBytes and can never be ordered."""


@dataclass
class BlockCutter:
    config: BatchConfig
    _pending: list[bytes] = field(default_factory=list)
    _pending_bytes: int = 0
    _deadline_ms: int | None = None

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def pending(self) -> tuple[bytes, ...]:
        return tuple(self._pending)

    @property
    def deadline_ms(self) -> int | None:
        """When the pending batch must be cut by the timer (None when nothing pends)."""
        return self._deadline_ms

    def reconfigure(self, config: BatchConfig) -> None:
        """Adopt new batch parameters, keeping what is already pending."""
        self.config = config

    def check_size(self, envelope: bytes) -> None:
        if len(envelope) > self.config.absolute_max_bytes:
            raise EnvelopeTooLarge(
                f"envelope of {len(envelope)} bytes exceeds AbsoluteMaxBytes "
                f"({self.config.absolute_max_bytes})"
            )

    def ordered(self, envelope: bytes, now_ms: int) -> list[Batch]:
        """Add one envelope; return the batches this cuts (zero, one or two)."""
        self.check_size(envelope)
        size = len(envelope)
        batches: list[Batch] = []
        if size > self.config.preferred_max_bytes:
            if self._pending:
                batches.append(self.cut())
            batches.append((envelope,))
            return batches
        if self._pending and self._pending_bytes + size > self.config.preferred_max_bytes:
            batches.append(self.cut())
        if not self._pending:
            self._deadline_ms = now_ms + self.config.batch_timeout_ms
        self._pending.append(envelope)
        self._pending_bytes += size
        if len(self._pending) >= self.config.max_message_count:
            batches.append(self.cut())
        return batches

    def tick(self, now_ms: int) -> Batch | None:
        """Cut the pending batch if its timeout has expired."""
        if self._deadline_ms is not None and now_ms >= self._deadline_ms and self._pending:
            return self.cut()
        return None

    def cut(self) -> Batch:
        batch = tuple(self._pending)
        self._pending = []
        self._pending_bytes = 0
        self._deadline_ms = None
        return batch
