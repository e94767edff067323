"""Block model, validation codes, orderer signatures, config transactions, genesis."""

from __future__ import annotations

from dataclasses import replace

import pytest
from ledger_helpers import KvTx, kv_tx, sample_config

from cctvchain.codec import DecodeError, decode_message, encode
from cctvchain.crypto import SignatureError, SigningKey, sha256
from cctvchain.crypto.merkle import merkle_root
from cctvchain.ledger.block import (
    ZERO_HASH,
    Block,
    BlockHeader,
    BlockNumberMismatch,
    DataHashMismatch,
    PreviousHashMismatch,
    TxFlagsMismatch,
    check_block_structure,
    make_block,
    sign_block,
    verify_block_signature,
)
from cctvchain.ledger.config import CONFIG_KEY, CONFIG_NAMESPACE, ChannelConfig
from cctvchain.ledger.genesis import (
    ConfigTransaction,
    NotAGenesisBlock,
    genesis_config,
    make_config_block,
    make_genesis_block,
    sign_config,
    verify_config_signature,
)
from cctvchain.ledger.transaction import KVWrite, LedgerTransaction, decode_block_transactions
from cctvchain.ledger.validation import TxValidationCode, code_name

V = TxValidationCode


def test_validation_codes_are_fabrics() -> None:
    assert (V.VALID, V.DUPLICATE_TXID, V.MVCC_READ_CONFLICT) == (0, 9, 11)
    assert (V.INVALID_CHAINCODE, V.NOT_VALIDATED, V.INVALID_OTHER_REASON) == (25, 254, 255)
    # Fabric's 28 plus EXPIRED_OR_REVOKED_IDENTITY and UNKNOWN_CERTIFICATE_REFERENCE
    assert len(V) == 30
    assert V.EXPIRED_OR_REVOKED_IDENTITY == 26
    assert V.UNKNOWN_CERTIFICATE_REFERENCE == 27
    assert code_name(10) == "ENDORSEMENT_POLICY_FAILURE"
    assert code_name(100) == "UNKNOWN(100)"


def three_tx_block(number: int = 5, previous: bytes = b"\x11" * 32) -> Block:
    txs = [kv_tx(f"t{i}", ("ns", f"k{i}", b"v")) for i in range(3)]
    return make_block(number, previous, txs, [V.VALID, V.MVCC_READ_CONFLICT, V.VALID])


def test_block_round_trip_and_hashes() -> None:
    block = three_tx_block()
    decoded = decode_message(block.encode())
    assert decoded == block
    assert Block.decode(block.encode()).hash() == block.hash()
    assert block.hash() == sha256(block.header.encode())
    assert block.header.data_hash == merkle_root(block.transactions)
    assert block.metadata.tx_flags == bytes([0, 11, 0])
    assert block.tx_code(1) == V.MVCC_READ_CONFLICT
    # Metadata is outside the hash: flags and signatures can be set after cutting.
    assert block.with_flags([V.VALID] * 3).hash() == block.hash()
    # The header is not: any change to it changes the hash.
    assert replace(block.header, number=6).hash() != block.hash()


def test_make_block_defaults_to_not_validated() -> None:
    block = make_block(1, ZERO_HASH, [kv_tx("a")])
    assert list(block.metadata.tx_flags) == [V.NOT_VALIDATED]
    with pytest.raises(ValueError, match="not a transaction validation code"):
        make_block(1, ZERO_HASH, [kv_tx("a")], [77])


def test_header_fields_are_checked_on_decode() -> None:
    with pytest.raises(ValueError, match="previous_hash must be 32 bytes"):
        BlockHeader(1, b"short", ZERO_HASH)
    wire = three_tx_block().to_wire()
    wire["header"]["number"] = -1

    with pytest.raises(DecodeError, match="out of range"):
        Block.decode(encode(wire))


def test_structure_check_accepts_the_next_block() -> None:
    block = three_tx_block(5, b"\x11" * 32)
    check_block_structure(block, 5, b"\x11" * 32)


