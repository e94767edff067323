"""The evidence bundle: everything needed to re-check a verdict with no network (pure).

A bundle is one file: the canonical bytes of an :class:`EvidenceBundle` message
(``verify.evidence_bundle`` version 2, deterministic CBOR like every message here;
version 1 bundles, without ``certificates``, still read).

What it holds
-------------
* ``metadata`` — channel, camera, creation time, tool version, command line, where the
  evidence was fetched from, the ledger height then (unsigned; checksummed).
* ``genesis`` — block 0's header and its one configuration transaction (with its
  RFC 6962 inclusion proof under the header's ``data_hash``). The genesis block is
  not signed: it is the root of trust, as for a Fabric peer joining a channel. Its
  hash identifies the channel; the report prints it so that it can be compared with
  the one the network publishes (``verify-bundle --genesis-hash``).
* ``config_updates`` — every later configuration transaction up to the bundle's
  creation (MSP roots, CRLs, policies), each with its block header, the orderer
  signatures on it and its inclusion proof.
* ``headers`` — the block headers of *every* block from the first to the last block
  holding a bundled anchor, contiguous, linked by ``previous_hash``; and
  ``block_signatures`` — the orderer signatures on each anchoring block. Decision: the
  chain is not carried back to genesis (one header per block since genesis would grow
  without bound — some 38 MB a day at four blocks a second); instead each signed block
  stands on its orderer signatures under the BlockValidation policy of the
  configuration in force, and the configurations are chained by admin signatures
  from genesis.
* ``anchors`` — for each covering segment in sequence order: the anchored
  :class:`~cctvchain.chaincode.cctv.model.Segment`, the anchor transaction's bytes
  (the endorsed, camera-signed envelope) with its block number, index, the block's
  transaction count and its inclusion proof, the validation code the peer recorded
  (unsigned: orderers do not sign validation codes), and every frame record of the
  segment (the Merkle leaf bytes) with its inclusion proof under the segment's root.
* ``camera_certificates`` — the certificates that signed the anchors (also inside the
  envelopes or among ``certificates``; listed for people).
* ``certificates`` — the PEM of every certificate the bundled transactions and block
  signatures name by reference (SHA-256 of the PEM, as the ledger keeps them once a
  block carried the PEM), deduplicated: offline, each reference resolves here by hash,
  and the PEM found is then validated exactly as if it had been carried.
* ``clip`` (optional) — the clip the bundle was made for: file name, SHA-256, size and
  the per-frame fingerprints (pts, digest, perceptual where computed), so that the
  verdict can be re-derived from the bundle alone or the clip re-checked against it.
* ``checksums`` — SHA-256 of the unsigned parts (metadata, validation codes, clip), so
  that any altered byte anywhere is found: signed and hashed parts fail their own
  checks, unsigned parts their checksum.

What :func:`check_bundle` verifies (each failure names the part and the reason)
-----------------------------------------------------------------------------------
1. The genesis block: number 0, zero previous hash, its transaction is a configuration
   transaction included under its data hash; the channel matches; optionally its hash.
2. Each configuration update: sequence = previous + 1 on the same channel, its
   transaction included under its block's data hash, the block's orderer signatures
   valid under the previous configuration's BlockValidation policy, its admin
   signatures satisfying the previous configuration's Admins policy (the peers' own
   check), and the new configuration usable.
3. The header chain: contiguous numbers, each ``previous_hash`` the hash of the header
   before; the configuration blocks inside the range agree with it.
4. Each anchoring block: its orderer signatures (the orderer's certificate valid in
   its MSP, of type orderer, the signature over the header hash) satisfy the
   BlockValidation policy of the configuration in force at that block.
5. Each anchor: the transaction is included under the block's data hash at its index;
   it passes the peers' stateless validation offline against the configuration in
   force (creator certificate valid and not revoked under that configuration's CRLs
   at the proposal's time, creator signature, endorsements satisfying the contract's
   endorsement policy); the creator is a camera identity; the proposal is the CCTV
   contract's ``AnchorSegment`` of exactly this segment; the endorsed write set stores
   this segment as the anchor of this camera and sequence; the peer recorded it
   ``VALID`` (the one check that needs state — MVCC — is the peer's word).
6. The segments: this camera's; sequences consecutive; each links to the previous one's
   hash (segment 0 to the zero hash); every frame record present once, in index
   order, included under the segment's Merkle root, capture times from the segment's
   start to its end (the records' perceptual fingerprints are bound by that root: the
   segment carries none of its own).
7. The camera certificate against the latest bundled CRLs: revoked as of a time before
   an anchor was made → failure; revoked later → a note (earlier anchors stand).
8. The checksums of the unsigned parts; every bundled certificate is one the bundle
   refers to (a certificate altered in any byte no longer matches its reference).
9. With a clip (or the bundled clip fingerprints): the alignment again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from cctvchain.chaincode.cctv.model import K_ANCHOR, Anchor, Segment, padded
from cctvchain.codec import CodecError, Message
from cctvchain.crypto import (
    HASH_SIZE,
    Domain,
    MerkleTree,
    SignatureError,
    leaf_hash,
    verify_inclusion,
)
from cctvchain.ingest.fingerprint import FrameRecord
from cctvchain.ledger import keys
from cctvchain.ledger.block import ZERO_HASH as ZERO
from cctvchain.ledger.block import Block, BlockHeader, MetadataSignature
from cctvchain.ledger.genesis import ConfigTransaction
from cctvchain.ledger.transaction import decode_block_transactions
from cctvchain.ledger.validation import TxValidationCode
from cctvchain.msp import certs
from cctvchain.msp.certref import (
    CertificateResolver,
    certificate_reference,
    is_reference,
    resolve_certificate,
    short,
    table_resolver,
)
from cctvchain.msp.errors import MSPError
from cctvchain.peer.channel import BLOCK_VALIDATION, ChannelConfigError, ChannelContext
from cctvchain.peer.validator import BlockValidator, orderer_certificates
from cctvchain.policy import evaluate
from cctvchain.tx.messages import Envelope
from cctvchain.verify.align import Alignment, ClipFrame, align, anchored_frames
from cctvchain.verify.fingerprints import ClipFingerprints, ClipInfo

CONTRACT = "cctv"
ANCHOR_FUNCTION = "AnchorSegment"
MAX_BUNDLE_BYTES = 1 << 30


class BundleError(ValueError):
    """A bundle that cannot be read at all."""


# -- the format ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleMetadata(Message):
    TYPE = "verify.bundle_metadata"
    channel_id: str
    camera_id: str
    created_ms: int
    tool: str
    command: str
    source: str
    ledger_height: int


@dataclass(frozen=True)
class TxEvidence(Message):
    """A transaction and the proof that it is transaction ``index`` of ``count`` in the
    block numbered ``block`` (RFC 6962 audit path under the header's data hash)."""

    TYPE = "verify.tx_evidence"
    block: int
    index: int
    count: int
    transaction: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class ConfigEvidence(Message):
    TYPE = "verify.config_evidence"
    header: BlockHeader
    signatures: tuple[MetadataSignature, ...]
    tx: TxEvidence


@dataclass(frozen=True)
class BlockSignatures(Message):
    TYPE = "verify.block_signatures"
    number: int
    signatures: tuple[MetadataSignature, ...]


@dataclass(frozen=True)
class RecordEvidence(Message):
    TYPE = "verify.record_evidence"
    record: bytes  # the FrameRecord's canonical bytes: the Merkle leaf
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class AnchorEvidence(Message):
    TYPE = "verify.anchor_evidence"
    segment: Segment
    tx: TxEvidence
    validation_code: int  # as the producing peer recorded it (unsigned; checksummed)
    records: tuple[RecordEvidence, ...]


@dataclass(frozen=True)
class ClipEvidence(Message):
    """The clip's per-frame fingerprints, column by column."""

    TYPE = "verify.clip_evidence"
    name: str
    sha256: bytes
    size: int
    container: str
    codec: str
    width: int
    height: int
    pts_ms: tuple[int, ...]
    digests: bytes  # 32 bytes per frame
    has_perceptual: bytes  # one byte per frame, 0 or 1
    dct_hashes: bytes  # 8 bytes per frame that has a perceptual fingerprint
    tiles: bytes  # 256 bytes per frame that has one

    @classmethod
    def of(cls, clip: ClipFingerprints) -> ClipEvidence:
        with_p = [f for f in clip.frames if f.has_perceptual]
        info = clip.info
        return cls(
            name=info.name,
            sha256=info.sha256,
            size=info.size,
            container=info.container,
            codec=info.codec,
            width=info.width,
            height=info.height,
            pts_ms=tuple(f.pts_ms for f in clip.frames),
            digests=b"".join(f.digest for f in clip.frames),
            has_perceptual=bytes(1 if f.has_perceptual else 0 for f in clip.frames),
            dct_hashes=b"".join(f.dct_hash or b"" for f in with_p),
            tiles=b"".join(f.tiles or b"" for f in with_p),
        )

    def fingerprints(self) -> ClipFingerprints:
        """The frames back; raises :class:`BundleError` if the columns disagree."""
        n = len(self.pts_ms)
        flags = self.has_perceptual
        count = sum(flags)
        if (
            len(self.digests) != HASH_SIZE * n
            or len(flags) != n
            or any(b not in (0, 1) for b in flags)
            or len(self.dct_hashes) != 8 * count
            or len(self.tiles) != 256 * count
        ):
            raise BundleError("the bundled clip fingerprints are inconsistent (column sizes)")
        frames: list[ClipFrame] = []
        k = 0
        for i in range(n):
            digest = self.digests[HASH_SIZE * i : HASH_SIZE * (i + 1)]
            if flags[i]:
                dct = self.dct_hashes[8 * k : 8 * (k + 1)]
                tiles = self.tiles[256 * k : 256 * (k + 1)]
                k += 1
                frames.append(ClipFrame(i, self.pts_ms[i], digest, dct, tiles))
            else:
                frames.append(ClipFrame(i, self.pts_ms[i], digest))
        duration = 0
        if n > 1:
            duration = self.pts_ms[-1] - self.pts_ms[0] + (self.pts_ms[1] - self.pts_ms[0])
        info = ClipInfo(
            path="",
            name=self.name,
            sha256=self.sha256,
            size=self.size,
            container=self.container,
            codec=self.codec,
            width=self.width,
            height=self.height,
            frames=n,
            duration_ms=duration,
        )
        return ClipFingerprints(info, tuple(frames), count)


@dataclass(frozen=True)
class BundleChecksums(Message):
    """SHA-256 of the canonical bytes of each unsigned part."""

    TYPE = "verify.bundle_checksums"
    metadata: bytes
    validation_codes: bytes  # over the list of the anchors' codes
    clip: bytes  # over the clip evidence, or of the empty string when there is none


@dataclass(frozen=True)
class EvidenceBundle(Message):
    TYPE = "verify.evidence_bundle"
    VERSION = 2
    SUPPORTED_VERSIONS = (1, 2)
    metadata: BundleMetadata
    genesis: ConfigEvidence
    config_updates: tuple[ConfigEvidence, ...]
    headers: tuple[BlockHeader, ...]
    block_signatures: tuple[BlockSignatures, ...]
    anchors: tuple[AnchorEvidence, ...]
    camera_certificates: tuple[bytes, ...]
    clip: ClipEvidence | None
    checksums: BundleChecksums
    # The PEMs the bundle names by certificate reference (version 2).
    certificates: tuple[bytes, ...] = ()

    @classmethod
    def upgrade(cls, version: int, fields: dict[str, Any]) -> dict[str, Any]:
        # Version 1 carried every certificate in full: no certificates part.
        return {**fields, "certificates": []} if version == 1 else fields


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _codes_bytes(anchors: Sequence[AnchorEvidence]) -> bytes:
    return bytes(a.validation_code & 0xFF for a in anchors) + len(anchors).to_bytes(8, "big")


def compute_checksums(
    metadata: BundleMetadata, anchors: Sequence[AnchorEvidence], clip: ClipEvidence | None
) -> BundleChecksums:
    return BundleChecksums(
        metadata=_sha(metadata.encode()),
        validation_codes=_sha(_codes_bytes(anchors)),
        clip=_sha(clip.encode() if clip is not None else b""),
    )


def with_clip(bundle: EvidenceBundle, clip: ClipFingerprints | None) -> EvidenceBundle:
    """The bundle carrying ``clip``'s fingerprints (checksums recomputed)."""
    evidence = ClipEvidence.of(clip) if clip is not None else None
    return replace(
        bundle,
        clip=evidence,
        checksums=compute_checksums(bundle.metadata, bundle.anchors, evidence),
    )


def read_bundle(data: bytes) -> EvidenceBundle:
    """Decode a bundle file's bytes; a :class:`BundleError` names where it breaks."""
    try:
        return EvidenceBundle.decode(data, max_size=MAX_BUNDLE_BYTES)
    except CodecError as exc:
        raise BundleError(f"the bundle does not decode: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise BundleError(f"the bundle does not decode: {exc}") from exc


# -- building --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorRef:
    """An anchored segment and where its transaction is (block, index)."""

    segment: Segment
    block: int
    tx: int


def records_with_proofs(records: Sequence[FrameRecord]) -> tuple[RecordEvidence, ...]:
    """Every record of a segment with its inclusion proof (what a peer serves)."""
    leaves = [r.encode() for r in records]
    tree = MerkleTree.from_leaves(leaves)
    return tuple(
        RecordEvidence(leaf, tuple(tree.inclusion_proof(i))) for i, leaf in enumerate(leaves)
    )


def tx_evidence(block: Block, index: int) -> TxEvidence:
    tree = MerkleTree.from_leaves(block.transactions)
    return TxEvidence(
        block.number,
        index,
        len(block.transactions),
        block.transactions[index],
        tuple(tree.inclusion_proof(index)),
    )


def config_block_numbers(get_block: Callable[[int], Block], height: int) -> list[int]:
    """Blocks after genesis that hold a VALID configuration transaction (a scan; a
    node with an index would answer directly)."""
    found = []
    for number in range(1, height):
        block = get_block(number)
        for tx in decode_block_transactions(block):
            if isinstance(tx.message, ConfigTransaction) and tx.code == TxValidationCode.VALID:
                found.append(number)
    return found


def _references(bundle: EvidenceBundle) -> list[bytes]:
    """Every certificate reference the bundle's transactions and signatures carry."""
    carried: list[bytes] = []
    for evidence in (bundle.genesis, *bundle.config_updates):
        carried += [s.cert for s in evidence.signatures]
    for signed in bundle.block_signatures:
        carried += [s.cert for s in signed.signatures]
    for anchor in bundle.anchors:
        try:
            carried += Envelope.decode(anchor.tx.transaction).certificates()
        except CodecError:
            continue
    return [cert for cert in dict.fromkeys(carried) if is_reference(cert)]


def _bundled_certificates(
    bundle: EvidenceBundle, resolve: CertificateResolver | None
) -> tuple[bytes, ...]:
    """The PEMs of every reference in ``bundle``: from ``resolve`` (the ledger's
    registry) or, for the orderers' block signatures, the bundled configurations."""
    orderers = [
        orderer_certificates(ConfigTransaction.decode(e.tx.transaction).config)
        for e in (bundle.genesis, *bundle.config_updates)
    ]
    found: list[bytes] = []
    for reference in _references(bundle):
        pem = resolve(reference) if resolve is not None else None
        for table in orderers:
            if pem is None:
                pem = table(reference)
        if pem is None or certificate_reference(pem) != reference:
            raise BundleError(
                f"certificate reference {reference.hex()} does not resolve: the ledger "
                "holds no certificate for it"
            )
        found.append(pem)
    return tuple(found)


def _config_evidence(block: Block) -> ConfigEvidence:
    for index, tx in enumerate(decode_block_transactions(block)):
        if isinstance(tx.message, ConfigTransaction):
            return ConfigEvidence(
                block.header, block.metadata.signatures, tx_evidence(block, index)
            )
    raise BundleError(f"block {block.number} holds no configuration transaction")


def build_bundle(
    *,
    get_block: Callable[[int], Block],
    get_header: Callable[[int], BlockHeader] | None = None,
    channel_id: str,
    camera_id: str,
    anchors: Sequence[AnchorRef],
    records: Mapping[int, Sequence[RecordEvidence]],
    config_blocks: Sequence[int],
    ledger_height: int,
    created_ms: int,
    tool: str,
    command: str = "",
    source: str = "",
    clip: ClipFingerprints | None = None,
    resolve_certificate: CertificateResolver | None = None,
) -> EvidenceBundle:
    """Assemble a bundle from a ledger's blocks (``get_block``; ``get_header`` if a
    source serves headers alone) and the segments' records with their proofs.

    ``resolve_certificate`` (a peer passes ``ledger.certificate``) gives the PEM of each
    certificate reference the transactions carry, bundled so that the bundle stays
    checkable offline; orderers' references resolve against the bundled configurations.
    Raises :class:`BundleError` for a reference that resolves nowhere.
    """
    resolve = resolve_certificate
    header_of = get_header or (lambda n: get_block(n).header)
    ordered = sorted(anchors, key=lambda a: a.segment.sequence)
    evidence: list[AnchorEvidence] = []
    signatures: dict[int, tuple[MetadataSignature, ...]] = {}
    certificates: list[bytes] = []
    for ref in ordered:
        block = get_block(ref.block)
        signatures[block.number] = block.metadata.signatures
        tx = tx_evidence(block, ref.tx)
        envelope = Envelope.decode(tx.transaction)
        cert = envelope.proposal.creator.cert
        if is_reference(cert):
            pem = resolve(cert) if resolve is not None else None
            if pem is None or certificate_reference(pem) != cert:
                raise BundleError(
                    f"the creator of transaction {ref.tx} of block {ref.block} is certificate "
                    f"reference {cert.hex()}, which the ledger cannot resolve"
                )
            cert = pem
        if cert not in certificates:
            certificates.append(cert)
        evidence.append(
            AnchorEvidence(
                ref.segment,
                tx,
                block.tx_code(ref.tx),
                tuple(records.get(ref.segment.sequence, ())),
            )
        )
    headers: tuple[BlockHeader, ...] = ()
    if signatures:
        lo, hi = min(signatures), max(signatures)
        headers = tuple(header_of(n) for n in range(lo, hi + 1))
    metadata = BundleMetadata(
        channel_id, camera_id, created_ms, tool, command, source, ledger_height
    )
    clip_evidence = ClipEvidence.of(clip) if clip is not None else None
    bundle = EvidenceBundle(
        metadata=metadata,
        genesis=_config_evidence(get_block(0)),
        config_updates=tuple(_config_evidence(get_block(n)) for n in sorted(config_blocks)),
        headers=headers,
        block_signatures=tuple(BlockSignatures(n, sigs) for n, sigs in sorted(signatures.items())),
        anchors=tuple(evidence),
        camera_certificates=tuple(certificates),
        clip=clip_evidence,
        checksums=compute_checksums(metadata, evidence, clip_evidence),
    )
    return replace(bundle, certificates=_bundled_certificates(bundle, resolve))


# -- checking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorInfo:
    """One verified anchor: what and where on the ledger."""

    sequence: int
    block: int
    tx: int
    tx_id: str
    capture_start_ms: int
    capture_end_ms: int
    frames: int
    sampled: int
    merkle_root: bytes
    segment_hash: bytes
    anchored_ms: int  # the proposal's timestamp
    creator_msp: str
    creator: str


@dataclass(frozen=True)
class CameraCertificate:
    msp_id: str
    subject: str
    serial: int
    not_before: datetime
    not_after: datetime
    sha256: bytes
    revoked_at: datetime | None = None
    pem: bytes = b""


@dataclass(frozen=True)
class BundleVerdict:
    """The outcome of :func:`check_bundle`."""

    ok: bool
    failures: tuple[str, ...]
    checks: tuple[str, ...]
    notes: tuple[str, ...]
    channel_id: str = ""
    camera_id: str = ""
    genesis_hash: bytes = b""
    config_sequence: int | None = None
    anchors: tuple[AnchorInfo, ...] = ()
    cameras: tuple[CameraCertificate, ...] = ()
    alignment: Alignment | None = None
    clip: ClipFingerprints | None = None
    clip_source: str | None = None  # "clip" (decoded now) | "bundle" (bundled fingerprints)
    clip_matches_bundle: bool | None = None
    segments: tuple[tuple[Segment, tuple[FrameRecord, ...]], ...] = field(default=(), repr=False)


def _ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _iso(ms: int) -> str:
    return _ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Config:
    after_block: int  # in force for blocks after this one
    context: ChannelContext
    sequence: int


class _Checker:
    def __init__(self, bundle: EvidenceBundle, expected_genesis: bytes | None) -> None:
        self.b = bundle
        self.expected_genesis = expected_genesis
        self.failures: list[str] = []
        self.checks: list[str] = []
        self.notes: list[str] = []
        self.configs: list[_Config] = []
        self.genesis_hash = b""
        self.anchor_infos: list[AnchorInfo] = []
        self.cameras: dict[bytes, CameraCertificate] = {}
        self.segments: list[tuple[Segment, tuple[FrameRecord, ...]]] = []
        self.header_by_number: dict[int, BlockHeader] = {}
        # Certificate references resolve by hash among the bundled certificates.
        self.bundled: CertificateResolver = table_resolver(bundle.certificates)

    def resolve(self, cert: bytes) -> bytes:
        """The PEM ``cert`` carries or refers to; raises ``UnknownCertificateReference``
        (an MSPError) when no bundled certificate hashes to the reference."""
        try:
            return resolve_certificate(cert, self.bundled)
        except MSPError as exc:
            raise type(exc)(
                f"certificate reference {short(cert)} matches no bundled certificate"
            ) from exc

    def fail(self, message: str) -> None:
        self.failures.append(message)

    # -- 1, 2. configurations ------------------------------------------------------------

    def included(self, tx: TxEvidence, header: BlockHeader) -> bool:
        return verify_inclusion(
            leaf_hash(tx.transaction), tx.index, tx.count, list(tx.proof), header.data_hash
        )

    def genesis(self) -> bool:
        g = self.b.genesis
        header = g.header
        self.genesis_hash = header.hash()
        if header.number != 0 or header.previous_hash != ZERO or g.tx.block != 0:
            self.fail("genesis: block 0 must have number 0 and a zero previous hash")
            return False
        if g.tx.index != 0 or g.tx.count != 1 or not self.included(g.tx, header):
            self.fail(
                "genesis: the configuration transaction is not the one the block's data hash "
                "commits to (inclusion proof fails)"
            )
            return False
        try:
            config = ConfigTransaction.decode(g.tx.transaction).config
        except CodecError as exc:
            self.fail(f"genesis: the transaction is not a configuration transaction: {exc}")
            return False
        if config.channel_id != self.b.metadata.channel_id:
            self.fail(
                f"genesis: configuration of channel {config.channel_id!r}, the bundle says "
                f"{self.b.metadata.channel_id!r}"
            )
            return False
        if self.expected_genesis is not None and self.genesis_hash != self.expected_genesis:
            self.fail(
                f"genesis: block hash {self.genesis_hash.hex()} is not the expected "
                f"{self.expected_genesis.hex()} (another channel or another network)"
            )
            return False
        try:
            context = ChannelContext.from_config(config)
        except (ChannelConfigError, MSPError, ValueError) as exc:
            self.fail(f"genesis: the configuration is unusable: {exc}")
            return False
        self.configs.append(_Config(0, context, config.sequence))
        self.checks.append(
            f"genesis block {self.genesis_hash.hex()} of channel {config.channel_id}: "
            "configuration transaction included under its data hash"
        )
        return True

    def ref_time(self, block: int) -> datetime:
        """The time to judge certificates on an unsigned-in-time config block by: the
        first anchor made after it, else the bundle's creation."""
        times = []
        for a in self.b.anchors:
            if a.tx.block > block:
                try:
                    times.append(Envelope.decode(a.tx.transaction).proposal.timestamp_ms)
                except CodecError:
                    continue
        return _ms(min(times) if times else self.b.metadata.created_ms)

    def config_updates(self) -> bool:
        previous_block = 0
        for k, update in enumerate(self.b.config_updates):
            where = f"configuration update {k + 1} (block {update.header.number})"
            current = self.configs[-1]
            header = update.header
            if update.tx.block != header.number or header.number <= previous_block:
                self.fail(f"{where}: block numbers out of order or inconsistent")
                return False
            if not self.included(update.tx, header):
                self.fail(f"{where}: the transaction's inclusion proof under the data hash fails")
                return False
            try:
                config_tx = ConfigTransaction.decode(update.tx.transaction)
            except CodecError as exc:
                self.fail(f"{where}: not a configuration transaction: {exc}")
                return False
            now = self.ref_time(header.number)
            reason = self.block_signed(header, update.signatures, current.context, now)
            if reason:
                self.fail(f"{where}: {reason}")
                return False
            verdict = BlockValidator(current.context).check_config(config_tx, now)
            if verdict.code != TxValidationCode.VALID:
                self.fail(f"{where}: {TxValidationCode(verdict.code).name}: {verdict.reason}")
                return False
            self.configs.append(
                _Config(
                    header.number,
                    ChannelContext.from_config(config_tx.config),
                    config_tx.config.sequence,
                )
            )
            previous_block = header.number
            self.checks.append(
                f"configuration sequence {config_tx.config.sequence} in block {header.number}: "
                "orderer-signed, admin signatures satisfy the Admins policy in force"
            )
        return True

    def context_at(self, block: int) -> _Config:
        """The configuration in force for ``block`` (the last one committed before it)."""
        chosen = self.configs[0]
        for config in self.configs:
            if config.after_block < block:
                chosen = config
        return chosen

    def block_signed(
        self,
        header: BlockHeader,
        signatures: Sequence[MetadataSignature],
        context: ChannelContext,
        now: datetime,
    ) -> str:
        """Empty if an orderer signature satisfies BlockValidation, else why not."""
        policy = context.policy(BLOCK_VALIDATION)
        header_hash = header.hash()
        failures = []
        listed = orderer_certificates(context.config)
        for signature in signatures:
            try:
                cert = signature.cert
                if is_reference(cert):
                    # As a peer: an orderer listed in the configuration; else the bundle.
                    cert = listed(cert) or self.resolve(cert)
                identity = context.msps.validate(
                    signature.msp_id, cert, now, allowed_types=("orderer",)
                )
                identity.verify(Domain.BLOCK, header_hash, signature.signature)
            except (MSPError, SignatureError) as exc:
                failures.append(f"{signature.msp_id}: {exc}")
                continue
            if evaluate(policy, [identity]):
                return ""
            failures.append(f"{identity.name} of {identity.msp_id} is not a block signer")
        detail = "; ".join(failures) if failures else "no orderer signature"
        return f"no valid orderer signature on block {header.number} ({detail})"

    # -- 3, 4. headers -------------------------------------------------------------------

    def headers(self) -> bool:
        headers = self.b.headers
        if not self.b.anchors:
            return True
        if not headers:
            self.fail("headers: none, but the bundle holds anchors")
            return False
        for k, (a, b) in enumerate(itertools.pairwise(headers)):
            if b.number != a.number + 1:
                self.fail(f"headers: block {b.number} follows block {a.number} (not contiguous)")
                return False
            if b.previous_hash != a.hash():
                self.fail(
                    f"headers: block {b.number}'s previous hash does not match the hash of "
                    f"block {a.number} (header chain broken at position {k + 1})"
                )
                return False
        self.header_by_number = {h.number: h for h in headers}
        for update in self.b.config_updates:
            inside = self.header_by_number.get(update.header.number)
            if inside is not None and inside != update.header:
                self.fail(
                    f"headers: block {update.header.number} differs from the configuration "
                    "block's header"
                )
                return False
        self.checks.append(
            f"header chain of blocks {headers[0].number}-{headers[-1].number} linked by "
            "previous hashes"
        )
        return True

    def anchor_blocks(self) -> bool:
        ok = True
        by_number = {s.number: s for s in self.b.block_signatures}
        for number in sorted({a.tx.block for a in self.b.anchors}):
            header = self.header_by_number.get(number)
            if header is None:
                self.fail(f"block {number}: holds an anchor but its header is not bundled")
                ok = False
                continue
            signed = by_number.get(number)
            if signed is None:
                self.fail(f"block {number}: no orderer signatures bundled")
                ok = False
                continue
            config = self.context_at(number)
            times = [
                Envelope.decode(a.tx.transaction).proposal.timestamp_ms
                for a in self.b.anchors
                if a.tx.block == number and self._decodes(a.tx.transaction)
            ]
            now = _ms(max(times)) if times else _ms(self.b.metadata.created_ms)
            reason = self.block_signed(header, signed.signatures, config.context, now)
            if reason:
                self.fail(f"block {number}: {reason}")
                ok = False
                continue
            self.checks.append(
                f"block {number}: orderer signature valid under the BlockValidation policy of "
                f"configuration sequence {config.sequence}"
            )
        return ok

    @staticmethod
    def _decodes(data: bytes) -> bool:
        try:
            Envelope.decode(data).proposal  # noqa: B018 - decoding is the check
        except CodecError:
            return False
        return True

    # -- 5, 6. anchors and segments ------------------------------------------------------

    def anchors(self) -> None:
        previous: Segment | None = None
        for k, anchor in enumerate(self.b.anchors):
            segment = anchor.segment
            where = f"anchor {k} (segment {segment.sequence})"
            if segment.camera_id != self.b.metadata.camera_id:
                self.fail(
                    f"{where}: segment of camera {segment.camera_id!r}, not "
                    f"{self.b.metadata.camera_id!r}"
                )
                continue
            if previous is not None:
                if segment.sequence != previous.sequence + 1:
                    self.fail(
                        f"{where}: follows segment {previous.sequence} (the covering segments "
                        "must be consecutive)"
                    )
                elif segment.previous_hash != previous.hash():
                    self.fail(
                        f"{where}: its previous hash does not link to segment {previous.sequence}"
                    )
            elif segment.sequence == 0 and segment.previous_hash != ZERO:
                self.fail(f"{where}: the first segment must link to the zero hash")
            previous = segment
            info = self.anchor_tx(anchor, where)
            records = self.records(anchor, where)
            if info is not None and records is not None:
                sampled = sum(r.perceptual is not None for r in records)
                self.anchor_infos.append(replace(info, sampled=sampled))
                self.segments.append((segment, records))

    def anchor_tx(self, anchor: AnchorEvidence, where: str) -> AnchorInfo | None:
        tx = anchor.tx
        header = self.header_by_number.get(tx.block)
        if header is None:
            self.fail(f"{where}: block {tx.block} is not among the bundled headers")
            return None
        if not self.included(tx, header):
            self.fail(
                f"{where}: transaction {tx.index} of block {tx.block} — inclusion proof under "
                "the block's data hash fails"
            )
            return None
        config = self.context_at(tx.block)
        try:
            envelope = Envelope.decode(tx.transaction)
            proposal = envelope.proposal
        except CodecError as exc:
            self.fail(f"{where}: the transaction does not decode: {exc}")
            return None
        verdict = BlockValidator(config.context, certificates=self.bundled).check_transaction(
            tx.transaction, _ms(0)
        )
        if verdict.code == TxValidationCode.UNKNOWN_CERTIFICATE_REFERENCE:
            self.fail(
                f"{where}: transaction {proposal.tx_id[:16]}… names a certificate by a "
                "reference that matches no bundled certificate (missing, or altered: a "
                "certificate altered in any byte no longer hashes to its reference)"
            )
            return None
        if verdict.code != TxValidationCode.VALID:
            self.fail(
                f"{where}: transaction {proposal.tx_id[:16]}… fails the peers' checks "
                f"offline: {TxValidationCode(verdict.code).name}: {verdict.reason}"
            )
            return None
        if proposal.contract != CONTRACT or proposal.function != ANCHOR_FUNCTION:
            self.fail(
                f"{where}: the transaction calls {proposal.contract}.{proposal.function}, not "
                f"{CONTRACT}.{ANCHOR_FUNCTION}"
            )
            return None
        try:
            argument = base64.b64decode(proposal.args[0], validate=True) if proposal.args else b""
        except (binascii.Error, ValueError):
            argument = b""
        if argument != anchor.segment.encode():
            self.fail(f"{where}: the transaction anchors another segment than the bundled one")
            return None
        created = _ms(proposal.timestamp_ms)
        try:
            creator = config.context.msps.validate(
                proposal.creator.msp_id, self.resolve(proposal.creator.cert), created
            )
        except MSPError as exc:  # check_transaction validated it already
            self.fail(f"{where}: creator: {exc}")
            return None
        if creator.id_type != "camera":
            self.fail(f"{where}: signed by {creator.name}, a {creator.id_type}, not a camera")
            return None
        key = keys.create_composite_key(
            K_ANCHOR, [anchor.segment.camera_id, padded(anchor.segment.sequence)]
        )
        stored = None
        for ns in envelope.response_payload.results.namespaces:
            if ns.namespace != CONTRACT:
                continue
            for write in ns.writes:
                if write.key == key and not write.is_delete:
                    stored = write.value
        try:
            written = Anchor.decode(stored) if stored is not None else None
        except CodecError:
            written = None
        # (This write set is the transaction's own: the anchor it stores needs no tx id.)
        if written is None or written.segment != anchor.segment:
            self.fail(f"{where}: the endorsed write set does not store this segment as the anchor")
            return None
        if anchor.validation_code != TxValidationCode.VALID:
            self.fail(
                f"{where}: the peer recorded validation code "
                f"{_code_name(anchor.validation_code)} for the transaction"
            )
            return None
        self.camera(creator.cert_der, creator.msp_id, proposal.timestamp_ms, where)
        segment = anchor.segment
        return AnchorInfo(
            sequence=segment.sequence,
            block=tx.block,
            tx=tx.index,
            tx_id=proposal.tx_id,
            capture_start_ms=segment.capture_start_ms,
            capture_end_ms=segment.capture_end_ms,
            frames=segment.frame_count,
            sampled=0,  # counted from the frame records in anchors()
            merkle_root=segment.merkle_root,
            segment_hash=segment.hash(),
            anchored_ms=proposal.timestamp_ms,
            creator_msp=creator.msp_id,
            creator=creator.name,
        )

    def records(self, anchor: AnchorEvidence, where: str) -> tuple[FrameRecord, ...] | None:
        segment = anchor.segment
        if len(anchor.records) != segment.frame_count:
            self.fail(
                f"{where}: {len(anchor.records)} frame records for {segment.frame_count} frames"
            )
            return None
        out: list[FrameRecord] = []
        for position, evidence in enumerate(anchor.records):
            try:
                record = FrameRecord.decode(evidence.record)
            except CodecError as exc:
                self.fail(f"{where}: frame record {position} does not decode: {exc}")
                return None
            if record.index != position:
                self.fail(f"{where}: frame record {position} carries index {record.index}")
                return None
            if not verify_inclusion(
                leaf_hash(evidence.record),
                position,
                segment.frame_count,
                list(evidence.proof),
                segment.merkle_root,
            ):
                self.fail(
                    f"{where}: frame record {position} — inclusion proof under the segment's "
                    "Merkle root fails"
                )
                return None
            out.append(record)
        times = [r.capture_time_ms for r in out]
        if (
            times[0] != segment.capture_start_ms
            or times[-1] != segment.capture_end_ms
            or any(b < a for a, b in itertools.pairwise(times))
        ):
            self.fail(f"{where}: the records' capture times do not span the segment in order")
            return None
        return tuple(out)

    # -- 7. the camera's certificate -----------------------------------------------------

    def camera(self, der: bytes, msp_id: str, anchored_ms: int, where: str) -> None:
        cert = x509.load_der_x509_certificate(der)
        key = _sha(der)
        info = self.cameras.get(key)
        if info is None:
            revoked = self.revocation(cert, msp_id)
            info = CameraCertificate(
                msp_id=msp_id,
                subject=certs.subject_summary(cert.subject),
                serial=cert.serial_number,
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                sha256=key,
                revoked_at=revoked,
                pem=certs.pem(cert),
            )
            self.cameras[key] = info
        if info.revoked_at is not None:
            if info.revoked_at <= _ms(anchored_ms):
                self.fail(
                    f"{where}: the camera's certificate {info.serial:x} is revoked as of "
                    f"{info.revoked_at.isoformat()} (latest bundled CRL), before this segment "
                    f"was anchored at {_iso(anchored_ms)}"
                )
            else:
                note = (
                    f"the camera's certificate {info.serial:x} was revoked on "
                    f"{info.revoked_at.isoformat()}, after these anchors were made"
                )
                if note not in self.notes:
                    self.notes.append(note)

    def revocation(self, cert: x509.Certificate, msp_id: str) -> datetime | None:
        latest = self.configs[-1].context.config
        org = latest.organization(msp_id)
        if org is None:
            return None
        for data in org.crls:
            try:
                crl = (
                    x509.load_pem_x509_crl(data)
                    if certs.is_pem(data)
                    else x509.load_der_x509_crl(data)
                )
            except ValueError:
                continue  # the MSP refused an unreadable CRL when the config was loaded
            if crl.issuer != cert.issuer:
                continue
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None:
                return entry.revocation_date_utc
        return None

    # -- 8. checksums --------------------------------------------------------------------

    def checksums(self) -> None:
        expected = compute_checksums(self.b.metadata, self.b.anchors, self.b.clip)
        got = self.b.checksums
        for name, a, b in (
            ("metadata", expected.metadata, got.metadata),
            ("validation codes", expected.validation_codes, got.validation_codes),
            ("clip fingerprints", expected.clip, got.clip),
        ):
            if a != b:
                self.fail(
                    f"checksums: the unsigned part '{name}' (or its checksum) was altered: "
                    "its SHA-256 does not match"
                )
        listed = set(self.b.camera_certificates)
        used = set()
        for anchor in self.b.anchors:
            try:
                used.add(self.resolve(Envelope.decode(anchor.tx.transaction).proposal.creator.cert))
            except (CodecError, MSPError):
                continue
        if listed != used:
            self.fail("camera certificates: the list differs from the anchors' signers")
        self.certificates()

    def certificates(self) -> None:
        """Every bundled certificate must be one the bundle refers to: a certificate
        altered in any byte no longer hashes to its reference."""
        references = set(_references(self.b))
        for k, pem in enumerate(self.b.certificates):
            if certificate_reference(pem) not in references:
                self.fail(
                    f"certificates: bundled certificate {k} matches none of the bundle's "
                    "certificate references (altered, or not the one referred to): its "
                    "SHA-256 is no reference's"
                )

    def run(self) -> None:
        if not self.genesis() or not self.config_updates():
            return
        if not self.headers():
            return
        self.anchor_blocks()
        self.anchors()
        self.checksums()
        if self.segments and not self.failures:
            n_records = sum(len(r) for _, r in self.segments)
            self.checks.append(
                f"{len(self.segments)} anchor transaction(s): included, camera-signed, "
                "endorsed per policy, certificates valid under the CRLs in force; "
                f"{n_records} frame records included under their segments' Merkle roots; "
                "segment chain linked"
            )


def _code_name(code: int) -> str:
    try:
        return TxValidationCode(code).name
    except ValueError:
        return str(code)


def check_bundle(
    bundle: EvidenceBundle,
    clip: ClipFingerprints | None = None,
    *,
    expected_genesis: bytes | None = None,
) -> BundleVerdict:
    """Re-verify a bundle offline (module docstring); with ``clip`` (the fingerprints of
    a clip decoded now) or the bundled clip fingerprints, align it again."""
    checker = _Checker(bundle, expected_genesis)
    checker.run()
    bundled: ClipFingerprints | None = None
    if bundle.clip is not None:
        try:
            bundled = bundle.clip.fingerprints()
        except BundleError as exc:
            checker.fail(f"clip fingerprints: {exc}")
    alignment = None
    source = None
    matches = None
    used = clip if clip is not None else bundled
    if clip is not None:
        source = "clip"
        if bundled is not None:
            matches = clip.same_frames(bundled) and clip.info.sha256 == bundled.info.sha256
            if not matches:
                checker.notes.append(
                    "the clip is not the one the bundle was made for (its frames or file hash "
                    "differ): verified against the anchors afresh"
                )
    elif bundled is not None:
        source = "bundle"
    ok = not checker.failures
    if used is not None and ok:
        anchored = anchored_frames(checker.segments)
        alignment = align(used.frames, anchored)
    latest = checker.configs[-1].sequence if checker.configs else None
    return BundleVerdict(
        ok=ok,
        failures=tuple(checker.failures),
        checks=tuple(checker.checks),
        notes=tuple(checker.notes),
        channel_id=bundle.metadata.channel_id,
        camera_id=bundle.metadata.camera_id,
        genesis_hash=checker.genesis_hash,
        config_sequence=latest,
        anchors=tuple(checker.anchor_infos),
        cameras=tuple(checker.cameras.values()),
        alignment=alignment,
        clip=used,
        clip_source=source,
        clip_matches_bundle=matches,
        segments=tuple(checker.segments),
    )


def anchored_digests(bundle: EvidenceBundle) -> set[bytes]:
    """The digests of the bundled records (to decode a clip lazily); unverified."""
    out: set[bytes] = set()
    for anchor in bundle.anchors:
        for evidence in anchor.records:
            try:
                out.add(FrameRecord.decode(evidence.record).digest)
            except CodecError:
                continue
    return out
