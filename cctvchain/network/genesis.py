"""The channel's genesis block for a network: its configuration, drawn from the TOML and
from the generated CA and orderer material, and the block file on disk.

The block file holds the canonical bytes of the :class:`~cctvchain.ledger.block.Block`,
the same form ``cctvchain ledger init --genesis`` reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cctvchain.codec import CodecError
from cctvchain.ledger.block import Block
from cctvchain.ledger.config import ChannelConfig, OrdererConfig, OrganizationConfig
from cctvchain.ledger.genesis import NotAGenesisBlock, genesis_config, make_genesis_block
from cctvchain.msp import certs
from cctvchain.msp.files import write_atomic
from cctvchain.msp.store import CAStore
from cctvchain.msp.wallet import Wallet
from cctvchain.network.config import Endpoint, NetworkConfig

GENESIS_FILE = "genesis.block"


class GenesisError(Exception):
    """The genesis block file is unreadable, or was made for another network."""


def organization_config(name: str, ca: CAStore) -> OrganizationConfig:
    """An organisation's MSP as its CA directory defines it (roots, intermediates, CRL)."""
    root, intermediates = ca.ca_chain_pems()
    crl = ca.read_crl()
    return OrganizationConfig(
        msp_id=ca.info()["msp_id"],
        name=name,
        root_certs=(root,),
        intermediate_certs=intermediates,
        crls=(crl,) if crl else (),
        # The same CA issues the TLS certificates, so its root anchors mutual TLS too.
        tls_root_certs=(root,),
    )


def orderer_config(endpoint: Endpoint, msp_id: str, wallet: Wallet) -> OrdererConfig:
    identity = wallet.load()
    tls = wallet.load_tls()
    # The wallet's TLS file is the leaf followed by its intermediates; the config holds
    # the leaf only, the intermediates are in the organisation's MSP already.
    tls_leaf = certs.parse_certificates(tls.cert_file.read_bytes())[0]
    return OrdererConfig(
        name=endpoint.name,
        msp_id=msp_id,
        host=endpoint.host,
        port=endpoint.port,
        identity_cert=identity.cert_pem,
        tls_cert=certs.pem(tls_leaf),
    )


def initial_channel_config(
    config: NetworkConfig,
    organizations: Iterable[OrganizationConfig],
    orderers: Iterable[OrdererConfig],
) -> ChannelConfig:
    """Sequence 0 of the channel configuration: later changes are config updates."""
    return ChannelConfig(
        channel_id=config.channel,
        sequence=0,
        organizations=tuple(organizations),
        orderers=tuple(orderers),
        batch=config.batch,
        policies=dict(config.policies),
        endorsement_policies=dict(config.endorsement),
        acl_rules=config.acl_rules,
    )


def write_genesis(path: Path, config: ChannelConfig) -> Block:
    block = make_genesis_block(config)
    write_atomic(path, block.encode())
    return block


def read_genesis(path: Path) -> Block:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise GenesisError(f"genesis block {path} does not exist") from exc
    try:
        block = Block.decode(data)
        genesis_config(block)
    except (CodecError, NotAGenesisBlock) as exc:
        raise GenesisError(f"{path} is not a genesis block: {exc}") from exc
    return block


def check_network(channel: ChannelConfig, config: NetworkConfig, path: Path) -> None:
    """Refuse a genesis block made for another channel, organisations or orderers.

    Adding an organisation or an orderer after the channel exists is a configuration
    update on the ledger, not a new genesis block, so a mismatch is an error here.
    """
    expected = (
        config.channel,
        sorted(org.msp_id for org in config.organizations),
        sorted(orderer.name for orderer in config.orderers),
    )
    found = (
        channel.channel_id,
        sorted(org.msp_id for org in channel.organizations),
        sorted(orderer.name for orderer in channel.orderers),
    )
    for what, want, have in zip(
        ("channel", "organisations", "orderers"), expected, found, strict=True
    ):
        if want != have:
            raise GenesisError(
                f"{path} was made for another network: its {what} {have} differ from the "
                f"configuration's {want}; remove it (and every ledger made from it) to start over"
            )
