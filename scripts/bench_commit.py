#!/usr/bin/env python3
"""Micro-benchmark: one peer's validate + commit throughput beside the raw ECDSA verify
rate of ``cryptography``, measured in the same run on the same kind of signatures.

It builds an in-process network (real CAs, LevelDB ledgers) in a temporary directory,
prepares ``--txs`` real endorsed envelopes (one creator signature and two endorsement
signatures each: 3 ECDSA verifications per transaction at commit), has the orderer core
cut them into blocks of ``--block-size``, and times a peer's ``Committer.commit`` over
those blocks (thread-pool parallel stateless validation, MVCC, LevelDB append). Two peers
each do it alone, one after the other; the better time is reported.

The bound a peer could reach if signature verification were the only cost is
``verify_rate / 3`` transactions per second; the ratio of the measured throughput to that
bound is the figure to optimise (goal: >= 0.6). A third peer commits the same blocks
phase by phase (orderer signature, stateless checks, MVCC, ledger append, events) to show
where the time goes. Timings are printed, never asserted.

    .venv/bin/python scripts/bench_commit.py [--txs 2000] [--block-size 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cryptography
from cryptography.hazmat.backends.openssl import backend as openssl_backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from cctvchain.chaincode import ChaincodeStub, Contract, ContractError, contract_function
from cctvchain.codec import decode_message
from cctvchain.crypto import Domain, signed_bytes
from cctvchain.inprocess.network import InProcessNetwork, InProcessPeer
from cctvchain.ledger.block import Block
from cctvchain.ledger.config import BatchConfig
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp import certs
from cctvchain.msp.certref import CertificateResolver, resolve_certificate
from cctvchain.peer.committer import block_event
from cctvchain.peer.validator import BlockValidator, TxVerdict
from cctvchain.tx.messages import Envelope, endorsement_message

CONTRACT = "bench"
VERIFIES_PER_TX = 3  # the creator's envelope signature + two endorsements
GOAL = 0.6


class BenchContract(Contract):
    """Registers a segment hash under a key once: one read and one write per call."""

    NAME = CONTRACT

    @contract_function
    def Register(self, stub: ChaincodeStub, key: str, digest: str) -> None:
        if stub.get_state(key) is not None:
            raise ContractError(f"{key} is already registered", status=409)
        stub.put_state(key, digest.encode())


# -- raw ECDSA ---------------------------------------------------------------------------------

# (public key, DER signature, exact signed bytes): what the validator verifies, minus
# every layer of ours (decoding, low-S check, domain encoding, MSP lookups).
RawSig = tuple[ec.EllipticCurvePublicKey, bytes, bytes]


def _der(signature: bytes) -> bytes:
    return encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )


def raw_signatures(envelopes: Sequence[bytes], resolve: CertificateResolver) -> list[RawSig]:
    """The 3 signatures of every envelope, each with its signer's public key
    (certificate references resolved with ``resolve``, the ledger's registry)."""
    keys: dict[bytes, ec.EllipticCurvePublicKey] = {}

    def key_of(cert: bytes) -> ec.EllipticCurvePublicKey:
        if cert not in keys:
            pem = resolve_certificate(cert, resolve)
            keys[cert] = certs.check_p256_sha256(certs.parse_certificate(pem))
        return keys[cert]

    out: list[RawSig] = []
    for data in envelopes:
        envelope = Envelope.decode(data)
        creator = envelope.proposal.creator
        out.append(
            (
                key_of(creator.cert),
                _der(envelope.signature),
                signed_bytes(Domain.ENVELOPE, envelope.payload),
            )
        )
        transaction = envelope.transaction
        for endorsement in transaction.endorsements:
            message = endorsement_message(transaction.response_payload, endorsement.endorser)
            out.append(
                (
                    key_of(endorsement.endorser.cert),
                    _der(endorsement.signature),
                    signed_bytes(Domain.PROPOSAL_RESPONSE, message),
                )
            )
    return out


def _verify_all(signatures: Sequence[RawSig]) -> int:
    algorithm = ec.ECDSA(hashes.SHA256())
    for key, der, data in signatures:
        key.verify(der, data, algorithm)
    return len(signatures)


def verify_rate(
    signatures: Sequence[RawSig], pool: ThreadPoolExecutor | None, workers: int
) -> float:
    """Verifications per second (best of 5), single thread or split over the pool."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        if pool is None:
            _verify_all(signatures)
        else:
            chunks = [signatures[i::workers] for i in range(workers)]
            sum(pool.map(_verify_all, chunks))
        best = min(best, time.perf_counter() - start)
    return len(signatures) / best


# -- the network and the blocks ------------------------------------------------------------------


@dataclass
class Prepared:
    net: InProcessNetwork
    envelopes: list[bytes]
    blocks: list[Block]
    prepare_s: float
    order_s: float


def prepare(root: Path, txs: int, block_size: int) -> Prepared:
    batch = BatchConfig(
        max_message_count=block_size,
        absolute_max_bytes=64 * 1024 * 1024,
        preferred_max_bytes=64 * 1024 * 1024,
        batch_timeout_ms=1000,
    )
    net = InProcessNetwork(root, {CONTRACT: BenchContract()}, batch=batch)
    client = net.client("CityCCTV", "camera-gateway", "client", role="CRM")
    endorsers = net.endorsing_peers()[:2]  # two endorsements satisfy OutOf(2, ...)
    start = time.perf_counter()
    envelopes = [
        net.prepare(
            client, CONTRACT, "Register", [f"cam-{i % 64:02d}/seg-{i:07d}", f"{i:064x}"], endorsers
        )
        for i in range(txs)
    ]
    prepared = time.perf_counter()
    blocks: list[Block] = []
    for envelope in envelopes:
        blocks += net.broadcast(envelope)
    blocks += net.cut()
    ordered = time.perf_counter()
    return Prepared(net, envelopes, blocks, prepared - start, ordered - prepared)


# -- committing --------------------------------------------------------------------------------


def commit_all(peer: InProcessPeer, blocks: Sequence[Block], now: datetime) -> float:
    """Seconds for ``peer``'s committer to validate and commit every block."""
    start = time.perf_counter()
    for block in blocks:
        peer.committer.commit(block, now)
    elapsed = time.perf_counter() - start
    check_all_valid(peer, blocks)
    return elapsed


def check_all_valid(peer: InProcessPeer, blocks: Sequence[Block]) -> None:
    for block in blocks:
        flags = peer.ledger.get_block(block.number).metadata.tx_flags
        if any(code != TxValidationCode.VALID for code in flags):
            raise SystemExit(f"block {block.number} has invalid transactions: {list(flags)}")


@dataclass
class Phases:
    block_signature: float = 0.0
    stateless: float = 0.0
    mvcc: float = 0.0
    append: float = 0.0
    events: float = 0.0
    per_block: list[dict[str, float]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.block_signature + self.stateless + self.mvcc + self.append + self.events


def commit_by_phase(peer: InProcessPeer, blocks: Sequence[Block], now: datetime) -> Phases:
    """What ``Committer.commit`` does, one phase at a time, on another peer."""
    map_fn = peer.committer.map_fn
    channel = peer.committer.channel
    ledger = peer.ledger
    phases = Phases()
    for block in blocks:
        validator = BlockValidator(channel, map_fn, ledger.certificate)
        t0 = time.perf_counter()
        validator.check_block(block, ledger.height, ledger.head_hash, now)
        t1 = time.perf_counter()
        verdicts = list(
            map_fn(functools.partial(validator.check_transaction, now=now), block.transactions)
        )
        t2 = time.perf_counter()

        def precomputed(
            fn: Callable[[bytes], TxVerdict],
            items: Iterable[bytes],
            done: list[TxVerdict] = verdicts,
        ) -> list[TxVerdict]:
            return done

        verdict = BlockValidator(channel, precomputed, ledger.certificate).validate(
            block, ledger, now
        )
        t3 = time.perf_counter()
        flagged = block.with_flags(verdict.codes)
        ledger.append_block(flagged, verdict.messages)
        t4 = time.perf_counter()
        peer.committer.hub.publish(block_event(flagged, verdict))
        t5 = time.perf_counter()
        timings = {
            "block_signature": t1 - t0,
            "stateless": t2 - t1,
            "mvcc": t3 - t2,
            "append": t4 - t3,
            "events": t5 - t4,
        }
        phases.per_block.append({"transactions": len(block.transactions), **timings})
        phases.block_signature += timings["block_signature"]
        phases.stateless += timings["stateless"]
        phases.mvcc += timings["mvcc"]
        phases.append += timings["append"]
        phases.events += timings["events"]
    check_all_valid(peer, blocks)
    return phases


def stateless_single_thread(peer: InProcessPeer, blocks: Sequence[Block], now: datetime) -> float:
    # Certificate references resolve against the peer's registry, as in a commit.
    validator = BlockValidator(peer.committer.channel, certificates=peer.ledger.certificate)
    start = time.perf_counter()
    for block in blocks:
        for data in block.transactions:
            validator.check_transaction(data, now)
    return time.perf_counter() - start


def decode_single_thread(envelopes: Sequence[bytes]) -> float:
    """Decoding an envelope down to its proposal and response payload (fresh objects)."""
    start = time.perf_counter()
    for data in envelopes:
        message = decode_message(data)
        assert isinstance(message, Envelope)
        _ = message.proposal, message.response_payload
    return time.perf_counter() - start


def _decoded(envelopes: Sequence[bytes]) -> list[Envelope]:
    decoded = [Envelope.decode(data) for data in envelopes]
    for envelope in decoded:
        _ = envelope.proposal, envelope.response_payload
    return decoded


def msp_single_thread(peer: InProcessPeer, envelopes: Sequence[bytes]) -> float:
    """Validating the 3 signers' certificates of every envelope (cached chains)."""
    msps = peer.committer.channel.msps
    resolve = peer.ledger.certificate
    signers: list[tuple[str, bytes, datetime]] = []
    for envelope in _decoded(envelopes):
        proposal = envelope.proposal
        when = datetime.fromtimestamp(proposal.timestamp_ms / 1000, tz=UTC)
        creator = proposal.creator
        signers.append((creator.msp_id, resolve_certificate(creator.cert, resolve), when))
        for endorsement in envelope.transaction.endorsements:
            signer = endorsement.endorser
            signers.append((signer.msp_id, resolve_certificate(signer.cert, resolve), when))
    start = time.perf_counter()
    for msp_id, cert, when in signers:
        msps.validate(msp_id, cert, when)
    return time.perf_counter() - start


def encoding_single_thread(envelopes: Sequence[bytes]) -> float:
    """The canonical encoding the checks do: tx id, proposal hash, signed bytes."""
    decoded = _decoded(envelopes)
    start = time.perf_counter()
    for envelope in decoded:
        proposal = envelope.proposal
        transaction = envelope.transaction
        proposal.tx_id_is_correct()
        _ = envelope.proposal_hash
        signed_bytes(Domain.ENVELOPE, envelope.payload)
        for endorsement in transaction.endorsements:
            message = endorsement_message(transaction.response_payload, endorsement.endorser)
            signed_bytes(Domain.PROPOSAL_RESPONSE, message)
    return time.perf_counter() - start


# -- report ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cryptography": cryptography.__version__,
        "openssl": openssl_backend.openssl_version_text(),
        # Other work on the machine skews every figure: note it beside them.
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--txs", type=int, default=2000, help="transactions (default 2000)")
    parser.add_argument("--block-size", type=int, default=500, help="transactions per block")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="raw-verify pool size"
    )
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.txs < 1 or args.block_size < 1 or args.workers < 1:
        parser.error("--txs, --block-size and --workers must be positive")

    info = machine()
    print("machine")
    for key, value in info.items():
        print(f"  {key:<13} {value}")

    with tempfile.TemporaryDirectory(prefix="bench-commit-", dir=args.dir) as tmp:
        print(f"\npreparing {args.txs} endorsed envelopes (2 endorsements each) ...", flush=True)
        prep = prepare(Path(tmp), args.txs, args.block_size)
        net = prep.net
        try:
            return report(args, info, prep, net)
        finally:
            net.close()


def report(
    args: argparse.Namespace, info: dict[str, Any], prep: Prepared, net: InProcessNetwork
) -> int:
    txs = len(prep.envelopes)
    now = net.clock.now
    sizes = [len(b.transactions) for b in prep.blocks]
    mean_size = sum(len(e) for e in prep.envelopes) / txs
    print(
        f"  prepared in {prep.prepare_s:.2f} s ({txs / prep.prepare_s:,.0f} tx/s: propose, "
        f"2 endorsements, assemble); ordered in {prep.order_s:.2f} s into "
        f"{len(prep.blocks)} blocks {sizes}; mean envelope {mean_size:,.0f} bytes"
    )

    signatures = raw_signatures(prep.envelopes, net.orderer_ledger.certificate)
    _verify_all(signatures[:200])  # warm up
    single = verify_rate(signatures, None, 1)
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        pooled = verify_rate(signatures, pool, args.workers)

    # Two peers each commit every block (best time reported: other load on the machine
    # only ever slows a run down); a third commits them again phase by phase.
    peer_a, peer_b, peer_c = net.peers[0], net.peers[1], net.peers[2]
    commit_runs = [commit_all(peer, prep.blocks, now) for peer in (peer_a, peer_c)]
    commit_s = min(commit_runs)
    phases = commit_by_phase(peer_b, prep.blocks, now)
    stateless_1t = stateless_single_thread(peer_b, prep.blocks, now)
    decode_1t = decode_single_thread(prep.envelopes)
    msp_1t = msp_single_thread(peer_b, prep.envelopes)
    encode_1t = encoding_single_thread(prep.envelopes)

    throughput = txs / commit_s
    bound = pooled / VERIFIES_PER_TX
    bound_1t = single / VERIFIES_PER_TX
    ratio = throughput / bound
    verify_1t = len(signatures) / single  # seconds of pure ECDSA for all txs, one thread

    def row(label: str, seconds: float, of: float | None = None) -> None:
        share = f"{seconds / of:>6.1%}" if of else " " * 6
        print(f"  {label:<40} {seconds:>7.3f} s {share} {seconds / txs * 1e6:>8.1f} us/tx")

    print(f"\nraw ECDSA P-256 verify (cryptography, {len(signatures)} signatures, best of 5)")
    print(f"  {'1 thread':<16}{single:>10,.0f} verifies/s")
    print(f"  {f'{args.workers} threads':<16}{pooled:>10,.0f} verifies/s  ({pooled / single:.2f}x)")

    verdict = "OK" if ratio >= GOAL else "below goal"
    runs = ", ".join(f"{t:.3f}" for t in commit_runs)
    where = f"{peer_a.name} and {peer_c.name}"
    print(f"\nCommitter.commit of {len(prep.blocks)} blocks ({txs} tx), on {where}")
    print(f"  {'time':<16}{commit_s:>10.3f} s    (best of {runs} s)")
    print(f"  {'throughput':<16}{throughput:>10,.0f} tx/s")
    print(f"  {'bound':<16}{bound:>10,.0f} tx/s  ({args.workers}-thread verify rate / 3)")
    print(f"  {'ratio':<16}{ratio:>10.2f}       (goal >= {GOAL}: {verdict})")
    print(f"  {'1-thread bound':<16}{bound_1t:>10,.0f} tx/s  (ratio {throughput / bound_1t:.2f})")

    print(f"\nper phase: peer {peer_b.name} committing the same blocks step by step")
    rows = [
        ("orderer signature (check_block)", phases.block_signature),
        ("stateless checks (commit thread)", phases.stateless),
        ("duplicate tx ids + MVCC", phases.mvcc),
        ("ledger append (files + LevelDB, fsync)", phases.append),
        ("block event", phases.events),
    ]
    for label, seconds in rows:
        row(label, seconds, phases.total)
    row("total", phases.total)

    other = stateless_1t - verify_1t - decode_1t - msp_1t - encode_1t
    print("\nstateless checks on one thread, for comparison")
    row("check_transaction", stateless_1t)
    row("  raw ECDSA (3 verifies)", verify_1t, stateless_1t)
    row("  decoding the envelope", decode_1t, stateless_1t)
    row("  MSP validation of 3 signers (cached)", msp_1t, stateless_1t)
    row("  re-encoding (tx id, hashes, signed)", encode_1t, stateless_1t)
    row("  rest (policy, checks, ...)", other, stateless_1t)
    # The peer's own map (its commit thread) against this bare loop: ~1x unless the peer
    # goes back to a pool.
    print(f"  the peer's stateless phase vs this loop: {stateless_1t / phases.stateless:.2f}x")

    if args.json is not None:
        results = {
            "machine": info,
            "txs": txs,
            "blocks": sizes,
            "verify_rate_1_thread": single,
            "verify_rate_pool": pooled,
            "pool_workers": args.workers,
            "commit_seconds": commit_s,
            "commit_runs_seconds": commit_runs,
            "commit_tx_per_s": throughput,
            "bound_tx_per_s": bound,
            "ratio": ratio,
            "phases": {label: seconds for label, seconds in rows},
            "per_block": phases.per_block,
            "stateless_1_thread_seconds": stateless_1t,
            "decode_1_thread_seconds": decode_1t,
            "msp_1_thread_seconds": msp_1t,
            "encoding_1_thread_seconds": encode_1t,
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
