"""A certificate authority on disk (the shell around :mod:`cctvchain.msp.ca`).

Layout of a CA directory::

    ca.json                  organisation name, MSP id
    ca-cert.pem              root CA certificate
    ca-key.pem               root CA key (0600)
    intermediate-cert.pem    optional intermediate CA certificate (issues everything)
    intermediate-key.pem     its key (0600)
    registry.json            identities, issued serials, revocations (0600: secret hashes)
    crl.pem                  the last CRL generated
    .lock                    advisory lock held while the registry is read or changed
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509

from cctvchain.msp import certs
from cctvchain.msp.ca import CAMaterial, CertificateAuthority
from cctvchain.msp.errors import MalformedCertificate, StoreError
from cctvchain.msp.files import (
    PRIVATE_DIR_MODE,
    PRIVATE_MODE,
    locked,
    read_file,
    read_private_key,
    write_atomic,
    write_private_key,
)
from cctvchain.msp.registry import Registry

INFO_FILE = "ca.json"
ROOT_CERT_FILE = "ca-cert.pem"
ROOT_KEY_FILE = "ca-key.pem"
INTERMEDIATE_CERT_FILE = "intermediate-cert.pem"
INTERMEDIATE_KEY_FILE = "intermediate-key.pem"
REGISTRY_FILE = "registry.json"
CRL_FILE = "crl.pem"
LOCK_FILE = ".lock"


class CAStore:
    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def exists(self) -> bool:
        return self.path(INFO_FILE).is_file()

    @classmethod
    def initialize(
        cls, directory: Path | str, material: CAMaterial, registry: Registry | None = None
    ) -> CAStore:
        """Write a new CA directory; refuse to overwrite an existing CA."""
        store = cls(directory)
        store.directory.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        with locked(store.path(LOCK_FILE), exclusive=True):
            for name in (INFO_FILE, ROOT_KEY_FILE, REGISTRY_FILE):
                if store.path(name).exists():
                    raise StoreError(f"{store.directory} already holds a CA ({name} exists)")
            write_private_key(store.path(ROOT_KEY_FILE), material.root_key)
            write_atomic(store.path(ROOT_CERT_FILE), certs.pem(material.root_cert))
            if material.intermediate_key is not None and material.intermediate_cert is not None:
                write_private_key(store.path(INTERMEDIATE_KEY_FILE), material.intermediate_key)
                write_atomic(
                    store.path(INTERMEDIATE_CERT_FILE), certs.pem(material.intermediate_cert)
                )
            store._save_registry(registry if registry is not None else Registry())
            info = {"org_name": material.org_name, "msp_id": material.msp_id}
            write_atomic(store.path(INFO_FILE), json.dumps(info, indent=2).encode() + b"\n")
        return store

    # -- reading -------------------------------------------------------------------------

    def _require(self) -> None:
        if not self.directory.is_dir():
            raise StoreError(f"CA directory {self.directory} does not exist")
        if not self.exists:
            raise StoreError(
                f"{self.directory} is not a CA directory (no {INFO_FILE}; run `cctvchain ca init`)"
            )

    def info(self) -> dict[str, str]:
        self._require()
        try:
            data = json.loads(self.path(INFO_FILE).read_bytes())
        except ValueError as exc:
            raise StoreError(f"{self.path(INFO_FILE)} is not valid JSON") from exc
        if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) for key in ("org_name", "msp_id")
        ):
            raise StoreError(f"{self.path(INFO_FILE)} lacks org_name or msp_id")
        return {"org_name": data["org_name"], "msp_id": data["msp_id"]}

    def _certificate(self, name: str) -> x509.Certificate:
        path = self.path(name)
        try:
            return certs.parse_certificate(read_file(path, "certificate"))
        except MalformedCertificate as exc:
            raise StoreError(f"{path}: {exc}") from exc

    def load_material(self) -> CAMaterial:
        info = self.info()
        root_key = read_private_key(self.path(ROOT_KEY_FILE))
        root_cert = self._certificate(ROOT_CERT_FILE)
        intermediate_key = intermediate_cert = None
        if self.path(INTERMEDIATE_CERT_FILE).exists():
            intermediate_key = read_private_key(self.path(INTERMEDIATE_KEY_FILE))
            intermediate_cert = self._certificate(INTERMEDIATE_CERT_FILE)
        return CAMaterial(
            org_name=info["org_name"],
            msp_id=info["msp_id"],
            root_key=root_key,
            root_cert=root_cert,
            intermediate_key=intermediate_key,
            intermediate_cert=intermediate_cert,
        )

    def _load_registry(self) -> Registry:
        path = self.path(REGISTRY_FILE)
        try:
            return Registry.from_json(json.loads(read_file(path, "registry")))
        except ValueError as exc:
            raise StoreError(f"{path} is corrupt: {exc}") from exc

    def _save_registry(self, registry: Registry) -> None:
        data = json.dumps(registry.to_json(), indent=2, sort_keys=True).encode() + b"\n"
        write_atomic(self.path(REGISTRY_FILE), data, PRIVATE_MODE)

    @contextmanager
    def open(self, *, write: bool = True) -> Iterator[CertificateAuthority]:
        """The CA with its current registry, under the directory lock.

        With ``write``, the registry is saved when the block ends without an exception;
        a refused operation therefore changes nothing on disk.
        """
        self._require()
        with locked(self.path(LOCK_FILE), exclusive=write):
            ca = CertificateAuthority(self.load_material(), self._load_registry())
            yield ca
            if write:
                self._save_registry(ca.registry)

    # -- CRL -------------------------------------------------------------------------------

    def write_crl(self, crl_pem: bytes) -> Path:
        path = self.path(CRL_FILE)
        write_atomic(path, crl_pem)
        return path

    def read_crl(self) -> bytes | None:
        path = self.path(CRL_FILE)
        return path.read_bytes() if path.exists() else None

    def ca_chain_pems(self) -> tuple[bytes, tuple[bytes, ...]]:
        """The root certificate and the intermediate certificates, as PEM."""
        self._require()
        root = read_file(self.path(ROOT_CERT_FILE), "certificate")
        path = self.path(INTERMEDIATE_CERT_FILE)
        return root, ((path.read_bytes(),) if path.exists() else ())
