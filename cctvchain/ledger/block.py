"""The block model (pure): header, data, metadata, structure checks, orderer signatures.

* ``BlockHeader.hash()`` (= ``Block.hash()``) is SHA-256 over the header's canonical
  bytes; the next block's ``previous_hash`` is that value, which chains the blocks.
* ``data_hash`` is the RFC 6962 Merkle root over the transactions' bytes, so one
  transaction can later be proven to be in a block with a logarithmic inclusion proof.
* The metadata is outside both hashes, as in Fabric: the orderers sign the header hash
  (``Domain.BLOCK``), and each committing peer fills in one validation code per
  transaction (``tx_flags``) after validating the block.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from cctvchain.codec import Message
from cctvchain.crypto import HASH_SIZE, Domain, SigningKey, VerifyingKey, sha256
from cctvchain.crypto.merkle import merkle_root
from cctvchain.ledger.validation import TxValidationCode, code_name, is_known_code

ZERO_HASH = bytes(HASH_SIZE)
"""The previous hash of the genesis block, and the head hash of an empty ledger."""

_UINT64_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class BlockHeader(Message):
    TYPE = "ledger.block_header"
    number: int
    previous_hash: bytes
    data_hash: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.number <= _UINT64_MAX:
            raise ValueError(f"block number {self.number} is out of range")
        if len(self.previous_hash) != HASH_SIZE:
            raise ValueError(f"previous_hash must be {HASH_SIZE} bytes")
        if len(self.data_hash) != HASH_SIZE:
            raise ValueError(f"data_hash must be {HASH_SIZE} bytes")

    def hash(self) -> bytes:
        return sha256(self.encode())


@dataclass(frozen=True)
class BlockData(Message):
    """The ordered transactions; each is the canonical bytes of a registered message."""

    TYPE = "ledger.block_data"
    transactions: tuple[bytes, ...]

    def hash(self) -> bytes:
        return merkle_root(self.transactions)


@dataclass(frozen=True)
class MetadataSignature(Message):
    """An orderer's signature (``Domain.BLOCK``) over the block header hash."""

    TYPE = "ledger.block_signature"
    msp_id: str
    # PEM of the signing orderer's identity certificate, or its 32-byte reference
    # (SHA-256 of the PEM) when the channel configuration lists that certificate.
    cert: bytes
    signature: bytes


@dataclass(frozen=True)
class BlockMetadata(Message):
    TYPE = "ledger.block_metadata"
    signatures: tuple[MetadataSignature, ...] = ()
    tx_flags: bytes = b""  # one TxValidationCode byte per transaction


@dataclass(frozen=True)
class Block(Message):
    TYPE = "ledger.block"
    header: BlockHeader
    data: BlockData
    metadata: BlockMetadata

    @property
    def number(self) -> int:
        return self.header.number

    @property
    def transactions(self) -> tuple[bytes, ...]:
        return self.data.transactions

    def hash(self) -> bytes:
        return self.header.hash()

    def tx_code(self, index: int) -> int:
        """The raw validation byte of transaction ``index``."""
        return self.metadata.tx_flags[index]

    def with_flags(self, codes: Sequence[int]) -> Block:
        """A copy with the given per-transaction validation codes (same hash)."""
        return replace(self, metadata=replace(self.metadata, tx_flags=encode_flags(codes)))

    def with_signatures(self, signatures: Iterable[MetadataSignature]) -> Block:
        """A copy with the given orderer signatures (same hash)."""
        return replace(self, metadata=replace(self.metadata, signatures=tuple(signatures)))


# -- construction --------------------------------------------------------------------------


def encode_flags(codes: Sequence[int]) -> bytes:
    for code in codes:
        if not is_known_code(int(code)):
            raise ValueError(f"{code} is not a transaction validation code")
    return bytes(int(code) for code in codes)


def compute_data_hash(transactions: Sequence[bytes]) -> bytes:
    return merkle_root(transactions)


def make_block(
    number: int,
    previous_hash: bytes,
    transactions: Sequence[bytes],
    tx_flags: Sequence[int] | None = None,
    signatures: Iterable[MetadataSignature] = (),
) -> Block:
    """Build a block over ``transactions``.

    Without ``tx_flags`` every transaction is ``NOT_VALIDATED``: the orderer cuts blocks,
    the committing peer's validator sets the codes (``Block.with_flags``).
    """
    txs = tuple(bytes(tx) for tx in transactions)
    if tx_flags is None:
        tx_flags = [TxValidationCode.NOT_VALIDATED] * len(txs)
    header = BlockHeader(number, bytes(previous_hash), compute_data_hash(txs))
    return Block(
        header=header,
        data=BlockData(txs),
        metadata=BlockMetadata(tuple(signatures), encode_flags(tx_flags)),
    )


# -- structure checks ----------------------------------------------------------------------


class BlockStructureError(ValueError):
    """A block is not well formed, or does not follow the block before it."""

    def __init__(self, block_number: int, message: str) -> None:
        super().__init__(f"block {block_number}: {message}")
        self.block_number = block_number


class BlockNumberMismatch(BlockStructureError):
    pass


class PreviousHashMismatch(BlockStructureError):
    pass


class DataHashMismatch(BlockStructureError):
    pass


class TxFlagsMismatch(BlockStructureError):
    pass


def check_block_contents(block: Block) -> None:
    """Checks that need no context: data hash and validation flags."""
    number = block.number
    if block.data.hash() != block.header.data_hash:
        raise DataHashMismatch(
            number,
            f"data hash {block.header.data_hash.hex()} does not match the "
            f"transactions (Merkle root {block.data.hash().hex()})",
        )
    flags = block.metadata.tx_flags
    if len(flags) != len(block.transactions):
        raise TxFlagsMismatch(
            number,
            f"{len(flags)} validation flags for {len(block.transactions)} transactions",
        )
    for index, code in enumerate(flags):
        if not is_known_code(code):
            raise TxFlagsMismatch(number, f"transaction {index} has {code_name(code)} flag")


def check_block_structure(
    block: Block, expected_number: int, expected_previous_hash: bytes
) -> None:
    """Raise a precise :class:`BlockStructureError` unless ``block`` may follow the head."""
    number = block.number
    if number != expected_number:
        raise BlockNumberMismatch(number, f"expected block number {expected_number}")
    if block.header.previous_hash != expected_previous_hash:
        raise PreviousHashMismatch(
            number,
            f"previous hash {block.header.previous_hash.hex()} does not match the hash "
            f"of block {number - 1} ({expected_previous_hash.hex()})"
            if number > 0
            else f"genesis previous hash must be zero, got {block.header.previous_hash.hex()}",
        )
    check_block_contents(block)


# -- orderer signatures --------------------------------------------------------------------


def sign_block(header: BlockHeader, key: SigningKey, msp_id: str, cert: bytes) -> MetadataSignature:
    """An orderer's signature over ``header``'s hash."""
    return MetadataSignature(msp_id, cert, key.sign(Domain.BLOCK, header.hash()))


def verify_block_signature(
    header: BlockHeader, signature: MetadataSignature, key: VerifyingKey
) -> None:
    """Raise :class:`~cctvchain.crypto.SignatureError` unless ``signature`` is ``key``'s
    signature over ``header``. Mapping the certificate to a trusted key is the MSP's job."""
    key.verify(Domain.BLOCK, header.hash(), signature.signature)
