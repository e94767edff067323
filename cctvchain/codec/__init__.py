"""Canonical encoding (deterministic CBOR subset) and typed, versioned messages."""

from cctvchain.codec.canonical import decode, encode
from cctvchain.codec.errors import (
    CodecError,
    DecodeError,
    EncodeError,
    UnknownMessageType,
    UnsupportedVersion,
)
from cctvchain.codec.messages import Message, decode_message, message_class

__all__ = [
    "CodecError",
    "DecodeError",
    "EncodeError",
    "Message",
    "UnknownMessageType",
    "UnsupportedVersion",
    "decode",
    "decode_message",
    "encode",
    "message_class",
]
