"""Network material on disk: CAs, wallets, node identities and the genesis block."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from cctvchain.ledger.block import Block
from cctvchain.ledger.genesis import genesis_config
from cctvchain.msp import certs
from cctvchain.msp.errors import NotChainedToMSP, WrongIdentityType
from cctvchain.msp.identity import MSPManager
from cctvchain.msp.wallet import Wallet
from cctvchain.network.config import NetworkConfig, load_network_config
from cctvchain.network.genesis import GenesisError
from cctvchain.network.material import (
    MaterialError,
    NetworkMaterial,
    enroll_identity,
    ensure_material,
)

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

SMALL = """
[network]
name = "small"
channel = "cams"
nodes_dir = "nodes"

[batch]
max_message_count = 10
batch_timeout_ms = 100

[policies]
Readers = "OR('OrgAMSP.member', 'OrgBMSP.member')"
Writers = "OR('OrgAMSP.member', 'OrgBMSP.member')"
Admins = "AND('OrgAMSP.admin', 'OrgBMSP.admin')"
BlockValidation = "OR('OrgAMSP.orderer')"

[endorsement]
cctv = "OR('OrgAMSP.peer', 'OrgBMSP.peer')"

[[organizations]]
name = "OrgA"
msp_id = "OrgAMSP"
ca = { name = "ca.a", host = "127.0.0.1", port = 7054 }

[[organizations]]
name = "OrgB"
msp_id = "OrgBMSP"
ca = { name = "ca.b", host = "127.0.0.1", port = 8054 }

[[orderers]]
name = "orderer0.a"
org = "OrgA"
host = "10.0.0.5"
port = 7050

[[peers]]
name = "peer0.a"
org = "OrgA"
host = "127.0.0.1"
port = 7051

[[peers]]
name = "peer0.b"
org = "OrgB"
host = "peer0.b.example.org"
port = 8051
"""


def small_config(tmp_path: Path, text: str = SMALL) -> NetworkConfig:
    path = tmp_path / "small.toml"
    path.write_text(text)
    return load_network_config(path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[NetworkConfig, NetworkMaterial]:
    """One small network's material, shared by the tests that only read it."""
    config = small_config(tmp_path_factory.mktemp("net"))
    return config, ensure_material(config, NOW)


