"""The peer's frame-record store: the per-frame records that do not go on-chain.

A camera's segments are anchored on the ledger by their RFC 6962 root only; the frame
records under that root are kept by peers, each in its own LevelDB in
``<node dir>/records`` (not the world state: they are not replicated by consensus but
uploaded by the camera's extractor to peers of at least two organisations).

* ``PUT /api/v1/cameras/{id}/segments/{seq}/records`` — the camera's own identity (its
  TLS certificate, bound to the camera by ``Approve``) sends a
  :class:`~cctvchain.ingest.records.SegmentRecords` message. The peer reads the anchored
  segment from its own ledger state (``?min_height=N`` waits briefly for block N-1 to
  commit here) and stores the records only if they are exactly the leaves of its Merkle
  root; an identical upload again is answered as stored (``created`` false). Codes:
  ``WRONG_IDENTITY`` (403, not this camera's identity), ``not_anchored`` (409, no such
  anchor on this peer's ledger yet: retry), ``records_mismatch`` (400).
* ``GET /api/v1/cameras/{id}/segments/{seq}/records[?index=i]`` — camera data: the
  contract's ``GetAnchor`` runs as the caller, so Algorithm 1 decides exactly as for the
  anchors; the answer holds the anchor's root and ledger position and each record with
  its inclusion proof. ``records_not_stored`` (404) when this peer has none: ask another.
* ``GET /api/v1/cameras/{id}/gaps[?from&to]`` — the gaps the camera's extractor reported
  (``GetGaps``, Algorithm 1).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import plyvel
from aiohttp import web

from cctvchain.chaincode.cctv.access import is_valid_camera_id
from cctvchain.chaincode.cctv.model import (
    K_ANCHOR,
    K_CAMERA_BY_IDENTITY,
    NAMESPACE,
    Anchor,
    padded,
)
from cctvchain.codec import CodecError
from cctvchain.ingest.records import (
    MAX_RECORDS_BYTES,
    RecordsError,
    SegmentRecords,
    check_records,
    records_answer,
)
from cctvchain.ledger.keys import create_composite_key
from cctvchain.msp.identity import Identity
from cctvchain.node.auth import caller
from cctvchain.node.errors import BadRequest, Conflict, Forbidden, HttpError, NotFound
from cctvchain.node.http import JSON_TYPE, json_response
from cctvchain.peer.channel import READERS
from cctvchain.peernode.core import PeerCore
from cctvchain.peernode.wire import read_binary, refusal_error
from cctvchain.policy import evaluate

RECORDS_DIR: Final = "records"
MIN_HEIGHT_WAIT: Final = 5.0
MAX_TIME: Final = 2**63 - 1
MAX_SEQUENCE_DIGITS: Final = 18


def _key(camera_id: str, sequence: int) -> bytes:
    return f"{camera_id}\x00{padded(sequence)}".encode()


class RecordStore:
    """Frame records by (camera, sequence): the canonical SegmentRecords bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: Any = None

    def open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._db = plyvel.DB(str(self.path), create_if_missing=True)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _handle(self) -> Any:
        if self._db is None:
            raise HttpError("the record store is not open", code="not_ready", status=503)
        return self._db

    def get(self, camera_id: str, sequence: int) -> bytes | None:
        value = self._handle().get(_key(camera_id, sequence))
        return None if value is None else bytes(value)

    def put(self, camera_id: str, sequence: int, data: bytes) -> None:
        self._handle().put(_key(camera_id, sequence), data, sync=True)


def _camera_id(request: web.Request) -> str:
    value = request.match_info["camera_id"]
    if not is_valid_camera_id(value):
        raise BadRequest(f"{value[:80]!r} is not a valid camera id", code="bad_camera_id")
    return value


def _sequence(request: web.Request) -> int:
    text = request.match_info["sequence"]
    if len(text) > MAX_SEQUENCE_DIGITS:
        raise BadRequest("sequence is too large", code="bad_query")
    return int(text)


def _params(request: web.Request, allowed: set[str]) -> Mapping[str, str]:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)}", code="unknown_parameter"
        )
    return request.query


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_TIME:
        raise BadRequest(f"{name} must be an integer from 0 to {MAX_TIME}", code="bad_query")
    return int(raw)


