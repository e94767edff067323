"""The contract runtime: contracts, the stub they work through, and simulation."""

from cctvchain.chaincode.contract import (
    Contract,
    ContractError,
    FunctionInfo,
    contract_function,
    encode_result,
)
from cctvchain.chaincode.simulate import SimulationResult, simulate
from cctvchain.chaincode.stub import (
    ChaincodeStub,
    Creator,
    KeyModification,
    SimulationLimits,
    StateReader,
    TxContext,
)

__all__ = [
    "ChaincodeStub",
    "Contract",
    "ContractError",
    "Creator",
    "FunctionInfo",
    "KeyModification",
    "SimulationLimits",
    "SimulationResult",
    "StateReader",
    "TxContext",
    "contract_function",
    "encode_result",
    "simulate",
]
