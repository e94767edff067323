"""Typed, versioned messages over the canonical encoder.

A message is a frozen dataclass that subclasses :class:`Message` and names its wire
``TYPE`` and ``VERSION``::

    @dataclass(frozen=True)
    class BlockHeader(Message):
        TYPE = "ledger.block_header"
        VERSION = 1
        number: int
        previous_hash: bytes

It encodes as a canonical map ``{"_t": TYPE, "_v": VERSION, <fields>}``. Decoding
checks the type, the version (``SUPPORTED_VERSIONS``; ``upgrade`` may lift an older
layout to the current one), that exactly the declared fields are present, and the type
of every field from the annotations — so unknown, missing or mistyped input is refused
with a :class:`DecodeError` that names the field path.

Supported field annotations: ``int``, ``str``, ``bytes``, ``bool``, ``IntEnum``
subclasses, other ``Message`` classes, ``X | None``, ``tuple[X, ...]`` and
``dict[str, X]``.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, Union

from cctvchain.codec import canonical
from cctvchain.codec.errors import DecodeError, UnknownMessageType, UnsupportedVersion

TYPE_FIELD = "_t"
VERSION_FIELD = "_v"

M = TypeVar("M", bound="Message")

_REGISTRY: dict[str, type[Message]] = {}

_Converter = Callable[[Any, str], Any]


class Message:
    """Base class of every typed wire message (subclasses are frozen dataclasses)."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    SUPPORTED_VERSIONS: ClassVar[tuple[int, ...]] = ()
    _field_converters: ClassVar[tuple[tuple[str, _Converter, _Converter], ...] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        type_name = cls.__dict__.get("TYPE")
        if type_name is None:
            return  # an abstract intermediate class
        if type_name in _REGISTRY and _REGISTRY[type_name] is not cls:
            existing = _REGISTRY[type_name].__qualname__
            raise TypeError(f"message type {type_name!r} already used by {existing}")
        _REGISTRY[type_name] = cls
        cls._field_converters = None

    # -- hooks -------------------------------------------------------------------------

    @classmethod
    def upgrade(cls, version: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Lift the raw fields of an older supported ``version`` to the current layout."""
        return fields

    # -- encoding ----------------------------------------------------------------------

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {TYPE_FIELD: self.TYPE, VERSION_FIELD: self.VERSION}
        for name, to_wire, _ in _converters(type(self)):
            wire[name] = to_wire(getattr(self, name), name)
        return wire

    def encode(self) -> bytes:
        """The canonical bytes of this message (what is hashed and signed)."""
        return canonical.encode(self.to_wire())

    # -- decoding ----------------------------------------------------------------------

    @classmethod
    def from_wire(cls: type[M], wire: Any, path: str = "$") -> M:
        if not isinstance(wire, dict):
            raise DecodeError(path, f"expected a {cls.TYPE} map, got {_kind(wire)}")
        type_name = wire.get(TYPE_FIELD)
        if type_name != cls.TYPE:
            raise DecodeError(path, f"expected message type {cls.TYPE!r}, got {type_name!r}")
        version = wire.get(VERSION_FIELD)
        if not isinstance(version, int) or isinstance(version, bool):
            raise DecodeError(path, f"{cls.TYPE}: missing or malformed version")
        supported = cls.SUPPORTED_VERSIONS or (cls.VERSION,)
        if version not in supported:
            raise UnsupportedVersion(
                path, f"{cls.TYPE} version {version} is not supported (supported: {supported})"
            )
        plan = _plan(cls)
        if version == cls.VERSION and wire.keys() == plan.wire_keys:
            # The common case: the current version with exactly the declared fields, so
            # no copy of the fields and no unknown/missing sets are needed.
            fields = wire
        else:
            fields = cls._checked_fields(wire, version, plan, path)
        values: dict[str, Any] = {}
        for name, scalar, from_wire in plan.decoders:
            value = fields[name]
            if scalar is None:
                values[name] = from_wire(value, f"{path}.{name}")
            elif type(value) is scalar:  # the check scalar_in makes, without a call
                values[name] = value
            else:
                raise DecodeError(f"{path}.{name}", _expected(scalar, value))
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:  # __post_init__ validation
            raise DecodeError(path, f"{cls.TYPE}: {exc}") from exc

    @classmethod
    def _checked_fields(
        cls, wire: dict[str, Any], version: int, plan: _Plan, path: str
    ) -> dict[str, Any]:
        """The fields of ``wire`` (a supported ``version``) lifted to the current version,
        or the precise error: unknown fields or missing fields."""
        fields = {k: v for k, v in wire.items() if k not in (TYPE_FIELD, VERSION_FIELD)}
        if version != cls.VERSION:
            fields = cls.upgrade(version, fields)
        unknown = sorted(set(fields) - plan.names)
        if unknown:
            raise DecodeError(path, f"{cls.TYPE}: unknown field(s) {', '.join(unknown)}")
        missing = sorted(plan.names - set(fields))
        if missing:
            raise DecodeError(path, f"{cls.TYPE}: missing field(s) {', '.join(missing)}")
        return fields

    @classmethod
    def decode(cls: type[M], data: bytes, *, max_size: int | None = None) -> M:
        """Decode canonical bytes into this message type, strictly."""
        return cls.from_wire(canonical.decode(data, max_size=max_size))


def decode_message(data: bytes, *, max_size: int | None = None) -> Message:
    """Decode bytes holding any registered message type."""
    wire = canonical.decode(data, max_size=max_size)
    if not isinstance(wire, dict):
        raise DecodeError("$", f"expected a message map, got {_kind(wire)}")
    type_name = wire.get(TYPE_FIELD)
    cls = _REGISTRY.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise UnknownMessageType("$", f"unknown message type {type_name!r}")
    return cls.from_wire(wire)


def message_class(type_name: str) -> type[Message] | None:
    return _REGISTRY.get(type_name)


# -- field converters, compiled once per class from the annotations ---------------------


_KINDS: dict[type, str] = {dict: "map", list: "array", bytes: "bytes", str: "text", bool: "bool"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return _KINDS.get(type(value), type(value).__name__)


class _Plan:
    """What decoding one message class needs, worked out once from its annotations."""

    __slots__ = ("decoders", "names", "wire_keys")

    def __init__(self, cls: type[Message]) -> None:
        converters = _converters(cls)
        self.names = frozenset(name for name, _, _ in converters)
        # The keys of a current-version wire map: the fields plus the type and version
        # (none if a field is named like either: then from_wire takes the long way,
        # which reports it missing).
        reserved = {TYPE_FIELD, VERSION_FIELD}
        self.wire_keys = frozenset() if self.names & reserved else self.names | reserved
        # (name, scalar type or None, from_wire): a scalar field (int, str, bytes, bool)
        # is checked inline by from_wire; the others go through their converter.
        self.decoders = tuple(
            (name, _SCALAR_OF.get(from_wire), from_wire) for name, _, from_wire in converters
        )


# Plans by class (a subclass never finds its parent's), made on first use.
_PLANS: dict[type[Message], _Plan] = {}


def _plan(cls: type[Message]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _Plan(cls)
    return plan


def _converters(cls: type[Message]) -> tuple[tuple[str, _Converter, _Converter], ...]:
    cached = cls.__dict__.get("_field_converters")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__qualname__} must be a dataclass")
    hints = typing.get_type_hints(cls)
    compiled = tuple(
        (f.name, *_compile(hints[f.name], f"{cls.__qualname__}.{f.name}"))
        for f in dataclasses.fields(cls)
    )
    cls._field_converters = compiled
    return compiled


def _identity_out(value: Any, path: str) -> Any:
    return value


def _expected(scalar: type, value: Any) -> str:
    return f"expected {scalar.__name__}, got {_kind(value)}"


def _scalar_in(scalar: type) -> _Converter:
    def scalar_in(value: Any, path: str) -> Any:
        # bool is an int subclass: keep the two apart in both directions.
        if type(value) is not scalar:
            raise DecodeError(path, _expected(scalar, value))
        return value

    return scalar_in


# One from_wire converter per scalar type, so that from_wire and tuple_in can recognise
# a scalar field and make its type check inline (the same check, the same error).
_SCALAR_IN: dict[Any, _Converter] = {t: _scalar_in(t) for t in (int, str, bytes, bool)}
_SCALAR_OF: dict[_Converter, type] = {conv: t for t, conv in _SCALAR_IN.items()}


def _compile(annotation: Any, where: str) -> tuple[_Converter, _Converter]:
    """Return (to_wire, from_wire) for one annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if origin in (Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) != 1 or len(args) != 2:
            raise TypeError(f"{where}: only 'X | None' unions are supported")
        inner_out, inner_in = _compile(non_none[0], where)

        def optional_out(value: Any, path: str) -> Any:
            return None if value is None else inner_out(value, path)

        def optional_in(value: Any, path: str) -> Any:
            return None if value is None else inner_in(value, path)

        return optional_out, optional_in

    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{where}: only tuple[X, ...] is supported")
        item_out, item_in = _compile(args[0], where)

        def tuple_out(value: Any, path: str) -> Any:
            return [item_out(item, f"{path}[{i}]") for i, item in enumerate(value)]

        item_scalar = _SCALAR_OF.get(item_in)

        def tuple_in(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                raise DecodeError(path, f"expected array, got {_kind(value)}")
            if item_scalar is not None:  # scalar_in inline: no call, no path per item
                for i, item in enumerate(value):
                    if type(item) is not item_scalar:
                        raise DecodeError(f"{path}[{i}]", _expected(item_scalar, item))
                return tuple(value)
            return tuple([item_in(item, f"{path}[{i}]") for i, item in enumerate(value)])

        return tuple_out, tuple_in

    if origin is dict:
        if args[0] is not str:
            raise TypeError(f"{where}: map keys must be str")
        value_out, value_in = _compile(args[1], where)

        def dict_out(value: Any, path: str) -> Any:
            return {k: value_out(v, f"{path}.{k}") for k, v in value.items()}

        def dict_in(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise DecodeError(path, f"expected map, got {_kind(value)}")
            return {k: value_in(v, f"{path}.{k}") for k, v in value.items()}

        return dict_out, dict_in

    if isinstance(annotation, type) and issubclass(annotation, Message):
        message_cls = annotation

        def message_out(value: Any, path: str) -> Any:
            return value.to_wire()

        def message_in(value: Any, path: str) -> Any:
            return message_cls.from_wire(value, path)

        return message_out, message_in

    if isinstance(annotation, type) and issubclass(annotation, enum.IntEnum):
        enum_cls = annotation

        def enum_out(value: Any, path: str) -> Any:
            return int(value)

        def enum_in(value: Any, path: str) -> Any:
            if not isinstance(value, int) or isinstance(value, bool):
                raise DecodeError(path, f"expected int, got {_kind(value)}")
            try:
                return enum_cls(value)
            except ValueError as exc:
                raise DecodeError(path, f"{value} is not a valid {enum_cls.__name__}") from exc

        return enum_out, enum_in

    if annotation in (int, str, bytes, bool):
        return _identity_out, _SCALAR_IN[annotation]

    raise TypeError(f"{where}: unsupported field annotation {annotation!r}")
