"""The ledger: block files + a LevelDB index holding block locations, tx ids, world
state and history. The only module of the ledger that uses plyvel.

Commit protocol (``append_block``):

1. check the block against the head and work out every index change (nothing written);
2. append the block's frame to the block files and fsync it (the frame holds the block
   compressed, see :mod:`cctvchain.ledger.stored`; plain canonical frames of older
   ledgers read the same);
3. write ONE LevelDB batch with ``sync=True``: block-number and block-hash index, tx-id
   index, state writes with their versions, history entries (keys only: which block and
   transaction wrote which key; the tx id and value are read from the block, as in
   Fabric's history database), the certificate registry
   (every PEM certificate the block's transactions carry, keyed by its SHA-256, whatever
   their validation codes), and the savepoint.

A crash before 2 completes leaves at most a torn frame at the end of the last block
file; a crash between 2 and 3 leaves a complete frame that the index does not cover.
Opening the ledger repairs both: it scans the block files from the savepoint, truncates
a torn tail, and replays every complete frame through steps 1 and 3 — the same code as
a live commit, so commit and recovery cannot diverge. A block is acknowledged (the
method returns) only after 3, so no acknowledged block can be lost.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plyvel

from cctvchain.codec import CodecError, Message
from cctvchain.ledger import keys
from cctvchain.ledger.block import (
    ZERO_HASH,
    Block,
    BlockStructureError,
    PreviousHashMismatch,
    check_block_contents,
    check_block_structure,
)
from cctvchain.ledger.blockfile import (
    DEFAULT_MAX_FILE_SIZE,
    BlockFileError,
    BlockFiles,
    DamagedFrame,
    FrameLocation,
    GoodFrame,
    TornTail,
    file_name,
)
from cctvchain.ledger.config import CONFIG_KEY, CONFIG_NAMESPACE, ChannelConfig
from cctvchain.ledger.errors import (
    BlockCorruptError,
    BlockNotFoundError,
    BlockRejectedError,
    BrokenHashChainError,
    LedgerClosedError,
    LedgerCorruptError,
    LedgerError,
    LedgerInUseError,
    LedgerNotFoundError,
)
from cctvchain.ledger.reader import HistoryResolver, LedgerSnapshot, StateReader, read_savepoint
from cctvchain.ledger.records import (
    BlockIndexEntry,
    HistoryRecord,
    Savepoint,
    TxIndexEntry,
    TxRecord,
    Version,
    VersionedValue,
)
from cctvchain.ledger.stored import StoredBlockError, decode_stored_block, store_block_bytes
from cctvchain.ledger.transaction import decode_block_transactions
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp.certref import certificate_reference, is_reference, is_registrable

log = logging.getLogger(__name__)

BLOCKS_DIR = "blocks"
INDEX_DIR = "index"
REBUILD_DIR = "index.rebuild"
LOCK_FILE = "ledger.lock"

# One index change: (key, value) puts, (key, None) deletes; applied in order.
_Op = tuple[bytes, bytes | None]

# The value of every history entry written now; older indexes hold a HistoryRecord.
HISTORY_VALUE = b""


@dataclass(frozen=True)
class ChainReport:
    """What :meth:`Ledger.verify_chain` checked."""

    height: int
    head_hash: bytes
    files: int
    transactions: int


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(path: Path) -> int:
    """Take the ledger's exclusive lock (``flock``: released if the process dies)."""
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise LedgerInUseError(
                f"ledger {path} is in use by another process (is the node running?)"
            ) from None
        raise
    return fd


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _open_index(path: Path) -> Any:
    try:
        return plyvel.DB(str(path), create_if_missing=True)
    except plyvel.IOError as exc:
        if "lock" in str(exc).lower():
            raise LedgerInUseError(f"ledger index {path} is in use by another process") from exc
        raise LedgerError(f"cannot open the ledger index {path}: {exc}") from exc
    except plyvel.CorruptionError as exc:
        raise LedgerCorruptError(
            f"the ledger index {path} is damaged ({exc}); run `cctvchain ledger rebuild`"
        ) from exc


