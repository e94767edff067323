"""The client side of the CA node (:mod:`cctvchain.node.ca_service`).

Clients trust the CA through the organisation's root certificate and present none
(enrollment is how one gets a certificate). Each method maps to one endpoint and
returns typed values; failures are :class:`~cctvchain.node.client.NodeClientError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from cctvchain.msp.requests import SignedCARequest
from cctvchain.node import tls
from cctvchain.node.client import NodeClient, NodeProtocolError
from cctvchain.node.http import b64


@dataclass(frozen=True)
class Enrollment:
    name: str
    id_type: str
    profile: str
    msp_id: str
    org_name: str
    cert_pem: bytes
    root_pem: bytes
    intermediate_pems: tuple[bytes, ...]


@dataclass(frozen=True)
class Revocation:
    serials: tuple[int, ...]
    crl_pem: bytes
    crl_number: int


@dataclass(frozen=True)
class CRLInfo:
    crl_pem: bytes
    crl_number: int | None
    revoked: tuple[int, ...]
    next_update: str | None


@dataclass(frozen=True)
class CAInfo:
    org_name: str
    msp_id: str
    subject: str
    root_fingerprint: str
    not_after: str
    intermediate: str | None
    root_pem: bytes
    intermediate_pems: tuple[bytes, ...]


class RemoteCA:
    """``async with RemoteCA(url, root_pem) as ca: secret = await ca.register(signed)``."""

    def __init__(self, url: str, trusted_pem: bytes, *, timeout: float = 30.0) -> None:
        self._client = NodeClient(
            url,
            tls.client_context(None, trusted_pem),
            what="the CA",
            timeout=timeout,
            tls_hint="is the trusted certificate the organisation's root? see --tls-ca",
        )

    @property
    def url(self) -> str:
        return self._client.url

    async def __aenter__(self) -> RemoteCA:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.close()

    async def register(self, signed: SignedCARequest) -> str:
        data = await self._client.post_json("/register", {"signed_request": b64(signed.encode())})
        return _str(data, "secret")

    async def enroll(
        self,
        name: str,
        secret: str,
        csr_pem: bytes,
        *,
        profile: str = "msp",
        hosts: Sequence[str] = (),
        days: int = 365,
    ) -> Enrollment:
        data = await self._client.post_json(
            "/enroll",
            {
                "name": name,
                "secret": secret,
                "csr": csr_pem.decode("ascii"),
                "profile": profile,
                "hosts": list(hosts),
                "days": days,
            },
        )
        return Enrollment(
            name=_str(data, "name"),
            id_type=_str(data, "type"),
            profile=_str(data, "profile"),
            msp_id=_str(data, "msp_id"),
            org_name=_str(data, "org_name"),
            cert_pem=_str(data, "certificate").encode(),
            root_pem=_str(data, "root").encode(),
            intermediate_pems=_pems(data, "intermediates"),
        )

    async def revoke(self, signed: SignedCARequest) -> Revocation:
        data = await self._client.post_json("/revoke", {"signed_request": b64(signed.encode())})
        number = data.get("crl_number")
        if not isinstance(number, int):
            raise NodeProtocolError("the CA's answer lacks crl_number")
        return Revocation(
            serials=_serials(data, "revoked"),
            crl_pem=_str(data, "crl").encode(),
            crl_number=number,
        )

    async def crl(self) -> CRLInfo:
        data = await self._client.get_json("/crl")
        number = data.get("crl_number")
        next_update = data.get("next_update")
        return CRLInfo(
            crl_pem=_str(data, "crl").encode(),
            crl_number=number if isinstance(number, int) else None,
            revoked=_serials(data, "revoked"),
            next_update=next_update if isinstance(next_update, str) else None,
        )

    async def cainfo(self) -> CAInfo:
        data = await self._client.get_json("/cainfo")
        intermediate = data.get("intermediate")
        return CAInfo(
            org_name=_str(data, "org_name"),
            msp_id=_str(data, "msp_id"),
            subject=_str(data, "subject"),
            root_fingerprint=_str(data, "root_fingerprint"),
            not_after=_str(data, "not_after"),
            intermediate=intermediate if isinstance(intermediate, str) else None,
            root_pem=_str(data, "root").encode(),
            intermediate_pems=_pems(data, "intermediates"),
        )


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise NodeProtocolError(f"the CA's answer lacks '{key}'")
    return value


def _pems(data: dict[str, Any], key: str) -> tuple[bytes, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise NodeProtocolError(f"the CA's answer lacks '{key}'")
    return tuple(item.encode() for item in value)


def _serials(data: dict[str, Any], key: str) -> tuple[int, ...]:
    value = data.get(key)
    try:
        if not isinstance(value, list):
            raise ValueError
        return tuple(int(item, 16) for item in value)
    except (TypeError, ValueError):
        raise NodeProtocolError(f"the CA's answer lacks '{key}' as hex serials") from None
