"""Registrar requests to the CA: canonical messages signed with ``Domain.CA_REQUEST``.

A registrar signs the canonical bytes of a :class:`RegisterRequest` or
:class:`RevokeRequest`; :class:`SignedCARequest` carries those exact bytes next to the
signature, so the CA verifies what was signed and only then decodes it. The timestamp
and nonce let the CA refuse stale and replayed requests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cctvchain.codec import Message
from cctvchain.crypto import Domain, SigningKey

NONCE_SIZE = 16


@dataclass(frozen=True)
class RegisterRequest(Message):
    TYPE = "ca.register_request"
    name: str
    id_type: str
    attributes: dict[str, str]
    secret: str | None  # None: the CA draws a random secret
    registrar_cert: bytes  # PEM of the registrar's enrollment certificate
    timestamp_ms: int
    nonce: bytes


@dataclass(frozen=True)
class RevokeRequest(Message):
    TYPE = "ca.revoke_request"
    name: str | None  # revoke the identity and every certificate it holds, or
    serial: str | None  # one certificate, by its serial number in hex
    reason: str
    registrar_cert: bytes
    timestamp_ms: int
    nonce: bytes


@dataclass(frozen=True)
class SignedCARequest(Message):
    TYPE = "ca.signed_request"
    request: bytes  # the canonical bytes of a RegisterRequest or RevokeRequest
    signature: bytes = field(repr=False)


def timestamp_ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)


def sign_ca_request(request: RegisterRequest | RevokeRequest, key: SigningKey) -> SignedCARequest:
    payload = request.encode()
    return SignedCARequest(request=payload, signature=key.sign(Domain.CA_REQUEST, payload))


def make_register_request(
    key: SigningKey,
    registrar_cert: bytes,
    *,
    name: str,
    id_type: str,
    now: datetime,
    attributes: Mapping[str, str] | None = None,
    secret: str | None = None,
) -> SignedCARequest:
    request = RegisterRequest(
        name=name,
        id_type=id_type,
        attributes=dict(attributes or {}),
        secret=secret,
        registrar_cert=registrar_cert,
        timestamp_ms=timestamp_ms(now),
        nonce=os.urandom(NONCE_SIZE),
    )
    return sign_ca_request(request, key)


def make_revoke_request(
    key: SigningKey,
    registrar_cert: bytes,
    *,
    now: datetime,
    name: str | None = None,
    serial: int | None = None,
    reason: str = "unspecified",
) -> SignedCARequest:
    request = RevokeRequest(
        name=name,
        serial=None if serial is None else f"{serial:x}",
        reason=reason,
        registrar_cert=registrar_cert,
        timestamp_ms=timestamp_ms(now),
        nonce=os.urandom(NONCE_SIZE),
    )
    return sign_ca_request(request, key)
