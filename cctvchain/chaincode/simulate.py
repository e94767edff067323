"""Run one contract function against a snapshot and package what it did.

Whatever the contract does — raise, return garbage, write too much — the result is a
:class:`SimulationResult` with an error response; simulation never raises and never
touches committed state.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

from cctvchain.chaincode.contract import Contract, ContractError, encode_result
from cctvchain.chaincode.stub import ChaincodeStub
from cctvchain.tx.messages import STATUS_ERROR, STATUS_OK, ContractEvent, Response
from cctvchain.tx.rwset import TxRWSet

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
STATUS_NOT_FOUND = 404
STATUS_BAD_REQUEST = 400


@dataclass(frozen=True)
class SimulationResult:
    response: Response
    rwset: TxRWSet
    events: tuple[ContractEvent, ...]

    @property
    def ok(self) -> bool:
        return self.response.ok


def _failure(status: int, message: str) -> SimulationResult:
    return SimulationResult(Response(status, message, b""), TxRWSet(()), ())


def simulate(
    contract: Contract, function: str, args: Sequence[str], stub: ChaincodeStub
) -> SimulationResult:
    info = type(contract).functions().get(function)
    if info is None:
        return _failure(
            STATUS_NOT_FOUND, f"contract {contract.NAME!r} has no function {function!r}"
        )
    method = getattr(contract, function)
    try:
        inspect.signature(method).bind(stub, *args)
    except TypeError as exc:
        return _failure(STATUS_BAD_REQUEST, f"{function}: wrong arguments ({exc})")
    try:
        payload = encode_result(method(stub, *args))
        rwset = stub.rwset()
    except ContractError as exc:
        return _failure(exc.status, str(exc))
    except Exception as exc:  # a contract bug must fail the proposal, not the peer
        return _failure(STATUS_ERROR, f"{function} failed: {type(exc).__name__}: {exc}")
    if len(payload) > MAX_RESPONSE_BYTES:
        return _failure(413, f"{function} returned more than {MAX_RESPONSE_BYTES} bytes")
    return SimulationResult(
        Response(STATUS_OK, "", payload),
        rwset,
        tuple(ContractEvent(name, data) for name, data in stub.events),
    )
