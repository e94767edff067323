"""Running contract functions: dispatch, failures as responses, limits, determinism."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ledger_helpers import genesis, kv_tx, next_block

from cctvchain.chaincode import (
    ChaincodeStub,
    Contract,
    ContractError,
    Creator,
    FunctionInfo,
    SimulationLimits,
    SimulationResult,
    TxContext,
    contract_function,
    encode_result,
    simulate,
)
from cctvchain.chaincode.simulate import MAX_RESPONSE_BYTES
from cctvchain.ledger.records import Version
from cctvchain.ledger.store import Ledger
from cctvchain.tx.messages import ContractEvent, Response
from cctvchain.tx.rwset import KVRead, KVWriteEntry

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NS = "registry"
CREATOR = Creator("CityCCTVMSP", "alice", "client", {"role": "CRM"}, b"cert")


class Base(Contract):
    NAME = "base"

    @contract_function(read_only=True)
    def Version(self, stub: ChaincodeStub) -> str:
        return "1"


class Registry(Base):
    NAME = NS

    @contract_function
    def Put(self, stub: ChaincodeStub, key: str, value: str) -> None:
        stub.put_state(key, value.encode())
        stub.set_event("Put", key.encode())

    @contract_function(read_only=True)
    def Get(self, stub: ChaincodeStub, key: str) -> bytes | None:
        return stub.get_state(key)

    @contract_function
    def Move(self, stub: ChaincodeStub, src: str, dst: str) -> dict[str, object]:
        value = stub.get_state(src)
        if value is None:
            raise ContractError(f"{src} does not exist", status=404)
        stub.del_state(src)
        stub.put_state(dst, value)
        return {"moved": src, "to": dst, "size": len(value)}

    @contract_function
    def Optional(self, stub: ChaincodeStub, key: str, value: str = "default") -> None:
        stub.put_state(key, value.encode())

    @contract_function
    def Many(self, stub: ChaincodeStub, *keys: str) -> int:
        for key in keys:
            stub.put_state(key, b"")
        return len(keys)

    @contract_function
    def Crash(self, stub: ChaincodeStub) -> None:
        stub.put_state("partial", b"written before the crash")
        stub.set_event("Crash", b"")
        raise KeyError("boom")

    @contract_function
    def Fill(self, stub: ChaincodeStub, count: str) -> None:
        for i in range(int(count)):
            stub.put_state(f"k{i:04d}", b"v" * 100)

    @contract_function
    def Value(self, stub: ChaincodeStub, size: str) -> None:
        stub.put_state("v", b"x" * int(size))

    @contract_function
    def Scan(self, stub: ChaincodeStub) -> list[str]:
        return [key for key, _ in stub.get_state_by_range("", "")]

    @contract_function
    def Huge(self, stub: ChaincodeStub) -> bytes:
        return b"x" * (MAX_RESPONSE_BYTES + 1)

    @contract_function
    def Unencodable(self, stub: ChaincodeStub) -> object:
        return {"when": NOW}

    @contract_function
    def BadStatus(self, stub: ChaincodeStub) -> None:
        raise ContractError("refused, but claims success", status=200)

    @contract_function
    def CatchesRefusal(self, stub: ChaincodeStub) -> str:
        try:
            stub.put_state("big", b"x" * 10_000)
        except ContractError as exc:
            stub.put_state("note", str(exc.status).encode())
            return "recovered"
        return "not refused"

    def helper(self, stub: ChaincodeStub) -> str:  # not decorated: not invocable
        stub.put_state("helper", b"ran")
        return "helper ran"

    def _private(self, stub: ChaincodeStub) -> None:
        stub.put_state("private", b"ran")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = Ledger.open(tmp_path / "ledger", create=True)
    led.append_block(genesis())
    led.append_block(next_block(led, [kv_tx("tx-1-0", (NS, "a", b"alpha"), (NS, "b", b"beta"))]))
    yield led
    led.close()


def run(
    ledger: Ledger,
    function: str,
    *args: str,
    limits: SimulationLimits | None = None,
    contract: Contract | None = None,
) -> SimulationResult:
    with ledger.snapshot() as snap:
        stub = ChaincodeStub(
            NS,
            snap,
            TxContext("cctv", "cd" * 32, 1_767_225_600_000, CREATOR),
            limits or SimulationLimits(),
        )
        return simulate(contract or Registry(), function, args, stub)


def failed(result: SimulationResult, status: int) -> str:
    """Assert a failed result with no effects; return its message."""
    assert not result.ok
    assert result.response.status == status
    assert result.response.payload == b""
    assert result.rwset.namespaces == ()
    assert result.events == ()
    return result.response.message


# -- success --------------------------------------------------------------------------------


def test_a_successful_function(ledger: Ledger) -> None:
    result = run(ledger, "Move", "a", "z")
    assert result.ok
    assert result.response == Response(200, "", b'{"moved":"a","size":5,"to":"z"}')
    (ns,) = result.rwset.namespaces
    assert ns.namespace == NS
    assert ns.reads == (KVRead("a", Version(1, 0)),)
    assert ns.writes == (KVWriteEntry("a", True, b""), KVWriteEntry("z", False, b"alpha"))
    assert result.events == ()


def test_events_are_returned(ledger: Ledger) -> None:
    result = run(ledger, "Put", "k", "v")
    assert result.ok
    assert result.events == (ContractEvent("Put", b"k"),)
    assert result.rwset.write_count() == 1


def test_a_read_only_query(ledger: Ledger) -> None:
    result = run(ledger, "Get", "b")
    assert result.response == Response(200, "", b"beta")
    (ns,) = result.rwset.namespaces
    assert ns.reads == (KVRead("b", Version(1, 0)),) and ns.writes == ()
    missing = run(ledger, "Get", "nothing")
    assert missing.response == Response(200, "", b"")


def test_inherited_function_and_function_infos() -> None:
    functions = Registry.functions()
    assert functions["Version"] == FunctionInfo("Version", read_only=True)
    assert functions["Get"] == FunctionInfo("Get", read_only=True)
    assert functions["Put"] == FunctionInfo("Put", read_only=False)
    assert "helper" not in functions and "_private" not in functions
    assert "functions" not in functions
    assert set(Base.functions()) == {"Version"}


def test_inherited_function_runs(ledger: Ledger) -> None:
    result = run(ledger, "Version")
    assert result.response == Response(200, "", b"1")
    assert result.rwset.namespaces == ()  # no reads or writes: an empty rwset


def test_default_and_variadic_arguments(ledger: Ledger) -> None:
    assert run(ledger, "Optional", "k").rwset.namespaces[0].writes == (
        KVWriteEntry("k", False, b"default"),
    )
    result = run(ledger, "Many", "x", "y", "z")
    assert result.response.payload == b"3"
    assert run(ledger, "Many").response.payload == b"0"


def test_simulation_never_touches_committed_state(ledger: Ledger) -> None:
    state = ledger.dump_state()
    height, head = ledger.height, ledger.head_hash
    for function, args in [
        ("Put", ("a", "changed")),
        ("Move", ("b", "c")),
        ("Crash", ()),
        ("Fill", ("5",)),
    ]:
        run(ledger, function, *args)
    assert ledger.dump_state() == state
    assert (ledger.height, ledger.head_hash) == (height, head)


def test_simulation_is_deterministic(ledger: Ledger) -> None:
    first = run(ledger, "Move", "a", "z")
    second = run(ledger, "Move", "a", "z")
    assert first.rwset.encode() == second.rwset.encode()
    assert first.response.encode() == second.response.encode()


# -- failures -------------------------------------------------------------------------------


def test_a_contract_that_raises_fails_the_proposal_not_the_peer(ledger: Ledger) -> None:
    message = failed(run(ledger, "Crash"), 500)
    assert message == "Crash failed: KeyError: 'boom'"


def test_contract_error_gives_its_status_and_message(ledger: Ledger) -> None:
    assert failed(run(ledger, "Move", "nothing", "z"), 404) == "nothing does not exist"


def test_contract_error_status_must_be_a_failure() -> None:
    assert ContractError("no").status == 400
    assert ContractError("no", status=599).status == 599
    for status in (200, 399, 600):
        with pytest.raises(ValueError, match=r"status must be 400\.\.599"):
            ContractError("no", status=status)


def test_a_refusal_cannot_pass_for_success(ledger: Ledger) -> None:
    message = failed(run(ledger, "BadStatus"), 500)
    assert "ContractError status must be 400..599, got 200" in message


def test_unknown_and_undecorated_functions_are_404(ledger: Ledger) -> None:
    for function in ("Nope", "helper", "_private", "functions", "__init__", "NAME"):
        message = failed(run(ledger, function), 404)
        assert message == f"contract 'registry' has no function {function!r}"


def test_wrong_number_of_arguments_is_400(ledger: Ledger) -> None:
    assert "Put: wrong arguments" in failed(run(ledger, "Put", "only-key"), 400)
    assert "Get: wrong arguments" in failed(run(ledger, "Get", "a", "extra"), 400)
    assert "wrong arguments" in failed(run(ledger, "Optional"), 400)


def test_oversize_write_set_is_413(ledger: Ledger) -> None:
    limits = SimulationLimits(max_write_set_bytes=1000)
    assert run(ledger, "Fill", "9", limits=limits).ok  # 9 x 105 bytes
    message = failed(run(ledger, "Fill", "10", limits=limits), 413)
    assert message == "write set exceeds 1000 bytes"


def test_a_caught_refusal_leaves_a_consistent_write_set(ledger: Ledger) -> None:
    result = run(ledger, "CatchesRefusal", limits=SimulationLimits(max_write_set_bytes=100))
    assert result.response.payload == b"recovered"
    assert result.rwset.namespaces[0].writes == (KVWriteEntry("note", False, b"413"),)


def test_oversize_value_is_400(ledger: Ledger) -> None:
    limits = SimulationLimits(max_value_bytes=64)
    assert run(ledger, "Value", "64", limits=limits).ok
    assert failed(run(ledger, "Value", "65", limits=limits), 400) == (
        "value for 'v' exceeds 64 bytes"
    )


def test_too_many_range_results_is_413(ledger: Ledger) -> None:
    assert run(ledger, "Scan", limits=SimulationLimits(max_range_results=2)).ok
    message = failed(run(ledger, "Scan", limits=SimulationLimits(max_range_results=1)), 413)
    assert message == "range query returned more than 1 results"


def test_oversize_response_is_413(ledger: Ledger) -> None:
    message = failed(run(ledger, "Huge"), 413)
    assert message == f"Huge returned more than {MAX_RESPONSE_BYTES} bytes"


def test_a_result_that_cannot_be_encoded_is_500(ledger: Ledger) -> None:
    message = failed(run(ledger, "Unencodable"), 500)
    assert message.startswith("Unencodable failed: TypeError:")


# -- encode_result --------------------------------------------------------------------------


def test_encode_result() -> None:
    assert encode_result(None) == b""
    assert encode_result(b"\x00raw") == b"\x00raw"
    assert encode_result("café") == "café".encode()
    assert encode_result({"b": 1, "a": [True, None]}) == b'{"a":[true,null],"b":1}'
    assert encode_result({"a": 1, "b": 2}) == encode_result({"b": 2, "a": 1})
    assert encode_result({"n": "é"}) == '{"n":"é"}'.encode()  # UTF-8, not \\u escapes
    assert encode_result(3) == b"3"
    with pytest.raises(ValueError):
        encode_result(float("nan"))
