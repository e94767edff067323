"""The gateway: endorse, submit and evaluate for clients and cameras in one call each.

The client signs, the peer never signs for a user:

1. ``POST /api/v1/gateway/endorse`` (a signed proposal): this peer endorses it, then asks
   peers of other organisations (``POST /api/v1/endorse``) until the contract's
   endorsement policy in the channel configuration is satisfied. Every endorsement is
   checked (the endorser's identity in the MSP, its signature, and that it vouches for
   the same simulation result as this peer's); a peer that is down or slow is passed
   over (a second peer is asked in parallel after ``HEDGE_SECONDS``). The answer is the
   transaction payload for the client to sign.
2. ``POST /api/v1/gateway/submit`` (the envelope the client signed): broadcast to an
   orderer (fail-over; the orderers' retryable 503 codes are retried on the next one),
   then wait until this peer commits the transaction: its validation code and block.
3. ``POST /api/v1/gateway/evaluate`` (a signed proposal): this peer's endorser simulates
   it and answers the contract's result; nothing is ordered.

``POST /api/v1/endorse`` is the peer-to-peer endorser: a signed proposal in, the
proposal response (canonical bytes) out, refusals included. ``?min_height=N`` makes it
wait briefly until this peer has committed N blocks, so that a peer a block behind the
gateway simulates against the same state instead of disagreeing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import aiohttp
from aiohttp import web

from cctvchain.codec import CodecError
from cctvchain.crypto import Domain, SignatureError
from cctvchain.ledger.validation import TxValidationCode, code_name
from cctvchain.msp.certref import (
    CertificateResolver,
    UnknownCertificateReference,
    resolve_certificate,
)
from cctvchain.msp.errors import MSPError
from cctvchain.msp.identity import Identity
from cctvchain.network.config import Endpoint
from cctvchain.node.auth import caller
from cctvchain.node.errors import BadRequest, Conflict, HttpError, ServiceUnavailable
from cctvchain.node.http import b64, json_response
from cctvchain.peer.channel import ChannelContext
from cctvchain.peer.memo import VerifiedSignatures
from cctvchain.peernode.core import PeerCore
from cctvchain.peernode.wire import (
    OCTET_STREAM,
    decode_signed_proposal,
    parse_payload,
    read_binary,
    refusal_error,
)
from cctvchain.policy import Policy, evaluate
from cctvchain.tx.messages import (
    Envelope,
    ProposalResponse,
    SignedProposal,
    TransactionPayload,
    endorsement_message,
)

MAX_PROPOSAL_BYTES: Final = 1024 * 1024
HEDGE_SECONDS: Final = 1.0
CONNECT_TIMEOUT: Final = 3.0  # TCP and TLS handshake
REMOTE_ENDORSE_TIMEOUT: Final = 10.0
MIN_HEIGHT_WAIT: Final = 5.0
BROADCAST_TIMEOUT: Final = 15.0
BROADCAST_DEADLINE: Final = 20.0
COMMIT_TIMEOUT: Final = 30.0
RETRYABLE_ORDERER_CODES: Final = frozenset({"not_ordered", "no_leader", "leader_unreachable"})


def response_json(response: ProposalResponse) -> dict[str, Any]:
    result = response.response
    return {
        "status": result.status,
        "message": result.message,
        "payload_b64": b64(result.payload),
        "payload": parse_payload(result.payload),
    }


@dataclass
class Endorsements:
    """The endorsements gathered for one proposal, checked one by one."""

    channel: ChannelContext
    policy: Policy
    payload: bytes  # the simulation result every endorsement must vouch for
    now: datetime
    # This peer's certificate registry: endorsers name themselves by reference once a
    # block carried their certificate.
    certificates: CertificateResolver | None = None
    # The peer's memo of verified signatures: the validator skips the ECDSA verification
    # of these endorsements when they come back in a block.
    signatures: VerifiedSignatures | None = None
    responses: list[ProposalResponse] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    disagreed: bool = False
    # Endorsements by a certificate reference this peer cannot resolve yet (the endorser
    # committed the block carrying its certificate a moment before this peer did).
    unresolved: list[tuple[str, ProposalResponse]] = field(default_factory=list)

    @property
    def orgs(self) -> set[str]:
        return {identity.msp_id for identity in self.identities}

    # The policy's verdict and the number of identities it was reached for: asked after
    # every answer, it is evaluated again only once another endorser counts.
    _verdict: tuple[int, bool] = field(default=(-1, False), init=False, repr=False)

    @property
    def satisfied(self) -> bool:
        count = len(self.identities)
        if self._verdict[0] != count:
            keys = [i.cert_hash for i in self.identities]
            self._verdict = (count, evaluate(self.policy, self.identities, keys=keys))
        return self._verdict[1]

    def add(self, source: str, response: ProposalResponse) -> None:
        endorsement = response.endorsement
        if endorsement is None or not response.response.ok:
            self.disagreed = True
            self.reasons.append(
                f"{source} refused: {response.response.status} {response.response.message}"
            )
            return
        if response.payload != self.payload:
            self.disagreed = True
            self.reasons.append(
                f"{source} simulated a different result (its state differs from this peer's)"
            )
            return
        signer = endorsement.endorser
        try:
            cert = resolve_certificate(signer.cert, self.certificates)
        except UnknownCertificateReference as exc:
            self.unresolved.append((source, response))
            self.reasons.append(f"{source} sent an endorsement this peer cannot check yet: {exc}")
            return
        try:
            identity = self.channel.msps.validate(
                signer.msp_id, cert, self.now, allowed_types=("peer",)
            )
            message = endorsement_message(response.payload, signer)
            if self.signatures is not None:
                self.signatures.verify(
                    identity, Domain.PROPOSAL_RESPONSE, message, endorsement.signature
                )
            else:
                identity.verify(Domain.PROPOSAL_RESPONSE, message, endorsement.signature)
        except (MSPError, SignatureError) as exc:
            self.reasons.append(f"{source} sent an invalid endorsement: {exc}")
            return
        if any(known.cert_hash == identity.cert_hash for known in self.identities):
            return
        self.responses.append(response)
        self.identities.append(identity)

    def transaction_payload(self, signed: SignedProposal) -> bytes:
        endorsements = tuple(r.endorsement for r in self.responses if r.endorsement is not None)
        return TransactionPayload(signed.proposal, self.payload, endorsements).encode()


class Gateway:
    def __init__(self, core: PeerCore) -> None:
        self.core = core
        self.log = core.log
        self._rotation = 0

    @property
    def max_envelope(self) -> int:
        return self.core.channel.config.batch.absolute_max_bytes

    # -- peer to peer ----------------------------------------------------------------------

    async def handle_endorse_p2p(self, request: web.Request) -> web.Response:
        caller(request)
        data = await read_binary(request, MAX_PROPOSAL_BYTES, "a signed proposal")
        signed = decode_signed_proposal(data)
        await self._catch_up_to(request)
        response = await self.core.endorse(signed)
        return web.Response(body=response.encode(), content_type=OCTET_STREAM)

    async def _catch_up_to(self, request: web.Request) -> None:
        """``?min_height=N``: wait (briefly) until this peer has committed N blocks, so
        that a caller reads its own writes committed through another peer. A peer still
        behind after the wait simulates anyway (the result may then differ)."""
        min_height = _int_param(request, "min_height", 0)
        if min_height > self.core.ledger.height:
            await self.core.wait_for_height(min_height, MIN_HEIGHT_WAIT)

    # -- evaluate ----------------------------------------------------------------------------

    async def handle_evaluate(self, request: web.Request) -> web.Response:
        caller(request)
        data = await read_binary(request, MAX_PROPOSAL_BYTES, "a signed proposal")
        signed = decode_signed_proposal(data)
        await self._catch_up_to(request)
        response = await self.core.endorse(signed)
        if not response.response.ok:
            raise refusal_error(response.response)
        return json_response({"tx_id": signed.decoded.tx_id, **response_json(response)})

    # -- endorse -----------------------------------------------------------------------------

    async def handle_endorse(self, request: web.Request) -> web.Response:
        caller(request)
        data = await read_binary(request, MAX_PROPOSAL_BYTES, "a signed proposal")
        signed = decode_signed_proposal(data)
        proposal = signed.decoded
        await self._catch_up_to(request)
        local = await self.core.endorse(signed)
        if local.endorsement is None or not local.response.ok:
            raise refusal_error(local.response)
        channel = self.core.channel
        policy = channel.endorsement_policy(proposal.contract)
        if policy is None:  # the endorser refuses undeployed contracts; a config race
            raise HttpError(
                f"contract {proposal.contract!r} has no endorsement policy",
                code="unknown_contract",
                status=404,
            )
        gathered = Endorsements(
            channel,
            policy,
            local.payload,
            self.core.now(),
            self.core.certificates,
            self.core.signatures,
        )
        gathered.add(self.core.name, local)
        height = self.core.ledger.height
        if not gathered.satisfied:
            await self._gather(data, gathered, height)
        if not gathered.satisfied and gathered.unresolved:
            # An endorser ahead of this peer named itself by a reference registered in a
            # block this peer is about to commit: wait for it, then check them again.
            await self.core.wait_for_height(height + 1, MIN_HEIGHT_WAIT)
            unresolved, gathered.unresolved = gathered.unresolved, []
            for source, response in unresolved:
                gathered.add(source, response)
        if not gathered.satisfied:
            detail = "; ".join(gathered.reasons) or "no other peer to ask"
            message = (
                f"the endorsement policy of {proposal.contract} is not satisfied by "
                f"{len(gathered.identities)} endorsement(s): {detail}"
            )
            if gathered.disagreed:
                raise Conflict(message, code="endorsement_mismatch")
            raise ServiceUnavailable(message, code="endorsement_unavailable")
        return json_response(
            {
                "tx_id": proposal.tx_id,
                "transaction_payload_b64": b64(gathered.transaction_payload(signed)),
                "response": response_json(local),
                "endorsers": [
                    {"msp_id": identity.msp_id, "name": identity.name}
                    for identity in gathered.identities
                ],
            }
        )

    def _next_candidate(
        self, remaining: list[Endpoint], gathered: Endorsements, asked_orgs: Iterable[str]
    ) -> Endpoint | None:
        """A peer of an organisation not yet endorsing (nor being asked), else any."""
        if not remaining:
            return None
        msp_of = {org.name: org.msp_id for org in self.core.context.config.organizations}
        busy = gathered.orgs | set(asked_orgs)
        for endpoint in remaining:
            if msp_of.get(endpoint.org, endpoint.org) not in busy:
                remaining.remove(endpoint)
                return endpoint
        return remaining.pop(0)

    async def _gather(self, data: bytes, gathered: Endorsements, height: int) -> None:
        # Rotate the peers asked first, so that endorsement load spreads over them.
        self._rotation += 1
        peers = self.core.peers
        shift = self._rotation % len(peers) if peers else 0
        remaining = [*peers[shift:], *peers[:shift]]
        msp_of = {org.name: org.msp_id for org in self.core.context.config.organizations}
        pending: dict[asyncio.Task[ProposalResponse], Endpoint] = {}

        def launch() -> None:
            asked = [msp_of.get(e.org, e.org) for e in pending.values()]
            endpoint = self._next_candidate(remaining, gathered, asked)
            if endpoint is not None:
                task = asyncio.create_task(self._remote_endorse(endpoint, data, height))
                pending[task] = endpoint

        launch()
        try:
            while pending and not gathered.satisfied:
                done, _ = await asyncio.wait(
                    pending, timeout=HEDGE_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    endpoint = pending.pop(task)
                    try:
                        gathered.add(endpoint.name, task.result())
                    except _RemoteFailure as exc:
                        gathered.reasons.append(f"{endpoint.name} {exc}")
                if not gathered.satisfied:
                    launch()  # after a failure, a partial success, or a slow answer
        finally:
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, _RemoteFailure):
                    await task

    async def _remote_endorse(
        self, endpoint: Endpoint, data: bytes, height: int
    ) -> ProposalResponse:
        url = f"{self.core.orderer_url(endpoint)}/api/v1/endorse?min_height={height}"
        try:
            async with self.core.session.post(
                url,
                data=data,
                headers={"Content-Type": OCTET_STREAM},
                timeout=aiohttp.ClientTimeout(
                    total=REMOTE_ENDORSE_TIMEOUT, connect=CONNECT_TIMEOUT
                ),
            ) as response:
                body = await response.read()
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            raise _RemoteFailure(f"is unreachable ({exc.os_error.strerror or exc})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _RemoteFailure(f"failed ({type(exc).__name__})") from None
        except TimeoutError:
            raise _RemoteFailure(f"did not answer within {REMOTE_ENDORSE_TIMEOUT:g} s") from None
        if status != 200:
            raise _RemoteFailure(f"answered HTTP {status}: {_error_text(body)}")
        try:
            return ProposalResponse.decode(body)
        except (CodecError, ValueError, TypeError) as exc:
            raise _RemoteFailure(f"answered no proposal response ({exc})") from None

    # -- submit ------------------------------------------------------------------------------

    async def handle_submit(self, request: web.Request) -> web.Response:
        caller(request)
        started = time.perf_counter()
        data = await read_binary(request, self.max_envelope, "an envelope")
        try:
            envelope = Envelope.decode(data)
            tx_id = envelope.tx_id
        except (CodecError, ValueError, TypeError) as exc:
            raise BadRequest(
                f"the body is not a transaction envelope: {exc}", code="malformed_envelope"
            ) from None
        waiter = self.core.watch_tx(tx_id)
        # The validator takes the decoded envelope when the block brings these bytes.
        self.core.decoded.put(data, envelope)
        try:
            # One LevelDB point read (microseconds): on the loop, not a worker thread,
            # whose queue is shared with the endorsements of a burst of proposals.
            entry = self.core.ledger.get_tx_entry(tx_id)
            if entry is not None:
                raise Conflict(
                    f"transaction {tx_id} is already on the ledger (block {entry.block}, "
                    f"{code_name(entry.code)})",
                    code="replayed",
                )
            orderer = await self._broadcast(data)
            try:
                status = await asyncio.wait_for(asyncio.shield(waiter), COMMIT_TIMEOUT)
            except TimeoutError:
                raise HttpError(
                    f"transaction {tx_id} was ordered by {orderer} but this peer did not "
                    f"commit it within {COMMIT_TIMEOUT:g} s; ask GET /api/v1/transactions/"
                    f"{tx_id} later",
                    code="commit_timeout",
                    status=504,
                ) from None
            except asyncio.CancelledError:
                if self.core.closing:
                    raise ServiceUnavailable(
                        "the peer is shutting down", code="shutting_down"
                    ) from None
                raise
        finally:
            self.core.unwatch_tx(tx_id, waiter)
            self.core.decoded.drop(data)
        self.core.metrics.gateway_submit_seconds.observe(time.perf_counter() - started)
        return json_response(
            {
                "tx_id": tx_id,
                "validation_code": status.code,
                "validation_code_name": status.code_name,
                "valid": status.code == TxValidationCode.VALID,
                "block": status.block,
                "index": status.index,
                "orderer": orderer,
            }
        )

    async def _broadcast(self, data: bytes) -> str:
        """Have an orderer order ``data``; the orderer's name, or the refusal to answer."""
        core = self.core
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BROADCAST_DEADLINE
        reasons: list[str] = []
        ambiguous = False  # an earlier attempt may have been ordered after all
        round_number = 0
        while True:
            count = len(core.orderers)
            # The reported leader first (no forwarding hop), then the last orderer that
            # ordered for this gateway, then the others in turn.
            leader = core.leader_hint()
            first = [leader] if leader is not None else []
            order = [*first, *((core.preferred_orderer + k) % count for k in range(count))]
            for index in dict.fromkeys(order):
                endpoint = core.orderers[index]
                try:
                    async with core.session.post(
                        f"{core.orderer_url(endpoint)}/broadcast",
                        data=data,
                        headers={"Content-Type": OCTET_STREAM},
                        timeout=aiohttp.ClientTimeout(
                            total=BROADCAST_TIMEOUT, connect=CONNECT_TIMEOUT
                        ),
                    ) as response:
                        status = response.status
                        body = await response.read()
                except aiohttp.ClientConnectorError:
                    reasons.append(f"{endpoint.name} unreachable")
                    continue
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    ambiguous = True  # sent, but no answer: it may have been ordered
                    reasons.append(f"{endpoint.name}: {type(exc).__name__}")
                    continue
                code, message = _error_fields(body)
                if status == 200:
                    core.preferred_orderer = index
                    return endpoint.name
                if status == 503:
                    ambiguous = ambiguous or code == "not_ordered"
                    reasons.append(f"{endpoint.name}: {code}")
                    continue
                if status == 409 and code == "replayed" and ambiguous:
                    return endpoint.name  # our earlier attempt was ordered after all
                raise HttpError(
                    f"{endpoint.name} refused the envelope: {message}", code=code, status=status
                )
            round_number += 1
            if loop.time() >= deadline:
                recent = "; ".join(reasons[-len(core.orderers) :])
                raise ServiceUnavailable(
                    f"no orderer ordered the transaction within {BROADCAST_DEADLINE:g} s "
                    f"({recent})",
                    code="not_ordered",
                )
            await asyncio.sleep(min(0.1 * round_number, 1.0))


class _RemoteFailure(Exception):
    """A peer asked to endorse did not answer with a proposal response."""


def _error_fields(body: bytes) -> tuple[str, str]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return data["code"], str(data.get("message", ""))
    return "orderer_error", body[:200].decode("utf-8", "replace")


def _error_text(body: bytes) -> str:
    code, message = _error_fields(body)
    return f"{code}: {message}"


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"{name} must be a non-negative integer", code="bad_query")
    return int(raw)
