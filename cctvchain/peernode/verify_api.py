"""The peer's side of network verification: locate, evidence, headers, verify.

Peer raw blocks go to peers, orderers and admins only; a verifier instead asks for
exactly the evidence its clip needs, and the peer decides access like the contract
does. Every route needs mutual TLS and the channel's ``Readers`` policy; the camera
routes then run the contract's ``CheckAccess`` (Algorithm 1) as the caller, and a
denial is a 403 with the contract's code ``ACCESS_DENIED`` and why — before any body
is read, so a caller without access learns nothing about the camera's video.

* ``POST /api/v1/cameras/{id}/locate`` — JSON ``{"digests": [hex64...], "dct":
  [hex16...], "from": ms|null, "to": ms|null}``: which anchored segments a clip's frames
  come from (:func:`cctvchain.peernode.evidence.locate`). At most
  :data:`~cctvchain.peernode.evidence.MAX_LOCATE_DIGESTS` digests and
  :data:`~cctvchain.peernode.evidence.MAX_LOCATE_DCT` hashes (413 ``too_many_frames``).
* ``GET /api/v1/cameras/{id}/evidence?from=MS&to=MS`` — ``application/cbor``: an
  :class:`~cctvchain.verify.bundle.EvidenceBundle` (no clip) from this peer's ledger and
  record store; 404 ``no_anchors`` / ``records_not_stored``; 400 ``range_too_large``
  beyond ``[peer] max_evidence_span_s`` of capture (default 2 h; the refusal carries
  the limit as ``max_span_ms``, and the locate answer as ``maxEvidenceSpanMs``, so that
  a client fetches a longer clip's evidence in windows).
* ``GET /api/v1/blocks/{n}/header`` — ``{number, hash, previousHash, dataHash}`` for
  any channel reader, so a client can compare one peer's evidence with the chain of a
  peer of another organisation.
* ``POST /api/v1/cameras/{id}/verify[?bundle=1]`` — the body is the clip (any content
  type), streamed to a temporary file under the node directory while counting bytes:
  413 ``clip_too_large`` as soon as ``[peer] max_clip_bytes`` is exceeded (the file
  removed). In a worker thread: decode and fingerprint, locate, build the bundle,
  :func:`~cctvchain.verify.bundle.check_bundle` and the JSON report of PRODUCT §4
  (``?bundle=1``: the bundle with the clip's fingerprints instead). An undecodable
  upload is 422 ``bad_clip``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from cctvchain import __version__
from cctvchain.ledger.errors import BlockNotFoundError
from cctvchain.msp.identity import Identity
from cctvchain.node.errors import (
    BadRequest,
    Forbidden,
    HttpError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from cctvchain.node.http import json_response
from cctvchain.peernode.api import camera_id as camera_param
from cctvchain.peernode.api import channel_reader, int_param, query_params
from cctvchain.peernode.core import PeerCore
from cctvchain.peernode.evidence import (
    MAX_LOCATE_DCT,
    MAX_LOCATE_DIGESTS,
    EvidenceError,
    assemble_bundle,
    check_span,
    locate,
)
from cctvchain.peernode.records import RecordStore
from cctvchain.peernode.wire import refusal_error
from cctvchain.verify.bundle import check_bundle, with_clip
from cctvchain.verify.fingerprints import ClipFingerprints
from cctvchain.verify.report import build_report, dumps
from cctvchain.verify.result import result_from_bundle, unverifiable

CBOR_TYPE: Final = "application/cbor"
VERIFY_DIR: Final = "verify-uploads"
# A locate body: 200,000 digests of 66 JSON bytes and 20,000 hashes of 20, with room.
MAX_LOCATE_BYTES: Final = MAX_LOCATE_DIGESTS * 70 + MAX_LOCATE_DCT * 24 + 64 * 1024
MAX_VERIFY_DCT: Final = 6_000  # clip DCT hashes the HTTP verify searches with (spread)
CONCURRENT_VERIFICATIONS: Final = 2  # decoding is CPU-bound: more would only queue
MAX_PENDING_VERIFICATIONS: Final = 8  # uploads on disk or arriving; beyond: 503
WRITE_CHUNK: Final = 1 << 20
_HEX64: Final = re.compile(r"[0-9a-fA-F]{64}")
_HEX16: Final = re.compile(r"[0-9a-fA-F]{16}")


class _SpanError(HttpError):
    """``range_too_large``, with the peer's limit in the JSON body."""

    def __init__(self, message: str, code: str, status: int, max_span_ms: int) -> None:
        super().__init__(message, code=code, status=status)
        self.max_span_ms = max_span_ms

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "max_span_ms": self.max_span_ms}


