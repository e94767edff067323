"""File helpers for the CA directory and wallets: atomic writes, private keys, locks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from cctvchain.crypto import SigningKey
from cctvchain.msp.errors import InsecureKeyFile, StoreError

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
PRIVATE_DIR_MODE = 0o700


def write_atomic(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, whole.

    The temporary file is created with ``mode`` from the start: a key written with the
    default mode and chmod'ed afterwards would be readable by others for a moment.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_key(path: Path, key: SigningKey) -> None:
    write_atomic(path, key.to_pem(), PRIVATE_MODE)


def read_private_key(path: Path) -> SigningKey:
    """Load a PEM key, refusing one that group or others could read or change.

    Refusing (rather than warning) follows ssh: a key others can read is no longer
    a secret, and the owner should notice before it is used.
    """
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InsecureKeyFile(
                f"private key {path} has mode {stat.S_IMODE(mode):04o}; it must not be "
                f"accessible by group or others (chmod 600 {path})"
            )
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise StoreError(f"private key {path} is missing") from exc
    try:
        return SigningKey.from_pem(data)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"private key {path} is not a P-256 PEM key: {exc}") from exc


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise StoreError(f"{what} {path} is missing") from exc


@contextlib.contextmanager
def locked(lock_path: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold an advisory lock so that concurrent CLI processes do not interleave."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock
