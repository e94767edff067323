"""The peer's read API: the ``cctv`` contract's queries as the TLS caller, the ledger,
the event stream, metrics and the OpenAPI document.

Every caller is identified by its TLS client certificate (:func:`mtls_auth`) and must
satisfy the channel's ``Readers`` policy. Contract reads run the contract's query
functions with the caller as creator, so the ACL and Algorithm 1 decide exactly as for a
signed query: a denial is a 403 with the contract's code (``ACCESS_DENIED``,
``NOT_A_PARTICIPANT``, ...). Ledger reads give headers, transaction ids and validation
codes to every member; raw block bytes and transaction arguments (which may hold camera
data) only to peers, orderers and organisation admins.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Collection, Mapping
from importlib import resources
from typing import Any, Final

from aiohttp import web

from cctvchain.chaincode.cctv.access import is_valid_camera_id
from cctvchain.chaincode.cctv.model import AnchorEvent, HistorianRecord
from cctvchain.codec import CodecError, decode_message
from cctvchain.ledger.block import Block
from cctvchain.ledger.errors import BlockNotFoundError
from cctvchain.ledger.validation import code_name
from cctvchain.msp import certs
from cctvchain.msp.certref import CertificateResolver, resolve_certificate
from cctvchain.msp.errors import MSPError
from cctvchain.msp.identity import Identity
from cctvchain.node.auth import caller, identity_json
from cctvchain.node.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from cctvchain.node.http import JSON_TYPE, b64, json_response
from cctvchain.peer.channel import READERS
from cctvchain.peer.events import BlockEvent, ContractEvent
from cctvchain.peer.validator import orderer_certificates
from cctvchain.peernode.core import EventStream, PeerCore, stored_block_event
from cctvchain.peernode.metrics import CONTENT_TYPE as METRICS_TYPE
from cctvchain.peernode.wire import refusal_error
from cctvchain.policy import evaluate
from cctvchain.tx.messages import Envelope

PRIVILEGED_TYPES: Final = frozenset({"admin", "peer", "orderer"})
MAX_EVENT_STREAMS: Final = 64
KEEPALIVE_SECONDS: Final = 15.0
MAX_TIME: Final = 2**63 - 1
_TX_ID: Final = re.compile(r"[0-9a-f]{64}")
_PARTICIPANT_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@\-]{0,127}")
_TEXT: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@\-]{0,127}")


def openapi_document() -> bytes:
    return resources.files("cctvchain.api").joinpath("openapi.yaml").read_bytes()


# -- request parsing --------------------------------------------------------------------


def query_params(request: web.Request, allowed: Collection[str]) -> Mapping[str, str]:
    """The query parameters, refusing unknown and repeated ones."""
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)}", code="unknown_parameter"
        )
    repeated = sorted({key for key in request.query if len(request.query.getall(key)) > 1})
    if repeated:
        raise BadRequest(f"repeated query parameter(s): {', '.join(repeated)}", code="bad_query")
    return request.query


def int_param(params: Mapping[str, str], name: str, default: int, maximum: int = MAX_TIME) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d{1,19}", raw) or int(raw) > maximum:
        raise BadRequest(f"{name} must be an integer from 0 to {maximum}", code="bad_query")
    return int(raw)


def text_param(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _TEXT.fullmatch(raw):
        raise BadRequest(f"{name} {raw[:80]!r} is not a valid value", code="bad_query")
    return raw


def camera_id(request: web.Request) -> str:
    value = request.match_info["camera_id"]
    if not is_valid_camera_id(value):
        raise BadRequest(f"{value[:80]!r} is not a valid camera id", code="bad_camera_id")
    return value


def tx_id_param(request: web.Request) -> str:
    value = request.match_info["tx_id"]
    if not _TX_ID.fullmatch(value):
        raise BadRequest("a transaction id is 64 lowercase hex digits", code="bad_tx_id")
    return value


def _subject(cert: bytes, resolve: CertificateResolver | None = None) -> str:
    """The CN of ``cert`` (a PEM, or a certificate reference ``resolve`` looks up)."""
    try:
        pem = resolve_certificate(cert, resolve)
        return certs.common_name(certs.parse_certificate(pem))
    except (MSPError, ValueError):  # a damaged or unknown certificate is shown as such
        return "?"


def channel_reader(core: PeerCore, request: web.Request) -> Identity:
    """The caller (authenticated by its TLS certificate), if it satisfies the channel's
    Readers policy: the first gate of every read route, before any contract decides."""
    identity = caller(request)
    if not evaluate(core.channel.policy(READERS), [identity]):
        raise Forbidden(
            f"{identity.name} of {identity.msp_id} does not satisfy the channel's Readers policy",
            code="not_a_reader",
        )
    return identity


class ReadApi:
    def __init__(self, core: PeerCore) -> None:
        self.core = core
        self._openapi = openapi_document()

    def reader(self, request: web.Request) -> Identity:
        return channel_reader(self.core, request)

    async def contract_query(self, request: web.Request, function: str, *args: str) -> web.Response:
        identity = self.reader(request)
        response = await asyncio.to_thread(self.core.query, identity, function, args)
        if not response.ok:
            raise refusal_error(response)
        return web.Response(body=response.payload or b"null", content_type=JSON_TYPE)

    # -- the cctv contract ------------------------------------------------------------------

    async def cameras(self, request: web.Request) -> web.Response:
        params = query_params(request, {"status"})
        status = text_param(params, "status") or ""
        return await self.contract_query(request, "ListCameras", status)

    async def camera(self, request: web.Request) -> web.Response:
        query_params(request, ())
        return await self.contract_query(request, "GetCamera", camera_id(request))

    async def camera_access(self, request: web.Request) -> web.Response:
        query_params(request, ())
        return await self.contract_query(request, "CheckAccess", camera_id(request))

    async def camera_grants(self, request: web.Request) -> web.Response:
        query_params(request, ())
        return await self.contract_query(request, "ListGrants", camera_id(request))

    async def anchors(self, request: web.Request) -> web.Response:
        params = query_params(request, {"from", "to"})
        start, end = int_param(params, "from", 0), int_param(params, "to", MAX_TIME)
        if end < start:
            raise BadRequest("the time range ends before it starts", code="bad_query")
        return await self.contract_query(
            request, "GetAnchors", camera_id(request), str(start), str(end)
        )

    async def anchor_head(self, request: web.Request) -> web.Response:
        query_params(request, ())
        return await self.contract_query(request, "GetAnchorHead", camera_id(request))

    async def anchor(self, request: web.Request) -> web.Response:
        query_params(request, ())
        sequence = request.match_info["sequence"]
        if len(sequence) > 18:
            raise BadRequest("sequence is too large", code="bad_query")
        return await self.contract_query(request, "GetAnchor", camera_id(request), sequence)

    async def history(self, request: web.Request) -> web.Response:
        params = query_params(request, {"camera", "participant", "type", "from", "to"})
        query: dict[str, Any] = {}
        filters = [name for name in ("camera", "participant", "type") if params.get(name)]
        if len(filters) > 1:
            raise BadRequest("filter by one of camera, participant or type", code="bad_query")
        for name in filters:
            value = text_param(params, name)
            if name == "camera" and value is not None and not is_valid_camera_id(value):
                raise BadRequest(f"{value!r} is not a valid camera id", code="bad_camera_id")
            query[name] = value
        if "from" in params:
            query["from"] = int_param(params, "from", 0)
        if "to" in params:
            query["to"] = int_param(params, "to", MAX_TIME)
        return await self.contract_query(request, "GetHistory", json.dumps(query))

    async def history_record(self, request: web.Request) -> web.Response:
        query_params(request, ())
        return await self.contract_query(request, "GetHistoryRecord", tx_id_param(request))

    async def participant(self, request: web.Request) -> web.Response:
        query_params(request, ())
        value = request.match_info["participant_id"]
        if not _PARTICIPANT_ID.fullmatch(value):
            raise BadRequest(f"{value[:80]!r} is not a participant id", code="bad_query")
        return await self.contract_query(request, "GetParticipant", value)

    async def whoami(self, request: web.Request) -> web.Response:
        query_params(request, ())
        identity = self.reader(request)
        response = await asyncio.to_thread(self.core.query, identity, "WhoAmI", ())
        participant = json.loads(response.payload) if response.ok and response.payload else None
        return json_response(
            {
                "identity": identity_json(identity),
                "participant": participant,
                "reason": None if response.ok else response.message,
            }
        )

    # -- the ledger -------------------------------------------------------------------------

    async def channel(self, request: web.Request) -> web.Response:
        query_params(request, ())
        self.reader(request)
        core = self.core
        config = core.channel.config
        return json_response(
            {
                "channel_id": config.channel_id,
                "peer": core.name,
                "height": core.ledger.height,
                "head_hash": core.ledger.head_hash.hex(),
                "config_sequence": config.sequence,
                "organizations": [
                    {"msp_id": org.msp_id, "name": org.name} for org in config.organizations
                ],
                "orderers": [orderer.name for orderer in config.orderers],
                "endorsement_policies": dict(config.endorsement_policies),
                "caught_up": core.caught_up,
                "orderer_height": core.orderer_height(),
                "deliver_from": core.deliver_source,
            }
        )

    async def block(self, request: web.Request) -> web.Response:
        params = query_params(request, {"raw"})
        identity = self.reader(request)
        raw = params.get("raw", "0")
        if raw not in ("0", "1", "true", "false"):
            raise BadRequest("raw must be 0 or 1", code="bad_query")
        text = request.match_info["number"]
        number = int(text) if len(text) <= 19 else -1
        if not 0 <= number < self.core.ledger.height:
            raise NotFound(
                f"block {text[:40]} does not exist (height {self.core.ledger.height})",
                code="unknown_block",
            )
        try:
            block = await asyncio.to_thread(self.core.ledger.get_block, number)
        except BlockNotFoundError as exc:
            raise NotFound(str(exc), code="unknown_block") from None
        if raw in ("1", "true"):
            self._privileged(identity, "raw blocks")
            return json_response(
                {
                    "number": block.number,
                    "hash": block.hash().hex(),
                    "block_b64": b64(block.encode()),
                }
            )
        return json_response(block_json(block, orderer_certificates(self.core.channel.config)))

    async def transaction(self, request: web.Request) -> web.Response:
        query_params(request, ())
        identity = self.reader(request)
        tx_id = tx_id_param(request)
        record = await asyncio.to_thread(self.core.ledger.get_tx, tx_id)
        if record is None:
            raise NotFound(
                f"transaction {tx_id} is not on this peer's ledger", code="unknown_transaction"
            )
        body: dict[str, Any] = {
            "tx_id": tx_id,
            "block": record.block_number,
            "index": record.tx_number,
            "validation_code": record.validation_code,
            "validation_code_name": record.validation_code_name,
        }
        try:
            message = decode_message(record.data)
        except CodecError:
            message = None
        if isinstance(message, Envelope):
            try:
                proposal = message.proposal
                body.update(
                    {
                        "type": "endorser_transaction",
                        "contract": proposal.contract,
                        "function": proposal.function,
                        "timestamp_ms": proposal.timestamp_ms,
                        "creator": {
                            "msp_id": proposal.creator.msp_id,
                            "name": _subject(proposal.creator.cert, self.core.ledger.certificate),
                        },
                        "endorsers": [
                            {
                                "msp_id": e.endorser.msp_id,
                                "name": _subject(e.endorser.cert, self.core.ledger.certificate),
                            }
                            for e in message.transaction.endorsements
                        ],
                    }
                )
                if identity.id_type in PRIVILEGED_TYPES:
                    body["args"] = list(proposal.args)
            except (CodecError, ValueError, TypeError):
                body["type"] = "malformed"
        else:
            body["type"] = "config_transaction" if message is not None else "malformed"
        if identity.id_type in PRIVILEGED_TYPES:
            body["data_b64"] = b64(record.data)
        return json_response(body)

    @staticmethod
    def _privileged(identity: Identity, what: str) -> None:
        if identity.id_type not in PRIVILEGED_TYPES:
            raise Forbidden(
                f"{what} may hold camera data; only peers, orderers and organisation admins "
                f"read them ({identity.name} is a {identity.id_type})",
                code="wrong_identity_type",
            )

    # -- events -----------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        params = query_params(request, {"from"})
        identity = self.reader(request)
        core = self.core
        last = request.headers.get("Last-Event-ID")
        if last is not None and re.fullmatch(r"\d{1,18}", last):
            start = int(last) + 1
        else:
            start = int_param(params, "from", core.ledger.height, maximum=2**62)
        if len(core.streams) >= MAX_EVENT_STREAMS:
            raise ServiceUnavailable(
                f"this peer serves at most {MAX_EVENT_STREAMS} event streams",
                code="too_many_streams",
            )
        stream = EventStream()
        core.streams.add(stream)  # before reading the height: no block can slip between
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            await response.write(b"retry: 2000\n: cctvchain peer events\n\n")
            sender = _EventSender(self, identity, response)
            cursor = start
            while not core.closing:
                if stream.lagging:
                    while not stream.queue.empty():
                        stream.queue.get_nowait()
                    stream.lagging = False
                if cursor < core.ledger.height and stream.queue.empty():
                    # Replay (or catch up after lagging) from the ledger.
                    block = await asyncio.to_thread(core.ledger.get_block, cursor)
                    await sender.send(stored_block_event(block))
                    cursor += 1
                    continue
                try:
                    event = await asyncio.wait_for(stream.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if event is None:
                    break
                if event.number < cursor:
                    continue
                while cursor < event.number:  # committed while we were not listening
                    block = await asyncio.to_thread(core.ledger.get_block, cursor)
                    await sender.send(stored_block_event(block))
                    cursor += 1
                await sender.send(event)
                cursor = event.number + 1
        except ConnectionError:
            pass  # the client went away
        finally:
            core.streams.discard(stream)
        return response

    # -- metrics and documents --------------------------------------------------------------

    async def metrics(self, request: web.Request) -> web.Response:
        query_params(request, ())
        self.reader(request)
        core = self.core
        text = core.metrics.render(
            height=core.ledger.height,
            orderers=list(core.orderer_views.values()),
            event_streams=len(core.streams),
            caught_up=core.caught_up,
        )
        return web.Response(body=text.encode(), headers={"Content-Type": METRICS_TYPE})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type="application/yaml")


def block_json(block: Block, orderers: CertificateResolver | None = None) -> dict[str, Any]:
    """``orderers``: resolves the orderers' certificate references in the signatures."""
    event = stored_block_event(block)
    return {
        "number": block.number,
        "hash": block.hash().hex(),
        "previous_hash": block.header.previous_hash.hex(),
        "data_hash": block.header.data_hash.hex(),
        "tx_count": len(block.transactions),
        "transactions": [
            {
                "index": tx.index,
                "tx_id": tx.tx_id,
                "validation_code": tx.code,
                "validation_code_name": code_name(tx.code),
            }
            for tx in event.transactions
        ],
        "signers": [
            {"msp_id": s.msp_id, "name": _subject(s.cert, orderers)}
            for s in block.metadata.signatures
        ],
    }


