"""Talk to the peers' frame-record store: upload a segment's records, fetch them back.

    async with RecordsClient(ssl_context) as client:
        receipt = await client.upload(url, sealed, min_height=block + 1)
        answer = await client.fetch(url, camera_id, sequence)
        records = verified_records(answer["records"], segment)

Uploads are the camera's (its TLS certificate identifies it); fetches are anyone's whom
Algorithm 1 grants access to the camera. Failures are
:class:`~cctvchain.node.errors.NodeClientError`\\ s: :class:`NodeUnreachable` (retry
elsewhere or later) or :class:`NodeRefused` with the peer's status and code
(``not_anchored``, ``records_mismatch``, ``WRONG_IDENTITY``, ``ACCESS_DENIED``, ...).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from cctvchain.ingest.records import SegmentRecords
from cctvchain.ingest.segment import SealedSegment
from cctvchain.node.client import call_json, check_url
from cctvchain.node.errors import (
    NodeClientError,
    NodeProtocolError,
)

OCTET_STREAM = "application/octet-stream"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class UploadReceipt:
    """A peer's confirmation that it holds a segment's records."""

    url: str
    peer: str
    msp_id: str
    created: bool  # False: it already held them


def records_path(camera_id: str, sequence: int) -> str:
    return f"/api/v1/cameras/{camera_id}/segments/{sequence}/records"


def upload_body(sealed: SealedSegment) -> bytes:
    segment = sealed.segment
    return SegmentRecords(segment.camera_id, segment.sequence, sealed.records).encode()


class RecordsClient:
    """An HTTPS session (mutual TLS with ``ssl_context``) to any number of peers."""

    def __init__(self, ssl_context: ssl.SSLContext, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.ssl_context = ssl_context
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RecordsClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl_context),
            timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=5.0),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def upload(
        self, url: str, sealed: SealedSegment, *, min_height: int = 0, body: bytes | None = None
    ) -> UploadReceipt:
        """PUT the segment's records; the peer's receipt (stored now or before)."""
        segment = sealed.segment
        path = records_path(segment.camera_id, segment.sequence)
        if min_height > 0:
            path += f"?min_height={min_height}"
        answer = await self._call(url, "PUT", path, upload_body(sealed) if body is None else body)
        peer, msp_id, created = answer.get("peer"), answer.get("msp_id"), answer.get("created")
        if not (isinstance(peer, str) and isinstance(msp_id, str) and isinstance(created, bool)):
            raise NodeProtocolError(f"the peer at {url} answered an upload without a receipt")
        if answer.get("merkleRoot") != segment.merkle_root.hex():
            raise NodeProtocolError(f"the peer at {url} confirmed another Merkle root")
        return UploadReceipt(url, peer, msp_id, created)

    async def fetch(
        self, url: str, camera_id: str, sequence: int, *, index: int | None = None
    ) -> dict[str, Any]:
        """GET a segment's records (one frame's with ``index``), proofs included."""
        path = records_path(camera_id, sequence)
        if index is not None:
            path += f"?index={index}"
        return await self._call(url, "GET", path)

    async def _call(
        self, url: str, method: str, path: str, body: bytes | None = None
    ) -> dict[str, Any]:
        if self._session is None:
            raise RuntimeError("use RecordsClient in an 'async with' block")
        try:
            base = check_url(url)
        except ValueError as exc:
            raise NodeClientError(str(exc)) from None
        what = f"the peer at {base}"
        return await call_json(
            self._session, method, base, path, what=what, data=body, timeout=self.timeout
        )
