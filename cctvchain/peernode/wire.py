"""What the peer's endpoints share: binary bodies, refusals as JSON errors, block frames."""

from __future__ import annotations

import json
import re
import struct
from typing import Any, Final

from aiohttp import web

from cctvchain.codec import CodecError
from cctvchain.ledger.block import Block
from cctvchain.node.errors import BadRequest, HttpError, PayloadTooLarge, UnsupportedMediaType
from cctvchain.tx.messages import Response, SignedProposal

OCTET_STREAM: Final = "application/octet-stream"
FRAME: Final = struct.Struct(">I")

# "ACCESS_DENIED: access to camera 7 denied: ..." (contract and endorser refusals)
_LEADING_CODE: Final = re.compile(r"([A-Z][A-Z0-9_]{2,63}): ")
# "creator refused (certificate_revoked): ..." (the endorser's MSP refusals)
_MSP_CODE: Final = re.compile(r"creator refused \(([a-z0-9_]{2,63})\)")
_PROSE_CODES: Final = (
    ("malformed proposal", "malformed_proposal"),
    ("proposal timestamp", "bad_timestamp"),
    ("this peer is not on channel", "unknown_channel"),
    ("is not deployed", "unknown_contract"),
    ("has no function", "unknown_function"),
    ("wrong arguments", "bad_arguments"),
    ("Writers policy", "not_a_writer"),
)
_STATUS_CODES: Final = {
    400: "proposal_refused",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
}


async def read_binary(request: web.Request, max_bytes: int, what: str) -> bytes:
    """The request body as bytes: 415 unless octet-stream, 413 over ``max_bytes``, 400 if
    empty."""
    if request.content_type != OCTET_STREAM:
        raise UnsupportedMediaType(
            f"send {what} as {OCTET_STREAM} (canonical bytes), not "
            f"{request.content_type or 'nothing'}"
        )
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"{what} exceeds the limit of {max_bytes} bytes")
    data = await request.read()
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{what} exceeds the limit of {max_bytes} bytes")
    if not data:
        raise BadRequest(f"the request body is empty; send {what}", code="empty_body")
    return data


def decode_signed_proposal(data: bytes) -> SignedProposal:
    """A signed proposal whose proposal decodes too (400 ``malformed_proposal`` if not)."""
    try:
        signed = SignedProposal.decode(data)
        signed.decoded  # noqa: B018 -- decode the inner proposal now, refuse it here
    except (CodecError, ValueError, TypeError) as exc:
        raise BadRequest(
            f"the body is not a signed proposal: {exc}", code="malformed_proposal"
        ) from None
    return signed


def refusal_code(response: Response) -> str:
    """A stable code for an endorser's or contract's refusal."""
    message = response.message
    match = _LEADING_CODE.match(message)
    if match:
        return match.group(1)
    match = _MSP_CODE.match(message)
    if match:
        return match.group(1)
    for needle, code in _PROSE_CODES:
        if needle in message:
            return code
    return _STATUS_CODES.get(response.status, "contract_error")


def refusal_error(response: Response, prefix: str = "") -> HttpError:
    """A refused proposal response as the HTTP error answered to the caller."""
    status = response.status if 400 <= response.status <= 599 else 502
    message = response.message or f"refused with status {response.status}"
    code = refusal_code(response)
    if message.startswith(f"{code}: "):
        message = message[len(code) + 2 :]  # the code is answered on its own
    return HttpError(prefix + message, code=code, status=status)


def parse_payload(payload: bytes) -> Any:
    """A contract's answer as JSON when it is JSON, else ``None``."""
    if not payload or payload[:1] not in b'{["0123456789-tfn':
        return None
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None


def encode_frame(block: Block) -> bytes:
    data = block.encode()
    return FRAME.pack(len(data)) + data
