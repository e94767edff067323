"""The CA's registry of identities, as plain mutable dataclasses (no I/O).

The CA mutates a :class:`Registry` in memory; the store turns it into JSON and back.
Enrollment secrets are kept only as salted scrypt hashes, so a leaked ``registry.json``
does not hand out enrollments.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# scrypt at N=2^14, r=8 (16 MiB, ~50 ms): slow enough against guessing a user-chosen
# secret, cheap enough for tests. The parameters travel with each hash, so they can be
# raised later without invalidating existing records.
SCRYPT_N = 1 << 14
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_SIZE = 16
_HASH_SIZE = 32


def hash_secret(secret: str) -> str:
    salt = os.urandom(_SALT_SIZE)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=_HASH_SIZE
    )
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded[0]}${encoded[1]}"


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time check of ``secret`` against a :func:`hash_secret` value."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.scrypt(
            secret.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@dataclass
class IssuedCertificate:
    serial: int
    profile: str  # "msp" or "tls"
    not_before: datetime
    not_after: datetime
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": f"{self.serial:x}",
            "profile": self.profile,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "revoked_at": _time_out(self.revoked_at),
            "revocation_reason": self.revocation_reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IssuedCertificate:
        return cls(
            serial=int(_text(data, "serial"), 16),
            profile=_text(data, "profile"),
            not_before=datetime.fromisoformat(_text(data, "not_before")),
            not_after=datetime.fromisoformat(_text(data, "not_after")),
            revoked_at=_time_in(data.get("revoked_at")),
            revocation_reason=_optional_text(data, "revocation_reason"),
        )


@dataclass
class IdentityRecord:
    name: str
    id_type: str
    attributes: dict[str, str]
    secret_hash: str
    registered_by: str
    registered_at: datetime
    used_profiles: list[str] = field(default_factory=list)
    certificates: list[IssuedCertificate] = field(default_factory=list)
    revoked_at: datetime | None = None
    revocation_reason: str | None = None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "enrolled" if self.certificates else "registered"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id_type": self.id_type,
            "attributes": dict(self.attributes),
            "secret_hash": self.secret_hash,
            "registered_by": self.registered_by,
            "registered_at": self.registered_at.isoformat(),
            "used_profiles": list(self.used_profiles),
            "certificates": [cert.to_json() for cert in self.certificates],
            "revoked_at": _time_out(self.revoked_at),
            "revocation_reason": self.revocation_reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IdentityRecord:
        attributes = data.get("attributes")
        if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
        ):
            raise ValueError("attributes must be a map of text to text")
        profiles = data.get("used_profiles")
        if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
            raise ValueError("used_profiles must be a list of text")
        issued = data.get("certificates")
        if not isinstance(issued, list):
            raise ValueError("certificates must be a list")
        return cls(
            name=_text(data, "name"),
            id_type=_text(data, "id_type"),
            attributes=dict(attributes),
            secret_hash=_text(data, "secret_hash"),
            registered_by=_text(data, "registered_by"),
            registered_at=datetime.fromisoformat(_text(data, "registered_at")),
            used_profiles=list(profiles),
            certificates=[IssuedCertificate.from_json(_map(item)) for item in issued],
            revoked_at=_time_in(data.get("revoked_at")),
            revocation_reason=_optional_text(data, "revocation_reason"),
        )


@dataclass
class Registry:
    identities: dict[str, IdentityRecord] = field(default_factory=dict)
    crl_number: int = 0
    # sha256 (hex) of each recently processed signed request -> its timestamp (ms), so a
    # captured request cannot be replayed within its validity window.
    recent_requests: dict[str, int] = field(default_factory=dict)

    def find_certificate(self, serial: int) -> tuple[IdentityRecord, IssuedCertificate] | None:
        for record in self.identities.values():
            for issued in record.certificates:
                if issued.serial == serial:
                    return record, issued
        return None

    def revoked_certificates(self) -> list[IssuedCertificate]:
        return [
            issued
            for record in self.identities.values()
            for issued in record.certificates
            if issued.revoked_at is not None
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "identities": [record.to_json() for record in self.identities.values()],
            "crl_number": self.crl_number,
            "recent_requests": dict(self.recent_requests),
        }

    @classmethod
    def from_json(cls, data: Any) -> Registry:
        """Rebuild a registry; raise ``ValueError`` if ``data`` is not one."""
        data = _map(data)
        if data.get("version") != 1:
            raise ValueError(f"unsupported registry version {data.get('version')!r}")
        records = data.get("identities")
        recent = data.get("recent_requests")
        crl_number = data.get("crl_number")
        if not isinstance(records, list):
            raise ValueError("identities must be a list")
        if not isinstance(recent, dict) or not all(isinstance(v, int) for v in recent.values()):
            raise ValueError("recent_requests must be a map of text to int")
        if not isinstance(crl_number, int) or crl_number < 0:
            raise ValueError("crl_number must be a non-negative int")
        identities = {}
        for item in records:
            record = IdentityRecord.from_json(_map(item))
            identities[record.name] = record
        return cls(identities=identities, crl_number=crl_number, recent_requests=dict(recent))


def _map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    return value


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text")
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be text or null")
    return value


def _time_out(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time_in(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a time must be an ISO 8601 text")
    return datetime.fromisoformat(value)
