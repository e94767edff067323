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

The store also keeps two indexes for network verification
(:mod:`cctvchain.peernode.evidence`): each record's digest -> (camera, sequence,
index), and per segment its sampled frames' (capture time, index, DCT hash). They are
written in the same batch as the records and built on open for a store without them.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
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
from cctvchain.ingest.fingerprint import FrameRecord
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
from cctvchain.peernode.api import channel_reader
from cctvchain.peernode.core import PeerCore
from cctvchain.peernode.wire import read_binary, refusal_error

RECORDS_DIR: Final = "records"
MIN_HEIGHT_WAIT: Final = 5.0
MAX_TIME: Final = 2**63 - 1
MAX_SEQUENCE_DIGITS: Final = 18


def _key(camera_id: str, sequence: int) -> bytes:
    return f"{camera_id}\x00{padded(sequence)}".encode()


# The indexes live in the same LevelDB under keys that start with \x01, which no record
# key does (a camera id starts with a letter or digit), and are written in the same
# batch as the records they index, so they can never disagree with them.
_INDEX_VERSION_KEY: Final = b"\x01v"
_INDEX_VERSION: Final = b"1"
_DIGEST_PREFIX: Final = b"\x01d"
_PERCEPTUAL_PREFIX: Final = b"\x01p"
_LOCATION: Final = struct.Struct(">QI")  # sequence, index: after the digest in the key
_SAMPLE: Final = struct.Struct(">qI8s")  # capture time, index, DCT hash: one sampled frame
MAX_HITS_PER_DIGEST: Final = 16  # a still scene repeats a digest; a few places suffice


def _digest_key(camera_id: str, digest: bytes, sequence: int, index: int) -> bytes:
    return _DIGEST_PREFIX + camera_id.encode() + b"\x00" + digest + _LOCATION.pack(sequence, index)


def _perceptual_key(camera_id: str, sequence: int) -> bytes:
    return _PERCEPTUAL_PREFIX + camera_id.encode() + b"\x00" + padded(sequence).encode()


def _samples(records: Sequence[FrameRecord]) -> bytes:
    return b"".join(
        _SAMPLE.pack(r.capture_time_ms, r.index, r.perceptual.dct_hash)
        for r in records
        if r.perceptual is not None
    )


@dataclass(frozen=True)
class DigestHit:
    """Where a frame digest is among a camera's stored records."""

    digest: bytes
    sequence: int
    index: int


