"""The Raft ordering service as three real orderer processes over mutual TLS."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from orderer_cluster import ORDERERS, Cluster, make_cluster

from cctvchain.codec import decode_message
from cctvchain.crypto import Domain, SigningKey
from cctvchain.ledger.block import Block
from cctvchain.ledger.genesis import genesis_config
from cctvchain.msp.testing import InMemoryOrg
from cctvchain.peer.channel import ChannelContext
from cctvchain.peer.validator import BlockValidator
from cctvchain.tx.messages import Envelope


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = make_cluster(tmp_path)
    try:
        for name in ORDERERS:
            made.start(name)
        for name in ORDERERS:
            made.wait_healthy(name)
        yield made
    finally:
        made.stop_all()


def tx_ids(blocks: list[Block]) -> list[str]:
    ids = []
    for block in blocks[1:]:
        for data in block.transactions:
            message = decode_message(data)
            assert isinstance(message, Envelope)
            ids.append(message.tx_id)
    return ids


def wait_for_height(
    cluster: Cluster, names: tuple[str, ...], height: int, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(cluster.status(name)["height"] >= height for name in names):
            return
        time.sleep(0.1)
    raise AssertionError(f"heights {[cluster.status(n)['height'] for n in names]} < {height}")


class Load:
    """Broadcasters in threads: envelopes to random orderers, recording what succeeded."""

    def __init__(self, cluster: Cluster, targets: list[str], threads: int = 3) -> None:
        self.cluster = cluster
        self.targets = targets
        self.succeeded: list[str] = []
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            envelope = self.cluster.envelope(str(rng.random()))
            target = rng.choice(self.targets)
            try:
                status, _ = self.cluster.broadcast(target, envelope, timeout=15)
            except OSError:
                status = 0
            with self._lock:
                if status == 200:
                    self.succeeded.append(Envelope.decode(envelope).tx_id)
                else:
                    self.failed += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def test_leader_kill_loses_nothing_and_the_restarted_node_catches_up(cluster: Cluster) -> None:
    leader = cluster.leader()
    survivors = tuple(name for name in ORDERERS if name != leader)
    with Load(cluster, list(ORDERERS)) as load:
        time.sleep(1.5)
        before_kill = len(load.succeeded)
        killed_at = time.monotonic()
        cluster.kill(leader)
        load.targets = list(survivors)
        new_leader = cluster.leader(among=survivors, timeout=15)
        elected_after = time.monotonic() - killed_at
        time.sleep(2.0)
    assert before_kill > 10
    assert len(load.succeeded) > before_kill + 10, "ordering did not resume after the kill"
    assert new_leader in survivors
    assert elected_after < 10, f"new leader only after {elected_after:.1f} s"

    time.sleep(1.0)  # let the last batch time out and be cut
    height = max(cluster.status(name)["height"] for name in survivors)
    wait_for_height(cluster, survivors, height)
    chains = {name: cluster.blocks(name, 0, height) for name in survivors}
    hashes = {name: [b.hash() for b in blocks] for name, blocks in chains.items()}
    assert hashes[survivors[0]] == hashes[survivors[1]]  # identical block hashes
    ordered = tx_ids(chains[survivors[0]])
    assert len(ordered) == len(set(ordered)), "an envelope was ordered twice"
    missing = set(load.succeeded) - set(ordered)
    assert not missing, f"{len(missing)} acknowledged envelopes are in no block"

    # Each block is signed by the orderer that wrote it and passes a peer's block checks.
    channel = ChannelContext.from_config(genesis_config(chains[survivors[0]][0]))
    validator = BlockValidator(channel)
    previous = chains[survivors[0]][0].hash()
    for block in chains[survivors[0]][1:]:
        validator.check_block(block, block.number, previous, datetime.now(UTC))
        previous = block.hash()

    # The killed leader restarts and catches up to the same head.
    cluster.start(leader)
    cluster.wait_healthy(leader)
    wait_for_height(cluster, (leader,), height, timeout=30)
    assert cluster.blocks(leader, 0, height)[-1].hash() == hashes[survivors[0]][-1]


def test_far_behind_orderer_catches_up_by_block_transfer(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path, batch_timeout_ms=50, max_count=5)
    # Compact the Raft log often so that a stopped orderer falls behind the snapshot.
    with cluster.config_path.open("a") as handle:
        handle.write("\n[raft]\nsnapshot_interval = 20\n")
    try:
        for name in ORDERERS:
            cluster.start(name)
        for name in ORDERERS:
            cluster.wait_healthy(name)
        leader = cluster.leader()
        lagging = next(name for name in ORDERERS if name != leader)
        cluster.kill(lagging, signal.SIGTERM)
        for i in range(60):
            status, body = cluster.broadcast(leader, cluster.envelope(f"while away {i}"))
            assert status == 200, body
        time.sleep(0.5)
        height = cluster.status(leader)["height"]
        cluster.start(lagging)
        cluster.wait_healthy(lagging)
        wait_for_height(cluster, (lagging,), height)
        assert (
            cluster.blocks(lagging, 0, height)[-1].hash()
            == cluster.blocks(leader, 0, height)[-1].hash()
        )
        assert "catching up by block transfer" in cluster.log(lagging)
    finally:
        cluster.stop_all()


def test_stopped_follower_rejoins_without_deposing_the_leader(cluster: Cluster) -> None:
    leader = cluster.leader()
    term = cluster.status(leader)["term"]
    follower = next(name for name in ORDERERS if name != leader)
    cluster.kill(follower, signal.SIGSTOP)
    time.sleep(3.0)  # well past the election timeout (1-2 s)
    status, _ = cluster.broadcast(leader, cluster.envelope("during the stop"))
    assert status == 200  # the remaining majority keeps ordering
    cluster.kill(follower, signal.SIGCONT)
    time.sleep(2.0)
    assert cluster.status(leader)["role"] == "leader"
    assert cluster.status(leader)["term"] == term  # pre-vote: no election was forced
    height = cluster.status(leader)["height"]
    wait_for_height(cluster, (follower,), height)


def test_bad_input_is_refused_precisely_and_the_node_stays_up(cluster: Cluster) -> None:
    target = ORDERERS[0]
    cluster.leader()

    def refused(envelope: bytes) -> tuple[int, str]:
        status, body = cluster.broadcast(target, envelope)
        return status, json.loads(body)["code"]

    assert refused(b"\x00garbage") == (400, "malformed_envelope")
    assert refused(b"") == (400, "malformed_envelope")
    assert refused(cluster.envelope("x" * 70_000))[0] == 413  # over AbsoluteMaxBytes

    good = Envelope.decode(cluster.envelope("unsigned"))
    unsigned = Envelope(good.payload, bytes(64)).encode()
    assert refused(unsigned) == (403, "forbidden")

    stranger = InMemoryOrg("Stranger", "CityCCTV", datetime.now(UTC)).new_identity("eve", "client")
    foreign = Envelope(good.payload, stranger.key.sign(Domain.ENVELOPE, good.payload))
    assert refused(foreign.encode()) == (403, "forbidden")
    forged = Envelope(good.payload, SigningKey.generate().sign(Domain.ENVELOPE, good.payload))
    assert refused(forged.encode()) == (403, "forbidden")

    envelope = cluster.envelope("once")
    assert cluster.broadcast(target, envelope)[0] == 200
    assert refused(envelope) == (409, "replayed")
    time.sleep(0.6)  # once in a block, still a replay
    assert refused(envelope) == (409, "replayed")

    # Raft messages from a client identity are refused.
    request = urllib.request.Request(cluster.url(target, "/raft"), data=b"\x80", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, context=cluster.ssl_context, timeout=5)
    assert info.value.code == 403
    assert cluster.status(target)["halted"] is None
    assert cluster.broadcast(target, cluster.envelope("still fine"))[0] == 200