def _files(root: Path) -> dict[Path, tuple[int, bytes]]:
    return {
        path: (path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _msps(material: NetworkMaterial) -> MSPManager:
    return MSPManager.from_channel_config(material.channel_config())


def test_creates_every_piece_where_the_layout_says(
    built: tuple[NetworkConfig, NetworkMaterial],
) -> None:
    config, material = built
    root = config.nodes_dir
    assert material.ca_dirs == {"OrgA": root / "ca.a", "OrgB": root / "ca.b"}
    assert material.admin_wallets["OrgB"] == root / "wallets" / "admin@OrgB"
    assert material.genesis == root / "genesis.block"
    for ca in material.ca_dirs.values():
        for name in ("ca.json", "ca-cert.pem", "ca-key.pem", "registry.json", "crl.pem"):
            assert (ca / name).is_file(), ca / name
    for wallet in (
        *material.admin_wallets.values(),
        *map(material.node_wallet, material.node_dirs),
    ):
        assert Wallet(wallet).has_profile("msp") and Wallet(wallet).has_profile("tls"), wallet
    assert sorted(material.node_dirs) == ["orderer0.a", "peer0.a", "peer0.b"]
    assert material.node_wallet("peer0.b") == root / "peer0.b" / "wallet"
    assert material.genesis.is_file()
    assert set(material.created) >= {"ca.a", "admin@OrgA", "orderer0.a", "peer0.b", "genesis.block"}
    # No half-made directories are left behind.
    assert not [p for p in root.rglob(".*.partial")]


def test_private_keys_and_registries_are_owner_only(
    built: tuple[NetworkConfig, NetworkMaterial],
) -> None:
    config, _ = built
    keys = [*config.nodes_dir.rglob("key.pem"), *config.nodes_dir.rglob("ca-key.pem")]
    # 2 CA keys + (2 admins + 3 nodes) x (msp + tls)
    assert len(keys) == 2 + 5 * 2
    for path in [*keys, *config.nodes_dir.rglob("registry.json")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_no_secret_is_written_in_clear(built: tuple[NetworkConfig, NetworkMaterial]) -> None:
    config, _ = built
    # The CA keeps salted hashes only; nothing else anywhere names a secret.
    for path, (_, data) in _files(config.nodes_dir).items():
        text = data.decode(errors="replace")
        assert text.count('"secret') == text.count('"secret_hash": "scrypt$'), path


def test_a_second_call_changes_nothing(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    ensure_material(config, NOW)
    before = _files(config.nodes_dir)
    again = ensure_material(config, NOW)
    assert again.created == ()
    assert _files(config.nodes_dir) == before


def test_genesis_carries_the_whole_network(built: tuple[NetworkConfig, NetworkMaterial]) -> None:
    config, material = built
    block = Block.decode(material.genesis.read_bytes())
    channel = genesis_config(block)
    assert channel == material.channel_config()
    assert channel.channel_id == "cams"
    assert channel.sequence == 0
    assert [org.msp_id for org in channel.organizations] == ["OrgAMSP", "OrgBMSP"]
    for org in channel.organizations:
        ca = material.ca_dirs[org.name]
        assert org.root_certs == ((ca / "ca-cert.pem").read_bytes(),)
        assert org.tls_root_certs == org.root_certs
        assert org.crls == ((ca / "crl.pem").read_bytes(),)
    (orderer,) = channel.orderers
    assert (orderer.name, orderer.msp_id, orderer.host, orderer.port) == (
        "orderer0.a",
        "OrgAMSP",
        "10.0.0.5",
        7050,
    )
    wallet = Wallet(material.node_wallet("orderer0.a"))
    assert orderer.identity_cert == wallet.load().cert_pem
    assert orderer.tls_cert == wallet.tls_files.cert_file.read_bytes()
    assert channel.batch.max_message_count == 10
    assert channel.batch.batch_timeout_ms == 100
    assert channel.policies == config.policies
    assert channel.policies["Admins"] == "AND('OrgAMSP.admin', 'OrgBMSP.admin')"
    assert channel.endorsement_policies == {"cctv": "OR('OrgAMSP.peer', 'OrgBMSP.peer')"}


def test_node_and_admin_certificates_validate_with_their_type(
    built: tuple[NetworkConfig, NetworkMaterial],
) -> None:
    config, material = built
    msps = _msps(material)
    for kind, endpoints in (("orderer", config.orderers), ("peer", config.peers)):
        for endpoint in endpoints:
            msp_id = config.org(endpoint.org).msp_id
            identity = Wallet(material.node_wallet(endpoint.name)).load()
            validated = msps.validate(msp_id, identity.cert_pem, NOW, allowed_types=(kind,))
            assert (validated.name, validated.id_type) == (endpoint.name, kind)
            other = "OrgBMSP" if msp_id == "OrgAMSP" else "OrgAMSP"
            with pytest.raises(NotChainedToMSP):
                msps.validate(other, identity.cert_pem, NOW)
    admin = Wallet(material.admin_wallets["OrgB"]).load()
    validated = msps.validate("OrgBMSP", admin.cert_pem, NOW, allowed_types=("admin",))
    assert validated.attribute("registrar") == "*"
    with pytest.raises(WrongIdentityType):
        msps.validate("OrgBMSP", admin.cert_pem, NOW, allowed_types=("peer",))


def _sans(cert: x509.Certificate) -> list[str]:
    extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = [str(ip) for ip in extension.get_values_for_type(x509.IPAddress)]
    return ips + extension.get_values_for_type(x509.DNSName)


def test_tls_certificates_name_the_node_host_and_localhost(
    built: tuple[NetworkConfig, NetworkMaterial],
) -> None:
    config, material = built
    for endpoint in (*config.orderers, *config.peers):
        files = Wallet(material.node_wallet(endpoint.name)).load_tls()
        cert = certs.parse_certificates(files.cert_file.read_bytes())[0]
        sans = _sans(cert)
        assert endpoint.host in sans and "localhost" in sans, (endpoint.name, sans)
    ext = certs.parse_certificates(
        Wallet(material.node_wallet("orderer0.a")).tls_files.cert_file.read_bytes()
    )[0].extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert ipaddress.ip_address("10.0.0.5") in ext.value.get_values_for_type(x509.IPAddress)


def test_enroll_identity_writes_a_wallet_with_the_role(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    material = ensure_material(config, NOW)
    path = enroll_identity(config, "OrgA", "officer1", "client", {"role": "PO"}, now=NOW)
    assert path == config.nodes_dir / "wallets" / "officer1@OrgA"
    identity = Wallet(path).load()
    validated = _msps(material).validate("OrgAMSP", identity.cert_pem, NOW, ("client",))
    assert validated.role == "PO"
    assert Wallet(path).has_profile("tls")
    camera = enroll_identity(config, "OrgB", "cam-7", "camera", now=NOW)
    camera_identity = _msps(material).validate("OrgBMSP", Wallet(camera).load().cert_pem, NOW)
    assert (camera_identity.id_type, camera_identity.role) == ("camera", None)
    # Asking again returns the same wallet untouched.
    before = _files(path)
    assert enroll_identity(config, "OrgA", "officer1", "client", {"role": "PO"}, now=NOW) == path
    assert _files(path) == before
    with pytest.raises(MaterialError, match="holds officer1 \\(client\\)"):
        enroll_identity(config, "OrgA", "officer1", "camera", now=NOW)


def test_interrupted_runs_are_finished_or_redone(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    material = ensure_material(config, NOW)
    wallet = material.node_wallet("peer0.b")
    cert = Wallet(wallet).load().cert_pem
    # Crash after the CA saved its registry, before the wallet was renamed into place.
    wallet.rename(wallet.with_name(".wallet.partial"))
    again = ensure_material(config, NOW)
    assert Wallet(wallet).load().cert_pem == cert
    assert again.created == ()
    # Crash before the registry was saved: a staged wallet the CA never recorded.
    stray = config.nodes_dir / "wallets" / ".newbie@OrgA.partial"
    stray.mkdir()
    (stray / "identity.json").write_text("{}")
    path = enroll_identity(config, "OrgA", "newbie", "client", now=NOW)
    assert Wallet(path).load().name == "newbie"
    assert not stray.exists()


def test_a_lost_wallet_of_a_registered_identity_is_reported(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    material = ensure_material(config, NOW)
    shutil.rmtree(material.node_wallet("peer0.a"))
    with pytest.raises(MaterialError, match=r"peer0.a is registered at .* wallet .* is missing"):
        ensure_material(config, NOW)


def test_a_genesis_for_other_orderers_is_refused(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    ensure_material(config, NOW)
    extra = '\n[[orderers]]\nname = "orderer1.b"\norg = "OrgB"\nhost = "127.0.0.1"\nport = 8050\n'
    grown = small_config(tmp_path, SMALL + extra)
    with pytest.raises(GenesisError, match="orderers"):
        ensure_material(grown, NOW)
    assert not (config.nodes_dir / "orderer1.b").exists()


def test_the_default_network(tmp_path: Path) -> None:
    config = dataclasses.replace(
        load_network_config(REPO / "configs" / "local.toml"), nodes_dir=tmp_path / "nodes"
    )
    material = ensure_material(config, NOW)
    channel = material.channel_config()
    assert [org.name for org in channel.organizations] == ["CityCCTV", "Police", "LocalAuthority"]
    assert [o.name for o in channel.orderers] == ["orderer0.city", "orderer1.police", "orderer2.la"]
    assert len(material.node_dirs) == 7
    assert channel.endorsement_policies["cctv"].startswith("OutOf(2,")
    assert all(os.path.isdir(material.node_wallet(name)) for name in material.node_dirs)
