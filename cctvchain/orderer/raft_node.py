"""One Raft orderer: the Raft core, its durable log, the ordering state machine, the ledger.

Everything that touches the Raft core runs on the event loop; disk work (fsync of the
Raft log, block appends) runs in a worker thread while the loop keeps ticking. The order
of each Ready is etcd's: persist, then send, then apply, then advance.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cctvchain.ledger.block import Block
from cctvchain.ledger.config import ChannelConfig
from cctvchain.ledger.genesis import make_genesis_block
from cctvchain.ledger.store import Ledger
from cctvchain.orderer.wal import DurableRaftStorage
from cctvchain.ordering.orderer import OrdererSigner
from cctvchain.ordering.raft import (
    EntryKind,
    NotLeader,
    RaftConfig,
    RaftMessage,
    RaftNode,
    Ready,
    Role,
    SnapshotStatus,
    save_ready,
)
from cctvchain.ordering.replicated import BlockAssembler, EntryType, OrdererEntry, OrderingSnapshot
from cctvchain.peer.channel import ChannelContext
from cctvchain.peer.validator import BlockValidator

# Fetches the blocks [start, stop) from another orderer (for snapshot catch-up).
BlockFetcher = Callable[[int, int], Awaitable[list[Block]]]
Sender = Callable[[RaftMessage], None]


class OrdererHalted(RuntimeError):
    """The Raft log or the ledger disagrees with what was committed: stop the node."""


class RaftOrderer:
    def __init__(
        self,
        *,
        name: str,
        peers: Sequence[str],
        directory: Path,
        genesis_config: ChannelConfig,
        signer: OrdererSigner,
        log: logging.Logger,
        election_tick: int = 10,
        snapshot_interval: int = 256,
    ) -> None:
        self.name = name
        self.log = log
        self.snapshot_interval = snapshot_interval
        self.ledger = Ledger.open(directory / "ledger", create=True)
        if self.ledger.height == 0:
            self.ledger.append_block(make_genesis_block(genesis_config))
        self.storage = DurableRaftStorage(directory / "raft")
        state = self.storage.load()
        self.assembler = BlockAssembler(
            channel=ChannelContext.from_config(self.ledger.channel_config()),
            signer=signer,
            height=1,
            head_hash=self.ledger.get_block_hash(0),
        )
        self._restored_snapshot: OrderingSnapshot | None = None
        if state.snapshot.index:
            self._restored_snapshot = OrderingSnapshot.decode(state.snapshot.data)
        self.raft = RaftNode(
            RaftConfig(node_id=name, peers=tuple(peers), election_tick=election_tick),
            state,
            random.Random(),
            applied=state.snapshot.index,
        )
        self.send: Sender = lambda message: None
        self.fetch_blocks: BlockFetcher | None = None
        self.block_added = asyncio.Condition()
        self._waiters: dict[int, tuple[asyncio.Future[bool], bytes]] = {}
        self._draining = False
        self._ttc_proposed_for = -1
        self.halted: str | None = None
        # The last Raft index whose effect is in the assembler (and so in the ledger).
        self._applied = state.snapshot.index

    # -- start-up -----------------------------------------------------------------------

    async def restore(self) -> None:
        """Bring the ledger up to the stored snapshot (a crash may have cut it short)."""
        snapshot = self._restored_snapshot
        if snapshot is None:
            return
        if self.ledger.height < snapshot.height:
            await self._catch_up(snapshot.height)
        self.assembler.restore(snapshot)

    # -- inputs --------------------------------------------------------------------------

    def tick(self) -> None:
        self.raft.tick()
        self.kick()

    def step(self, message: RaftMessage) -> None:
        self.raft.step(message)
        self.kick()

    def report_snapshot(self, peer: str, delivered: bool) -> None:
        self.raft.report_snapshot(
            peer, SnapshotStatus.FINISHED if delivered else SnapshotStatus.FAILED
        )
        self.kick()

    async def propose_envelope(self, envelope: bytes, now_ms: int, timeout: float) -> bool:
        """Replicate an admitted envelope; True once its entry is committed and applied."""
        data = OrdererEntry(EntryType.ENVELOPE, envelope, 0, now_ms).encode()
        index = self.raft.propose(data)  # NotLeader propagates to the caller
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters[index] = (future, data)
        self.kick()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            self._waiters.pop(index, None)

    def maybe_time_to_cut(self, now_ms: int) -> None:
        """Leader only: propose cutting the pending batch once its timeout has passed."""
        since = self.assembler.pending_since_ms
        if self.raft.role != Role.LEADER or since is None:
            return
        timeout = self.assembler.channel.config.batch.batch_timeout_ms
        block = self.assembler.height
        if now_ms - since < timeout or self._ttc_proposed_for == block:
            return
        try:
            self.raft.propose(OrdererEntry(EntryType.TIME_TO_CUT, b"", block, now_ms).encode())
        except NotLeader:
            return
        self._ttc_proposed_for = block
        self.kick()

    # -- the Ready loop ------------------------------------------------------------------

    def kick(self) -> None:
        if not self._draining and self.halted is None:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.halted is None and (ready := self.raft.ready()) is not None:
                await self._handle(ready)
        except Exception as exc:  # keep the process alive to answer health checks
            self.halted = f"{type(exc).__name__}: {exc}"
            self.log.critical("ordering halted: %s", self.halted, exc_info=True)
        finally:
            self._draining = False

    async def _handle(self, ready: Ready) -> None:
        if ready.soft_state is not None:
            self.log.info(
                "raft: %s in term %d (leader %s)",
                ready.soft_state.role.value,
                self.raft.term,
                ready.soft_state.leader_id or "unknown",
            )
        if ready.must_sync:
            await asyncio.to_thread(save_ready, self.storage, ready)
        for message in ready.messages:
            self.send(message)
        if ready.snapshot is not None and ready.snapshot.index > self._applied:
            # From the leader (a local compaction is never ahead of what we applied).
            snapshot = OrderingSnapshot.decode(ready.snapshot.data)
            if self.ledger.height < snapshot.height:
                self.log.info(
                    "catching up by block transfer to height %d (snapshot at raft index %d)",
                    snapshot.height,
                    ready.snapshot.index,
                )
                await self._catch_up(snapshot.height)
            self.assembler.restore(snapshot)
            self._applied = ready.snapshot.index
        blocks: list[Block] = []
        for entry in ready.committed_entries:
            if entry.index <= self._applied:
                continue  # covered by the snapshot just restored
            self._applied = entry.index
            if entry.kind == EntryKind.NORMAL:
                blocks.extend(self.assembler.apply(entry.data))
            waiter = self._waiters.get(entry.index)
            if waiter is not None and not waiter[0].done():
                waiter[0].set_result(entry.kind == EntryKind.NORMAL and entry.data == waiter[1])
        if blocks:
            await asyncio.to_thread(self._write_blocks, blocks)
            async with self.block_added:
                self.block_added.notify_all()
        self.raft.advance(ready)
        if self.raft.applied_index - self.raft.snapshot.index >= self.snapshot_interval:
            self.raft.compact(self.raft.applied_index, self.assembler.snapshot().encode())

    def _write_blocks(self, blocks: Sequence[Block]) -> None:
        for block in blocks:
            if block.number < self.ledger.height:
                # Re-derived while replaying the log after a restart: must be identical.
                if self.ledger.get_block_hash(block.number) != block.hash():
                    raise OrdererHalted(
                        f"block {block.number} re-derived from the Raft log differs from "
                        "the ledger's"
                    )
                continue
            self.ledger.append_block(block)
            self.log.info(
                "block %d: %d envelope(s), hash %s",
                block.number,
                len(block.transactions),
                block.hash().hex()[:16],
            )

    async def _catch_up(self, height: int) -> None:
        if self.fetch_blocks is None:
            raise OrdererHalted("cannot catch up: no other orderer to fetch blocks from")
        while self.ledger.height < height:
            blocks = await self.fetch_blocks(self.ledger.height, height)
            if not blocks:
                await asyncio.sleep(0.5)
                continue
            await asyncio.to_thread(self._append_fetched, blocks)

    def _append_fetched(self, blocks: Sequence[Block]) -> None:
        validator_channel = ChannelContext.from_config(self.ledger.channel_config())
        for block in blocks:
            if block.number != self.ledger.height:
                continue
            BlockValidator(validator_channel).check_block(
                block, self.ledger.height, self.ledger.head_hash, datetime.now(UTC)
            )
            self.ledger.append_block(block)
            validator_channel = ChannelContext.from_config(self.ledger.channel_config())

    def close(self) -> None:
        for future, _ in self._waiters.values():
            if not future.done():
                future.set_result(False)
        self.storage.close()
        self.ledger.close()