def evidence_http_error(exc: EvidenceError) -> HttpError:
    if exc.max_span_ms is not None:
        return _SpanError(exc.message, exc.code, exc.status, exc.max_span_ms)
    return HttpError(exc.message, code=exc.code, status=exc.status)


def _hex_list(
    value: Any, name: str, pattern: re.Pattern[str], limit: int, what: str
) -> list[bytes]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{name} must be a list of hex strings", code="bad_locate")
    if len(value) > limit:
        raise PayloadTooLarge(
            f"{len(value)} {name} entries; at most {limit} per request (ask for a shorter "
            "clip at a time)",
            code="too_many_frames",
        )
    out = []
    for position, item in enumerate(value):
        if not isinstance(item, str) or not pattern.fullmatch(item):
            raise BadRequest(f"{name}[{position}] is not {what}", code="bad_locate")
        out.append(bytes.fromhex(item))
    return out


def _time(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise BadRequest(f"{name} must be ms since the epoch or null", code="bad_locate")
    return value


def spread(items: list[bytes], limit: int) -> list[bytes]:
    """At most ``limit`` of ``items``, evenly spaced over them."""
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(k * step)] for k in range(limit)]


class VerifyApi:
    def __init__(self, core: PeerCore, store: RecordStore) -> None:
        self.core = core
        self.store = store
        self.max_clip_bytes = core.context.config.peer.max_clip_bytes
        self.max_span_ms = core.context.config.peer.max_evidence_span_s * 1000
        self.upload_dir = core.context.material.node_dirs[core.name] / VERIFY_DIR
        self._slots: asyncio.Semaphore | None = None
        self._pending = 0  # verifications received or receiving, not yet answered

    async def start(self, _app: web.Application) -> None:
        await asyncio.to_thread(self._remove_stale_uploads)

    def _remove_stale_uploads(self) -> None:
        """Uploads left by a peer that stopped mid-verification (nothing else is there)."""
        if self.upload_dir.is_dir():
            for stale in self.upload_dir.glob("clip-*"):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()

    # -- access ------------------------------------------------------------------------------

    def _reader(self, request: web.Request) -> Identity:
        return channel_reader(self.core, request)

    async def _camera_access(self, request: web.Request) -> tuple[Identity, str]:
        """The caller and the camera, once Algorithm 1 granted the caller access."""
        identity = self._reader(request)
        camera = camera_param(request)
        response = await asyncio.to_thread(self.core.query, identity, "CheckAccess", (camera,))
        if not response.ok:
            raise refusal_error(response)
        decision = json.loads(response.payload) if response.payload else {}
        if decision.get("decision") != "granted":
            # The contract's own words for a denial (require_access).
            raise Forbidden(
                f"access to camera {camera} denied: {decision.get('reason', 'no reason given')}",
                code="ACCESS_DENIED",
            )
        return identity, camera

    # -- locate ------------------------------------------------------------------------------

    async def handle_locate(self, request: web.Request) -> web.Response:
        query_params(request, ())
        _, camera = await self._camera_access(request)
        body = await self._read_limited(request, MAX_LOCATE_BYTES, "the locate request")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"the body is not JSON: {exc}", code="bad_locate") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object", code="bad_locate")
        unknown = sorted(set(data) - {"digests", "dct", "from", "to"})
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(unknown)}", code="bad_locate")
        digests = _hex_list(
            data.get("digests"), "digests", _HEX64, MAX_LOCATE_DIGESTS, "a 64-digit hex digest"
        )
        dct = _hex_list(data.get("dct"), "dct", _HEX16, MAX_LOCATE_DCT, "a 16-digit hex DCT hash")
        start, end = _time(data.get("from"), "from"), _time(data.get("to"), "to")
        if start is not None and end is not None and end < start:
            raise BadRequest("the time range ends before it starts", code="bad_locate")
        if not digests and not dct:
            raise BadRequest("send the clip's digests or DCT hashes", code="bad_locate")
        found = await asyncio.to_thread(self._locate, camera, digests, dct, start, end)
        # The longest span GET .../evidence serves: a client fetches a longer one in windows.
        return json_response({**found.json(), "maxEvidenceSpanMs": self.max_span_ms})

    def _locate(
        self,
        camera: str,
        digests: list[bytes],
        dct: list[bytes],
        start: int | None,
        end: int | None,
    ) -> Any:
        try:
            with self.core.ledger.snapshot() as snapshot:
                return locate(
                    snapshot, self.store, camera, digests, dct, start_ms=start, end_ms=end
                )
        except EvidenceError as exc:
            raise evidence_http_error(exc) from None

    # -- evidence ----------------------------------------------------------------------------

    async def handle_evidence(self, request: web.Request) -> web.Response:
        params = query_params(request, {"from", "to"})
        if not params.get("from") or not params.get("to"):
            raise BadRequest(
                "give the capture range as from=MS&to=MS (ms since the epoch)", code="bad_query"
            )
        start, end = int_param(params, "from", 0), int_param(params, "to", 0)
        try:
            check_span(start, end, self.max_span_ms)
        except EvidenceError as exc:
            raise evidence_http_error(exc) from None
        identity, camera = await self._camera_access(request)
        bundle = await asyncio.to_thread(self._bundle, camera, start, end, identity)
        return web.Response(body=bundle, content_type=CBOR_TYPE)

    def _bundle(self, camera: str, start: int, end: int, identity: Identity) -> bytes:
        try:
            return assemble_bundle(
                self.core.ledger,
                self.store,
                camera,
                start,
                end,
                channel_id=self.core.channel.channel_id,
                created_ms=self.core.now_ms(),
                tool=f"cctvchain {__version__}",
                source=f"{self.core.name} ({self.core.serialized.msp_id})",
                command=f"evidence for {identity.name} of {identity.msp_id}",
                max_span_ms=self.max_span_ms,
            ).encode()
        except EvidenceError as exc:
            raise evidence_http_error(exc) from None

    # -- block headers -------------------------------------------------------------------------

    async def handle_header(self, request: web.Request) -> web.Response:
        query_params(request, ())
        self._reader(request)
        text = request.match_info["number"]
        height = self.core.ledger.height
        number = int(text) if len(text) <= 19 else -1
        if not 0 <= number < height:
            raise NotFound(
                f"block {text[:40]} does not exist (height {height})", code="unknown_block"
            )
        try:
            block = await asyncio.to_thread(self.core.ledger.get_block, number)
        except BlockNotFoundError as exc:
            raise NotFound(str(exc), code="unknown_block") from None
        header = block.header
        return json_response(
            {
                "number": header.number,
                "hash": block.hash().hex(),
                "previousHash": header.previous_hash.hex(),
                "dataHash": header.data_hash.hex(),
            }
        )

    # -- verify --------------------------------------------------------------------------------

    async def handle_verify(self, request: web.Request) -> web.Response:
        params = query_params(request, {"bundle", "name"})
        as_bundle = params.get("bundle", "0")
        if as_bundle not in ("0", "1", "true", "false"):
            raise BadRequest("bundle must be 0 or 1", code="bad_query")
        name = params.get("name") or "upload"
        if len(name) > 200 or "/" in name or "\x00" in name:
            raise BadRequest("name is a file name of at most 200 characters", code="bad_query")
        _, camera = await self._camera_access(request)
        if self._slots is None:
            self._slots = asyncio.Semaphore(CONCURRENT_VERIFICATIONS)
        if self._pending >= MAX_PENDING_VERIFICATIONS:
            # Each waiting upload holds up to max_clip_bytes of disk: refuse more.
            raise ServiceUnavailable(
                f"this peer is verifying {self._pending} clips already; retry later",
                code="too_many_verifications",
                headers={"Retry-After": "10"},
            )
        self._pending += 1
        try:
            path = await self._receive_clip(request)
            try:
                async with self._slots:
                    body, content_type = await asyncio.to_thread(
                        self._verify, camera, path, name, as_bundle in ("1", "true")
                    )
            finally:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        finally:
            self._pending -= 1
        return web.Response(body=body, content_type=content_type)

    async def _receive_clip(self, request: web.Request) -> Path:
        """The body in a temporary file, or 413 ``clip_too_large`` at the first byte over
        the limit (the partial file removed)."""
        limit = self.max_clip_bytes
        too_large = PayloadTooLarge(
            f"the clip exceeds this peer's limit of {limit} bytes ([peer] max_clip_bytes)",
            code="clip_too_large",
        )
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        await asyncio.to_thread(self.upload_dir.mkdir, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="clip-", dir=self.upload_dir)
        path = Path(name)
        received = 0
        try:
            with os.fdopen(fd, "wb") as out:
                pending = bytearray()
                async for chunk in request.content.iter_any():
                    received += len(chunk)
                    if received > limit:
                        raise too_large
                    pending += chunk
                    if len(pending) >= WRITE_CHUNK:
                        await asyncio.to_thread(out.write, bytes(pending))
                        pending.clear()
                if pending:
                    await asyncio.to_thread(out.write, bytes(pending))
            if received == 0:
                raise BadRequest("the request body is empty; send the clip", code="empty_body")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise
        return path

    def _verify(self, camera: str, path: Path, name: str, as_bundle: bool) -> tuple[bytes, str]:
        """Decode, locate, bundle, check and report (a worker thread)."""
        # PyAV only here: importing the media shell costs nothing until a clip arrives.
        from cctvchain.media import MediaError
        from cctvchain.verify.clip import fingerprint_clip

        try:
            clip = fingerprint_clip(path)
        except (MediaError, ValueError, OSError) as exc:
            raise HttpError(
                f"the upload is not a decodable video: {exc}", code="bad_clip", status=422
            ) from None
        if not clip.frames:
            raise HttpError("the upload holds no video frames", code="bad_clip", status=422)
        # The report names the upload, never this peer's temporary file.
        clip = ClipFingerprints(
            replace(clip.info, path="", name=name), clip.frames, clip.perceptual_frames
        )
        digests = [f.digest for f in clip.frames]
        dct = spread([f.dct_hash for f in clip.frames if f.dct_hash is not None], MAX_VERIFY_DCT)
        command = f"POST /api/v1/cameras/{camera}/verify at {self.core.name}"
        try:
            with self.core.ledger.snapshot() as snapshot:
                found = locate(snapshot, self.store, camera, digests[:MAX_LOCATE_DIGESTS], dct)
            start, end = found.capture_start_ms, found.capture_end_ms
            if start is None or end is None:
                result = unverifiable(
                    camera,
                    f"no anchored segment of camera {camera} held by this peer matches the "
                    "clip's frames",
                    clip=clip.info,
                    source="network",
                    command=command,
                )
                return _json(build_report(result)), "application/json"
            if end - start > self.max_span_ms:
                # The best run is longer than one bundle: verify its first window.
                end = start + self.max_span_ms
            bundle = assemble_bundle(
                self.core.ledger,
                self.store,
                camera,
                start,
                end,
                channel_id=self.core.channel.channel_id,
                created_ms=self.core.now_ms(),
                tool=f"cctvchain {__version__}",
                source=f"{self.core.name} ({self.core.serialized.msp_id})",
                command=command,
                max_span_ms=self.max_span_ms,
            )
        except EvidenceError as exc:
            raise evidence_http_error(exc) from None
        bundle = with_clip(bundle, clip)
        if as_bundle:
            return bundle.encode(), CBOR_TYPE
        evidence = check_bundle(bundle, clip)
        result = result_from_bundle(evidence, source="network", command=command)
        return _json(build_report(result)), "application/json"

    # -- bodies --------------------------------------------------------------------------------

    @staticmethod
    async def _read_limited(request: web.Request, limit: int, what: str) -> bytes:
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"{what} exceeds the limit of {limit} bytes")
        data = bytearray()
        async for chunk in request.content.iter_any():
            data += chunk
            if len(data) > limit:
                raise PayloadTooLarge(f"{what} exceeds the limit of {limit} bytes")
        return bytes(data)


def _json(report: dict[str, Any]) -> bytes:
    return dumps(report).encode()


def mount_verify(app: web.Application, core: PeerCore, store: RecordStore, api: str) -> None:
    """Add the verification routes to a peer's application."""
    routes = VerifyApi(core, store)
    router = app.router
    router.add_post(f"{api}/cameras/{{camera_id}}/locate", routes.handle_locate)
    router.add_get(f"{api}/cameras/{{camera_id}}/evidence", routes.handle_evidence)
    router.add_post(f"{api}/cameras/{{camera_id}}/verify", routes.handle_verify)
    router.add_get(f"{api}/blocks/{{number:\\d+}}/header", routes.handle_header)
    app.on_startup.append(routes.start)
