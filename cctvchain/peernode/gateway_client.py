"""Call a peer's gateway: propose, endorse, sign and submit in one call.

    async with Gateway(url, ssl_context) as gateway:
        result = await gateway.submit(identity, "cctv", "RequestCamera", [camera_json])
        print(result.validation_code_name, result.block, result.payload)
        answer = await gateway.evaluate(identity, "cctv", "CheckAccess", ["5859"])

or, for a single call, :func:`submit` / :func:`evaluate` (which open and close the
connection). The identity's key signs the proposal and, after checking that the payload
the gateway returns is for *this* proposal, the transaction; the peer never holds it.

Failures are :class:`~cctvchain.node.errors.NodeClientError`\\ s with one-line messages:
:class:`GatewayRefused` carries the peer's status and code (``ACCESS_DENIED``,
``BAD_CREATOR_SIGNATURE``, ``endorsement_unavailable``, ``replayed``, ...);
:class:`TransactionInvalid` is a transaction that was committed but flagged invalid
(its validation code, e.g. ``MVCC_READ_CONFLICT``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from cctvchain.client.transaction import ClientIdentity, new_proposal
from cctvchain.codec import CodecError
from cctvchain.crypto import Domain
from cctvchain.node.client import call_json, check_url
from cctvchain.node.errors import (
    NodeClientError,
    NodeProtocolError,
    NodeRefused,
)
from cctvchain.tx.messages import Envelope, SignedProposal, TransactionPayload

OCTET_STREAM = "application/octet-stream"
DEFAULT_TIMEOUT = 60.0

__all__ = [
    "EvaluateResult",
    "Gateway",
    "GatewayRefused",
    "Prepared",
    "SubmitResult",
    "TransactionInvalid",
    "evaluate",
    "submit",
]


class GatewayRefused(NodeRefused):
    """The peer refused the call; ``status`` and ``code`` say why."""


class TransactionInvalid(NodeClientError):
    """The transaction was committed with a validation code other than VALID."""

    def __init__(self, result: SubmitResult) -> None:
        super().__init__(
            f"transaction {result.tx_id} was committed in block {result.block} as "
            f"{result.validation_code_name}"
        )
        self.result = result


@dataclass(frozen=True)
class EvaluateResult:
    tx_id: str
    status: int
    message: str
    payload: bytes

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


@dataclass(frozen=True)
class Prepared:
    """An endorsed transaction, signed by its creator, not yet submitted."""

    tx_id: str
    signed: SignedProposal
    envelope: Envelope
    payload: bytes  # the contract's answer, as the endorsers simulated it
    endorsers: tuple[str, ...]  # "MSP/name" of each endorsement in the transaction


@dataclass(frozen=True)
class SubmitResult:
    tx_id: str
    validation_code: int
    validation_code_name: str
    block: int
    payload: bytes  # the contract's answer, as the endorsers simulated it
    endorsers: tuple[str, ...]  # "MSP/name" of each endorsement in the transaction

    @property
    def valid(self) -> bool:
        return self.validation_code == 0

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


class Gateway:
    """A connection to one peer's gateway (mutual TLS with ``ssl_context``)."""

    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext,
        *,
        channel_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        min_height: int = 0,
    ) -> None:
        try:
            self.url = check_url(url)
        except ValueError as exc:
            raise NodeClientError(str(exc)) from None
        self.ssl_context = ssl_context
        self.channel_id = channel_id
        self.timeout = timeout
        # The ledger height this client has seen (its last commit's block + 1): endorsing
        # and evaluating peers wait until they have it. Pass it on to another Gateway to
        # keep reading your writes across peers.
        self.min_height = min_height
        self.what = f"the peer at {self.url}"
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Gateway:
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
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- calls ---------------------------------------------------------------------------

    async def submit(
        self,
        identity: ClientIdentity,
        contract: str,
        function: str,
        args: Sequence[str] = (),
        *,
        check: bool = True,
    ) -> SubmitResult:
        """Propose, gather endorsements, sign, order and wait for the commit status.

        With ``check`` (the default) a transaction committed as invalid raises
        :class:`TransactionInvalid`; refusals before ordering raise
        :class:`GatewayRefused`."""
        prepared = await self.prepare(identity, contract, function, args)
        return await self.commit(prepared, check=check)

    def _height_query(self) -> str:
        # Read your writes: the peer (and the peers it asks) first catch up with the
        # last block this client saw its transactions committed in.
        return f"?min_height={self.min_height}" if self.min_height > 0 else ""

    async def prepare(
        self, identity: ClientIdentity, contract: str, function: str, args: Sequence[str] = ()
    ) -> Prepared:
        """Propose and gather endorsements; the envelope signed by ``identity``."""
        signed = await self.proposal(identity, contract, function, args)
        endorsed = await self._post_json(
            "/api/v1/gateway/endorse" + self._height_query(), signed.encode()
        )
        payload = _b64_field(endorsed, "transaction_payload_b64", self.what)
        try:
            transaction = TransactionPayload.decode(payload)
        except (CodecError, ValueError, TypeError) as exc:
            raise NodeProtocolError(f"{self.what} answered no transaction payload: {exc}") from None
        if transaction.proposal != signed.proposal:
            raise NodeProtocolError(
                f"{self.what} returned a transaction for another proposal; not signing it"
            )
        envelope = Envelope(payload, identity.key.sign(Domain.ENVELOPE, payload))
        response = endorsed.get("response")
        answer = b""
        if isinstance(response, dict) and isinstance(response.get("payload_b64"), str):
            answer = _b64_field(response, "payload_b64", self.what)
        endorsers = endorsed.get("endorsers")
        return Prepared(
            tx_id=signed.decoded.tx_id,
            signed=signed,
            envelope=envelope,
            payload=answer,
            endorsers=tuple(
                f"{e.get('msp_id')}/{e.get('name')}"
                for e in (endorsers if isinstance(endorsers, list) else [])
                if isinstance(e, dict)
            ),
        )

    async def commit(self, prepared: Prepared, *, check: bool = True) -> SubmitResult:
        """Submit a prepared envelope and wait for its commit status on the peer."""
        status = await self._post_json("/api/v1/gateway/submit", prepared.envelope.encode())
        result = SubmitResult(
            tx_id=_field(status, "tx_id", str, self.what),
            validation_code=_field(status, "validation_code", int, self.what),
            validation_code_name=_field(status, "validation_code_name", str, self.what),
            block=_field(status, "block", int, self.what),
            payload=prepared.payload,
            endorsers=prepared.endorsers,
        )
        if result.tx_id != prepared.tx_id:
            raise NodeProtocolError(f"{self.what} answered the status of another transaction")
        self.min_height = max(self.min_height, result.block + 1)
        if check and not result.valid:
            raise TransactionInvalid(result)
        return result

    async def evaluate(
        self,
        identity: ClientIdentity,
        contract: str,
        function: str,
        args: Sequence[str] = (),
    ) -> EvaluateResult:
        """A query on this peer: the contract's answer (a refusal raises GatewayRefused)."""
        signed = await self.proposal(identity, contract, function, args)
        answer = await self._post_json(
            "/api/v1/gateway/evaluate" + self._height_query(), signed.encode()
        )
        return EvaluateResult(
            tx_id=_field(answer, "tx_id", str, self.what),
            status=_field(answer, "status", int, self.what),
            message=_field(answer, "message", str, self.what),
            payload=_b64_field(answer, "payload_b64", self.what),
        )

    async def proposal(
        self, identity: ClientIdentity, contract: str, function: str, args: Sequence[str]
    ) -> SignedProposal:
        """A proposal signed by ``identity`` (the channel id is asked of the peer once)."""
        if self.channel_id is None:
            channel = await self.request("GET", "/api/v1/channel")
            self.channel_id = _field(channel, "channel_id", str, self.what)
        return new_proposal(
            identity,
            channel_id=self.channel_id,
            contract=contract,
            function=function,
            args=list(args),
            nonce=os.urandom(24),
            timestamp_ms=int(time.time() * 1000),
        )

    async def _post_json(self, path: str, body: bytes) -> dict[str, Any]:
        return await self.request("POST", path, body)

    async def request(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        """One call; the JSON object answered, or a NodeClientError."""
        if self._session is None:
            raise RuntimeError("use Gateway in an 'async with' block")
        return await call_json(
            self._session,
            method,
            self.url,
            path,
            what=self.what,
            data=body,
            timeout=self.timeout,
            refused=GatewayRefused,
        )


def _field(data: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise NodeProtocolError(f"{what} answered without a valid {key!r}")
    return value


def _b64_field(data: dict[str, Any], key: str, what: str) -> bytes:
    text = _field(data, key, str, what)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NodeProtocolError(f"{what} answered {key!r} that is not base64") from None


async def submit(
    url: str,
    ssl_context: ssl.SSLContext,
    identity: ClientIdentity,
    contract: str,
    function: str,
    args: Sequence[str] = (),
    *,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> SubmitResult:
    """One submit through the peer at ``url`` (see :meth:`Gateway.submit`)."""
    async with Gateway(url, ssl_context, timeout=timeout) as gateway:
        return await gateway.submit(identity, contract, function, args, check=check)


async def evaluate(
    url: str,
    ssl_context: ssl.SSLContext,
    identity: ClientIdentity,
    contract: str,
    function: str,
    args: Sequence[str] = (),
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> EvaluateResult:
    """One query through the peer at ``url`` (see :meth:`Gateway.evaluate`)."""
    async with Gateway(url, ssl_context, timeout=timeout) as gateway:
        return await gateway.evaluate(identity, contract, function, args)