@dataclass
class PerceptualTable:
    """A camera's sampled frames, as columns for a numpy scan: capture time, segment
    sequence and the 64-bit DCT hash (big-endian bytes read as an unsigned integer)."""

    times: npt.NDArray[np.int64]
    sequences: npt.NDArray[np.int64]
    hashes: npt.NDArray[np.uint64]

    @classmethod
    def of(cls, chunks: Sequence[tuple[int, bytes]]) -> PerceptualTable:
        count = sum(len(data) // _SAMPLE.size for _, data in chunks)
        times = np.empty(count, dtype=np.int64)
        sequences = np.empty(count, dtype=np.int64)
        hashes = np.empty(count, dtype=np.uint64)
        at = 0
        for sequence, data in chunks:
            n = len(data) // _SAMPLE.size
            rows = np.frombuffer(
                data, dtype=np.dtype([("t", ">i8"), ("i", ">u4"), ("h", ">u8")]), count=n
            )
            times[at : at + n] = rows["t"]
            sequences[at : at + n] = sequence
            hashes[at : at + n] = rows["h"]
            at += n
        return cls(times, sequences, hashes)

    @classmethod
    def join(cls, tables: Sequence[PerceptualTable]) -> PerceptualTable:
        return cls(
            np.concatenate([t.times for t in tables]),
            np.concatenate([t.sequences for t in tables]),
            np.concatenate([t.hashes for t in tables]),
        )

    def __len__(self) -> int:
        return len(self.hashes)


class RecordStore:
    """Frame records by (camera, sequence): the canonical SegmentRecords bytes; with two
    indexes for finding where a clip's frames come from (``locate``): every record's
    digest -> (camera, sequence, index), and per segment its sampled frames' capture
    times and DCT hashes. Both are built for existing records when the store is opened
    without them (a store written before they existed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: Any = None
        self._lock = threading.Lock()
        # camera -> [loaded table, tables of segments stored since]: loaded on the
        # first perceptual search of the camera, extended as records arrive.
        self._tables: dict[str, list[PerceptualTable]] = {}

    def open(self) -> int | None:
        """Open the store; the number of segments indexed if the indexes were missing."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._db = plyvel.DB(str(self.path), create_if_missing=True)
        if self._db.get(_INDEX_VERSION_KEY) != _INDEX_VERSION:
            return self.build_indexes()
        return None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        self._tables.clear()

    def _handle(self) -> Any:
        if self._db is None:
            raise HttpError("the record store is not open", code="not_ready", status=503)
        return self._db

    def build_indexes(self) -> int:
        """Index every stored segment (idempotent); the number of segments indexed."""
        db = self._handle()
        count = 0
        # Record keys start with a camera id's first character (>= "0"); index keys
        # with \x01.
        for key, value in db.iterator(start=b"0"):
            camera_bytes, _, seq_text = bytes(key).partition(b"\x00")
            upload = SegmentRecords.decode(bytes(value))
            with db.write_batch(sync=False) as batch:
                self._index(batch, camera_bytes.decode(), int(seq_text), upload.records)
            count += 1
        db.put(_INDEX_VERSION_KEY, _INDEX_VERSION, sync=True)
        return count

    @staticmethod
    def _index(batch: Any, camera_id: str, sequence: int, records: Sequence[FrameRecord]) -> None:
        for record in records:
            batch.put(_digest_key(camera_id, record.digest, sequence, record.index), b"")
        batch.put(_perceptual_key(camera_id, sequence), _samples(records))

    def get(self, camera_id: str, sequence: int) -> bytes | None:
        value = self._handle().get(_key(camera_id, sequence))
        return None if value is None else bytes(value)

    def put(
        self,
        camera_id: str,
        sequence: int,
        data: bytes,
        records: Sequence[FrameRecord] | None = None,
    ) -> bool:
        """Store a segment's records with their index entries, in one synced batch;
        False (nothing written) if the segment is stored already."""
        if records is None:
            records = SegmentRecords.decode(data).records
        db = self._handle()
        # Under the lock: a camera's perceptual table is either loaded before this write
        # (and extended here) or after it (and reads it), never both or neither.
        with self._lock:
            if db.get(_key(camera_id, sequence)) is not None:
                return False
            with db.write_batch(sync=True) as batch:
                batch.put(_key(camera_id, sequence), data)
                self._index(batch, camera_id, sequence, records)
            tables = self._tables.get(camera_id)
            if tables is not None:
                tables.append(PerceptualTable.of([(sequence, _samples(records))]))
        return True

    def find_digests(self, camera_id: str, digests: Iterable[bytes]) -> list[DigestHit]:
        """Where each digest is among the camera's records (at most
        :data:`MAX_HITS_PER_DIGEST` places each); one iterator walks the sorted digests."""
        prefix = _DIGEST_PREFIX + camera_id.encode() + b"\x00"
        hits: list[DigestHit] = []
        iterator = self._handle().raw_iterator()
        try:
            for digest in sorted(set(digests)):
                start = prefix + digest
                iterator.seek(start)
                found = 0
                while iterator.valid() and found < MAX_HITS_PER_DIGEST:
                    key = bytes(iterator.key())
                    if not key.startswith(start):
                        break
                    sequence, index = _LOCATION.unpack(key[len(start) :])
                    hits.append(DigestHit(digest, sequence, index))
                    found += 1
                    iterator.next()
        finally:
            iterator.close()
        return hits

    def perceptual_table(self, camera_id: str) -> PerceptualTable:
        """The camera's sampled frames (loaded once, then kept up to date by ``put``)."""
        with self._lock:
            tables = self._tables.get(camera_id)
            if tables is not None:
                if len(tables) > 1:
                    tables[:] = [PerceptualTable.join(tables)]
                return tables[0]
            # Loaded under the lock: a put meanwhile must find the table to extend.
            prefix = _PERCEPTUAL_PREFIX + camera_id.encode() + b"\x00"
            chunks = [
                (int(bytes(key)[len(prefix) :]), bytes(value))
                for key, value in self._handle().iterator(prefix=prefix)
            ]
            table = PerceptualTable.of(chunks)
            self._tables[camera_id] = [table]
            return table


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
        indexed = await asyncio.to_thread(self.store.open)
        if indexed:
            self.core.log.info("indexed the frame records of %d stored segment(s)", indexed)

    async def cleanup(self, _app: web.Application) -> None:
        self.store.close()

    # -- helpers ---------------------------------------------------------------------------

    def _reader(self, request: web.Request) -> Identity:
        return channel_reader(self.core, request)

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
        created = await asyncio.to_thread(
            self.store.put, camera_id, sequence, upload.encode(), upload.records
        )
        if created:
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


def mount_records(app: web.Application, core: PeerCore, api: str) -> RecordsApi:
    """Add the record store's routes and its open/close to a peer's application."""
    records = RecordsApi(core)
    router = app.router
    path = f"{api}/cameras/{{camera_id}}/segments/{{sequence:\\d+}}/records"
    router.add_put(path, records.put_records)
    router.add_get(path, records.get_records)
    router.add_get(f"{api}/cameras/{{camera_id}}/gaps", records.gaps)
    app.on_startup.append(records.start)
    app.on_cleanup.append(records.cleanup)
    return records