class Ledger(StateReader):
    """One channel's ledger in a directory holding ``blocks/`` and ``index/``.

    Appends are serialised by a lock; reads may run from any thread.
    """

    def __init__(self, path: Path, lock_fd: int, db: Any, blocks: BlockFiles) -> None:
        # Use Ledger.open().
        self.path = path
        self._lock_fd: int | None = lock_fd
        self._db: Any = db
        self._blocks = blocks
        self._mutex = threading.RLock()
        self._broken: str | None = None
        savepoint = read_savepoint(db)
        self._savepoint = savepoint or Savepoint(0, ZERO_HASH, 0, 0)
        self._history = HistoryResolver(self.get_block)

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    ) -> Ledger:
        """Open (and recover) the ledger at ``path``; with ``create``, make it if missing."""
        root = Path(path)
        if not (root / BLOCKS_DIR).is_dir():
            if not create:
                raise LedgerNotFoundError(f"no ledger at {root} (no {BLOCKS_DIR}/ directory)")
            (root / BLOCKS_DIR).mkdir(parents=True, exist_ok=True)
            _fsync_dir(root)
            _fsync_dir(root.parent)
        fd = _lock(root)
        try:
            # A staging index left by a rebuild that crashed; the real one is intact.
            if (root / REBUILD_DIR).exists():
                shutil.rmtree(root / REBUILD_DIR)
            return cls._open_index_and_recover(root, fd, max_file_size, root / INDEX_DIR)
        except BaseException:
            _unlock(fd)
            raise

    @classmethod
    def rebuild(
        cls, path: str | os.PathLike[str], *, max_file_size: int = DEFAULT_MAX_FILE_SIZE
    ) -> Ledger:
        """Rebuild the index (block locations, tx ids, state, history) by replaying every
        block file, and return the ledger opened on it.

        The new index is built beside the old one and swapped in only when complete, so
        a rebuild that fails (damaged block files, a transaction type this process does
        not know) leaves the old index in place. A crash at any point is harmless: the
        index can always be derived again from the block files.
        """
        root = Path(path)
        if not (root / BLOCKS_DIR).is_dir():
            raise LedgerNotFoundError(f"no ledger at {root} (no {BLOCKS_DIR}/ directory)")
        fd = _lock(root)
        try:
            staging = root / REBUILD_DIR
            if staging.exists():
                shutil.rmtree(staging)
            cls._open_index_and_recover(root, fd, max_file_size, staging)._close_index()
            if (root / INDEX_DIR).exists():
                shutil.rmtree(root / INDEX_DIR)
            os.rename(staging, root / INDEX_DIR)
            _fsync_dir(root)
            return cls._open_index_and_recover(root, fd, max_file_size, root / INDEX_DIR)
        except BaseException:
            _unlock(fd)
            raise

    @classmethod
    def _open_index_and_recover(
        cls, root: Path, lock_fd: int, max_file_size: int, index: Path
    ) -> Ledger:
        """Open the index at ``index`` under the held lock and recover; on failure the
        index is closed (the caller releases the lock)."""
        db = _open_index(index)
        try:
            blocks = BlockFiles(root / BLOCKS_DIR, max_file_size=max_file_size)
            ledger = cls(root, lock_fd, db, blocks)
            ledger._recover()
        except BaseException:
            db.close()
            raise
        return ledger

    def _close_index(self) -> None:
        """Close the index and block files but keep holding the ledger lock."""
        self._blocks.close()
        self._db.close()
        self._lock_fd = None

    def close(self) -> None:
        with self._mutex:
            if self._lock_fd is None:
                return
            self._blocks.close()
            self._db.close()
            _unlock(self._lock_fd)
            self._lock_fd = None

    @property
    def closed(self) -> bool:
        return self._lock_fd is None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _source(self) -> Any:
        if self._lock_fd is None:
            raise LedgerClosedError(f"ledger {self.path} is closed")
        return self._db

    def _history_resolver(self) -> HistoryResolver:
        return self._history

    def _check_writable(self) -> None:
        self._source()
        if self._broken is not None:
            raise LedgerClosedError(
                f"ledger {self.path} must be reopened after a failed commit: {self._broken}"
            )

    # -- head ------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        """The number of committed blocks (the next block's number)."""
        return self._savepoint.height

    @property
    def head_hash(self) -> bytes:
        """The hash of the last committed block (all zeros when empty)."""
        return self._savepoint.head_hash

    # -- committing ------------------------------------------------------------------------

    def append_block(self, block: Block, decoded: Sequence[Message | None] | None = None) -> None:
        """Commit ``block``: durable, with its state, history and index, when this returns.

        ``decoded``: its transactions as a caller (the validator) already decoded them from
        ``block.transactions``, one per transaction (None where they do not decode), so
        they are not decoded again; recovery replays decode the stored bytes.

        Raises :class:`BlockRejectedError` (nothing written) for a block that does not
        follow the head or cannot be committed as flagged.
        """
        # Stored compressed (or as its canonical bytes when that is no smaller): the
        # block's hash and signatures are over the canonical bytes, which get_block and
        # deliver hand out unchanged. Pure work, so done before taking the lock.
        payload = store_block_bytes(block.encode())
        with self._mutex:
            self._check_writable()
            try:
                ops = self._prepare(block, decoded)
            except BlockStructureError as exc:
                raise BlockRejectedError(str(exc)) from exc
            # Until the batch lands the files are ahead of the index; if anything fails
            # in between, only a reopen (which replays the frame) restores the invariant.
            self._broken = "block file append or index write did not complete"
            location = self._blocks.append(payload)
            self._apply(block, ops, location, sync=True)
            self._broken = None

    def _prepare(self, block: Block, decoded: Sequence[Message | None] | None = None) -> list[_Op]:
        """Every index change for ``block`` (nothing is written). Raises
        :class:`BlockStructureError` or :class:`BlockRejectedError`."""
        number = block.number
        check_block_structure(block, self.height, self.head_hash)
        ops: list[_Op] = []
        indexed: set[str] = set()
        registered: set[bytes] = set()
        for tx in decode_block_transactions(block, decoded):
            valid = tx.code == TxValidationCode.VALID
            # Every transaction's certificates, whatever its code: an orderer's ledger
            # (which has no codes) must hold the same registry as a peer's.
            if tx.message is not None:
                ops += self._certificate_ops(tx.message, registered)
            where = f"block {number}: transaction {tx.index}"
            if tx.tx is None:
                if valid:
                    raise BlockRejectedError(f"{where} is flagged VALID but {tx.error}")
                continue
            tx_id = tx.tx.tx_id
            try:
                tx_index_key = keys.tx_key(tx_id)
            except keys.KeyEncodingError as exc:
                if valid:
                    raise BlockRejectedError(f"{where}: {exc}") from exc
                continue
            if tx_id in indexed or self._db.get(tx_index_key) is not None:
                # The first transaction with an id keeps it; the validator flags later
                # ones DUPLICATE_TXID, and committing one as VALID would replay it.
                if valid:
                    raise BlockRejectedError(
                        f"{where} is flagged VALID but its tx id {tx_id} was already used"
                    )
            else:
                indexed.add(tx_id)
                ops.append((tx_index_key, TxIndexEntry(number, tx.index, tx.code).encode()))
            if valid:
                ops += self._write_ops(tx.tx.state_writes(), number, tx.index, where)
        return ops

    def _certificate_ops(self, message: Message, registered: set[bytes]) -> list[_Op]:
        """Registry entries for the PEM certificates ``message`` carries that the registry
        lacks (``registered``: those already added for this block). Only transaction data
        is registered, never block metadata: each orderer signs its own copy of a block."""
        carried = getattr(message, "certificates", None)
        if carried is None:
            return []
        ops: list[_Op] = []
        for cert in carried():
            if not isinstance(cert, bytes) or not is_registrable(cert):
                continue
            reference = certificate_reference(cert)
            if reference in registered:
                continue
            registered.add(reference)
            key = keys.certificate_key(reference)
            if self._db.get(key) is None:
                ops.append((key, cert))
        return ops

    @staticmethod
    def _write_ops(writes: Any, number: int, index: int, where: str) -> list[_Op]:
        ops: list[_Op] = []
        for write in writes:
            try:
                state = keys.state_key(write.namespace, write.key)
                history = keys.history_key(write.namespace, write.key, number, index)
            except keys.KeyEncodingError as exc:
                raise BlockRejectedError(f"{where}: {exc}") from exc
            if write.value is None:
                ops.append((state, None))
            else:
                ops.append((state, keys.encode_versioned_value(number, index, write.value)))
            # The key alone: the tx id, the value and whether it is a delete are in the
            # block (an is-delete flag would save no block read: the tx id needs one).
            ops.append((history, HISTORY_VALUE))
        return ops

    def _apply(self, block: Block, ops: list[_Op], location: FrameLocation, *, sync: bool) -> None:
        number = block.number
        block_hash = block.hash()
        savepoint = Savepoint(number + 1, block_hash, location.file, location.end)
        entry = BlockIndexEntry(location.file, location.offset, location.length, block_hash)
        batch = self._db.write_batch(sync=sync)
        batch.put(keys.block_number_key(number), entry.encode())
        batch.put(keys.block_hash_key(block_hash), keys.u64(number))
        for key, value in ops:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        batch.put(keys.SAVEPOINT_KEY, savepoint.encode())
        batch.write()
        self._savepoint = savepoint

    # -- recovery --------------------------------------------------------------------------

    def _recover(self) -> None:
        savepoint = self._savepoint
        self._ensure_registry()
        self._replay_from(savepoint)
        if self._savepoint != savepoint:
            self._db.put(keys.SAVEPOINT_KEY, self._savepoint.encode(), sync=True)
            log.info(
                "ledger %s: replayed blocks %d to %d from the block files",
                self.path,
                savepoint.height,
                self.height - 1,
            )

    def _ensure_registry(self) -> None:
        """Backfill the certificate registry of an index written before it existed.

        Every node must resolve the same certificate references at the same height, so
        the registry must cover every committed block, not only those committed since an
        upgrade: an index without the mark gets the certificates of its blocks (one scan,
        one synced batch) before anything else is replayed or committed.
        """
        if self._db.get(keys.CERTIFICATE_REGISTRY_KEY) is not None:
            return
        ops: list[_Op] = []
        registered: set[bytes] = set()
        for number in range(self.height):
            for tx in decode_block_transactions(self.get_block(number)):
                if tx.message is not None:
                    ops += self._certificate_ops(tx.message, registered)
        batch = self._db.write_batch(sync=True)
        for key, value in ops:
            batch.put(key, value)
        batch.put(keys.CERTIFICATE_REGISTRY_KEY, b"\x01")
        batch.write()
        if self.height:
            log.info(
                "ledger %s: certificate registry built from blocks 0 to %d (%d certificates)",
                self.path,
                self.height - 1,
                len(ops),
            )

    def _replay_from(self, savepoint: Savepoint) -> None:
        try:
            numbers = self._blocks.file_numbers()
        except BlockFileError as exc:
            raise LedgerCorruptError(str(exc), file=file_name(exc.file)) from exc
        if savepoint.height > 0:
            self._check_savepoint_files(savepoint, numbers)
        for item in self._blocks.scan(savepoint.file, savepoint.offset):
            if isinstance(item, GoodFrame):
                self._replay(item)
            elif isinstance(item, TornTail):
                name = file_name(item.file)
                log.warning(
                    "ledger %s: truncating a torn write at the end of %s at offset %d (%s)",
                    self.path,
                    name,
                    item.offset,
                    item.reason,
                )
                self._blocks.truncate(item.file, item.offset)
            else:
                assert isinstance(item, DamagedFrame)
                name = file_name(item.file)
                raise BlockCorruptError(
                    f"block {self.height} in {name} at offset {item.offset} is damaged: "
                    f"{item.reason}",
                    block_number=self.height,
                    file=name,
                )

    def _check_savepoint_files(self, savepoint: Savepoint, numbers: list[int]) -> None:
        name = file_name(savepoint.file)
        last = savepoint.height - 1
        if not numbers or numbers[-1] < savepoint.file:
            raise LedgerCorruptError(
                f"block file {name} is missing but the index has blocks up to {last} in it",
                block_number=last,
                file=name,
            )
        size = self._blocks.size(savepoint.file)
        if size < savepoint.offset:
            raise LedgerCorruptError(
                f"block file {name} is {size} bytes, shorter than the {savepoint.offset} "
                f"bytes the index has committed (blocks up to {last})",
                block_number=last,
                file=name,
            )
        # A cheap check that the files under the index are the ones it was built from.
        self.get_block(last)

    def _replay(self, frame: GoodFrame) -> None:
        number = self.height
        name = file_name(frame.location.file)
        where = f"block {number} in {name} at offset {frame.location.offset}"
        try:
            block = decode_stored_block(frame.payload)
        except (CodecError, StoredBlockError) as exc:
            raise BlockCorruptError(
                f"{where} does not decode: {exc}", block_number=number, file=name
            ) from exc
        try:
            ops = self._prepare(block)
        except PreviousHashMismatch as exc:
            raise BrokenHashChainError(
                f"broken hash chain at {where}: {exc}", block_number=number, file=name
            ) from exc
        except (BlockStructureError, BlockRejectedError) as exc:
            raise LedgerCorruptError(
                f"{where} cannot be replayed: {exc}", block_number=number, file=name
            ) from exc
        # Replayed batches need not be synced one by one: until the final synced write in
        # _recover they are re-derivable from the block files, and a lost one is
        # replayed again on the next open. Otherwise this is append_block's path.
        self._apply(block, ops, frame.location, sync=False)
        log.debug("ledger %s: replayed block %d from %s", self.path, number, name)

    # -- blocks and transactions -----------------------------------------------------------

    def _index_entry(self, number: int) -> BlockIndexEntry:
        raw = self._source().get(keys.block_number_key(number))
        if raw is None:
            raise LedgerCorruptError(
                f"block {number} is below the height {self.height} but not in the index",
                block_number=number,
            )
        return BlockIndexEntry.decode(raw)

    def get_block_hash(self, number: int) -> bytes:
        """The hash of committed block ``number``, from the index (no file read)."""
        self._check_number(number)
        return self._index_entry(number).hash

    def _check_number(self, number: int) -> None:
        if not 0 <= number < self.height:
            raise BlockNotFoundError(
                f"block {number} does not exist (the ledger has blocks 0 to {self.height - 1})"
                if self.height
                else f"block {number} does not exist (the ledger is empty)"
            )

    def get_block(self, number: int) -> Block:
        """Read committed block ``number``, checking its frame checksum, that its header
        hash is the indexed one and that its data hash matches its transactions."""
        self._check_number(number)
        entry = self._index_entry(number)
        name = file_name(entry.file)
        where = f"block {number} in {name} at offset {entry.offset}"
        try:
            payload = self._blocks.read(FrameLocation(entry.file, entry.offset, entry.length))
            block = decode_stored_block(payload)
        except BlockFileError as exc:
            raise BlockCorruptError(
                f"{where} is damaged: {exc.reason}", block_number=number, file=name
            ) from exc
        except (CodecError, StoredBlockError) as exc:
            raise BlockCorruptError(
                f"{where} does not decode: {exc}", block_number=number, file=name
            ) from exc
        if block.hash() != entry.hash or block.number != number:
            raise BlockCorruptError(
                f"{where} is not the indexed block (hash {block.hash().hex()}, "
                f"indexed {entry.hash.hex()})",
                block_number=number,
                file=name,
            )
        try:
            check_block_contents(block)
        except BlockStructureError as exc:
            raise BlockCorruptError(f"{where}: {exc}", block_number=number, file=name) from exc
        return block

    def get_block_by_hash(self, block_hash: bytes) -> Block | None:
        raw = self._source().get(keys.block_hash_key(block_hash))
        return None if raw is None else self.get_block(keys.decode_u64(raw))

    def iter_blocks(self, start: int = 0, stop: int | None = None) -> Iterator[Block]:
        """Committed blocks ``start <= n < stop`` (default: to the current height)."""
        end = self.height if stop is None else min(stop, self.height)
        for number in range(start, end):
            yield self.get_block(number)

    def get_tx_entry(self, tx_id: str) -> TxIndexEntry | None:
        """Where transaction ``tx_id`` is and its code, from the index (no file read)."""
        raw = self._source().get(keys.tx_key(tx_id))
        return None if raw is None else TxIndexEntry.decode(raw)

    def get_tx(self, tx_id: str) -> TxRecord | None:
        """The first committed transaction with id ``tx_id`` (valid or not), or None."""
        entry = self.get_tx_entry(tx_id)
        if entry is None:
            return None
        block = self.get_block(entry.block)
        return TxRecord(tx_id, entry.block, entry.tx, entry.code, block.transactions[entry.tx])

    # -- certificate registry ----------------------------------------------------------------

    def certificate(self, reference: bytes) -> bytes | None:
        """The PEM certificate whose SHA-256 is ``reference``, if a committed block's
        transactions carried it (what certificate references resolve against). Safe from
        any thread."""
        if not is_reference(reference):
            return None
        value: bytes | None = self._source().get(keys.certificate_key(reference))
        return value

    def certificate_references(self) -> set[bytes]:
        """Every reference in the registry (for checks and comparisons)."""
        prefix = keys.CERTIFICATE_PREFIX
        return {key[len(prefix) :] for key, _ in self._source().iterator(prefix=prefix)}

    # -- state -----------------------------------------------------------------------------

    def snapshot(self) -> LedgerSnapshot:
        """A consistent read view at the current height; close it when done."""
        return LedgerSnapshot(self._source().snapshot(), self._history)

    def channel_config(self) -> ChannelConfig:
        """The channel configuration in force (committed by the last config transaction)."""
        value = self.get_state(CONFIG_NAMESPACE, CONFIG_KEY)
        if value is None:
            raise LedgerError(f"ledger {self.path} holds no channel configuration")
        try:
            return ChannelConfig.decode(value.value)
        except CodecError as exc:
            raise LedgerCorruptError(
                f"the channel configuration in state is damaged: {exc}"
            ) from exc

    def dump_state(self) -> dict[tuple[str, str], VersionedValue]:
        """The whole world state, for comparisons."""
        state = {}
        for raw_key, raw_value in self._source().iterator(prefix=keys.STATE_PREFIX):
            block, tx, value = keys.decode_versioned_value(raw_value)
            state[keys.decode_state_key(raw_key)] = VersionedValue(value, Version(block, tx))
        return state

    def dump_index(self) -> dict[bytes, bytes]:
        """Every key and value of the index (state, history, tx ids, blocks, certificate
        registry, savepoint)."""
        return dict(self._source().iterator())

    # -- verification ----------------------------------------------------------------------

    def verify_chain(self) -> ChainReport:
        """Scan every block file: frame checksums, numbering, previous-hash links, data
        hashes, validation flags, and that the index agrees with every block (its
        certificate registry holds exactly the certificates the blocks carry)."""
        with self._mutex:
            db = self._source()
            previous = ZERO_HASH
            number = 0
            tx_count = 0
            history_count = 0
            carried: set[bytes] = set()
            for item in self._blocks.scan(0, 0):
                if not isinstance(item, GoodFrame):
                    name = file_name(item.file)
                    raise BlockCorruptError(
                        f"block {number} in {name} at offset {item.offset} is damaged: "
                        f"{item.reason}",
                        block_number=number,
                        file=name,
                    )
                block = self._verify_frame(item, number, previous)
                history_count += self._verify_index(db, block, item.location, carried)
                previous = block.hash()
                number += 1
                tx_count += len(block.transactions)
            if number != self.height or previous != self.head_hash:
                raise LedgerCorruptError(
                    f"the block files hold {number} blocks but the index has {self.height}"
                )
            indexed = sum(1 for _ in db.iterator(prefix=keys.HISTORY_PREFIX, include_value=False))
            if indexed != history_count:
                raise LedgerCorruptError(
                    f"the history index holds {indexed} entries but the blocks' valid "
                    f"transactions make {history_count} writes"
                )
            extra = self.certificate_references() - carried
            if extra:
                raise LedgerCorruptError(
                    f"the certificate registry holds {len(extra)} certificate(s) that no "
                    f"block carries (e.g. {min(extra).hex()})"
                )
            return ChainReport(number, previous, len(self._blocks.file_numbers()), tx_count)

    def _verify_frame(self, frame: GoodFrame, number: int, previous: bytes) -> Block:
        name = file_name(frame.location.file)
        where = f"block {number} in {name} at offset {frame.location.offset}"
        try:
            block = decode_stored_block(frame.payload)
            check_block_structure(block, number, previous)
        except (CodecError, StoredBlockError) as exc:
            raise BlockCorruptError(
                f"{where} does not decode: {exc}", block_number=number, file=name
            ) from exc
        except PreviousHashMismatch as exc:
            raise BrokenHashChainError(
                f"broken hash chain at {where}: {exc}", block_number=number, file=name
            ) from exc
        except BlockStructureError as exc:
            raise BlockCorruptError(f"{where}: {exc}", block_number=number, file=name) from exc
        return block

    def _verify_index(
        self, db: Any, block: Block, location: FrameLocation, carried: set[bytes]
    ) -> int:
        """Check the index entries of ``block``; return how many history entries it has."""
        number = block.number
        history_count = 0
        name = file_name(location.file)

        def disagree(what: str) -> LedgerCorruptError:
            return LedgerCorruptError(
                f"the index disagrees with block {number} in {name}: {what}",
                block_number=number,
                file=name,
            )

        if number >= self.height:
            raise disagree(f"the index stops at height {self.height}")
        entry = self._index_entry(number)
        expected = BlockIndexEntry(location.file, location.offset, location.length, block.hash())
        if entry != expected:
            raise disagree(f"indexed at {entry}, found {expected}")
        if db.get(keys.block_hash_key(block.hash())) != keys.u64(number):
            raise disagree("the block hash index does not point at it")
        for tx in decode_block_transactions(block):
            for cert in getattr(tx.message, "certificates", list)():
                if not isinstance(cert, bytes) or not is_registrable(cert):
                    continue
                reference = certificate_reference(cert)
                carried.add(reference)
                if db.get(keys.certificate_key(reference)) != cert:
                    raise disagree(
                        f"transaction {tx.index}'s certificate {reference.hex()} is not in "
                        "the certificate registry"
                    )
            if tx.tx is None:
                continue
            raw = db.get(keys.tx_key(tx.tx.tx_id))
            if raw is None:
                raise disagree(f"transaction {tx.index} ({tx.tx.tx_id}) is not in the tx index")
            tx_entry = TxIndexEntry.decode(raw)
            if (tx_entry.block, tx_entry.tx) == (number, tx.index):
                if tx_entry.code != tx.code:
                    raise disagree(f"transaction {tx.index} has another code in the index")
            elif (tx_entry.block, tx_entry.tx) > (number, tx.index):
                raise disagree(f"transaction {tx.index}'s id is indexed at a later position")
            if tx.code == TxValidationCode.VALID:
                history_count += self._verify_history(db, tx.tx, number, tx.index, disagree)
        return history_count

    @staticmethod
    def _verify_history(
        db: Any,
        tx: Any,
        number: int,
        index: int,
        disagree: Callable[[str], LedgerCorruptError],
    ) -> int:
        """Check the history entries of a valid transaction: the key only, or (an index
        written before history values were dropped) a record of its id and the value."""
        writes = {(w.namespace, w.key): w.value for w in tx.state_writes()}
        for (namespace, key), value in writes.items():
            raw = db.get(keys.history_key(namespace, key, number, index))
            if raw == HISTORY_VALUE:
                continue
            what = f"transaction {index}'s write of {namespace}/{key!r}"
            if raw is None:
                raise disagree(f"{what} is not in the history index")
            try:
                record = HistoryRecord.decode(raw)
            except CodecError as exc:
                raise disagree(f"{what} has a damaged history entry: {exc}") from exc
            if record != HistoryRecord(tx.tx_id, value):
                raise disagree(f"{what} has another tx id or value in the history index")
        return len(writes)
