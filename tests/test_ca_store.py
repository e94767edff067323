"""The CA directory and wallets on disk: permissions, atomicity, locking, layout."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cctvchain.crypto import Domain, SigningKey
from cctvchain.msp.ca import create_ca_material
from cctvchain.msp.certs import build_csr
from cctvchain.msp.errors import BadEnrollmentSecret, InsecureKeyFile, StoreError
from cctvchain.msp.identity import MSP
from cctvchain.msp.store import CAStore
from cctvchain.msp.wallet import Wallet

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # With umask 0 a file gets exactly the mode it was created with, so a key file
    # created with the default mode and chmod'ed later would show up here.
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def store(tmp_path: Path) -> CAStore:
    material = create_ca_material("CityCCTV", "CityCCTVMSP", NOW, intermediate=True)
    return CAStore.initialize(tmp_path / "ca", material)


def _enroll_admin(store: CAStore, wallet_dir: Path) -> Wallet:
    with store.open() as ca:
        secret = ca.register_bootstrap("admin", NOW)
    key = SigningKey.generate()
    with store.open() as ca:
        cert = ca.enroll("admin", secret, build_csr(key, "admin"), NOW)
    root, intermediates = store.ca_chain_pems()
    wallet = Wallet(wallet_dir)
    wallet.save(
        profile="msp",
        name="admin",
        msp_id="CityCCTVMSP",
        id_type="admin",
        key=key,
        cert_pem=cert,
        root_pem=root,
        intermediate_pems=intermediates,
    )
    return wallet


@pytest.mark.usefixtures("permissive_umask")
def test_key_files_are_created_0600(tmp_path: Path) -> None:
    material = create_ca_material("CityCCTV", "CityCCTVMSP", NOW, intermediate=True)
    store = CAStore.initialize(tmp_path / "ca", material)
    for name in ("ca-key.pem", "intermediate-key.pem", "registry.json"):
        assert _mode(store.path(name)) == 0o600, name
    assert _mode(store.path("ca-cert.pem")) == 0o644
    assert _mode(store.directory) == 0o700

    wallet = _enroll_admin(store, tmp_path / "wallet")
    assert _mode(wallet.msp_key) == 0o600
    assert _mode(wallet.msp_key.parent) == 0o700
    assert _mode(wallet.msp_cert) == 0o644
    # No temporary files are left behind by the atomic writes.
    leftovers = [p for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


def test_wallet_layout_and_load(store: CAStore, tmp_path: Path) -> None:
    wallet = _enroll_admin(store, tmp_path / "wallet")
    root = tmp_path / "wallet"
    for relative in (
        "identity.json",
        "msp/keystore/key.pem",
        "msp/signcerts/cert.pem",
        "msp/cacerts/ca.pem",
        "msp/intermediatecerts/intermediate-0.pem",
    ):
        assert (root / relative).is_file(), relative
    loaded = wallet.load()
    assert (loaded.name, loaded.msp_id, loaded.id_type) == ("admin", "CityCCTVMSP", "admin")
    msp = MSP("CityCCTVMSP", loaded.ca_certs, loaded.intermediate_certs)
    identity = msp.validate(loaded.cert_pem, NOW)
    signature = loaded.signing_key.sign(Domain.TEST, b"hello")
    identity.verify(Domain.TEST, b"hello", signature)

    with pytest.raises(StoreError, match="already holds"):
        wallet.check_writable("admin", "CityCCTVMSP", "msp")
    with pytest.raises(StoreError, match="belongs to"):
        wallet.check_writable("alice", "CityCCTVMSP", "tls")
    wallet.check_writable("admin", "CityCCTVMSP", "tls")
    with pytest.raises(StoreError, match="no tls"):
        wallet.load_tls()


def test_readable_key_refused(store: CAStore, tmp_path: Path) -> None:
    wallet = _enroll_admin(store, tmp_path / "wallet")
    os.chmod(wallet.msp_key, 0o644)
    with pytest.raises(InsecureKeyFile, match="0644"):
        wallet.load()
    os.chmod(wallet.msp_key, 0o600)
    assert wallet.load().name == "admin"

    os.chmod(store.path("ca-key.pem"), 0o640)
    with pytest.raises(InsecureKeyFile), store.open():
        pass


def test_init_refuses_an_existing_ca(store: CAStore) -> None:
    key_before = store.path("ca-key.pem").read_bytes()
    other = create_ca_material("Police", "PoliceMSP", NOW)
    with pytest.raises(StoreError, match="already holds a CA"):
        CAStore.initialize(store.directory, other)
    assert store.path("ca-key.pem").read_bytes() == key_before
    assert store.info() == {"org_name": "CityCCTV", "msp_id": "CityCCTVMSP"}


def test_missing_or_foreign_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"), CAStore(tmp_path / "nope").open():
        pass
    with pytest.raises(StoreError, match="not a CA directory"):
        CAStore(tmp_path).info()
    with pytest.raises(StoreError, match="does not exist"):
        Wallet(tmp_path / "nowallet").load()


def test_refused_operation_leaves_the_registry_untouched(store: CAStore) -> None:
    with store.open() as ca:
        secret = ca.register_bootstrap("admin", NOW)
    before = store.path("registry.json").read_bytes()
    with pytest.raises(BadEnrollmentSecret), store.open() as ca:
        ca.enroll("admin", secret + "x", build_csr(SigningKey.generate(), "admin"), NOW)
    assert store.path("registry.json").read_bytes() == before
    with store.open() as ca:
        ca.enroll("admin", secret, build_csr(SigningKey.generate(), "admin"), NOW)
    with store.open(write=False) as ca:
        assert ca.identity("admin").used_profiles == ["msp"]
        assert ca.material.intermediate_cert is not None


def test_concurrent_writers_do_not_lose_updates(store: CAStore) -> None:
    failures: list[BaseException] = []

    def register(index: int) -> None:
        try:
            # Separate CAStore objects, as separate CLI processes would have.
            with CAStore(store.directory).open() as ca:
                ca.register_bootstrap(f"admin{index}", NOW)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with store.open(write=False) as ca:
        assert sorted(ca.registry.identities) == [f"admin{i}" for i in range(6)]