class RecordsApi:
    def __init__(self, core: PeerCore) -> None:
        self.core = core
        node_dir = core.context.material.node_dirs[core.name]
        self.store = RecordStore(node_dir / RECORDS_DIR)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, _app: web.Application) -> None:
        await asyncio.to_thread(self.store.open)

    async def cleanup(self, _app: web.Application) -> None:
        self.store.close()

    # -- helpers ---------------------------------------------------------------------------

    def _reader(self, request: web.Request) -> Identity:
        identity = caller(request)
        if not evaluate(self.core.channel.policy(READERS), [identity]):
            raise Forbidden(
                f"{identity.name} of {identity.msp_id} does not satisfy the channel's Readers "
                "policy",
                code="not_a_reader",
            )
        return identity

    def _state(self, object_type: str, *attributes: str) -> bytes | None:
        with self.core.ledger.snapshot() as snapshot:
            found = snapshot.get_state(NAMESPACE, create_composite_key(object_type, attributes))
        return None if found is None else found.value

    def _bound_camera(self, identity: Identity) -> str | None:
        raw = self._state(K_CAMERA_BY_IDENTITY, identity.msp_id, identity.name)
        return None if raw is None else raw.decode()

    def _anchor(self, camera_id: str, sequence: int) -> Anchor | None:
        raw = self._state(K_ANCHOR, camera_id, padded(sequence))
        if raw is None:
            return None
        try:
            return Anchor.decode(raw)
        except CodecError as exc:
            raise HttpError(f"stored anchor is damaged: {exc}", code="corrupt_state") from None

    async def _query(self, identity: Identity, function: str, *args: str) -> Any:
        response = await asyncio.to_thread(self.core.query, identity, function, args)
        if not response.ok:
            raise refusal_error(response)
        return json.loads(response.payload) if response.payload else None

    # -- PUT records -----------------------------------------------------------------------

    async def put_records(self, request: web.Request) -> web.Response:
        params = _params(request, {"min_height"})
        identity = caller(request)
        camera_id, sequence = _camera_id(request), _sequence(request)
        min_height = _int(params, "min_height", 0)
        if min_height > self.core.ledger.height:
            await self.core.wait_for_height(min_height, MIN_HEIGHT_WAIT)
        bound = None
        if identity.id_type == "camera":
            bound = await asyncio.to_thread(self._bound_camera, identity)
        if bound != camera_id:
            raise Forbidden(
                f"{identity.name} of {identity.msp_id} is not the identity of camera "
                f"{camera_id}; only the camera's own identity uploads its frame records",
                code="WRONG_IDENTITY",
            )
        data = await read_binary(request, MAX_RECORDS_BYTES, "the segment's frame records")
        try:
            upload = SegmentRecords.decode(data)
        except (CodecError, ValueError, TypeError) as exc:
            raise BadRequest(
                f"the body is not a SegmentRecords message: {exc}", code="malformed_records"
            ) from None
        if (upload.camera_id, upload.sequence) != (camera_id, sequence):
            raise BadRequest(
                f"the body holds segment {upload.sequence} of camera {upload.camera_id}",
                code="records_mismatch",
            )
        anchor = await asyncio.to_thread(self._anchor, camera_id, sequence)
        if anchor is None:
            raise Conflict(
                f"segment {sequence} of camera {camera_id} is not anchored on this peer's "
                f"ledger (height {self.core.ledger.height}); retry after it commits",
                code="not_anchored",
            )
        segment = anchor.segment
        try:
            await asyncio.to_thread(
                check_records, upload.records, segment.merkle_root, segment.frame_count
            )
        except RecordsError as exc:
            raise BadRequest(str(exc), code="records_mismatch") from None
        existing = await asyncio.to_thread(self.store.get, camera_id, sequence)
        created = existing is None
        if created:
            await asyncio.to_thread(self.store.put, camera_id, sequence, upload.encode())
            self.core.log.info(
                "stored %d frame records of segment %d of camera %s",
                len(upload.records),
                sequence,
                camera_id,
            )
        return json_response(
            {
                "camera": camera_id,
                "sequence": sequence,
                "frames": len(upload.records),
                "merkleRoot": segment.merkle_root.hex(),
                "created": created,
                "peer": self.core.name,
                "msp_id": self.core.serialized.msp_id,
            },
            status=201 if created else 200,
        )

    # -- GET records -----------------------------------------------------------------------

    async def get_records(self, request: web.Request) -> web.Response:
        params = _params(request, {"index"})
        identity = self._reader(request)
        camera_id, sequence = _camera_id(request), _sequence(request)
        index = _int(params, "index", -1) if params.get("index") else None
        # Algorithm 1, and the anchor as this peer's ledger has it.
        anchor = await self._query(identity, "GetAnchor", camera_id, str(sequence))
        stored = await asyncio.to_thread(self.store.get, camera_id, sequence)
        if stored is None:
            raise NotFound(
                f"this peer ({self.core.name}) holds no frame records of segment {sequence} "
                f"of camera {camera_id}; ask another peer",
                code="records_not_stored",
            )
        records = SegmentRecords.decode(stored).records
        if index is not None and not 0 <= index < len(records):
            raise NotFound(
                f"segment {sequence} has frames 0..{len(records) - 1}, not {index}",
                code="unknown_frame",
            )
        answer = await asyncio.to_thread(
            records_answer, records, None if index is None else [index]
        )
        body = {
            "camera": camera_id,
            "sequence": sequence,
            "frameCount": anchor["frameCount"],
            "merkleRoot": anchor["merkleRoot"],
            "segmentHash": anchor["segmentHash"],
            "block": anchor["block"],
            "txId": anchor["txId"],
            "segment": anchor["segment"],
            "peer": self.core.name,
            "records": answer,
        }
        return web.Response(
            body=json.dumps(body, separators=(",", ":")).encode(), content_type=JSON_TYPE
        )

    # -- GET gaps --------------------------------------------------------------------------

    async def gaps(self, request: web.Request) -> web.Response:
        params = _params(request, {"from", "to"})
        identity = self._reader(request)
        start, end = _int(params, "from", 0), _int(params, "to", MAX_TIME)
        if end < start:
            raise BadRequest("the time range ends before it starts", code="bad_query")
        found = await self._query(identity, "GetGaps", _camera_id(request), str(start), str(end))
        return json_response(found)


def mount_records(app: web.Application, core: PeerCore, api: str) -> None:
    """Add the record store's routes and its open/close to a peer's application."""
    records = RecordsApi(core)
    router = app.router
    path = f"{api}/cameras/{{camera_id}}/segments/{{sequence:\\d+}}/records"
    router.add_put(path, records.put_records)
    router.add_get(path, records.get_records)
    router.add_get(f"{api}/cameras/{{camera_id}}/gaps", records.gaps)
    app.on_startup.append(records.start)
    app.on_cleanup.append(records.cleanup)
