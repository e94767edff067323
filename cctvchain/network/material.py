"""Crypto material and the genesis block of a network, created only where missing.

Layout under ``config.nodes_dir``::

    <ca name>/               one CA directory per organisation (see cctvchain.msp.store)
    wallets/admin@<Org>/     the organisation's admin and bootstrap registrar (msp + tls)
    wallets/<name>@<Org>/    users and cameras added with enroll_identity (msp + tls)
    <node name>/wallet/      each orderer's and peer's identity and TLS certificate
    genesis.block            the channel's block 0 (canonical bytes)

Every CA directory and wallet is built under a hidden ``.<name>.partial`` name and
renamed into place when whole, so anything under its final name is complete. The CA
registry is saved *before* a wallet is renamed (a certificate the CA has no record of
could not be revoked by name): after a crash in between, the next call finds the staged
wallet's certificates on record and finishes the rename, and a staged wallet the CA does
not know is discarded and issued again. Enrollment secrets are drawn by the CA, used at
once for the CSRs and never written anywhere.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cctvchain.crypto import SigningKey
from cctvchain.ledger.block import Block
from cctvchain.ledger.config import ChannelConfig
from cctvchain.ledger.genesis import genesis_config
from cctvchain.msp import certs
from cctvchain.msp.ca import CertificateAuthority, create_ca_material
from cctvchain.msp.errors import MSPError, StoreError
from cctvchain.msp.files import PRIVATE_DIR_MODE
from cctvchain.msp.registry import Registry
from cctvchain.msp.requests import make_register_request
from cctvchain.msp.store import CAStore
from cctvchain.msp.wallet import Wallet, WalletIdentity
from cctvchain.network import genesis
from cctvchain.network.config import Endpoint, NetworkConfig, OrgSettings

ADMIN_NAME = "admin"
WALLETS_DIR = "wallets"
NODE_WALLET_DIR = "wallet"
PROFILES = ("msp", "tls")
# Like `cctvchain ca gencrl`'s default; a CA's first CRL is empty and goes into genesis.
CRL_VALIDITY = timedelta(days=7)

Log = Callable[[str], None]


class MaterialError(Exception):
    """Material on disk is inconsistent in a way that needs a person to decide."""


def _quiet(_: str) -> None:
    return None


# -- layout ------------------------------------------------------------------------------


def ca_dir(config: NetworkConfig, org: str) -> Path:
    return config.nodes_dir / config.org(org).ca.name


def wallet_dir(config: NetworkConfig, org: str, name: str) -> Path:
    config.org(org)  # refuse an unknown organisation by name
    return config.nodes_dir / WALLETS_DIR / f"{name}@{org}"


def node_dir(config: NetworkConfig, node: str) -> Path:
    config.node(node)
    return config.nodes_dir / node


def tls_hosts(endpoint: Endpoint) -> tuple[str, ...]:
    """The TLS SANs of a node: the host it is reached at, and localhost for local tools."""
    return tuple(dict.fromkeys((endpoint.host, "localhost")))


@dataclass(frozen=True)
class NetworkMaterial:
    """Where a network's material is; ``created`` names what the last call made."""

    nodes_dir: Path
    ca_dirs: Mapping[str, Path]  # organisation name -> CA directory
    admin_wallets: Mapping[str, Path]  # organisation name -> admin wallet
    node_dirs: Mapping[str, Path]  # orderer or peer name -> node directory
    genesis: Path
    created: tuple[str, ...] = ()

    @classmethod
    def locate(cls, config: NetworkConfig, created: Sequence[str] = ()) -> NetworkMaterial:
        nodes = (*config.orderers, *config.peers)
        return cls(
            nodes_dir=config.nodes_dir,
            ca_dirs={org.name: ca_dir(config, org.name) for org in config.organizations},
            admin_wallets={
                org.name: wallet_dir(config, org.name, ADMIN_NAME) for org in config.organizations
            },
            node_dirs={node.name: node_dir(config, node.name) for node in nodes},
            genesis=config.nodes_dir / genesis.GENESIS_FILE,
            created=tuple(created),
        )

    def node_wallet(self, node: str) -> Path:
        return self.node_dirs[node] / NODE_WALLET_DIR

    def genesis_block(self) -> Block:
        return genesis.read_genesis(self.genesis)

    def channel_config(self) -> ChannelConfig:
        return genesis_config(self.genesis_block())


