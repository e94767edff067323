#!/usr/bin/env python3
"""Benchmark: the bytes a camera adds to the ledger per hour, at the normal and the ``all``
policy (goal: at most 1 MB per camera-hour at normal, PRODUCT.md section 3).

Nothing here is computed from sizes known in advance: real segments are anchored through
a real network and the ledger's growth is measured.

* Debian's ffmpeg generates a clip (``testsrc2``, 25 fps, one keyframe a second) of
  ``--segments`` + 1 segments of ``--segment-s`` seconds; the media shell decodes it
  once and the real :class:`~cctvchain.ingest.segment.Segmenter` cuts it for two cameras,
  one registered with the normal policy (1 perceptual fingerprint a second), one with
  ``all`` (every frame): real digests, real perceptual fingerprints, real Merkle roots.
* An in-process network (``scripts/anchored_camera.py``: three organisations with their
  CAs and X.509 certificates, a LevelDB ledger per peer, the orderer, the CCTV contract
  and ACL rules) registers and approves both cameras; each camera's own identity anchors
  its segments (``AnchorSegment``: proposal, endorsement by two organisations' peers as
  the gateway gathers them, ordering, validation and commit on every peer).
* The first segment of each camera is anchored before measuring (a camera's first
  anchor may carry one-off bytes: its anchor head, a certificate later referenced by
  hash); then ``--segments`` segments per policy are anchored and a peer's ledger is
  measured before and after: the block files' bytes (as stored: each block's framing,
  header, transactions, orderer signature, validation flags, compressed as the ledger
  stores them; the saving is shown on its own line) and the LevelDB index's
  logical growth (every key and value added or grown: world state, history, tx-id and
  block indexes), read back with :meth:`~cctvchain.ledger.store.Ledger.dump_index`.
  The LevelDB directory's growth on disk (its write-ahead log until compaction) is shown
  beside it.
* Each anchoring transaction is taken apart (segment argument, written values,
  identities, signatures, the contract's answer and events, the rest) and the block
  overhead is what the block stores beyond its transactions.

Then the same on the default cluster (``--cluster``, default on; ``configs/local.toml`` on
free loopback ports, every node its own process with mutual TLS, the cameras and people
enrolled at CityCCTV's CA, every transaction through a CityCCTV peer's gateway): the
cluster is stopped before and after each policy's anchors so that the peer's LevelDB can
be read (one process at a time), and started again. Its figures are the headline; if it
fails, the in-process figures stand and the failure is reported.

Per camera-hour = bytes per segment x segments per hour (3600 s / ``--segment-s``).
A camera alone on the channel gets one block per segment (10 s apart, the batch timeout
is 250 ms), as measured here; cameras sharing blocks share the block overhead, so the
figure without it is given too. Every peer (and every orderer) stores its own copy.

    .venv/bin/python scripts/bench_ledger.py [--segments 6] [--segment-s 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from anchored_camera import (
    POLICIES,
    CameraNetwork,
    directory_bytes,
    make_clip,
    referenced,
    segment_clip,
)
from bench_cluster import User, load_user, terminate_as_interrupt, write_config

from cctvchain.ingest.segment import SealedSegment
from cctvchain.ledger import keys
from cctvchain.ledger.block import Block
from cctvchain.ledger.blockfile import encode_frame
from cctvchain.ledger.store import Ledger
from cctvchain.ledger.stored import store_block_bytes
from cctvchain.network.config import load_network_config
from cctvchain.network.material import enroll_identity
from cctvchain.node import tls
from cctvchain.peernode.gateway_client import Gateway
from cctvchain.supervisor.network import NetworkSupervisor
from cctvchain.tx.messages import Envelope

NETWORKS = {
    "in-process": "in-process network (3 organisations with a peer each, 1 orderer, one "
    "process; 2 endorsements per transaction as the gateway gathers them)",
    "cluster": "the default cluster, configs/local.toml (3 organisations, 3 Raft orderers, "
    "4 peers, every node its own process; anchored through CityCCTV's first peer's gateway)",
}
CITY = "CityCCTV"
GOAL_BYTES = 1_000_000  # 1 MB per camera-hour at the normal policy
HOUR_MS = 3_600_000
FAMILIES = {
    keys.STATE_PREFIX: "world state",
    keys.HISTORY_PREFIX: "history index",
    keys.TX_PREFIX: "tx-id index",
    keys.BLOCK_NUMBER_PREFIX: "block-number index",
    keys.BLOCK_HASH_PREFIX: "block-hash index",
    keys.CERTIFICATE_PREFIX: "certificate registry",
}


def family(key: bytes) -> str:
    if key == keys.SAVEPOINT_KEY:
        return "savepoint"
    return FAMILIES.get(key[:1], "other")


@dataclass(frozen=True)
class Snapshot:
    block_bytes: int  # the block files' sizes
    index_disk_bytes: int  # the LevelDB directory's files
    index: dict[bytes, bytes]  # every key and value

    @classmethod
    def of(cls, ledger: Ledger) -> Snapshot:
        return cls(
            directory_bytes(ledger.path / "blocks"),
            directory_bytes(ledger.path / "index"),
            ledger.dump_index(),
        )


def key_type(key: str) -> str:
    """A written key's kind: a composite key's object type (``anchor``, ``anchor~head``…)."""
    if key.startswith("\x00"):
        return key.split("\x00")[1]
    return key


def written_by_type(raw: bytes) -> dict[str, int]:
    """Bytes of the values an anchoring transaction writes, by key type."""
    out: dict[str, int] = {}
    for ns in Envelope.decode(raw).response_payload.results.namespaces:
        for w in ns.writes:
            out[key_type(w.key)] = out.get(key_type(w.key), 0) + len(w.value)
    return out


def index_growth(before: dict[bytes, bytes], after: dict[bytes, bytes]) -> dict[str, int]:
    """Logical bytes (key + value) added to the index, by key family; a value that
    changed counts by how much it grew (the anchor head is rewritten, not added)."""
    grown: dict[str, int] = {}
    for key, value in after.items():
        old = before.get(key)
        delta = len(key) + len(value) if old is None else len(value) - len(old)
        if delta:
            grown[family(key)] = grown.get(family(key), 0) + delta
    for key, value in before.items():
        if key not in after:
            grown[family(key)] = grown.get(family(key), 0) - len(key) - len(value)
    return grown


def transaction_parts(raw: bytes) -> dict[str, int]:
    """An anchoring envelope's bytes by part (the parts sum to the envelope's size)."""
    envelope = Envelope.decode(raw)
    proposal = envelope.proposal
    transaction = envelope.transaction
    response = envelope.response_payload
    endorsements = transaction.endorsements
    parts = {
        "proposal arguments (the segment as sent)": sum(len(a.encode()) for a in proposal.args),
        "written values (the contract's state writes)": sum(
            len(w.value) for ns in response.results.namespaces for w in ns.writes
        ),
        "creator identity": len(proposal.creator.encode()),
        f"endorser identities ({len(endorsements)})": sum(
            len(e.endorser.encode()) for e in endorsements
        ),
        f"signatures (envelope + {len(endorsements)} endorsements)": len(envelope.signature)
        + sum(len(e.signature) for e in endorsements),
        "contract answer and events": len(response.response.encode())
        + sum(len(e.encode()) for e in response.events),
    }
    # What is left, located by the enclosing messages' sizes (a nested message's bytes
    # are counted by its own encoding, so the framing lands in the last part).
    args = parts["proposal arguments (the segment as sent)"]
    creator = len(proposal.creator.encode())
    parts["proposal's other fields (channel, contract, function, nonce, time, tx id)"] = (
        len(transaction.proposal) - args - creator
    )
    results = len(response.results.encode())
    written = parts["written values (the contract's state writes)"]
    parts["read/write set keys and read versions"] = results - written
    parts["response payload's other fields (proposal hash, contract)"] = (
        len(transaction.response_payload) - results - parts["contract answer and events"]
    )
    parts["field names and framing of the envelope, payload and endorsements"] = len(raw) - sum(
        parts.values()
    )
    return parts


@dataclass
class Measured:
    policy: str
    segments: list[SealedSegment]
    envelopes: list[bytes]  # the anchoring transactions as ordered
    blocks: list[Block]  # the blocks holding them, as the peer stored them
    before: Snapshot
    after: Snapshot


def figures(m: Measured, segment_ms: int) -> dict[str, Any]:
    n = len(m.segments)
    per_hour = HOUR_MS / segment_ms
    block_growth = m.after.block_bytes - m.before.block_bytes
    index = index_growth(m.before.index, m.after.index)
    index_total = sum(index.values())
    # The blocks' frames as stored (compressed) and as they would be uncompressed.
    frames = sum(len(encode_frame(store_block_bytes(b.encode()))) for b in m.blocks)
    canonical_frames = sum(len(encode_frame(b.encode())) for b in m.blocks)
    tx_bytes = sum(len(e) for e in m.envelopes)
    parts: dict[str, float] = {}
    written: dict[str, float] = {}
    for raw in m.envelopes:
        for label, size in transaction_parts(raw).items():
            parts[label] = parts.get(label, 0) + size / n
        for kind, size in written_by_type(raw).items():
            written[kind] = written.get(kind, 0) + size / n
    per_segment = (block_growth + index_total) / n
    # Before compression: what a block holds beyond its transactions. Compression then
    # takes its share off the whole frame (block_compression_bytes, negative).
    block_overhead = (canonical_frames - tx_bytes) / n
    compression = (block_growth - canonical_frames) / n
    # Blocks shared by many cameras: the overhead goes, compressed as the rest is.
    stored_overhead = block_overhead * block_growth / canonical_frames if canonical_frames else 0
    records = sum(len(r.encode()) for s in m.segments for r in s.records) / n
    segment_bytes = sum(len(s.segment.encode()) for s in m.segments) / n
    return {
        "policy": m.policy,
        "segments": n,
        "segment_s": segment_ms / 1000,
        "frames_per_segment": sum(s.segment.frame_count for s in m.segments) / n,
        "perceptual_per_segment": sum(
            r.perceptual is not None for s in m.segments for r in s.records
        )
        / n,
        "txs_per_block": n / len(m.blocks),
        "segment_bytes": segment_bytes,
        "transaction_bytes": tx_bytes / n,
        "transaction_parts": parts,
        "written_values_by_key_type": written,
        "block_overhead_bytes": block_overhead,
        "block_compression_bytes": compression,
        "block_file_bytes": block_growth / n,
        # The block files grew by exactly the anchoring blocks' frames: nothing else written.
        "only_anchor_blocks": frames == block_growth,
        "index_bytes": index_total / n,
        "index_parts": {k: v / n for k, v in sorted(index.items(), key=lambda kv: -kv[1])},
        "index_disk_bytes": (m.after.index_disk_bytes - m.before.index_disk_bytes) / n,
        "bytes_per_segment": per_segment,
        "bytes_per_camera_hour": per_segment * per_hour,
        "bytes_per_camera_hour_shared_blocks": (per_segment - stored_overhead) * per_hour,
        "block_files_per_camera_hour": block_growth / n * per_hour,
        "offchain_record_bytes_per_segment": records,
    }


# -- the in-process network ------------------------------------------------------------------


def run_inprocess(
    directory: Path, clip: Path, cameras: dict[str, str], segments: int, segment_ms: int
) -> dict[str, Any]:
    world = CameraNetwork.create(directory / "net")
    try:
        for camera, policy in cameras.items():
            world.add_camera(camera, policy)
        # Capture starts on a segment boundary a little before the network's clock.
        seconds_ms = (segments + 1) * segment_ms
        origin = (world.net.clock.now_ms - seconds_ms - 60_000) // segment_ms * segment_ms
        sealed = segment_clip(
            clip,
            {camera: POLICIES[policy] for camera, policy in cameras.items()},
            origin,
            segment_ms,
        )
        for camera in cameras:
            world.anchor(camera, sealed[camera][0])  # the first anchor: not measured
        ledger = world.net.peers[0].ledger
        results: dict[str, Any] = {}
        for camera, policy in cameras.items():
            measured = sealed[camera][1 : segments + 1]
            before = Snapshot.of(ledger)
            committed = [world.anchor(camera, s)[1] for s in measured]
            after = Snapshot.of(ledger)
            blocks = [ledger.get_block(b) for b in sorted({c.event.block for c in committed})]
            envelopes = [c.envelope for c in committed]
            m = Measured(policy, measured, envelopes, blocks, before, after)
            results[policy] = figures(m, segment_ms)
        return results
    finally:
        world.close()


# -- the default cluster ---------------------------------------------------------------------


def snapshot_at(path: Path) -> Snapshot:
    with Ledger.open(path) as ledger:
        return Snapshot.of(ledger)


def run_cluster(
    directory: Path, clip: Path, cameras: dict[str, str], segments: int, segment_ms: int
) -> dict[str, Any]:
    """The same on ``configs/local.toml`` (every node its own process, real TLS, the
    gateway gathering endorsements): the cluster is stopped to read a peer's ledger
    before and after each policy's anchors (LevelDB is one process's at a time)."""
    config_path = write_config(directory)
    config = load_network_config(config_path)
    supervisor = NetworkSupervisor(
        config, config_path, err=lambda line: print(line, file=sys.stderr)
    )
    material = supervisor.ensure_material()
    now = datetime.now(UTC)

    def enrolled(name: str, id_type: str, attributes: dict[str, str]) -> User:
        wallet = enroll_identity(config, CITY, name, id_type, attributes, now=now)
        return load_user(config, wallet, CITY)

    admin = load_user(config, material.admin_wallets[CITY], CITY)
    operator = enrolled("bench-operator", "client", {"role": "Operator"})
    manager = enrolled("bench-manager", "client", {"role": "CRM"})
    identities = {camera: enrolled(f"cam-{camera.lower()}", "camera", {}) for camera in cameras}
    peer = next(p for p in config.peers if p.org == CITY)
    url = f"https://{peer.host}:{peer.port}"
    ledger_path = material.node_dirs[peer.name] / "ledger"
    channel = material.channel_config()
    contexts: dict[str, Any] = {}

    async def submit(user: User, function: str, *args: str) -> tuple[int, str]:
        if user.name not in contexts:
            contexts[user.name] = tls.node_client_context(user.wallet, channel)
        async with Gateway(url, contexts[user.name], channel_id="cctv") as gateway:
            result = await gateway.submit(user.identity, "cctv", function, list(args))
        return result.block, result.tx_id

    def anchor(camera: str, sealed: SealedSegment) -> tuple[int, str]:
        segment_b64 = base64.b64encode(sealed.segment.encode()).decode("ascii")
        placed = asyncio.run(submit(identities[camera], "AnchorSegment", segment_b64))
        # As the frame extractor does: once a block carried the camera's certificate, its
        # transactions name it by reference.
        user = identities[camera]
        identities[camera] = replace(user, identity=referenced(user.identity))
        return placed

    def setup() -> None:
        for pid, role, user in (("OP-1", "Operator", operator), ("CRM-1", "CRM", manager)):
            person = person_json(pid, role, user.name)
            asyncio.run(submit(admin, "AddParticipant", json.dumps(person)))
        for camera, policy in cameras.items():
            asyncio.run(submit(operator, "RequestCamera", json.dumps(camera_json(camera, policy))))
            asyncio.run(submit(manager, "Approve", camera, identities[camera].name))

    def up() -> None:
        started = time.monotonic()
        supervisor.up()
        print(f"  cluster up in {time.monotonic() - started:.1f} s", flush=True)

    try:
        up()
        setup()
        # Capture times near the network's clock (real time): the contract refuses a
        # capture end more than 2 minutes ahead of the transaction's time.
        seconds_ms = (segments + 1) * segment_ms
        origin = (int(time.time() * 1000) - seconds_ms - 60_000) // segment_ms * segment_ms
        sealed = segment_clip(
            clip,
            {camera: POLICIES[policy] for camera, policy in cameras.items()},
            origin,
            segment_ms,
        )
        for camera in cameras:
            anchor(camera, sealed[camera][0])  # the first anchor: not measured
        supervisor.down()
        spans: dict[str, tuple[Snapshot, Snapshot, list[tuple[int, str]]]] = {}
        for camera, policy in cameras.items():
            before = snapshot_at(ledger_path)
            up()
            placed = [anchor(camera, s) for s in sealed[camera][1 : segments + 1]]
            supervisor.down()
            spans[policy] = (before, snapshot_at(ledger_path), placed)
    finally:
        supervisor.down()
    results: dict[str, Any] = {}
    with Ledger.open(ledger_path) as ledger:
        for (camera, policy), (before, after, placed) in zip(
            cameras.items(), spans.values(), strict=True
        ):
            blocks = [ledger.get_block(b) for b in sorted({b for b, _ in placed})]
            by_id = {Envelope.decode(raw).tx_id: raw for b in blocks for raw in b.data.transactions}
            envelopes = [by_id[tx_id] for _, tx_id in placed]
            measured = sealed[camera][1 : segments + 1]
            m = Measured(policy, measured, envelopes, blocks, before, after)
            results[policy] = figures(m, segment_ms)
    return results


def person_json(pid: str, role: str, identity: str) -> dict[str, Any]:
    return {
        "id": pid,
        "personId": f"person-{pid}",
        "name": f"bench {pid}",
        "department": "Bench",
        "age": 40,
        "gender": "female",
        "role": role,
        "identity": identity,
        "controlRoom": "CR-B",
    }


def camera_json(camera: str, policy: str) -> dict[str, Any]:
    return {
        "id": camera,
        "ipAddress": "10.0.0.7",
        "location": "Bench street",
        "model": "Axis P1448-LE",
        "policy": policy,
    }


def show(f: dict[str, Any]) -> None:
    kb = 1000.0
    print(
        f"\npolicy {f['policy']}: {f['segments']} segments of {f['segment_s']:g} s "
        f"({f['frames_per_segment']:.0f} frames, {f['perceptual_per_segment']:.0f} perceptual "
        f"fingerprints each), {f['txs_per_block']:.0f} tx per block"
    )
    print(f"  {'segment (as the camera encodes it)':<64}{f['segment_bytes']:>9.0f} B")
    print(f"  {'anchoring transaction':<64}{f['transaction_bytes']:>9.0f} B")
    for label, size in f["transaction_parts"].items():
        print(f"    {label:<62}{size:>9.0f} B")
    kinds = ", ".join(f"{k} {v:.0f} B" for k, v in f["written_values_by_key_type"].items())
    print(f"      (written values by key type: {kinds})")
    print(
        f"  {'block overhead (header, orderer signature, flags, framing)':<64}"
        f"{f['block_overhead_bytes']:>9.0f} B"
    )
    if "block_compression_bytes" in f:
        print(
            f"  {'compression in the block files (zlib, see ledger/stored.py)':<64}"
            f"{f['block_compression_bytes']:>9.0f} B"
        )
    print(f"  {'= block files':<64}{f['block_file_bytes']:>9.0f} B")
    print(f"  {'LevelDB index, logical (keys + values)':<64}{f['index_bytes']:>9.0f} B")
    for label, size in f["index_parts"].items():
        print(f"    {label:<62}{size:>9.0f} B")
    print(f"    {'(on disk: the directory grew by)':<62}{f['index_disk_bytes']:>9.0f} B")
    print(f"  {'per segment':<64}{f['bytes_per_segment']:>9.0f} B")
    verdict = "met" if f["bytes_per_camera_hour"] <= GOAL_BYTES else "NOT met"
    print(
        f"  per camera-hour: {f['bytes_per_camera_hour'] / kb:,.0f} kB "
        f"({f['bytes_per_camera_hour_shared_blocks'] / kb:,.0f} kB with blocks shared by many "
        f"cameras); goal <= {GOAL_BYTES / kb:,.0f} kB at normal: "
        + (verdict if f["policy"] == "normal" else "(normal only)")
    )
    print(
        "  off the ledger, at the peers: frame records "
        f"{f['offchain_record_bytes_per_segment']:.0f} B per segment"
    )


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--segments", type=int, default=6, help="measured segments (6)")
    parser.add_argument("--segment-s", type=float, default=10.0, help="segment length (10 s)")
    parser.add_argument(
        "--cluster",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure on the default cluster (default: yes)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.segments < 1 or args.segment_s <= 0:
        parser.error("--segments and --segment-s must be positive")
    info = machine()
    segment_ms = int(args.segment_s * 1000)
    started = time.monotonic()
    cameras = {f"BENCH-{policy.upper()}": policy for policy in ("normal", "all")}
    networks: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        directory = Path(tmp)
        seconds = (args.segments + 1) * args.segment_s
        print(f"generating a {seconds:g} s 640x360 H.264 clip ...", flush=True)
        clip = make_clip(directory / "clip.mp4", seconds, size="640x360")
        print(f"\n== {NETWORKS['in-process']}", flush=True)
        networks["in-process"] = run_inprocess(
            directory / "in-process", clip, cameras, args.segments, segment_ms
        )
        for figures_ in networks["in-process"].values():
            show(figures_)
        if args.cluster:
            print(f"\n== {NETWORKS['cluster']}", flush=True)
            (directory / "cluster").mkdir()
            try:
                with terminate_as_interrupt():
                    networks["cluster"] = run_cluster(
                        directory / "cluster", clip, cameras, args.segments, segment_ms
                    )
            except KeyboardInterrupt:
                print("\ninterrupted; the cluster was stopped", file=sys.stderr)
                return 130
            except Exception as exc:  # the in-process figures stand on their own
                errors["cluster"] = f"{type(exc).__name__}: {exc}"
                print(f"the cluster run failed: {errors['cluster']}", file=sys.stderr)
            for figures_ in networks.get("cluster", {}).values():
                show(figures_)
    # The headline: the default cluster's figures if it ran, else the in-process ones.
    headline = "cluster" if "cluster" in networks else "in-process"
    results = networks[headline]
    normal = results["normal"]["bytes_per_camera_hour"]
    output = {
        "machine": info,
        "network": NETWORKS[headline],
        "policies": results,
        "networks": {
            name: {"network": NETWORKS[name], "policies": r} for name, r in networks.items()
        },
        "errors": errors,
        "bytes_per_camera_hour": {p: r["bytes_per_camera_hour"] for p, r in results.items()},
        "goal_bytes_per_camera_hour_normal": GOAL_BYTES,
        "ratio": normal / GOAL_BYTES,
        "seconds": time.monotonic() - started,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(output, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