class _EventSender:
    """Writes one block's events; contract event payloads only where the caller may see
    them: a camera's events if Algorithm 1 grants the caller access to the camera, other
    events to the caller's own organisation."""

    def __init__(self, api: ReadApi, identity: Identity, response: web.StreamResponse) -> None:
        self.api = api
        self.identity = identity
        self.response = response

    async def send(self, event: BlockEvent) -> None:
        access: dict[str, bool] = {}  # per block: grants may change with every block
        block = {
            "number": event.number,
            "hash": event.block_hash.hex(),
            "transactions": [
                {
                    "index": tx.index,
                    "tx_id": tx.tx_id,
                    "validation_code": tx.code,
                    "validation_code_name": tx.code_name,
                    **({"reason": tx.reason} if tx.reason else {}),
                }
                for tx in event.transactions
            ],
        }
        chunks = [_sse("block", block, None if event.contract_events else event.number)]
        for position, contract_event in enumerate(event.contract_events):
            last = position == len(event.contract_events) - 1
            data = await self._contract_json(contract_event, access)
            chunks.append(_sse("contract", data, event.number if last else None))
        await self.response.write(b"".join(chunks))

    async def _contract_json(self, event: ContractEvent, access: dict[str, bool]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "event_id": event.event_id,
            "block": event.block,
            "tx_id": event.tx_id,
            "contract": event.contract,
            "name": event.name,
        }
        if await self._visible(event, access):
            data["payload_b64"] = b64(event.payload)
        else:
            data["redacted"] = True
        return data

    async def _visible(self, event: ContractEvent, access: dict[str, bool]) -> bool:
        # The CCTV contract's payloads: a historian record, or for an anchor (one per
        # camera every 10 s) the small AnchorEvent, which always names its camera.
        try:
            record: HistorianRecord | AnchorEvent = (
                AnchorEvent.decode(event.payload)
                if event.name == "AnchorSegment"
                else HistorianRecord.decode(event.payload)
            )
        except (CodecError, ValueError, TypeError):
            return False
        if not record.camera_id:
            return isinstance(record, HistorianRecord) and record.org == self.identity.msp_id
        if record.camera_id not in access:
            response = await asyncio.to_thread(
                self.api.core.query, self.identity, "CheckAccess", (record.camera_id,)
            )
            decision = json.loads(response.payload) if response.ok and response.payload else {}
            access[record.camera_id] = decision.get("decision") == "granted"
        return access[record.camera_id]


def _sse(kind: str, data: dict[str, Any], event_id: int | None) -> bytes:
    lines = [f"event: {kind}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    return ("\n".join(lines) + "\n\n").encode()
