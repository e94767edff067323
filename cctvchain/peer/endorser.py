"""The endorser: check a signed proposal, simulate it, sign what it did.

Pure: the caller passes the snapshot to simulate against and the time; the endorser
never commits anything. Refusals are proposal responses with a status and a message
that names the problem (they are answers to a client, not exceptions).

A creator given as a certificate reference resolves through ``certificates`` (the peer's
ledger registry); one that does not is refused ``unknown_certificate_reference`` so that
the client resends with its full certificate. The endorser names itself by reference
once its own certificate is in that registry (so every peer can resolve it when the
transaction is validated), in full before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from cctvchain.chaincode import (
    ChaincodeStub,
    Contract,
    Creator,
    SimulationLimits,
    StateReader,
    TxContext,
)
from cctvchain.chaincode import simulate as run_simulation
from cctvchain.codec import CodecError
from cctvchain.crypto import Domain, SignatureError, SigningKey
from cctvchain.msp.certref import (
    CertificateResolver,
    UnknownCertificateReference,
    certificate_reference,
    resolve_certificate,
)
from cctvchain.msp.errors import MSPError
from cctvchain.peer.channel import WRITERS, ChannelContext
from cctvchain.policy import evaluate
from cctvchain.tx.messages import (
    Endorsement,
    ProposalResponse,
    ProposalResponsePayload,
    Response,
    SerializedIdentity,
    SignedProposal,
    endorsement_message,
)

STATUS_BAD_REQUEST = 400
STATUS_FORBIDDEN = 403
STATUS_NOT_FOUND = 404
STATUS_CONFLICT = 409
DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60 * 1000


class EndorsementState(StateReader, Protocol):
    """A snapshot the stub can read (state, ranges, history) plus the tx-id index."""

    def has_tx(self, tx_id: str) -> bool: ...


def refusal(status: int, message: str) -> ProposalResponse:
    return ProposalResponse(Response(status, message, b""), b"", None)


@dataclass
class Endorser:
    channel: Callable[[], ChannelContext]
    identity: SerializedIdentity
    key: SigningKey
    contracts: Mapping[str, Contract]
    max_clock_skew_ms: int = DEFAULT_MAX_CLOCK_SKEW_MS
    limits: SimulationLimits = field(default_factory=SimulationLimits)
    # The peer's certificate registry (its ledger's): resolves creators' references and
    # tells when this endorser's own certificate may be given by reference.
    certificates: CertificateResolver | None = None
    _reference: SerializedIdentity | None = field(default=None, init=False, repr=False)

    def endorser_identity(self) -> SerializedIdentity:
        """This endorser as its endorsements name it: by reference once the registry
        holds its certificate (then for good: the registry only grows), else in full."""
        if self._reference is not None:
            return self._reference
        if self.certificates is not None:
            reference = certificate_reference(self.identity.cert)
            if self.certificates(reference) == self.identity.cert:
                self._reference = SerializedIdentity(self.identity.msp_id, reference)
                return self._reference
        return self.identity

    def process(
        self, signed: SignedProposal, state: EndorsementState, now_ms: int
    ) -> ProposalResponse:
        """Endorse ``signed`` against ``state`` (a ledger snapshot) at ``now_ms``."""
        channel = self.channel()
        try:
            proposal = signed.decoded
        except CodecError as exc:
            return refusal(STATUS_BAD_REQUEST, f"malformed proposal: {exc}")
        if proposal.channel_id != channel.channel_id:
            return refusal(STATUS_NOT_FOUND, f"this peer is not on channel {proposal.channel_id!r}")
        if not proposal.tx_id_is_correct():
            return refusal(
                STATUS_BAD_REQUEST, "BAD_PROPOSAL_TXID: tx id is not SHA-256(nonce ‖ creator)"
            )
        if abs(proposal.timestamp_ms - now_ms) > self.max_clock_skew_ms:
            return refusal(
                STATUS_BAD_REQUEST,
                f"proposal timestamp is more than {self.max_clock_skew_ms // 1000} s from "
                "the endorser's clock",
            )
        now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        creator = proposal.creator
        try:
            creator_cert = resolve_certificate(creator.cert, self.certificates)
        except UnknownCertificateReference as exc:
            return refusal(STATUS_BAD_REQUEST, f"creator refused ({exc.code}): {exc}")
        try:
            identity = channel.msps.validate(creator.msp_id, creator_cert, now)
            identity.verify(Domain.PROPOSAL, signed.proposal, signed.signature)
        except MSPError as exc:
            return refusal(STATUS_FORBIDDEN, f"creator refused ({exc.code}): {exc}")
        except SignatureError as exc:
            return refusal(STATUS_FORBIDDEN, f"BAD_CREATOR_SIGNATURE: {exc}")
        if not evaluate(channel.policy(WRITERS), [identity]):
            return refusal(
                STATUS_FORBIDDEN,
                f"{identity.name} of {identity.msp_id} does not satisfy the channel's "
                "Writers policy",
            )
        if state.has_tx(proposal.tx_id):
            return refusal(
                STATUS_CONFLICT, f"DUPLICATE_TXID: {proposal.tx_id} is already on the ledger"
            )
        contract = self.contracts.get(proposal.contract)
        if contract is None or channel.endorsement_policy(proposal.contract) is None:
            return refusal(STATUS_NOT_FOUND, f"contract {proposal.contract!r} is not deployed")
        stub = ChaincodeStub(
            namespace=proposal.contract,
            reader=state,
            context=TxContext(
                channel_id=proposal.channel_id,
                tx_id=proposal.tx_id,
                timestamp_ms=proposal.timestamp_ms,
                creator=Creator(
                    msp_id=identity.msp_id,
                    name=identity.name,
                    id_type=identity.id_type,
                    attributes=dict(identity.attributes),
                    cert=creator_cert,
                ),
            ),
            limits=self.limits,
        )
        result = run_simulation(contract, proposal.function, proposal.args, stub)
        if not result.ok:
            return ProposalResponse(result.response, b"", None)
        payload = ProposalResponsePayload(
            proposal_hash=proposal.hash(),
            contract=proposal.contract,
            results=result.rwset,
            events=result.events,
            response=result.response,
        ).encode()
        endorser = self.endorser_identity()
        signature = self.key.sign(Domain.PROPOSAL_RESPONSE, endorsement_message(payload, endorser))
        return ProposalResponse(result.response, payload, Endorsement(endorser, signature))
