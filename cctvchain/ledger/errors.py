"""Errors of the ledger. Corruption errors name the block and the file where known."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every ledger failure."""


class LedgerNotFoundError(LedgerError):
    """There is no ledger at the given path (and ``create`` was not asked for)."""


class LedgerInUseError(LedgerError):
    """Another process (or another handle in this one) has the ledger open."""


class LedgerClosedError(LedgerError):
    """The ledger handle was closed, or must be reopened after a failed commit."""


class BlockNotFoundError(LedgerError, LookupError):
    """A block number beyond the ledger's height."""


class BlockRejectedError(LedgerError):
    """``append_block`` refused a block before writing anything (wrong number, bad link,
    a transaction flagged VALID that cannot be committed, ...)."""


class LedgerCorruptError(LedgerError):
    """Stored data is damaged or inconsistent; the ledger refuses to serve or open."""

    def __init__(
        self, message: str, *, block_number: int | None = None, file: str | None = None
    ) -> None:
        super().__init__(message)
        self.block_number = block_number
        self.file = file


class BlockCorruptError(LedgerCorruptError):
    """A stored block fails its checksum, its hash, or does not decode."""


class BrokenHashChainError(LedgerCorruptError):
    """A block's previous-hash does not match the hash of the block before it."""
