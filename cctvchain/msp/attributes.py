"""The certificate extension that carries an identity's attributes (``role=CRM``, ...).

Like Fabric's attribute extension, but under an OID of our own in the UUID arc (2.25,
ITU-T X.667), which needs no registration, and with the value canonical-encoded by
:mod:`cctvchain.codec` so that one attribute map has exactly one byte form. The
extension is non-critical: software that does not know it (OpenSSL during a TLS
handshake) may ignore it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cryptography import x509

from cctvchain.codec import DecodeError, decode, encode
from cctvchain.msp.errors import MalformedAttributes

# 2.25.<the integer value of the UUID 51717cc3-4366-4121-b315-5daa312cab83>, drawn once.
ATTRIBUTES_OID = x509.ObjectIdentifier("2.25.108256727692734277983009794200724876163")

MAX_ATTRIBUTES = 32
MAX_VALUE_LENGTH = 256
MAX_EXTENSION_SIZE = 16 * 1024
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")

# The attribute that makes an identity a registrar: "*" or a comma list of the identity
# types it may register and revoke (Fabric's hf.Registrar.Roles).
REGISTRAR_ATTRIBUTE = "registrar"
ROLE_ATTRIBUTE = "role"


def attribute_problem(name: str, value: str) -> str | None:
    """Why ``name=value`` is not an acceptable attribute, or ``None`` if it is."""
    if not _NAME.fullmatch(name):
        return f"attribute name {name!r} must match {_NAME.pattern}"
    if len(value) > MAX_VALUE_LENGTH:
        return f"attribute {name!r} is longer than {MAX_VALUE_LENGTH} characters"
    if not value.isprintable():
        return f"attribute {name!r} contains non-printable characters"
    return None


def check_attributes(attributes: Mapping[str, str]) -> None:
    """Raise ``ValueError`` unless every attribute is acceptable."""
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValueError(f"more than {MAX_ATTRIBUTES} attributes")
    for name, value in attributes.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError("attribute names and values must be text")
        problem = attribute_problem(name, value)
        if problem is not None:
            raise ValueError(problem)


def attributes_extension(attributes: Mapping[str, str]) -> x509.UnrecognizedExtension:
    check_attributes(attributes)
    return x509.UnrecognizedExtension(ATTRIBUTES_OID, encode(dict(attributes)))


def decode_attributes(value: bytes) -> dict[str, str]:
    """Strictly decode the extension value; raise :class:`MalformedAttributes`."""
    if len(value) > MAX_EXTENSION_SIZE:
        raise MalformedAttributes("attributes extension is too large")
    try:
        decoded = decode(value)
    except DecodeError as exc:
        raise MalformedAttributes(f"attributes extension is not canonical: {exc}") from exc
    if not isinstance(decoded, dict) or not all(isinstance(v, str) for v in decoded.values()):
        raise MalformedAttributes("attributes extension is not a map of text to text")
    try:
        check_attributes(decoded)
    except ValueError as exc:
        raise MalformedAttributes(str(exc)) from exc
    return decoded


def certificate_attributes(cert: x509.Certificate) -> dict[str, str]:
    """The attributes a certificate carries (empty if it has no attributes extension)."""
    try:
        extension = cert.extensions.get_extension_for_oid(ATTRIBUTES_OID)
    except x509.ExtensionNotFound:
        return {}
    except ValueError as exc:
        raise MalformedAttributes(f"bad extensions: {exc}") from exc
    if extension.critical:
        raise MalformedAttributes("attributes extension must not be critical")
    raw = extension.value
    if not isinstance(raw, x509.UnrecognizedExtension):
        raise MalformedAttributes("attributes extension has an unexpected form")
    return decode_attributes(raw.value)


def registrar_types(attributes: Mapping[str, str]) -> frozenset[str] | None:
    """The identity types a registrar may manage; ``None`` if it is not a registrar.

    ``"*"`` stands for every type; the caller expands it against the known types.
    """
    value = attributes.get(REGISTRAR_ATTRIBUTE)
    if value is None:
        return None
    types = frozenset(part.strip() for part in value.split(",") if part.strip())
    return types or None