def test_structure_check_errors_are_precise() -> None:
    block = three_tx_block(5, b"\x11" * 32)
    with pytest.raises(BlockNumberMismatch, match="block 5: expected block number 4"):
        check_block_structure(block, 4, b"\x11" * 32)
    with pytest.raises(PreviousHashMismatch, match="does not match the hash of block 4") as info:
        check_block_structure(block, 5, b"\x22" * 32)
    assert info.value.block_number == 5
    tampered = replace(block, data=replace(block.data, transactions=block.transactions[:2]))
    with pytest.raises(DataHashMismatch, match="data hash"):
        check_block_structure(tampered, 5, b"\x11" * 32)
    short_flags = replace(block, metadata=replace(block.metadata, tx_flags=b"\x00\x00"))
    with pytest.raises(TxFlagsMismatch, match="2 validation flags for 3 transactions"):
        check_block_structure(short_flags, 5, b"\x11" * 32)
    odd_flag = replace(block, metadata=replace(block.metadata, tx_flags=b"\x00\x63\x00"))
    with pytest.raises(TxFlagsMismatch, match=r"transaction 1 has UNKNOWN\(99\) flag"):
        check_block_structure(odd_flag, 5, b"\x11" * 32)


def test_orderer_signature_over_the_header() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    block = three_tx_block()
    sig = sign_block(block.header, key, "OrdererMSP", b"PEM")
    signed = block.with_signatures([sig])
    assert Block.decode(signed.encode()).metadata.signatures == (sig,)
    verify_block_signature(signed.header, sig, key.verifying_key)
    with pytest.raises(SignatureError):
        verify_block_signature(signed.header, sig, other.verifying_key)
    with pytest.raises(SignatureError):
        verify_block_signature(replace(block.header, number=6), sig, key.verifying_key)


def test_ledger_transaction_decoding() -> None:
    config_tx = ConfigTransaction(sample_config())
    block = make_block(
        1,
        ZERO_HASH,
        [
            kv_tx("a", ("ns", "k", b"v")),
            b"\xff\x00 junk",
            sample_config().encode(),
            config_tx.encode(),
        ],
    )
    a, junk, not_a_tx, config = decode_block_transactions(block)
    assert a.tx_id == "a" and a.type_name == KvTx.TYPE
    assert isinstance(a.tx, LedgerTransaction)
    assert a.tx.state_writes() == [KVWrite("ns", "k", b"v")]
    assert junk.message is None and junk.tx is None and "does not decode" in (junk.error or "")
    assert not_a_tx.message is not None and not_a_tx.tx is None
    assert not_a_tx.error == "config.channel has no tx id"
    assert config.tx_id == config_tx.tx_id


def test_config_transaction_and_genesis_block() -> None:
    config = sample_config()
    genesis = make_genesis_block(config)
    assert genesis.number == 0
    assert genesis.header.previous_hash == ZERO_HASH
    assert genesis.metadata.signatures == ()
    assert list(genesis.metadata.tx_flags) == [V.VALID]
    check_block_structure(genesis, 0, ZERO_HASH)
    assert genesis_config(Block.decode(genesis.encode())) == config
    tx = ConfigTransaction.decode(genesis.transactions[0])
    assert tx.state_writes() == [KVWrite(CONFIG_NAMESPACE, CONFIG_KEY, config.encode())]
    # The id depends on the configuration only, and differs between configurations.
    assert tx.tx_id == ConfigTransaction(config, ()).tx_id
    assert len(tx.tx_id) == 64
    assert tx.tx_id != ConfigTransaction(sample_config(sequence=1)).tx_id
    # Same configuration, same genesis block: nodes agree on the chain from block 0.
    assert make_genesis_block(sample_config()).hash() == genesis.hash()
    assert make_genesis_block(sample_config("other")).hash() != genesis.hash()


def test_genesis_config_refuses_other_blocks() -> None:
    with pytest.raises(NotAGenesisBlock, match="block 5 is not a genesis block"):
        genesis_config(three_tx_block())
    with pytest.raises(NotAGenesisBlock, match="not a config transaction"):
        genesis_config(make_block(0, ZERO_HASH, [kv_tx("x")], [V.VALID]))


def test_config_update_block_and_signatures() -> None:
    admin = SigningKey.generate()
    updated: ChannelConfig = sample_config(sequence=1)
    sig = sign_config(updated, admin, "PoliceMSP", b"PEM")
    verify_config_signature(updated, sig, admin.verifying_key)
    with pytest.raises(SignatureError):
        verify_config_signature(sample_config(sequence=2), sig, admin.verifying_key)
    genesis = make_genesis_block(sample_config())
    block = make_config_block(1, genesis.hash(), ConfigTransaction(updated, (sig,)))
    check_block_structure(block, 1, genesis.hash())
    assert list(block.metadata.tx_flags) == [V.NOT_VALIDATED]
    assert ConfigTransaction.decode(block.transactions[0]).signatures == (sig,)
