"""The orderer node's HTTPS service (``SERVICES["orderer"]``).

Endpoints, all over mutual TLS with MSP-issued certificates:

    POST /broadcast      body: an envelope (application/octet-stream). Admitted (size,
                         well-formedness, creator's membership and signature), forwarded to
                         the Raft leader if this node is not it, and answered 200 only
                         once its Raft entry is committed — so it will be in a block on
                         every orderer. Errors: JSON {code, message}.
    GET  /deliver?from=N[&to=M]
                         committed blocks from height N as a stream of frames
                         (u32 length, canonical block bytes); without ``to`` the stream
                         stays open and follows new blocks.
    GET  /status         role, term, leader, height, head hash.
    POST /raft           Raft messages from the other orderers (orderer identities only;
                         a message's sender must be the caller).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from cctvchain.codec import CodecError, decode, decode_message, encode
from cctvchain.ledger.block import ZERO_HASH, Block
from cctvchain.msp.identity import MSPManager
from cctvchain.node import tls
from cctvchain.node.auth import caller, mtls_auth, require_type
from cctvchain.node.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HttpError,
    ServiceUnavailable,
)
from cctvchain.node.http import json_response, make_app, readiness
from cctvchain.node.runtime import NodeContext, NodeService, format_url
from cctvchain.orderer.raft_node import RaftOrderer
from cctvchain.ordering.orderer import BroadcastRefused, Orderer, OrdererSigner
from cctvchain.ordering.raft import NotLeader, RaftMessage, Role
from cctvchain.ordering.recent import RecentTxIds
from cctvchain.peer.channel import ChannelContext

RECENT_TX_SECONDS = 120.0
BROADCAST_TIMEOUT = 10.0
FRAME = struct.Struct(">I")
MAX_RAFT_BODY = 32 * 1024 * 1024
MAX_MESSAGES_PER_POST = 256


def _unavailable(message: str, code: str = "unavailable") -> HttpError:
    return ServiceUnavailable(message, code=code)


class OrdererService:
    def __init__(self, context: NodeContext) -> None:
        self.context = context
        self.log = context.log
        wallet = context.node_wallet()
        identity = wallet.load()
        genesis = context.channel_config()
        self.orderers = {o.name: o for o in context.config.orderers}
        self.signer = OrdererSigner(identity.msp_id, identity.cert_pem, identity.signing_key)
        self.node = RaftOrderer(
            name=context.name,
            peers=list(self.orderers),
            directory=context.material.node_dirs[context.name],
            genesis_config=genesis,
            signer=self.signer,
            log=self.log,
            election_tick=context.config.raft.election_ticks,
            snapshot_interval=context.config.raft.snapshot_interval,
        )
        self.tick_seconds = context.config.raft.tick_ms / 1000
        # Tx ids broadcast recently (not yet in a block): a replay is refused at once.
        self._recent = RecentTxIds(RECENT_TX_SECONDS)
        self.node.send = self._enqueue
        self.node.fetch_blocks = self._fetch_blocks
        self.client_ssl = tls.node_client_context(wallet, genesis)
        self.server_ssl = tls.node_server_context(wallet, genesis)
        self._queues: dict[str, asyncio.Queue[RaftMessage]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None  # Raft messages, deliver
        # Forwarded broadcasts wait up to BROADCAST_TIMEOUT for their commit: they get a
        # pool of their own so that they never hold up the Raft messages to the same
        # orderer (which cost the leader its quorum under load).
        self._forward_session: aiohttp.ClientSession | None = None
        self._closing = False

    # -- views of the channel ------------------------------------------------------------

    def channel(self) -> ChannelContext:
        return self.node.assembler.channel

    def msp_view(self) -> MSPManager:
        return self.channel().msps

    def _admission(self) -> Orderer:
        # The orderer core's admission checks (size, form, membership, signature, tx id);
        # creators' certificate references resolve through this orderer's ledger.
        return Orderer(
            self.channel,
            self.signer,
            height=0,
            head_hash=ZERO_HASH,
            certificates=self.node.ledger.certificate,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.client_ssl, limit_per_host=4),
            timeout=aiohttp.ClientTimeout(total=10),
        )
        self._forward_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.client_ssl, limit_per_host=64),
            timeout=aiohttp.ClientTimeout(total=BROADCAST_TIMEOUT + 2),
        )
        for peer in self.orderers:
            if peer != self.context.name:
                self._queues[peer] = asyncio.Queue()
                self._tasks.append(asyncio.create_task(self._sender(peer)))
        await self.node.restore()
        self._tasks.append(asyncio.create_task(self._ticker()))
        self.log.info(
            "orderer ready: ledger height %d, raft term %d, peers %s",
            self.node.ledger.height,
            self.node.raft.term,
            ", ".join(p for p in self.orderers if p != self.context.name),
        )

    async def stop(self, app: web.Application) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self.node.block_added:
            self.node.block_added.notify_all()
        for session in (self._session, self._forward_session):
            if session is not None:
                await session.close()
        # Let a Ready being handled finish its disk work before closing the stores.
        for _ in range(100):
            if not self.node._draining:
                break
            await asyncio.sleep(0.05)
        self.node.close()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_seconds)
            self.node.tick()
            self.node.maybe_time_to_cut(int(time.time() * 1000))

    # -- Raft transport ------------------------------------------------------------------

    def _enqueue(self, message: RaftMessage) -> None:
        queue = self._queues.get(message.recipient)
        if queue is not None:
            queue.put_nowait(message)

    def _peer_url(self, name: str) -> str:
        orderer = self.orderers[name]
        return format_url(orderer.host, orderer.port)

    async def _sender(self, peer: str) -> None:
        queue = self._queues[peer]
        url = self._peer_url(peer) + "/raft"
        failures = 0
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < MAX_MESSAGES_PER_POST:
                batch.append(queue.get_nowait())
            body = encode([message.encode() for message in batch])
            delivered = False
            try:
                assert self._session is not None
                async with self._session.post(url, data=body) as response:
                    delivered = response.status == 204
                    if not delivered and failures == 0:
                        self.log.warning("raft to %s refused: HTTP %d", peer, response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if failures == 0:
                    self.log.info("raft: %s unreachable (%s)", peer, type(exc).__name__)
            failures = 0 if delivered else failures + 1
            for message in batch:
                if message.TYPE == "raft.install_snapshot":
                    self.node.report_snapshot(peer, delivered)
            if not delivered:
                # Raft tolerates lost messages; back off so a dead peer costs little.
                await asyncio.sleep(min(0.05 * failures, 1.0))

    async def handle_raft(self, request: web.Request) -> web.Response:
        identity = require_type(request, "orderer")
        if identity.name not in self.orderers:
            raise Forbidden(
                f"{identity.name} is not a consenter of this channel", code="not_a_consenter"
            )
        body = await request.read()
        try:
            items = decode(body, max_size=MAX_RAFT_BODY)
            messages = [decode_message(item) for item in items]
        except (CodecError, TypeError) as exc:
            raise BadRequest(f"malformed raft messages: {exc}", code="malformed_raft") from None
        checked: list[RaftMessage] = []
        for message in messages:
            if not isinstance(message, RaftMessage) or message.sender != identity.name:
                raise Forbidden("raft message not from the calling orderer", code="wrong_sender")
            if message.recipient != self.context.name:
                raise BadRequest("raft message for another orderer", code="wrong_recipient")
            checked.append(message)
        if self.node.halted is None:
            for raft_message in checked:
                self.node.step(raft_message)
        return web.Response(status=204)

    # -- broadcast -------------------------------------------------------------------------

    async def handle_broadcast(self, request: web.Request) -> web.Response:
        caller(request)
        data = await request.read()
        if self.node.halted is not None:
            raise _unavailable(f"ordering halted: {self.node.halted}", "halted")
        now_ms = int(time.time() * 1000)
        try:
            message = self._admission().admit(data, now_ms)
        except BroadcastRefused as exc:
            raise _refusal(exc) from None
        self._check_replay(message.tx_id)
        try:
            response = await self._order(data, now_ms)
        except BaseException:
            self._recent.forget(message.tx_id)  # not ordered: the client may retry it
            raise
        if response.status != 200:
            self._recent.forget(message.tx_id)
        return response

    async def _order(self, data: bytes, now_ms: int) -> web.Response:
        if self.node.raft.role != Role.LEADER:
            return await self._forward(data)
        try:
            ordered = await self.node.propose_envelope(data, now_ms, BROADCAST_TIMEOUT)
        except NotLeader:
            return await self._forward(data)
        if not ordered:
            raise _unavailable(
                "the envelope was not ordered (leader changed or timed out); submit it again",
                "not_ordered",
            )
        return json_response({"status": "ordered", "orderer": self.context.name})

    def _check_replay(self, tx_id: str) -> None:
        """A tx id already ordered (in the ledger) or broadcast a moment ago is a replay."""
        now = time.monotonic()
        self._recent.expire(now)
        if tx_id in self._recent or self.node.ledger.has_tx(tx_id):
            raise Conflict(f"transaction {tx_id} was already broadcast", code="replayed")
        self._recent.add(tx_id, now)

    async def _forward(self, data: bytes) -> web.Response:
        leader = self.node.raft.leader_id
        if leader is None or leader == self.context.name:
            raise _unavailable("no Raft leader at the moment; retry shortly", "no_leader")
        assert self._forward_session is not None
        try:
            async with self._forward_session.post(
                self._peer_url(leader) + "/broadcast",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=aiohttp.ClientTimeout(total=BROADCAST_TIMEOUT + 2),
            ) as response:
                payload = await response.read()
                return web.Response(
                    status=response.status, body=payload, content_type="application/json"
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unavailable(
                f"cannot reach the leader {leader}: {type(exc).__name__}", "leader_unreachable"
            ) from None

    # -- deliver ---------------------------------------------------------------------------

    async def handle_deliver(self, request: web.Request) -> web.StreamResponse:
        caller(request)
        try:
            start = int(request.query.get("from", "0"))
            stop = int(request.query["to"]) if "to" in request.query else None
        except ValueError:
            raise BadRequest("from and to must be block numbers", code="bad_range") from None
        if start < 0 or (stop is not None and stop < start):
            raise BadRequest("bad block range", code="bad_range")
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        async for block in self._blocks_from(start, stop):
            data = block.encode()
            await response.write(FRAME.pack(len(data)) + data)
        await response.write_eof()
        return response

    async def _blocks_from(self, start: int, stop: int | None) -> AsyncIterator[Block]:
        ledger = self.node.ledger
        number = start
        while not self._closing and (stop is None or number < stop):
            if number < ledger.height:
                yield await asyncio.to_thread(ledger.get_block, number)
                number += 1
                continue
            if stop is not None and stop <= ledger.height:
                return
            async with self.node.block_added:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.node.block_added.wait(), 1.0)

    async def _fetch_blocks(self, start: int, stop: int) -> list[Block]:
        """Blocks [start, stop) from any other orderer that has them."""
        assert self._session is not None
        for peer in self.orderers:
            if peer == self.context.name:
                continue
            url = f"{self._peer_url(peer)}/deliver?from={start}&to={stop}"
            try:
                async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=60)) as resp:
                    if resp.status != 200:
                        continue
                    raw = await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                continue
            blocks = list(parse_frames(raw))
            if blocks:
                return blocks
        return []

    async def handle_status(self, request: web.Request) -> web.Response:
        caller(request)
        return json_response(self.status())

    def status(self) -> dict[str, Any]:
        raft = self.node.raft
        return {
            "name": self.context.name,
            "role": raft.role.value,
            "term": raft.term,
            "leader": raft.leader_id,
            "commit_index": raft.commit_index,
            "height": self.node.ledger.height,
            "head_hash": self.node.ledger.head_hash.hex(),
            "halted": self.node.halted,
        }


def parse_frames(raw: bytes) -> list[Block]:
    blocks = []
    offset = 0
    while offset + FRAME.size <= len(raw):
        (length,) = FRAME.unpack_from(raw, offset)
        offset += FRAME.size
        if offset + length > len(raw):
            break
        blocks.append(Block.decode(raw[offset : offset + length]))
        offset += length
    return blocks


def _refusal(exc: BroadcastRefused) -> HttpError:
    codes = {400: "malformed_envelope", 403: "forbidden", 404: "unknown_channel", 413: "too_large"}
    message = str(exc)
    code = exc.code or codes.get(exc.status, "refused")
    if message.startswith("BAD_PROPOSAL_TXID"):
        code = "bad_proposal_txid"
    return HttpError(message, code=code, status=exc.status)


async def create_orderer_service(context: NodeContext) -> NodeService:
    service = OrdererService(context)
    max_body = service.channel().config.batch.absolute_max_bytes + 64 * 1024
    app = make_app(
        context.name,
        "orderer",
        log=context.log,
        middlewares=[mtls_auth(service.msp_view)],
        max_body=max(max_body, MAX_RAFT_BODY),
    )
    app.router.add_post("/broadcast", service.handle_broadcast)
    app.router.add_get("/deliver", service.handle_deliver)
    app.router.add_get("/status", service.handle_status)
    app.router.add_post("/raft", service.handle_raft)
    app.on_startup.append(service.start)
    app.on_shutdown.append(service.stop)
    readiness(app).add_check(lambda: service.node.halted)
    return NodeService(
        app=app,
        ssl_context=service.server_ssl,
        description=(
            f"Raft orderer {context.name} of {context.org.name} with "
            f"{len(service.orderers) - 1} other consenter(s)"
        ),
    )
