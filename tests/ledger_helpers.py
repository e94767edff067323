"""Test support for the ledger tests and the crash child process (not a test module).

``KvTx`` is a test-only transaction message implementing ``LedgerTransaction``, and
``workload_block`` generates a deterministic random block for a (seed, number), so the
crash test can compute the state a ledger must hold at any height without trusting the
ledger: ``expected_state``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cctvchain.codec import Message
from cctvchain.ledger.block import Block, make_block
from cctvchain.ledger.config import (
    CONFIG_KEY,
    CONFIG_NAMESPACE,
    BatchConfig,
    ChannelConfig,
    OrdererConfig,
    OrganizationConfig,
)
from cctvchain.ledger.genesis import make_genesis_block
from cctvchain.ledger.keys import create_composite_key
from cctvchain.ledger.transaction import KVWrite
from cctvchain.ledger.validation import TxValidationCode

VALID = TxValidationCode.VALID


@dataclass(frozen=True)
class KvWrite(Message):
    TYPE = "test.kv_write"
    namespace: str
    key: str
    value: bytes | None


@dataclass(frozen=True)
class KvTx(Message):
    """A test transaction: an id and the writes it makes."""

    TYPE = "test.kv_tx"
    tx_id: str
    writes: tuple[KvWrite, ...]

    def state_writes(self) -> list[KVWrite]:
        return [KVWrite(w.namespace, w.key, w.value) for w in self.writes]


def kv_tx(tx_id: str, *writes: tuple[str, str, bytes | None]) -> bytes:
    """The bytes of a KvTx with writes given as (namespace, key, value or None)."""
    return KvTx(tx_id, tuple(KvWrite(ns, key, value) for ns, key, value in writes)).encode()


def sample_config(channel_id: str = "cctv-channel", sequence: int = 0) -> ChannelConfig:
    orgs = tuple(
        OrganizationConfig(
            msp_id=f"{name}MSP",
            name=name,
            root_certs=(
                f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n".encode(),
            ),
        )
        for name in ("CityCCTV", "Police", "LocalAuthority")
    )
    orderers = tuple(
        OrdererConfig(name=f"orderer{i}", msp_id="CityCCTVMSP", host="127.0.0.1", port=7050 + i)
        for i in range(3)
    )
    return ChannelConfig(
        channel_id=channel_id,
        sequence=sequence,
        organizations=orgs,
        orderers=orderers,
        batch=BatchConfig(max_message_count=500, batch_timeout_ms=250),
        policies={"Writers": "OR('CityCCTVMSP.member', 'PoliceMSP.member')"},
        endorsement_policies={"cctv": "OutOf(2, 'CityCCTVMSP.peer', 'PoliceMSP.peer')"},
    )


class _Chain(Protocol):
    """What block building needs from a ledger (height and head hash)."""

    @property
    def height(self) -> int: ...

    @property
    def head_hash(self) -> bytes: ...


def next_block(ledger: _Chain, txs: Sequence[bytes], flags: Sequence[int] | None = None) -> Block:
    """The next block for ``ledger``; every transaction VALID unless ``flags`` say."""
    codes = list(flags) if flags is not None else [VALID] * len(txs)
    return make_block(ledger.height, ledger.head_hash, txs, codes)


# -- the deterministic random workload of the crash test -----------------------------------

NAMESPACES = ("ns1", "ns2")


def _workload_txs(seed: int, number: int) -> list[tuple[KvTx, int]]:
    rng = random.Random(f"{seed}:{number}")
    txs: list[tuple[KvTx, int]] = []
    for index in range(rng.randint(1, 10)):
        code: int = VALID
        tx_id = f"tx-{number}-{index}"
        roll = rng.random()
        if index > 0 and roll < 0.05 and number > 1:
            # Replay of an earlier block's first transaction (always fresh and indexed).
            tx_id, code = f"tx-{rng.randint(1, number - 1)}-0", TxValidationCode.DUPLICATE_TXID
        elif index > 0 and roll < 0.08:
            tx_id, code = f"tx-{number}-0", TxValidationCode.DUPLICATE_TXID
        elif roll < 0.18:
            code = TxValidationCode.MVCC_READ_CONFLICT
        writes = []
        for _ in range(rng.randint(1, 4)):
            ns = rng.choice(NAMESPACES)
            if rng.random() < 0.3:
                key = create_composite_key(
                    "cam", [f"c{rng.randint(0, 5)}", f"s{rng.randint(0, 3)}"]
                )
            else:
                key = f"k{rng.randint(0, 30)}"
            if rng.random() < 0.15:
                value = None
            elif rng.random() < 0.08:
                value = rng.randbytes(rng.randint(50_000, 150_000))  # big: longer writes
            else:
                value = rng.randbytes(rng.randint(1, 100))
            writes.append(KvWrite(ns, key, value))
        txs.append((KvTx(tx_id, tuple(writes)), code))
    return txs


def workload_block(seed: int, number: int, previous_hash: bytes) -> Block:
    txs = _workload_txs(seed, number)
    return make_block(number, previous_hash, [tx.encode() for tx, _ in txs], [c for _, c in txs])


def expected_state(seed: int, height: int) -> dict[tuple[str, str], tuple[bytes, tuple[int, int]]]:
    """The world state after blocks 0..height-1 of the workload (block 0 = genesis of
    ``sample_config()``), computed without the ledger."""
    state: dict[tuple[str, str], tuple[bytes, tuple[int, int]]] = {}
    if height > 0:
        state[(CONFIG_NAMESPACE, CONFIG_KEY)] = (sample_config().encode(), (0, 0))
    for number in range(1, height):
        for index, (tx, code) in enumerate(_workload_txs(seed, number)):
            if code != VALID:
                continue
            for write in tx.writes:
                if write.value is None:
                    state.pop((write.namespace, write.key), None)
                else:
                    state[(write.namespace, write.key)] = (write.value, (number, index))
    return state


def genesis() -> Block:
    return make_genesis_block(sample_config())
