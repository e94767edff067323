"""Comparing two peers' evidence for the same clip (pure): "trusting no single peer".

``cctvchain verify`` fetches the evidence bundle of a clip from one peer and again from a
peer of another organisation; :func:`compare_bundles` names every place where the two
disagree. Orderer signatures and Merkle proofs already stop a single peer from forging
evidence; the comparison catches a peer that *withholds* it (an anchor left out, a
configuration block skipped) or serves another fork.
"""

from __future__ import annotations

from cctvchain.verify.bundle import EvidenceBundle


def short_hash(data: bytes) -> str:
    """The first 8 bytes of a hash in hex, for messages."""
    return data.hex()[:16] + "…"


def compare_bundles(
    ours: EvidenceBundle,
    theirs: EvidenceBundle,
    a: str,
    b: str,
    span: tuple[int, int] | None = None,
) -> list[str]:
    """Where two peers' bundles for the capture ``span`` disagree (empty: they agree).

    Compared up to the lower of the two ledger heights (the other peer may simply not
    have the newest blocks yet): the genesis block, every block header both carry, the
    configuration blocks, and the anchors (segment hash, block, position). An anchor
    overlapping ``span`` must be served by both; a neighbour segment outside it is
    compared only when both serve it (a peer bundles a neighbour only if it holds the
    neighbour's frame records, which the camera uploads to some peers only).
    """
    diffs: list[str] = []
    if ours.metadata.channel_id != theirs.metadata.channel_id:
        diffs.append(
            f"{a} serves channel {ours.metadata.channel_id!r}, "
            f"{b} channel {theirs.metadata.channel_id!r}"
        )
    genesis_a, genesis_b = ours.genesis.header.hash(), theirs.genesis.header.hash()
    if genesis_a != genesis_b:
        diffs.append(
            f"different genesis blocks: {short_hash(genesis_a)} at {a}, "
            f"{short_hash(genesis_b)} at {b}"
        )
    common = min(ours.metadata.ledger_height, theirs.metadata.ledger_height)

    def headers(bundle: EvidenceBundle) -> dict[int, bytes]:
        found = {bundle.genesis.header.number: bundle.genesis.header.hash()}
        found.update({c.header.number: c.header.hash() for c in bundle.config_updates})
        found.update({h.number: h.hash() for h in bundle.headers})
        return found

    ha, hb = headers(ours), headers(theirs)
    for number in sorted(set(ha) & set(hb)):
        if ha[number] != hb[number]:
            diffs.append(
                f"block {number}: header hash {short_hash(ha[number])} at {a}, "
                f"{short_hash(hb[number])} at {b}"
            )
    ca = {c.header.number for c in ours.config_updates if c.header.number < common}
    cb = {c.header.number for c in theirs.config_updates if c.header.number < common}
    for number in sorted(ca - cb):
        diffs.append(f"configuration block {number} is served by {a}, not by {b}")
    for number in sorted(cb - ca):
        diffs.append(f"configuration block {number} is served by {b}, not by {a}")

    def anchors(bundle: EvidenceBundle) -> dict[int, tuple[bytes, int, int]]:
        return {
            x.segment.sequence: (x.segment.hash(), x.tx.block, x.tx.index) for x in bundle.anchors
        }

    def overlapping(bundle: EvidenceBundle) -> set[int]:
        if span is None:
            return {x.segment.sequence for x in bundle.anchors}
        return {
            x.segment.sequence
            for x in bundle.anchors
            if x.segment.capture_start_ms <= span[1] and x.segment.capture_end_ms >= span[0]
        }

    aa, ab = anchors(ours), anchors(theirs)
    required = overlapping(ours) | overlapping(theirs)
    for first, second, one, other in ((aa, ab, a, b), (ab, aa, b, a)):
        for sequence, (digest, block, index) in sorted(first.items()):
            if block >= common:
                continue
            found = second.get(sequence)
            if found is None and sequence not in required:
                continue  # a neighbour the other peer holds no records of
            if found is None:
                diffs.append(
                    f"segment {sequence} (block {block}) is anchored at {one}, missing at {other}"
                )
            elif found != (digest, block, index) and one == a:
                diffs.append(
                    f"segment {sequence}: hash {short_hash(digest)} in block {block} tx {index} "
                    f"at {one}, hash {short_hash(found[0])} in block {found[1]} tx {found[2]} "
                    f"at {other}"
                )
    return diffs


def anchoring_blocks(bundle: EvidenceBundle) -> list[int]:
    return sorted({a.tx.block for a in bundle.anchors})
