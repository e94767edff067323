"""Calling a node over HTTPS with JSON, with one clear error per way a call can fail.

:class:`NodeClient` wraps an :class:`aiohttp.ClientSession` with a TLS context (see
:mod:`cctvchain.node.tls`: ``client_context`` for mutual TLS between nodes, or a
trust-only context for the CA). Failures are :class:`NodeClientError` subclasses whose
message is one line for a person:

* :class:`NodeUnreachable` -- "cannot reach the CA at https://...: connection refused";
* :class:`NodeTLSError` -- the TLS handshake failed (untrusted or wrong certificate, or
  the node refused ours);
* :class:`NodeRefused` -- the node answered with an error: its status, code and message;
* :class:`NodeProtocolError` -- the answer is not the JSON expected.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import ssl
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from cctvchain.node.errors import (
    NodeClientError,
    NodeProtocolError,
    NodeRefused,
    NodeTLSError,
    NodeUnreachable,
)

__all__ = [
    "NodeClient",
    "NodeClientError",
    "NodeProtocolError",
    "NodeRefused",
    "NodeTLSError",
    "NodeUnreachable",
    "call_bytes",
    "call_json",
    "check_url",
    "wait_until_healthy",
]


def check_url(url: str) -> str:
    """``https://host:port`` (no path), or ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ValueError(f"{url!r} is not an https:// URL (nodes serve HTTPS only)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    if not parts.hostname or port is None:
        raise ValueError(f"{url!r} must name a host and a port, e.g. https://127.0.0.1:7054")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r} must not have a path, e.g. https://127.0.0.1:7054")
    return f"https://{parts.netloc}"


class NodeClient:
    """``async with NodeClient(url, context) as node: await node.get_json("/healthz")``."""

    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext,
        *,
        what: str = "the node",
        timeout: float = 30.0,
        tls_hint: str = "",
    ) -> None:
        try:
            self.url = check_url(url)
        except ValueError as exc:
            raise NodeClientError(str(exc)) from None
        self.ssl_context = ssl_context
        self.what = f"{what} at {self.url}"
        self.timeout = timeout
        self.tls_hint = tls_hint
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> NodeClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl_context),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_json(self, path: str) -> dict[str, Any]:
        return await self.request_json("GET", path)

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request_json("POST", path, body)

    async def request_json(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The JSON object the node answers; a :class:`NodeClientError` otherwise."""
        if self._session is None:
            raise RuntimeError("use NodeClient in an 'async with' block")
        return await call_json(
            self._session,
            method,
            self.url,
            path,
            what=self.what,
            data=json.dumps(body).encode() if body is not None else None,
            content_type="application/json",
            timeout=self.timeout,
            tls_hint=self.tls_hint,
        )


async def call_json(
    session: aiohttp.ClientSession,
    method: str,
    base_url: str,
    path: str,
    *,
    what: str,
    data: bytes | None = None,
    content_type: str = "application/octet-stream",
    timeout: float,
    tls_hint: str = "",
    refused: type[NodeRefused] = NodeRefused,
) -> dict[str, Any]:
    """One call to a node; the JSON object it answers, or one clear NodeClientError.

    The one place where transport failures and a node's ``{code, message}`` refusals
    become errors, for every client of the nodes (CLI, gateway, extractor).
    """
    raw = await call_bytes(
        session,
        method,
        base_url,
        path,
        what=what,
        data=data,
        content_type=content_type,
        timeout=timeout,
        tls_hint=tls_hint,
        refused=refused,
    )
    try:
        answer = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        answer = None
    if not isinstance(answer, dict):
        raise NodeProtocolError(f"{what} answered {method} {path} with no JSON object")
    return answer


async def call_bytes(
    session: aiohttp.ClientSession,
    method: str,
    base_url: str,
    path: str,
    *,
    what: str,
    data: bytes | None = None,
    content_type: str = "application/octet-stream",
    timeout: float,
    tls_hint: str = "",
    refused: type[NodeRefused] = NodeRefused,
) -> bytes:
    """One call to a node; the body of a 2xx answer as it came (e.g. CBOR), with the
    same errors as :func:`call_json` for transport failures and refusals."""
    headers = {"Content-Type": content_type} if data is not None else {}
    try:
        async with session.request(method, base_url + path, data=data, headers=headers) as response:
            status = response.status
            raw = await response.read()
    except aiohttp.ClientSSLError as exc:
        raise NodeTLSError(_tls_message(what, exc, tls_hint)) from None
    except aiohttp.ClientConnectorError as exc:
        raise NodeUnreachable(f"cannot reach {what}: {_os_reason(exc.os_error)}") from None
    except aiohttp.ClientOSError as exc:
        if isinstance(exc.__cause__, ssl.SSLError) or "SSL" in str(exc):
            raise NodeTLSError(_tls_message(what, exc, tls_hint)) from None
        raise NodeUnreachable(f"lost the connection to {what}: {exc}") from None
    except aiohttp.ServerDisconnectedError:
        raise NodeUnreachable(f"{what} closed the connection without answering") from None
    except aiohttp.ClientError as exc:
        raise NodeUnreachable(f"call to {what} failed: {exc}") from None
    except TimeoutError:
        raise NodeUnreachable(f"{what} did not answer within {timeout:g} s") from None
    if status >= 400:
        try:
            answer = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("code"), str):
            raise refused(what, status, answer["code"], str(answer.get("message", "")))
        text = raw[:200].decode("utf-8", "replace").strip()
        raise refused(what, status, f"http_{status}", text or "no details")
    return raw


def _tls_message(what: str, exc: BaseException, hint: str) -> str:
    suffix = f" ({hint})" if hint else ""
    return f"TLS with {what} failed: {_ssl_reason(exc)}{suffix}"


def _ssl_reason(exc: BaseException) -> str:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, aiohttp.ClientConnectorCertificateError):
            seen = seen.certificate_error
        elif isinstance(seen, aiohttp.ClientSSLError):
            seen = seen.os_error
        elif isinstance(seen, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {seen.verify_message}"
        elif isinstance(seen, ssl.SSLError):
            return str(seen.reason or seen).replace("_", " ").lower()
        else:
            seen = seen.__cause__
    return str(exc)


def _os_reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "connection timed out"
    if error.errno is not None:
        return os.strerror(error.errno).lower()
    return str(error)


async def wait_until_healthy(client: NodeClient, *, timeout: float, interval: float = 0.1) -> None:
    """Poll ``GET /healthz`` until it answers 200 (NodeUnreachable after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.get_json("/healthz")
            return
        except NodeUnreachable:
            if loop.time() >= deadline:
                raise
            await asyncio.sleep(interval)