# -- the whole network -------------------------------------------------------------------


def ensure_material(config: NetworkConfig, now: datetime, *, log: Log = _quiet) -> NetworkMaterial:
    """Create whatever of the network's material is missing; reuse the rest unchanged."""
    where = NetworkMaterial.locate(config)
    created: list[str] = []

    def made(item: str, message: str) -> None:
        created.append(item)
        log(message)

    if where.genesis.exists():
        # Before creating anything: a genesis block for another network stops the call.
        genesis.check_network(where.channel_config(), config, where.genesis)
    config.nodes_dir.mkdir(parents=True, exist_ok=True)
    for org in config.organizations:
        admin = f"{ADMIN_NAME}@{org.name}"
        if _ensure_ca(org, where.ca_dirs[org.name], where.admin_wallets[org.name], now):
            created.append(org.ca.name)
            made(admin, f"CA {org.ca.name} for {org.name} (MSP {org.msp_id}); {admin} enrolled")
        # The admin is created with its CA; this only checks it (or finishes its staging).
        _ensure_wallet_complete(
            CAStore(where.ca_dirs[org.name]), where.admin_wallets[org.name], ADMIN_NAME, "admin"
        )
    for kind, endpoints in (("orderer", config.orderers), ("peer", config.peers)):
        for endpoint in endpoints:
            if _ensure_node(endpoint, kind, where, now):
                made(
                    endpoint.name,
                    f"{endpoint.name}: {kind} identity of {endpoint.org}, "
                    f"TLS for {', '.join(tls_hosts(endpoint))}",
                )
    if _ensure_genesis(config, where):
        made(genesis.GENESIS_FILE, f"genesis block of channel {config.channel}")
    return NetworkMaterial.locate(config, created)


def enroll_identity(
    config: NetworkConfig,
    org: str,
    name: str,
    id_type: str,
    attributes: Mapping[str, str] | None = None,
    *,
    now: datetime,
) -> Path:
    """Register ``name`` at ``org``'s CA (signed by its admin) and enroll it, msp + tls,
    into ``wallets/<name>@<org>/``; return the wallet. An existing wallet of the same
    identity is returned as it is."""
    store = CAStore(ca_dir(config, org))
    wallet = wallet_dir(config, org, name)
    if _ensure_wallet_complete(store, wallet, name, id_type, missing_ok=True):
        return wallet
    registrar = Wallet(wallet_dir(config, org, ADMIN_NAME)).load()
    _issue(store, registrar, wallet, name, id_type, dict(attributes or {}), (), now)
    return wallet


# -- one CA, one wallet ------------------------------------------------------------------


def _ensure_ca(org: OrgSettings, directory: Path, admin: Path, now: datetime) -> bool:
    """Create the CA with its bootstrap admin enrolled, unless it exists."""
    if CAStore(directory).exists:
        return False
    if directory.exists():
        raise MaterialError(f"{directory} exists but is not a CA directory; move it away")
    if admin.exists():
        raise MaterialError(f"admin wallet {admin} exists but its CA {directory} does not")
    ca_staging, admin_staging = _staging(directory), _staging(admin)
    _discard(ca_staging)
    _discard(admin_staging)
    material = create_ca_material(org.name, org.msp_id, now)
    ca = CertificateAuthority(material, Registry())
    secret = ca.register_bootstrap(ADMIN_NAME, now)
    admin.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _enroll_into(ca, admin_staging, ADMIN_NAME, secret, (), now)
    crl = ca.generate_crl(now, now + CRL_VALIDITY)
    CAStore.initialize(ca_staging, material, ca.registry).write_crl(crl)
    _promote(ca_staging, directory)
    _promote(admin_staging, admin)
    return True


def _ensure_node(endpoint: Endpoint, kind: str, where: NetworkMaterial, now: datetime) -> bool:
    store = CAStore(where.ca_dirs[endpoint.org])
    wallet = where.node_wallet(endpoint.name)
    if _ensure_wallet_complete(store, wallet, endpoint.name, kind, missing_ok=True):
        return False
    wallet.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    registrar = Wallet(where.admin_wallets[endpoint.org]).load()
    _issue(store, registrar, wallet, endpoint.name, kind, {}, tls_hosts(endpoint), now)
    return True


