"""Merging one peer's evidence bundles for consecutive capture windows (pure).

A peer serves the evidence of at most ``[peer] max_evidence_span_s`` of capture per
request; ``cctvchain verify`` fetches a longer clip's evidence in consecutive windows
(each cross-checked with a witness) and merges them here into ONE bundle that
:func:`~cctvchain.verify.bundle.check_bundle` verifies like any other.

The merged bundle holds the union of the windows' parts, each kept once: the genesis
block, the configuration updates, the block headers, the orderer signatures of the
anchoring blocks, the anchors (an anchor spanning a window edge is in both windows'
bundles), the camera certificates and the certificates referred to. Whatever two
windows share must be identical — the same peer served both — else
:class:`MergeError` says exactly what differs. Metadata: the channel and camera must
agree; the ledger height and creation time are the latest window's (configuration
blocks are carried up to it: a window made at a lower height lacks only the newer
ones). The checksums are recomputed; a bundled clip, if any, must be the same in all.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from typing import TypeVar

from cctvchain.verify.bundle import (
    AnchorEvidence,
    BlockSignatures,
    ConfigEvidence,
    EvidenceBundle,
    compute_checksums,
)
from cctvchain.verify.crosscheck import short_hash

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class MergeError(ValueError):
    """Two windows' bundles disagree on something they share (the message says what)."""


def _union(
    parts: Sequence[tuple[int, Sequence[T]]],
    key: Callable[[T], K],
    conflict: Callable[[K, int, int], str],
) -> dict[K, T]:
    """``key`` -> item over every window's items (``parts``: window index, items); an
    item seen again must be equal, else :class:`MergeError` with ``conflict``'s text."""
    found: dict[K, tuple[int, T]] = {}
    for window, items in parts:
        for item in items:
            k = key(item)
            seen = found.get(k)
            if seen is None:
                found[k] = (window, item)
            elif seen[1] != item:
                raise MergeError(conflict(k, seen[0], window))
    return {k: item for k, (_, item) in found.items()}


def merge_bundles(bundles: Sequence[EvidenceBundle]) -> EvidenceBundle:
    """One bundle holding the evidence of every window (module docstring)."""
    if not bundles:
        raise MergeError("no evidence to merge")
    if len(bundles) == 1:
        return bundles[0]
    first = bundles[0]
    for k, bundle in enumerate(bundles[1:], start=1):
        meta = bundle.metadata
        if (meta.channel_id, meta.camera_id) != (
            first.metadata.channel_id,
            first.metadata.camera_id,
        ):
            raise MergeError(
                f"window {k + 1} is evidence of camera {meta.camera_id!r} on channel "
                f"{meta.channel_id!r}, window 1 of camera {first.metadata.camera_id!r} on "
                f"channel {first.metadata.channel_id!r}"
            )
        if bundle.genesis != first.genesis:
            raise MergeError(
                f"different genesis blocks: {short_hash(first.genesis.header.hash())} in "
                f"window 1, {short_hash(bundle.genesis.header.hash())} in window {k + 1}"
            )
        if bundle.clip != first.clip:
            raise MergeError(f"windows 1 and {k + 1} carry different clip fingerprints")

    indexed = list(enumerate(bundles, start=1))
    configs = _union(
        [(w, b.config_updates) for w, b in indexed],
        lambda c: c.header.number,
        lambda n, a, b: f"configuration block {n} differs between windows {a} and {b}",
    )
    for number in sorted(configs):
        for window, bundle in indexed:
            if bundle.metadata.ledger_height > number and all(
                c.header.number != number for c in bundle.config_updates
            ):
                raise MergeError(
                    f"configuration block {number} is in another window's evidence, not in "
                    f"window {window}'s (made at height {bundle.metadata.ledger_height})"
                )
    headers = _union(
        [(w, b.headers) for w, b in indexed],
        lambda h: h.number,
        lambda n, a, b: _header_conflict(bundles, n, a, b),
    )
    numbers = sorted(headers)
    gaps = [(a, b) for a, b in itertools.pairwise(numbers) if b != a + 1]
    if gaps:
        a, b = gaps[0]
        raise MergeError(
            f"the windows' block headers leave a gap: blocks {a + 1}-{b - 1} are in no window"
        )
    signatures = _union(
        [(w, b.block_signatures) for w, b in indexed],
        lambda s: s.number,
        lambda n, a, b: f"the orderer signatures of block {n} differ between windows {a} and {b}",
    )
    anchors = _union(
        [(w, b.anchors) for w, b in indexed],
        lambda x: x.segment.sequence,
        lambda n, a, b: _anchor_conflict(bundles, n, a, b),
    )
    cameras = list(dict.fromkeys(c for b in bundles for c in b.camera_certificates))
    certificates = list(dict.fromkeys(c for b in bundles for c in b.certificates))
    latest = max(bundles, key=lambda b: (b.metadata.ledger_height, b.metadata.created_ms))
    metadata = replace(
        first.metadata,
        ledger_height=latest.metadata.ledger_height,
        created_ms=max(b.metadata.created_ms for b in bundles),
    )
    merged_anchors: tuple[AnchorEvidence, ...] = tuple(anchors[n] for n in sorted(anchors))
    merged_configs: tuple[ConfigEvidence, ...] = tuple(configs[n] for n in sorted(configs))
    merged_signatures: tuple[BlockSignatures, ...] = tuple(
        signatures[n] for n in sorted(signatures)
    )
    return replace(
        first,
        metadata=metadata,
        config_updates=merged_configs,
        headers=tuple(headers[n] for n in numbers),
        block_signatures=merged_signatures,
        anchors=merged_anchors,
        camera_certificates=tuple(cameras),
        certificates=tuple(certificates),
        checksums=compute_checksums(metadata, merged_anchors, first.clip),
    )


