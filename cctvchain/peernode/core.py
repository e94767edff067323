"""The peer's state and its background work: ledger, committer, endorser, deliver loop.

:class:`PeerCore` owns

* the ledger in ``<node dir>/ledger`` (created from the network's genesis block when
  empty; a ledger made from another genesis block is refused at start);
* the :class:`~cctvchain.peer.committer.Committer` (stateless checks one after the
  other, commits one block at a time in its own thread), its :class:`EventHub`, and the
  :class:`~cctvchain.peer.endorser.Endorser` of the ``cctv`` contract over the
  committer's channel view;
* the **deliver loop**: ``GET /deliver?from=<height>`` on one orderer at a time over
  mutual TLS; each frame is decoded, validated and committed; on an error, the end of
  the stream, a block the peer refuses (hash chain, orderer signature) or a stall (the
  stream is silent while another orderer reports a greater height) it fails over to
  the next orderer, round-robin, backing off once every orderer has failed in a row;
* the **status poller**: every orderer's ``GET /status`` (heights for readiness and
  stall detection, Raft term and leader for the metrics);
* what the HTTP handlers wait on: commit status of transactions by id, the ledger
  height, and the queues of the event streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import aiohttp

from cctvchain.chaincode import ChaincodeStub, Creator, TxContext
from cctvchain.chaincode import simulate as run_simulation
from cctvchain.chaincode.cctv import CctvContract
from cctvchain.chaincode.contract import Contract
from cctvchain.codec import CodecError, decode_message
from cctvchain.ledger.block import Block
from cctvchain.ledger.errors import BlockRejectedError, LedgerError
from cctvchain.ledger.store import Ledger
from cctvchain.ledger.validation import TxValidationCode, code_name, is_known_code
from cctvchain.msp.errors import MSPError
from cctvchain.msp.identity import Identity, MSPManager, ValidationCache
from cctvchain.network.config import Endpoint
from cctvchain.network.genesis import GenesisError
from cctvchain.node import tls
from cctvchain.node.runtime import NodeContext, NodeStartError, format_url
from cctvchain.peer.channel import ChannelConfigError, ChannelContext
from cctvchain.peer.committer import Committer, block_event
from cctvchain.peer.endorser import Endorser
from cctvchain.peer.events import BlockEvent, EventHub
from cctvchain.peer.memo import CertificateMemo, DecodedTransactions, VerifiedSignatures
from cctvchain.peer.validator import BlockRejected, BlockVerdict
from cctvchain.peernode.metrics import OrdererView, PeerMetrics
from cctvchain.peernode.wire import FRAME
from cctvchain.tx.messages import ProposalResponse, Response, SerializedIdentity, SignedProposal

LEDGER_DIR: Final = "ledger"
STATUS_POLL_SECONDS: Final = 1.0
STATUS_TIMEOUT: Final = 2.0
STALL_SECONDS: Final = 3.0
CONNECT_TIMEOUT: Final = 5.0
MAX_BACKOFF_SECONDS: Final = 2.0
STREAM_QUEUE: Final = 256


class DeliverError(Exception):
    """The orderer's stream cannot be used (bad status, oversized or undecodable frame)."""


@dataclass
class _DeliverSession:
    last_progress: float
    committing: bool = False


@dataclass(frozen=True)
class TxStatus:
    """How a transaction was committed on this peer."""

    tx_id: str
    block: int
    index: int
    code: int

    @property
    def code_name(self) -> str:
        return code_name(self.code)


@dataclass(eq=False)
class EventStream:
    """One ``GET /api/v1/events`` client: a bounded queue of committed blocks.

    The commit path never waits for a stream: when the queue is full the stream is
    marked ``lagging`` and its handler re-reads the missed blocks from the ledger.
    """

    queue: asyncio.Queue[BlockEvent | None] = field(
        default_factory=lambda: asyncio.Queue(STREAM_QUEUE)
    )
    lagging: bool = False

    def offer(self, event: BlockEvent | None) -> None:
        if event is None:
            # Closing: make room for the sentinel so the handler wakes up at once.
            while self.queue.full():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return
        if self.queue.full():
            self.lagging = True
            return
        self.queue.put_nowait(event)


