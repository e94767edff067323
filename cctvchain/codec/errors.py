"""Errors of the canonical codec: each names where in the value it went wrong."""

from __future__ import annotations


class CodecError(ValueError):
    """Base class: ``path`` locates the offending part (``$`` is the whole value)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class EncodeError(CodecError):
    """The value cannot be encoded canonically (a float, an unsupported type, ...)."""


class DecodeError(CodecError):
    """The bytes are malformed, non-canonical, or do not match the expected message."""


class UnknownMessageType(DecodeError):
    """The message names a type this node does not know."""


class UnsupportedVersion(DecodeError):
    """The message names a version of its type this node cannot read."""
