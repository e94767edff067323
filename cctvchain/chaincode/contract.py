"""How a contract is written: a class whose exposed functions take a stub and text args.

    class Registry(Contract):
        NAME = "registry"

        @contract_function
        def Put(self, stub: ChaincodeStub, key: str, value: str) -> str: ...

        @contract_function(read_only=True)
        def Get(self, stub: ChaincodeStub, key: str) -> bytes | None: ...

Only decorated methods can be invoked by a proposal. A contract reaches state, the
caller's identity, the transaction's time and its events only through the stub; an
import-linter contract keeps ``cctvchain.chaincode`` free of clocks, randomness, files
and sockets, so two endorsers simulating one proposal compute the same result.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

_MARK = "__cctvchain_contract_function__"


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    read_only: bool


class ContractError(Exception):
    """A business-rule refusal raised by a contract: becomes a failed proposal response."""

    def __init__(self, message: str, status: int = 400, *, code: str = "") -> None:
        if not 400 <= status <= 599:
            # A status below 400 would make the refusal an OK (endorsable) response.
            raise ValueError(f"ContractError status must be 400..599, got {status}")
        # A stable upper-case code first, so clients can branch without parsing prose.
        super().__init__(f"{code}: {message}" if code else message)
        self.status = status
        self.code = code


@overload
def contract_function(func: F) -> F: ...
@overload
def contract_function(*, read_only: bool = False) -> Callable[[F], F]: ...


def contract_function(func: Any = None, *, read_only: bool = False) -> Any:
    """Mark a method as invocable by proposals (``read_only``: a query, never submitted)."""

    def mark(method: F) -> F:
        setattr(method, _MARK, FunctionInfo(method.__name__, read_only))
        return method

    return mark(func) if func is not None else mark


class Contract:
    NAME: ClassVar[str]

    @classmethod
    def functions(cls) -> dict[str, FunctionInfo]:
        found: dict[str, FunctionInfo] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                info = getattr(attribute, _MARK, None)
                if isinstance(info, FunctionInfo):
                    found[info.name] = info
        return found


def encode_result(result: object) -> bytes:
    """A function's return value as response payload bytes, deterministically."""
    if result is None:
        return b""
    if isinstance(result, bytes):
        return result
    if isinstance(result, str):
        return result.encode("utf-8")
    return json.dumps(
        result, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