def stored_block_event(block: Block) -> BlockEvent:
    """The event of an already committed block, from its stored flags (no reasons)."""
    tx_ids: list[str | None] = []
    codes: list[TxValidationCode] = []
    for index, data in enumerate(block.transactions):
        tx_id: str | None = None
        try:
            message = decode_message(data)
            value = getattr(message, "tx_id", None)
            tx_id = value if isinstance(value, str) else None
        except (CodecError, ValueError, TypeError):
            tx_id = None
        tx_ids.append(tx_id)
        raw = block.tx_code(index) if index < len(block.metadata.tx_flags) else 254
        codes.append(
            TxValidationCode(raw) if is_known_code(raw) else TxValidationCode.INVALID_OTHER_REASON
        )
    verdict = BlockVerdict(tuple(codes), ("",) * len(codes), tuple(tx_ids))
    return block_event(block, verdict)


class PeerCore:
    def __init__(self, context: NodeContext) -> None:
        self.context = context
        self.log = context.log
        self.name = context.name
        wallet = context.node_wallet()
        identity = wallet.load()
        context.channel_config()  # a missing genesis block is a one-line start error
        try:
            genesis = context.material.genesis_block()
        except GenesisError as exc:
            raise NodeStartError(f"{self.name}: {exc}") from exc
        self.ledger = self._open_ledger(genesis)
        try:
            self.commit_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
            self.hub = EventHub()
            # Certificate lookups, the gateway's verified endorsement signatures and
            # decoded envelopes, remembered for the validator (peer.memo).
            self.certificates = CertificateMemo(self.ledger.certificate)
            self.signatures = VerifiedSignatures()
            self.decoded = DecodedTransactions()
            # The stateless checks run on the commit thread, one transaction after the
            # other (map_fn=map): a thread pool was slower (bench_commit: 0.82x to 0.93x
            # of one thread; bench_cluster: more peer CPU per tx), as every check but the
            # ECDSA calls holds the GIL, and the other nodes keep the cores busy anyway.
            self.committer = Committer(
                self.ledger,
                self.hub,
                map_fn=map,
                cache=ValidationCache(),
                certificates=self.certificates,
                signatures=self.signatures,
                decoded=self.decoded,
            )
            channel = self.committer.channel
            self.contracts: dict[str, Contract] = {CctvContract.NAME: CctvContract()}
            self.serialized = SerializedIdentity(identity.msp_id, identity.cert_pem)
            self.endorser = Endorser(
                channel=lambda: self.committer.channel,
                identity=self.serialized,
                key=identity.signing_key,
                contracts=self.contracts,
                certificates=self.certificates,
            )
            self.server_ssl = tls.node_server_context(wallet, channel.config)
            self.client_ssl = tls.node_client_context(wallet, channel.config)
        except (ChannelConfigError, MSPError, LedgerError) as exc:
            self.ledger.close()
            raise NodeStartError(f"{self.name}: {exc}") from exc
        self._config_sequence = channel.config.sequence
        self.metrics = PeerMetrics()
        self.orderers: list[Endpoint] = list(context.config.orderers)
        self.orderer_views = {o.name: OrdererView(o.name) for o in self.orderers}
        self.peers: list[Endpoint] = [p for p in context.config.peers if p.name != self.name]
        self.caught_up = False
        self.closing = False
        self.deliver_source: str | None = None
        self.commit_failure: str | None = None
        self.streams: set[EventStream] = set()
        self._waiters: dict[str, list[asyncio.Future[TxStatus]]] = {}
        self._height_changed: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Start the round-robin at this peer's own organisation's orderer, if it has one.
        own = [i for i, o in enumerate(self.orderers) if o.org == context.endpoint.org]
        self._deliver_index = own[0] if own else 0
        self.preferred_orderer = self._deliver_index

    def _open_ledger(self, genesis: Block) -> Ledger:
        path = self.context.material.node_dirs[self.name] / LEDGER_DIR
        try:
            ledger = Ledger.open(path, create=True)
        except LedgerError as exc:
            raise NodeStartError(f"{self.name}: {exc}") from exc
        try:
            if ledger.height == 0:
                ledger.append_block(genesis)
                self.log.info("created the ledger %s from the genesis block", path)
            elif ledger.get_block_hash(0) != genesis.hash():
                raise NodeStartError(
                    f"{self.name}: the ledger {path} was made from another genesis block than "
                    f"{self.context.material.genesis}; move it away to join this network"
                )
        except LedgerError as exc:
            ledger.close()
            raise NodeStartError(f"{self.name}: {exc}") from exc
        except BaseException:
            ledger.close()
            raise
        return ledger

    # -- views -------------------------------------------------------------------------

    @property
    def channel(self) -> ChannelContext:
        return self.committer.channel

    def msp_view(self) -> MSPManager:
        return self.committer.channel.msps

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the peer is not started")
        return self._session

    def now(self) -> datetime:
        return self.context.now()

    def now_ms(self) -> int:
        return int(self.context.now().timestamp() * 1000)

    def orderer_url(self, endpoint: Endpoint) -> str:
        return format_url(endpoint.host, endpoint.port)

    def orderer_height(self) -> int:
        """The greatest height a reachable orderer reported at the last poll."""
        return max((v.height for v in self.orderer_views.values() if v.reachable), default=0)

    def leader_hint(self) -> int | None:
        """The index in ``orderers`` of the orderer the last status poll reported as Raft
        leader (in the highest term a reachable orderer reported), if any: the gateway
        broadcasts there first, since a follower would only forward the envelope to it
        (one more HTTP exchange and one more admission check on the ordering service)."""
        reachable = [v for v in self.orderer_views.values() if v.reachable]
        term = max((v.term for v in reachable), default=0)
        leader = next((v.leader for v in reachable if v.term == term and v.leader), None)
        for index, endpoint in enumerate(self.orderers):
            if endpoint.name == leader:
                return index
        return None

    def readiness(self) -> str | None:
        if self.commit_failure is not None:
            return f"cannot commit: {self.commit_failure}"
        if not self.caught_up:
            target = self.orderer_height()
            if target == 0:
                return f"catching up (height {self.ledger.height}; no orderer reachable yet)"
            return f"catching up (height {self.ledger.height} of {target})"
        return None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, _app: Any = None) -> None:
        self._height_changed = asyncio.Event()
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.client_ssl, limit_per_host=16),
            timeout=aiohttp.ClientTimeout(total=30, sock_connect=CONNECT_TIMEOUT),
        )
        self._tasks.append(asyncio.create_task(self._deliver_loop(), name="deliver"))
        self._tasks.append(asyncio.create_task(self._status_loop(), name="orderer-status"))
        self.log.info(
            "peer ready to serve: ledger height %d, head %s, %d orderer(s), %d other peer(s)",
            self.ledger.height,
            self.ledger.head_hash.hex()[:16],
            len(self.orderers),
            len(self.peers),
        )

    async def shutdown(self, _app: Any = None) -> None:
        """Stop background work and wake every waiter (requests in flight then finish)."""
        self.closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for stream in list(self.streams):
            stream.offer(None)
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.cancel()
        self._waiters.clear()
        if self._height_changed is not None:
            self._height_changed.set()

    async def cleanup(self, _app: Any = None) -> None:
        """Release resources once requests have finished."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.to_thread(self.commit_pool.shutdown, wait=True)
        self.ledger.close()

    # -- endorsement and queries -------------------------------------------------------

    async def endorse(self, signed: SignedProposal) -> ProposalResponse:
        """This peer's endorser on ``signed`` (in a worker thread), with its metrics."""
        now_ms = self.now_ms()
        started = time.perf_counter()
        response = await asyncio.to_thread(self._endorse_sync, signed, now_ms)
        self.metrics.endorsement_seconds.observe(time.perf_counter() - started)
        if response.endorsement is None:
            self.metrics.endorsement_refusals += 1
        return response

    def _endorse_sync(self, signed: SignedProposal, now_ms: int) -> ProposalResponse:
        with self.ledger.snapshot() as snapshot:
            return self.endorser.process(signed, snapshot, now_ms)

    def query(self, identity: Identity, function: str, args: Sequence[str]) -> Response:
        """Run a read-only ``cctv`` function as ``identity`` (authenticated by TLS) against
        a snapshot: the contract's ACL and Algorithm 1 apply exactly as for a signed
        query. Blocking: call from a worker thread."""
        contract = self.contracts[CctvContract.NAME]
        info = type(contract).functions().get(function)
        if info is None or not info.read_only:
            raise ValueError(f"{function} is not a query of {contract.NAME}")
        creator = Creator(
            msp_id=identity.msp_id,
            name=identity.name,
            id_type=identity.id_type,
            attributes=dict(identity.attributes),
            cert=identity.cert_pem,
        )
        with self.ledger.snapshot() as snapshot:
            stub = ChaincodeStub(
                namespace=contract.NAME,
                reader=snapshot,
                context=TxContext(
                    channel_id=self.channel.channel_id,
                    tx_id=os.urandom(32).hex(),
                    timestamp_ms=self.now_ms(),
                    creator=creator,
                ),
                limits=self.endorser.limits,
            )
            return run_simulation(contract, function, list(args), stub).response

    # -- waiting for commits -------------------------------------------------------------

    def watch_tx(self, tx_id: str) -> asyncio.Future[TxStatus]:
        future: asyncio.Future[TxStatus] = asyncio.get_running_loop().create_future()
        if self.closing:
            future.cancel()
        else:
            self._waiters.setdefault(tx_id, []).append(future)
        return future

    def unwatch_tx(self, tx_id: str, future: asyncio.Future[TxStatus]) -> None:
        waiters = self._waiters.get(tx_id)
        if waiters is not None and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._waiters[tx_id]

    async def wait_for_height(self, height: int, timeout: float) -> bool:
        """Wait until the ledger has ``height`` blocks (False after ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.ledger.height < height and not self.closing:
            event = self._height_changed
            remaining = deadline - loop.time()
            if event is None or remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return self.ledger.height >= height

    def _committed(self, event: BlockEvent, elapsed: float) -> None:
        """After each commit (on the event loop): metrics, waiters, streams, readiness."""
        self.metrics.commit_seconds.observe(elapsed)
        self.metrics.committed(tx.code_name for tx in event.transactions)
        for tx in event.transactions:
            if tx.tx_id is None:
                continue
            for future in self._waiters.pop(tx.tx_id, []):
                if not future.done():
                    future.set_result(TxStatus(tx.tx_id, event.number, tx.index, tx.code))
        if self._height_changed is not None:
            self._height_changed.set()
            self._height_changed = asyncio.Event()
        for stream in list(self.streams):
            stream.offer(event)
        self._check_caught_up()
        config = self.committer.channel.config
        if config.sequence != self._config_sequence:
            self._config_sequence = config.sequence
            tls.add_trust(self.server_ssl, config)
            tls.add_trust(self.client_ssl, config)
            self.log.info(
                "channel configuration %d in force (block %d)", config.sequence, event.number
            )

    def _check_caught_up(self) -> None:
        target = self.orderer_height()
        if not self.caught_up and target > 0 and self.ledger.height >= target:
            self.caught_up = True
            self.log.info("caught up with the ordering service at height %d", self.ledger.height)

    # -- deliver ---------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        failures = 0
        while not self.closing:
            endpoint = self.orderers[self._deliver_index % len(self.orderers)]
            before = self.ledger.height
            try:
                reason = await self._deliver_from(endpoint)
            except asyncio.CancelledError:
                raise
            except (BlockRejected, BlockRejectedError) as exc:
                self.metrics.blocks_rejected += 1
                reason = f"it delivered a block this peer refuses: {exc}"
                self.log.warning("deliver from %s: %s", endpoint.name, reason)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except (DeliverError, CodecError) as exc:
                reason = str(exc)
            except LedgerError as exc:
                if self.closing:
                    return
                self.commit_failure = str(exc)
                self.log.error("commit failed: %s; the peer stops pulling blocks", exc)
                return
            except Exception as exc:
                self.log.exception("deliver from %s failed", endpoint.name)
                reason = f"unexpected {type(exc).__name__}"
            finally:
                self.deliver_source = None
            if self.closing:
                return
            self.metrics.deliver_failovers += 1
            progressed = self.ledger.height > before
            failures = 0 if progressed else failures + 1
            self._deliver_index += 1
            following = self.orderers[self._deliver_index % len(self.orderers)]
            level = logging.INFO if failures <= 1 else logging.DEBUG  # first of a streak
            self.log.log(
                level,
                "deliver from %s stopped at height %d (%s); trying %s",
                endpoint.name,
                self.ledger.height,
                reason,
                following.name,
            )
            if failures >= len(self.orderers):
                delay = min(0.1 * 2 ** (failures - len(self.orderers)), MAX_BACKOFF_SECONDS)
            else:
                delay = 0.05
            await asyncio.sleep(delay)

    async def _deliver_from(self, endpoint: Endpoint) -> str:
        """Commit blocks from one orderer's stream; the reason it ended (or raise).

        A watchdog ends the session when the orderer stays silent (no answer, no block)
        for ``STALL_SECONDS`` while another orderer reports a greater height: a hung or
        partitioned orderer keeps its TCP connection open and would stall the peer."""
        loop = asyncio.get_running_loop()
        session = _DeliverSession(last_progress=loop.time())
        task = asyncio.create_task(self._pull(endpoint, session))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=1.0)
                if done:
                    return task.result()
                silent = loop.time() - session.last_progress
                if (
                    not session.committing
                    and silent > STALL_SECONDS
                    and self.orderer_height() > self.ledger.height
                ):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return f"silent for {silent:.1f} s while other orderers are ahead"
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _pull(self, endpoint: Endpoint, session: _DeliverSession) -> str:
        url = f"{self.orderer_url(endpoint)}/deliver?from={self.ledger.height}"
        max_frame = self.channel.config.batch.absolute_max_bytes * 2 + 1024 * 1024
        timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT)
        loop = asyncio.get_running_loop()
        async with self.session.get(url, timeout=timeout) as response:
            if response.status != 200:
                text = (await response.content.read(500)).decode("utf-8", "replace")
                raise DeliverError(f"HTTP {response.status}: {text.strip()}")
            self.deliver_source = endpoint.name
            session.last_progress = loop.time()
            while True:
                try:
                    header = await response.content.readexactly(FRAME.size)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        raise DeliverError("the stream ended inside a frame") from None
                    return "the stream ended"
                (length,) = FRAME.unpack(header)
                if length == 0 or length > max_frame:
                    raise DeliverError(f"a frame of {length} bytes is not a block")
                try:
                    data = await response.content.readexactly(length)
                except asyncio.IncompleteReadError:
                    raise DeliverError("the stream ended inside a frame") from None
                session.committing = True
                try:
                    result = await loop.run_in_executor(self.commit_pool, self._commit_frame, data)
                finally:
                    session.committing = False
                session.last_progress = loop.time()
                if result is not None:
                    event, elapsed = result
                    self._committed(event, elapsed)

    def _commit_frame(self, data: bytes) -> tuple[BlockEvent, float] | None:
        """Decode, validate and commit one delivered block (commit thread)."""
        block = Block.decode(data)
        if block.number < self.ledger.height:
            return None  # already committed (a stream restarted from an older height)
        started = time.perf_counter()
        event = self.committer.commit(block, self.now())
        return event, time.perf_counter() - started

    # -- the ordering service's status ---------------------------------------------------

    async def _status_loop(self) -> None:
        while not self.closing:
            await asyncio.gather(*(self._poll(o) for o in self.orderers))
            self._check_caught_up()
            await asyncio.sleep(STATUS_POLL_SECONDS)

    async def _poll(self, endpoint: Endpoint) -> None:
        view = self.orderer_views[endpoint.name]
        try:
            async with self.session.get(
                f"{self.orderer_url(endpoint)}/status",
                timeout=aiohttp.ClientTimeout(total=STATUS_TIMEOUT),
            ) as response:
                status = await response.json() if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            status = None
        if not isinstance(status, dict):
            view.reachable = False
            return
        view.reachable = True
        term, height, leader = status.get("term"), status.get("height"), status.get("leader")
        view.term = term if isinstance(term, int) else view.term
        view.height = height if isinstance(height, int) else view.height
        view.leader = leader if isinstance(leader, str) else None
