"""Block validation: one validation code per transaction, or the whole block refused.

Two phases, as in Fabric:

1. **Stateless checks** of each transaction — decoding, channel, tx id, the creator's
   identity and signature, the endorsements and the endorsement policy. They depend only
   on the transaction and the channel configuration, so they may run in parallel through
   the ``map_fn`` the caller passes in (the peer passes plain ``map``: only the ECDSA
   calls release the GIL, and a thread pool measured slower than one thread).
2. **Stateful checks** in block order — duplicate tx ids, then MVCC: every read version
   and every range query must still hold against committed state *plus the writes of the
   earlier valid transactions of the same block*.

The time used for certificate validity is the proposal's timestamp (bounded by the
endorsers' clock-skew check), so every peer reaches the same verdict for the same block.

Certificates may be given as references (SHA-256 of the PEM, :mod:`cctvchain.msp.certref`).
A creator's or endorser's reference resolves through ``certificates`` — the ledger's
registry of the PEMs carried by the blocks committed *before* the one validated, the same
on every peer — and an orderer's reference on a block signature through the channel
configuration's orderer certificates. The resolved PEM is then validated as if carried.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from cctvchain.codec import CodecError, Message, decode_message
from cctvchain.crypto import Domain, SignatureError
from cctvchain.ledger import keys
from cctvchain.ledger.block import Block, check_block_structure
from cctvchain.ledger.config import CONFIG_NAMESPACE, ChannelConfig
from cctvchain.ledger.genesis import ConfigTransaction, verify_config_signature
from cctvchain.ledger.records import Version, VersionedValue
from cctvchain.ledger.validation import TxValidationCode as Code
from cctvchain.msp.certref import (
    CertificateResolver,
    UnknownCertificateReference,
    resolve_certificate,
    table_resolver,
)
from cctvchain.msp.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    MSPError,
)
from cctvchain.msp.identity import Identity
from cctvchain.peer.channel import ADMINS, BLOCK_VALIDATION, ChannelConfigError, ChannelContext
from cctvchain.peer.memo import DecodedTransactions, VerifiedSignatures
from cctvchain.policy import evaluate
from cctvchain.tx.messages import Envelope, endorsement_message
from cctvchain.tx.rwset import KVRead, RangeQueryInfo, TxRWSet

T = TypeVar("T")
R = TypeVar("R")
MapFn = Callable[[Callable[[T], R], Iterable[T]], Iterable[R]]

_EXPIRED_OR_REVOKED = (CertificateExpired, CertificateNotYetValid, CertificateRevoked)


class BlockRejected(ValueError):
    """The block as a whole cannot be accepted (structure or orderer signature)."""

    def __init__(self, number: int, reason: str) -> None:
        super().__init__(f"block {number} refused: {reason}")
        self.number = number
        self.reason = reason


class CommittedState(Protocol):
    """Committed state as the validator needs it (the ledger provides it)."""

    def get_state(self, namespace: str, key: str) -> VersionedValue | None: ...

    def get_state_range(
        self, namespace: str, start_key: str = "", end_key: str | None = None
    ) -> Iterator[tuple[str, VersionedValue]]: ...

    def has_tx(self, tx_id: str) -> bool: ...


@dataclass(frozen=True)
class TxVerdict:
    """The outcome of the stateless phase for one transaction.

    ``message`` is the transaction as decoded here (None if its bytes do not decode): the
    ledger and the block event reuse it instead of decoding the bytes again.
    """

    code: Code
    reason: str = ""
    tx_id: str | None = None
    rwset: TxRWSet | None = None
    config: ConfigTransaction | None = None
    message: Message | None = None


@dataclass(frozen=True)
class BlockVerdict:
    codes: tuple[Code, ...]
    reasons: tuple[str, ...]
    tx_ids: tuple[str | None, ...]
    config: ConfigTransaction | None = None  # a valid config tx: the new configuration
    # Each transaction as the validator decoded it (None: it does not decode); empty if
    # the verdict was not made by a validator (then whoever needs them decodes).
    messages: tuple[Message | None, ...] = ()

    def code_of(self, tx_id: str) -> Code | None:
        for candidate, code in zip(self.tx_ids, self.codes, strict=True):
            if candidate == tx_id:
                return code
        return None


def _ms_to_datetime(timestamp_ms: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)


def orderer_certificates(config: ChannelConfig) -> CertificateResolver:
    """What an orderer's certificate reference on a block signature resolves against:
    the identity certificates of the orderers the channel configuration lists."""
    return table_resolver(o.identity_cert for o in config.orderers if o.identity_cert)


@dataclass
class BlockValidator:
    channel: ChannelContext
    map_fn: MapFn[bytes, TxVerdict] = field(default=map)
    # Resolves creators' and endorsers' certificate references (the ledger's registry
    # as of the block before the one validated); None: no reference resolves.
    certificates: CertificateResolver | None = None
    # Endorsement signatures this peer's gateway already verified (not verified again
    # by ECDSA; the endorsers' certificates and the policy are checked all the same).
    signatures: VerifiedSignatures | None = None
    # Envelopes this peer's gateway decoded already (taken instead of decoding the same
    # bytes again).
    decoded: DecodedTransactions | None = None

    # -- block level ---------------------------------------------------------------------

    def check_block(
        self, block: Block, expected_number: int, previous_hash: bytes, now: datetime
    ) -> Identity:
        """Refuse the whole block unless it follows the head and an orderer signed it."""
        try:
            check_block_structure(block, expected_number, previous_hash)
        except ValueError as exc:
            raise BlockRejected(block.number, str(exc)) from exc
        header_hash = block.header.hash()
        policy = self.channel.policy(BLOCK_VALIDATION)
        failures = []
        orderers = orderer_certificates(self.channel.config)
        for signature in block.metadata.signatures:
            try:
                cert = resolve_certificate(signature.cert, orderers)
                identity = self.channel.msps.validate(
                    signature.msp_id, cert, now, allowed_types=("orderer",)
                )
                identity.verify(Domain.BLOCK, header_hash, signature.signature)
            except (MSPError, SignatureError) as exc:
                failures.append(f"{signature.msp_id}: {exc}")
                continue
            if evaluate(policy, [identity]):
                return identity
            failures.append(f"{identity.name} of {identity.msp_id} is not a block signer")
        detail = "; ".join(failures) if failures else "no orderer signature"
        raise BlockRejected(block.number, f"no valid orderer signature ({detail})")

    # -- transactions ------------------------------------------------------------------

    def validate(self, block: Block, state: CommittedState, now: datetime) -> BlockVerdict:
        """Validate every transaction of an already structure-checked block.

        ``now`` is used only for configuration transactions, which carry no timestamp of
        their own; endorser transactions are judged at their proposal's time.
        """
        verdicts = list(
            self.map_fn(functools.partial(self.check_transaction, now=now), block.transactions)
        )
        if len(verdicts) > 1:
            verdicts = [
                TxVerdict(
                    Code.INVALID_CONFIG_TRANSACTION,
                    "a config transaction must be alone",
                    message=v.message,
                )
                if v.config is not None
                else v
                for v in verdicts
            ]
        overlay = _BlockOverlay(state)
        seen_ids: set[str] = set()
        codes: list[Code] = []
        reasons: list[str] = []
        config: ConfigTransaction | None = None
        for index, verdict in enumerate(verdicts):
            code, reason = verdict.code, verdict.reason
            tx_id = verdict.tx_id
            if (
                code == Code.VALID
                and tx_id is not None
                and (tx_id in seen_ids or state.has_tx(tx_id))
            ):
                code, reason = Code.DUPLICATE_TXID, f"tx id {tx_id} was already used"
            if tx_id is not None:
                seen_ids.add(tx_id)
            if code == Code.VALID and verdict.rwset is not None:
                code, reason = overlay.check(verdict.rwset)
                if code == Code.VALID:
                    overlay.apply(verdict.rwset, Version(block.number, index))
            if code == Code.VALID and verdict.config is not None:
                config = verdict.config
            codes.append(code)
            reasons.append(reason)
        return BlockVerdict(
            tuple(codes),
            tuple(reasons),
            tuple(v.tx_id for v in verdicts),
            config,
            tuple(v.message for v in verdicts),
        )

    def check_transaction(self, data: bytes, now: datetime) -> TxVerdict:
        """The stateless checks of one transaction (safe to run in parallel)."""
        if not data:
            return TxVerdict(Code.NIL_ENVELOPE, "empty transaction")
        message = self.decoded.take(data) if self.decoded is not None else None
        if message is None:
            try:
                message = decode_message(data)
            except CodecError as exc:
                return TxVerdict(Code.BAD_PAYLOAD, f"transaction does not decode: {exc}")
        if isinstance(message, ConfigTransaction):
            verdict = self.check_config(message, now)
        elif isinstance(message, Envelope):
            verdict = self._check_envelope(message)
        else:
            verdict = TxVerdict(
                Code.UNKNOWN_TX_TYPE, f"unsupported transaction type {message.TYPE}"
            )
        return dataclasses.replace(verdict, message=message)

    def _check_envelope(self, envelope: Envelope) -> TxVerdict:
        try:
            transaction = envelope.transaction
            proposal = envelope.proposal
        except CodecError as exc:
            return TxVerdict(Code.BAD_PAYLOAD, f"payload does not decode: {exc}")
        tx_id = proposal.tx_id
        if proposal.channel_id != self.channel.channel_id:
            return TxVerdict(
                Code.TARGET_CHAIN_NOT_FOUND, f"for channel {proposal.channel_id!r}", tx_id
            )
        if not proposal.tx_id_is_correct():
            # The claimed id is kept: the ledger indexes it (first transaction with an id
            # keeps it), so a later VALID transaction with that id must be a duplicate.
            return TxVerdict(Code.BAD_PROPOSAL_TXID, "tx id is not SHA-256(nonce ‖ creator)", tx_id)
        now = _ms_to_datetime(proposal.timestamp_ms)
        creator = proposal.creator
        try:
            creator_cert = resolve_certificate(creator.cert, self.certificates)
        except UnknownCertificateReference as exc:
            return TxVerdict(Code.UNKNOWN_CERTIFICATE_REFERENCE, f"creator: {exc}", tx_id)
        try:
            identity = self.channel.msps.validate(creator.msp_id, creator_cert, now)
        except _EXPIRED_OR_REVOKED as exc:
            return TxVerdict(Code.EXPIRED_OR_REVOKED_IDENTITY, str(exc), tx_id)
        except MSPError as exc:
            return TxVerdict(Code.BAD_CREATOR_SIGNATURE, f"creator: {exc}", tx_id)
        try:
            identity.verify(Domain.ENVELOPE, envelope.payload, envelope.signature)
        except SignatureError as exc:
            return TxVerdict(Code.BAD_CREATOR_SIGNATURE, str(exc), tx_id)
        try:
            response = envelope.response_payload
        except CodecError as exc:
            return TxVerdict(Code.BAD_RESPONSE_PAYLOAD, f"response does not decode: {exc}", tx_id)
        if (
            response.proposal_hash != envelope.proposal_hash
            or response.contract != proposal.contract
        ):
            return TxVerdict(
                Code.INVALID_ENDORSER_TRANSACTION,
                "endorsed response is for another proposal",
                tx_id,
            )
        if not response.response.ok:
            return TxVerdict(
                Code.INVALID_ENDORSER_TRANSACTION,
                f"endorsed response has status {response.response.status}",
                tx_id,
            )
        for ns in response.results.namespaces:
            if ns.namespace == CONFIG_NAMESPACE and not (ns.writes or ns.range_queries):
                continue  # a contract may read the channel configuration, never write it
            if ns.namespace != proposal.contract:
                return TxVerdict(
                    Code.ILLEGAL_WRITESET,
                    f"contract {proposal.contract} touched namespace {ns.namespace!r}",
                    tx_id,
                )
            for write in ns.writes:
                try:
                    keys.encode_key(write.key)
                except keys.KeyEncodingError as exc:
                    return TxVerdict(Code.INVALID_WRITESET, str(exc), tx_id)
        policy = self.channel.endorsement_policy(proposal.contract)
        if policy is None:
            return TxVerdict(
                Code.INVALID_CHAINCODE, f"no endorsement policy for {proposal.contract}", tx_id
            )
        endorsers = []
        unresolved = 0
        for endorsement in transaction.endorsements:
            signer = endorsement.endorser
            try:
                signer_cert = resolve_certificate(signer.cert, self.certificates)
                endorser = self.channel.msps.validate(signer.msp_id, signer_cert, now)
                message = endorsement_message(transaction.response_payload, signer)
                if self.signatures is not None:
                    self.signatures.verify(
                        endorser,
                        Domain.PROPOSAL_RESPONSE,
                        message,
                        endorsement.signature,
                        remember=False,
                    )
                else:
                    endorser.verify(Domain.PROPOSAL_RESPONSE, message, endorsement.signature)
            except UnknownCertificateReference:
                unresolved += 1
                continue
            except (MSPError, SignatureError):
                continue  # an invalid endorsement simply does not count
            endorsers.append(endorser)
        if not evaluate(policy, endorsers, keys=[e.cert_hash for e in endorsers]):
            if unresolved:
                # Precise: the policy may well have been met had the endorsers' certificates
                # been carried (or committed earlier).
                return TxVerdict(
                    Code.UNKNOWN_CERTIFICATE_REFERENCE,
                    f"{unresolved} endorsement(s) refer to certificates unknown here; "
                    f"{len(endorsers)} valid endorsement(s) do not satisfy the policy of "
                    f"{proposal.contract}",
                    tx_id,
                )
            return TxVerdict(
                Code.ENDORSEMENT_POLICY_FAILURE,
                f"{len(endorsers)} valid endorsement(s) do not satisfy the policy of "
                f"{proposal.contract}",
                tx_id,
            )
        return TxVerdict(Code.VALID, "", tx_id, response.results)

    def check_config(self, config_tx: ConfigTransaction, now: datetime) -> TxVerdict:
        tx_id = config_tx.tx_id
        current = self.channel.config
        new = config_tx.config
        if new.channel_id != current.channel_id:
            return TxVerdict(Code.INVALID_CONFIG_TRANSACTION, "config for another channel", tx_id)
        if new.sequence != current.sequence + 1:
            return TxVerdict(
                Code.INVALID_CONFIG_TRANSACTION,
                f"config sequence {new.sequence} does not follow {current.sequence}",
                tx_id,
            )
        try:
            # A configuration nodes cannot load (a policy that does not parse, a bad MSP
            # root) would stop every peer and orderer once committed: refuse it here.
            ChannelContext.from_config(new)
        except (ChannelConfigError, MSPError) as exc:
            return TxVerdict(
                Code.INVALID_CONFIG_TRANSACTION, f"the new configuration is unusable: {exc}", tx_id
            )
        admins = []
        for signature in config_tx.signatures:
            try:
                # Admins are checked against the configuration in force, not the new one.
                identity = self.channel.msps.validate(
                    signature.msp_id, signature.cert, now, allowed_types=("admin",)
                )
                verify_config_signature(new, signature, identity.verifying_key)
            except (MSPError, SignatureError, ValueError):
                continue
            admins.append(identity)
        if not evaluate(self.channel.policy(ADMINS), admins, keys=[a.cert_hash for a in admins]):
            return TxVerdict(
                Code.INVALID_CONFIG_TRANSACTION,
                f"{len(admins)} valid admin signature(s) do not satisfy the Admins policy",
                tx_id,
            )
        return TxVerdict(Code.VALID, "", tx_id, None, config_tx)


class _BlockOverlay:
    """Committed state plus the writes of the block's earlier valid transactions."""

    def __init__(self, state: CommittedState) -> None:
        self.state = state
        # (namespace, key) -> (version, deleted?) written earlier in this block
        self.updates: dict[tuple[str, str], tuple[Version, bool]] = {}

    def version(self, namespace: str, key: str) -> Version | None:
        updated = self.updates.get((namespace, key))
        if updated is not None:
            version, deleted = updated
            return None if deleted else version
        current = self.state.get_state(namespace, key)
        return None if current is None else current.version

    def check(self, rwset: TxRWSet) -> tuple[Code, str]:
        for ns in rwset.namespaces:
            for read in ns.reads:
                if self.version(ns.namespace, read.key) != read.version:
                    return Code.MVCC_READ_CONFLICT, f"key {read.key!r} changed since simulation"
            for query in ns.range_queries:
                if not self._range_unchanged(ns.namespace, query):
                    return (
                        Code.PHANTOM_READ_CONFLICT,
                        f"range [{query.start_key!r}, {query.end_key!r}) changed since simulation",
                    )
        return Code.VALID, ""

    def _range_unchanged(self, namespace: str, query: RangeQueryInfo) -> bool:
        composite = query.start_key.startswith(keys.COMPOSITE_KEY_NAMESPACE)
        now = self._range(namespace, query.start_key, query.end_key, composite)
        if not query.exhausted:
            # The contract stopped early: only the part it saw must be unchanged.
            last = query.reads[-1].key if query.reads else query.start_key
            now = [read for read in now if read.key <= last]
        return now == list(query.reads)

    def _range(self, namespace: str, start: str, end: str, composite: bool) -> list[KVRead]:
        merged: dict[str, Version] = {
            key: value.version
            for key, value in self.state.get_state_range(namespace, start, end or None)
        }
        for (ns, key), (version, deleted) in self.updates.items():
            if ns != namespace or key < start or (end and key >= end):
                continue
            if deleted:
                merged.pop(key, None)
            else:
                merged[key] = version
        return [
            KVRead(key, merged[key])
            for key in sorted(merged)
            if composite or not key.startswith(keys.COMPOSITE_KEY_NAMESPACE)
        ]

    def apply(self, rwset: TxRWSet, version: Version) -> None:
        for ns in rwset.namespaces:
            for write in ns.writes:
                self.updates[(ns.namespace, write.key)] = (version, write.is_delete)
