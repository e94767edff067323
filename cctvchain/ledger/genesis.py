"""Configuration transactions and the genesis block (pure).

The genesis block carries the channel configuration (organisations and MSP roots,
orderers, policies, batch parameters) in one ``VALID`` :class:`ConfigTransaction`. It has
no orderer signatures: a node trusts it because it was given to it out of band, as a
Fabric peer trusts the genesis block it joins a channel with. Later configuration
updates are config transactions in ordinary blocks (:func:`make_config_block`),
signed by organisation admins (:func:`sign_config`) and checked by the validator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cctvchain.codec import CodecError, Message
from cctvchain.crypto import Domain, SigningKey, VerifyingKey, sha256
from cctvchain.ledger.block import ZERO_HASH, Block, make_block
from cctvchain.ledger.config import CONFIG_KEY, CONFIG_NAMESPACE, ChannelConfig
from cctvchain.ledger.transaction import KVWrite
from cctvchain.ledger.validation import TxValidationCode

CONFIG_TX_ID_PREFIX = b"cctvchain/config-tx/v1\x00"


@dataclass(frozen=True)
class ConfigSignature(Message):
    """An admin's signature (``Domain.CONFIG_UPDATE``) over the config digest."""

    TYPE = "ledger.config_signature"
    msp_id: str
    cert: bytes  # PEM
    signature: bytes


@dataclass(frozen=True)
class ConfigTransaction(Message):
    """A transaction that sets the channel configuration (implements LedgerTransaction)."""

    TYPE = "ledger.config_tx"
    config: ChannelConfig
    signatures: tuple[ConfigSignature, ...] = ()

    @property
    def tx_id(self) -> str:
        # Derived from the config alone: the same configuration submitted twice is a
        # duplicate transaction, whoever signed it.
        return sha256(CONFIG_TX_ID_PREFIX + self.config.encode()).hex()

    def state_writes(self) -> Sequence[KVWrite]:
        return [KVWrite(CONFIG_NAMESPACE, CONFIG_KEY, self.config.encode())]

    def certificates(self) -> Sequence[bytes]:
        """The certificates it carries (the admins'), for the ledger's registry."""
        return [signature.cert for signature in self.signatures]


def sign_config(
    config: ChannelConfig, key: SigningKey, msp_id: str, cert: bytes
) -> ConfigSignature:
    return ConfigSignature(msp_id, cert, key.sign(Domain.CONFIG_UPDATE, config.digest()))


def verify_config_signature(
    config: ChannelConfig, signature: ConfigSignature, key: VerifyingKey
) -> None:
    key.verify(Domain.CONFIG_UPDATE, config.digest(), signature.signature)


def make_genesis_block(config: ChannelConfig) -> Block:
    """Block 0: previous hash all zeros, one VALID config transaction, unsigned."""
    tx = ConfigTransaction(config)
    return make_block(0, ZERO_HASH, [tx.encode()], [TxValidationCode.VALID])


def make_config_block(
    number: int,
    previous_hash: bytes,
    config_tx: ConfigTransaction,
    tx_flags: Sequence[int] | None = None,
) -> Block:
    """A block holding one configuration update (``NOT_VALIDATED`` unless flagged)."""
    return make_block(number, previous_hash, [config_tx.encode()], tx_flags)


class NotAGenesisBlock(ValueError):
    pass


def genesis_config(block: Block) -> ChannelConfig:
    """The channel configuration a genesis block carries; raise if it is not one."""
    if block.number != 0 or block.header.previous_hash != ZERO_HASH:
        raise NotAGenesisBlock(f"block {block.number} is not a genesis block")
    if len(block.transactions) != 1:
        raise NotAGenesisBlock(
            f"a genesis block holds 1 transaction, not {len(block.transactions)}"
        )
    try:
        tx = ConfigTransaction.decode(block.transactions[0])
    except CodecError as exc:
        raise NotAGenesisBlock(
            f"the genesis transaction is not a config transaction: {exc}"
        ) from exc
    return tx.config