def _header_conflict(bundles: Sequence[EvidenceBundle], number: int, a: int, b: int) -> str:
    def of(window: int) -> bytes:
        return next(h.hash() for h in bundles[window - 1].headers if h.number == number)

    return (
        f"block {number}: header hash {short_hash(of(a))} in window {a}, "
        f"{short_hash(of(b))} in window {b}"
    )


def _anchor_conflict(bundles: Sequence[EvidenceBundle], sequence: int, a: int, b: int) -> str:
    def of(window: int) -> AnchorEvidence:
        return next(x for x in bundles[window - 1].anchors if x.segment.sequence == sequence)

    x, y = of(a), of(b)
    if x.segment != y.segment or (x.tx.block, x.tx.index) != (y.tx.block, y.tx.index):
        return (
            f"segment {sequence}: hash {short_hash(x.segment.hash())} in block {x.tx.block} tx "
            f"{x.tx.index} in window {a}, hash {short_hash(y.segment.hash())} in block "
            f"{y.tx.block} tx {y.tx.index} in window {b}"
        )
    if x.tx != y.tx:
        return f"segment {sequence}: the anchor transaction differs between windows {a} and {b}"
    if x.validation_code != y.validation_code:
        return (
            f"segment {sequence}: validation code {x.validation_code} in window {a}, "
            f"{y.validation_code} in window {b}"
        )
    return f"segment {sequence}: the frame records differ between windows {a} and {b}"


def next_window_start(bundle: EvidenceBundle, window: tuple[int, int]) -> int:
    """Where the evidence window after ``window`` starts: at the capture start of the
    last anchor overlapping ``window``, so that consecutive windows share an anchor (and
    the merged block headers stay contiguous); after ``window``'s start in any case."""
    start, end = window
    inside = [
        a.segment
        for a in bundle.anchors
        if a.segment.capture_start_ms <= end and a.segment.capture_end_ms >= start
    ]
    if inside:
        last = max(inside, key=lambda segment: segment.sequence)
        if last.capture_start_ms > start:
            return last.capture_start_ms
        if last.capture_end_ms > start:
            return min(end, last.capture_end_ms)
    return end
