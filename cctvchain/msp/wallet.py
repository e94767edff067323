"""An enrolled identity on disk, in Fabric's MSP folder layout (the shell of enrollment).

::

    identity.json                 name, msp_id, type
    msp/keystore/key.pem          signing key (0600)
    msp/signcerts/cert.pem        enrollment certificate
    msp/cacerts/ca.pem            root CA certificate
    msp/intermediatecerts/*.pem   intermediate CA certificates, if any
    tls/key.pem                   TLS key (0600)
    tls/cert.pem                  TLS certificate followed by its intermediates
    tls/ca.pem                    root CA certificate (trust anchor for the peer's chain)

Keys whose file is accessible by group or others are refused on load (see
:func:`cctvchain.msp.files.read_private_key`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cctvchain.crypto import SigningKey
from cctvchain.msp.errors import StoreError
from cctvchain.msp.files import (
    PRIVATE_DIR_MODE,
    read_file,
    read_private_key,
    write_atomic,
    write_private_key,
)

IDENTITY_FILE = "identity.json"


@dataclass(frozen=True)
class WalletIdentity:
    name: str
    msp_id: str
    id_type: str
    signing_key: SigningKey
    cert_pem: bytes
    ca_certs: tuple[bytes, ...]
    intermediate_certs: tuple[bytes, ...]


@dataclass(frozen=True)
class TLSFiles:
    """Paths to hand to :mod:`ssl` (see :mod:`cctvchain.msp.tls`)."""

    cert_file: Path
    key_file: Path
    ca_file: Path


class Wallet:
    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    @property
    def msp_key(self) -> Path:
        return self.directory / "msp" / "keystore" / "key.pem"

    @property
    def msp_cert(self) -> Path:
        return self.directory / "msp" / "signcerts" / "cert.pem"

    @property
    def tls_files(self) -> TLSFiles:
        tls = self.directory / "tls"
        return TLSFiles(tls / "cert.pem", tls / "key.pem", tls / "ca.pem")

    def has_profile(self, profile: str) -> bool:
        cert = self.msp_cert if profile == "msp" else self.tls_files.cert_file
        return cert.exists()

    def info(self) -> dict[str, str]:
        path = self.directory / IDENTITY_FILE
        try:
            data = json.loads(read_file(path, "wallet identity file"))
        except ValueError as exc:
            raise StoreError(f"{path} is not valid JSON") from exc
        keys = ("name", "msp_id", "type")
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in keys):
            raise StoreError(f"{path} lacks name, msp_id or type")
        return {key: data[key] for key in keys}

    def check_writable(self, name: str, msp_id: str, profile: str) -> None:
        """Refuse before enrolling if the result could not be stored here."""
        if self.has_profile(profile):
            raise StoreError(f"wallet {self.directory} already holds a {profile} certificate")
        if (self.directory / IDENTITY_FILE).exists():
            info = self.info()
            if (info["name"], info["msp_id"]) != (name, msp_id):
                raise StoreError(
                    f"wallet {self.directory} belongs to {info['name']} of {info['msp_id']}"
                )

    def save(
        self,
        *,
        profile: str,
        name: str,
        msp_id: str,
        id_type: str,
        key: SigningKey,
        cert_pem: bytes,
        root_pem: bytes,
        intermediate_pems: Sequence[bytes] = (),
    ) -> None:
        self.check_writable(name, msp_id, profile)
        _private_dir(self.directory)
        if profile == "msp":
            msp = self.directory / "msp"
            _private_dir(msp)
            for sub in ("keystore", "signcerts", "cacerts", "intermediatecerts"):
                _private_dir(msp / sub)
            write_private_key(self.msp_key, key)
            write_atomic(msp / "cacerts" / "ca.pem", root_pem)
            for index, pem in enumerate(intermediate_pems):
                write_atomic(msp / "intermediatecerts" / f"intermediate-{index}.pem", pem)
            # The certificate last: its presence marks the profile as complete.
            write_atomic(self.msp_cert, cert_pem)
        else:
            files = self.tls_files
            _private_dir(files.cert_file.parent)
            write_private_key(files.key_file, key)
            write_atomic(files.ca_file, root_pem)
            write_atomic(files.cert_file, cert_pem + b"".join(intermediate_pems))
        identity = {"name": name, "msp_id": msp_id, "type": id_type}
        write_atomic(self.directory / IDENTITY_FILE, json.dumps(identity, indent=2).encode())

    def load(self) -> WalletIdentity:
        """The msp identity: signing key and enrollment certificate."""
        if not self.directory.is_dir():
            raise StoreError(f"wallet {self.directory} does not exist")
        info = self.info()
        if not self.msp_cert.exists():
            raise StoreError(f"wallet {self.directory} holds no msp enrollment certificate")
        msp = self.directory / "msp"
        return WalletIdentity(
            name=info["name"],
            msp_id=info["msp_id"],
            id_type=info["type"],
            signing_key=read_private_key(self.msp_key),
            cert_pem=read_file(self.msp_cert, "certificate"),
            ca_certs=_read_all(msp / "cacerts"),
            intermediate_certs=_read_all(msp / "intermediatecerts"),
        )

    def load_tls(self) -> TLSFiles:
        """The TLS file paths, after checking that they exist and the key is private."""
        files = self.tls_files
        if not files.cert_file.exists():
            raise StoreError(f"wallet {self.directory} holds no tls certificate")
        read_private_key(files.key_file)
        read_file(files.ca_file, "TLS CA certificate")
        return files


def _private_dir(path: Path) -> None:
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def _read_all(directory: Path) -> tuple[bytes, ...]:
    if not directory.is_dir():
        return ()
    return tuple(path.read_bytes() for path in sorted(directory.glob("*.pem")))
