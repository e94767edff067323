"""The peer's Prometheus metrics, exposed in the text format (version 0.0.4) by hand.

Counters count since the process started (Prometheus handles resets); gauges are read
when scraped. Histograms use fixed buckets in seconds.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class Histogram:
    """Cumulative buckets, sum and count (thread-safe)."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * len(self.buckets)
        self.count = 0
        self.sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self.count += 1
            self.sum += value
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self._counts[i] += 1

    def lines(self, name: str) -> list[str]:
        with self._lock:
            counts, total, count = list(self._counts), self.sum, self.count
        lines = [
            f'{name}_bucket{{le="{_number(bound)}"}} {n}'
            for bound, n in zip(self.buckets, counts, strict=True)
        ]
        lines.append(f'{name}_bucket{{le="+Inf"}} {count}')
        lines.append(f"{name}_sum {_number(total)}")
        lines.append(f"{name}_count {count}")
        return lines


@dataclass
class OrdererView:
    """What the peer last saw of one orderer's ``GET /status``."""

    name: str
    reachable: bool = False
    term: int = 0
    leader: str | None = None
    height: int = 0


@dataclass
class PeerMetrics:
    committed_by_code: dict[str, int] = field(default_factory=dict)
    blocks_committed: int = 0
    blocks_rejected: int = 0
    deliver_failovers: int = 0
    endorsement_refusals: int = 0
    endorsement_seconds: Histogram = field(default_factory=Histogram)
    commit_seconds: Histogram = field(default_factory=Histogram)
    gateway_submit_seconds: Histogram = field(default_factory=Histogram)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def committed(self, codes: Iterable[str]) -> None:
        with self._lock:
            self.blocks_committed += 1
            for code in codes:
                self.committed_by_code[code] = self.committed_by_code.get(code, 0) + 1

    def render(
        self,
        *,
        height: int,
        orderers: Sequence[OrdererView],
        event_streams: int,
        caught_up: bool,
    ) -> str:
        with self._lock:
            by_code = dict(self.committed_by_code)
        out: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[str]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(samples)

        metric(
            "cctvchain_ledger_height",
            "gauge",
            "Blocks committed to this peer's ledger (the next block's number).",
            [f"cctvchain_ledger_height {height}"],
        )
        metric(
            "cctvchain_caught_up",
            "gauge",
            "1 once the peer has reached the ordering service's height since it started.",
            [f"cctvchain_caught_up {int(caught_up)}"],
        )
        metric(
            "cctvchain_blocks_committed_total",
            "counter",
            "Blocks validated and committed since the process started.",
            [f"cctvchain_blocks_committed_total {self.blocks_committed}"],
        )
        metric(
            "cctvchain_committed_transactions_total",
            "counter",
            "Transactions committed since the process started, by validation code.",
            [
                f"cctvchain_committed_transactions_total{_labels({'code': code})} {n}"
                for code, n in sorted(by_code.items())
            ]
            or ['cctvchain_committed_transactions_total{code="VALID"} 0'],
        )
        metric(
            "cctvchain_blocks_rejected_total",
            "counter",
            "Delivered blocks refused whole (hash chain or orderer signature).",
            [f"cctvchain_blocks_rejected_total {self.blocks_rejected}"],
        )
        metric(
            "cctvchain_deliver_failovers_total",
            "counter",
            "Times the deliver loop left an orderer (error, end of stream, stall, refusal).",
            [f"cctvchain_deliver_failovers_total {self.deliver_failovers}"],
        )
        metric(
            "cctvchain_endorsement_refusals_total",
            "counter",
            "Proposals this peer's endorser answered with a refusal.",
            [f"cctvchain_endorsement_refusals_total {self.endorsement_refusals}"],
        )
        metric(
            "cctvchain_endorsement_seconds",
            "histogram",
            "Time this peer's endorser took per proposal (checks, simulation, signature).",
            self.endorsement_seconds.lines("cctvchain_endorsement_seconds"),
        )
        metric(
            "cctvchain_commit_seconds",
            "histogram",
            "Time to validate and commit one block.",
            self.commit_seconds.lines("cctvchain_commit_seconds"),
        )
        metric(
            "cctvchain_gateway_submit_seconds",
            "histogram",
            "Gateway submit: from receiving the envelope to this peer committing it.",
            self.gateway_submit_seconds.lines("cctvchain_gateway_submit_seconds"),
        )
        metric(
            "cctvchain_event_streams",
            "gauge",
            "Open event streams (GET /api/v1/events).",
            [f"cctvchain_event_streams {event_streams}"],
        )
        reachable = [o for o in orderers if o.reachable]
        term = max((o.term for o in reachable), default=0)
        leader = next((o.leader for o in reachable if o.term == term and o.leader), None)
        metric(
            "cctvchain_raft_term",
            "gauge",
            "Highest Raft term reported by a reachable orderer (last poll).",
            [f"cctvchain_raft_term {term}"],
        )
        metric(
            "cctvchain_raft_leader",
            "gauge",
            "1 for the orderer the ordering service reports as Raft leader (last poll).",
            [
                f"cctvchain_raft_leader{_labels({'name': o.name})} {int(o.name == leader)}"
                for o in orderers
            ],
        )
        metric(
            "cctvchain_orderer_up",
            "gauge",
            "Whether the orderer answered the last status poll.",
            [
                f"cctvchain_orderer_up{_labels({'name': o.name})} {int(o.reachable)}"
                for o in orderers
            ],
        )
        metric(
            "cctvchain_orderer_height",
            "gauge",
            "Ledger height the orderer reported at the last poll.",
            [f"cctvchain_orderer_height{_labels({'name': o.name})} {o.height}" for o in orderers],
        )
        return "\n".join(out) + "\n"