def _ensure_genesis(config: NetworkConfig, where: NetworkMaterial) -> bool:
    if where.genesis.exists():
        return False
    organizations = [
        genesis.organization_config(org.name, CAStore(where.ca_dirs[org.name]))
        for org in config.organizations
    ]
    orderers = [
        genesis.orderer_config(
            endpoint, config.org(endpoint.org).msp_id, Wallet(where.node_wallet(endpoint.name))
        )
        for endpoint in config.orderers
    ]
    channel = genesis.initial_channel_config(config, organizations, orderers)
    genesis.write_genesis(where.genesis, channel)
    return True


def _ensure_wallet_complete(
    store: CAStore, wallet: Path, name: str, id_type: str, *, missing_ok: bool = False
) -> bool:
    """True if ``wallet`` holds this identity whole, False if it is (legitimately) missing.

    A staged wallet that the CA has on record is promoted; one it has not is discarded.
    """
    staging = _staging(wallet)
    if not wallet.exists() and staging.exists():
        if _on_record(store, staging, name):
            _promote(staging, wallet)
        else:
            _discard(staging)
    if not wallet.exists():
        if missing_ok:
            return False
        raise MaterialError(f"wallet {wallet} of {name} is missing")
    info = Wallet(wallet).info()
    msp_id = store.info()["msp_id"]
    if (info["name"], info["msp_id"], info["type"]) != (name, msp_id, id_type):
        raise MaterialError(
            f"wallet {wallet} holds {info['name']} ({info['type']}) of {info['msp_id']}, "
            f"not {name} ({id_type}) of {msp_id}"
        )
    missing = [profile for profile in PROFILES if not Wallet(wallet).has_profile(profile)]
    if missing:
        raise MaterialError(f"wallet {wallet} lacks its {' and '.join(missing)} certificate")
    return True


def _issue(
    store: CAStore,
    registrar: WalletIdentity,
    wallet: Path,
    name: str,
    id_type: str,
    attributes: dict[str, str],
    hosts: Sequence[str],
    now: datetime,
) -> None:
    """Register and enroll (msp + tls) into a staged wallet, save the registry, promote."""
    staging = _staging(wallet)
    request = make_register_request(
        registrar.signing_key,
        registrar.cert_pem,
        name=name,
        id_type=id_type,
        now=now,
        attributes=attributes,
    )
    with store.open() as ca:
        if name in ca.registry.identities:
            raise MaterialError(
                f"{name} is registered at {store.directory} but its wallet {wallet} is "
                "missing; restore the wallet, or remove the network material to start over"
            )
        secret = ca.register(request, now)
        _enroll_into(ca, staging, name, secret, hosts, now)
    _promote(staging, wallet)


def _enroll_into(
    ca: CertificateAuthority,
    wallet: Path,
    name: str,
    secret: str,
    hosts: Sequence[str],
    now: datetime,
) -> None:
    material = ca.material
    for profile in PROFILES:
        key = SigningKey.generate()
        cert_pem = ca.enroll(
            name,
            secret,
            certs.build_csr(key, name),
            now,
            profile=profile,
            hosts=hosts if profile == "tls" else (),
        )
        Wallet(wallet).save(
            profile=profile,
            name=name,
            msp_id=material.msp_id,
            id_type=ca.identity(name).id_type,
            key=key,
            cert_pem=cert_pem,
            root_pem=material.root_pem,
            intermediate_pems=material.intermediate_pems,
        )


def _on_record(store: CAStore, staging: Path, name: str) -> bool:
    """Whether the CA recorded every certificate of a staged wallet (then it is whole)."""
    wallet = Wallet(staging)
    paths = (wallet.msp_cert, wallet.tls_files.cert_file)
    try:
        if wallet.info()["name"] != name or not all(path.exists() for path in paths):
            return False
        serials = {certs.parse_certificates(path.read_bytes())[0].serial_number for path in paths}
    except (StoreError, MSPError, OSError, IndexError):
        return False
    with store.open(write=False) as ca:
        record = ca.registry.identities.get(name)
    return record is not None and serials <= {issued.serial for issued in record.certificates}


def _staging(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _discard(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def _promote(staging: Path, final: Path) -> None:
    os.rename(staging, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)  # make the rename itself durable
    finally:
        os.close(fd)
