"""Build a signed proposal; turn matching endorsements into a signed envelope.

The nonce and the timestamp are parameters: callers draw the nonce from the OS and read
their clock, tests pass fixed values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from cctvchain.crypto import Domain, SigningKey
from cctvchain.msp.certref import certificate_reference
from cctvchain.tx.messages import (
    Envelope,
    Proposal,
    ProposalResponse,
    SerializedIdentity,
    SignedProposal,
    TransactionPayload,
    compute_tx_id,
)


class EndorsementError(ValueError):
    """The endorsements cannot make a transaction (refused, or disagreeing)."""


@dataclass(frozen=True)
class ClientIdentity:
    """An enrolled identity able to sign: its MSP id, certificate (PEM) and key.

    With ``by_reference`` its transactions name it by certificate reference (SHA-256 of
    the PEM, 32 bytes instead of ~800): use it only once a block carried the full
    certificate (e.g. after one of its transactions committed), and fall back to the
    full certificate when a node answers ``unknown_certificate_reference``.
    """

    msp_id: str
    cert: bytes
    key: SigningKey
    name: str = ""
    by_reference: bool = False

    @property
    def serialized(self) -> SerializedIdentity:
        if self.by_reference:
            return SerializedIdentity(self.msp_id, certificate_reference(self.cert))
        return SerializedIdentity(self.msp_id, self.cert)

    def referenced(self) -> ClientIdentity:
        """The same identity, naming itself by certificate reference."""
        return self if self.by_reference else replace(self, by_reference=True)

    def in_full(self) -> ClientIdentity:
        """The same identity, carrying its full certificate."""
        return replace(self, by_reference=False) if self.by_reference else self


def new_proposal(
    identity: ClientIdentity,
    *,
    channel_id: str,
    contract: str,
    function: str,
    args: Sequence[str],
    nonce: bytes,
    timestamp_ms: int,
) -> SignedProposal:
    creator = identity.serialized
    proposal = Proposal(
        channel_id=channel_id,
        contract=contract,
        function=function,
        args=tuple(args),
        creator=creator,
        nonce=nonce,
        timestamp_ms=timestamp_ms,
        tx_id=compute_tx_id(nonce, creator),
    )
    data = proposal.encode()
    return SignedProposal(data, identity.key.sign(Domain.PROPOSAL, data))


def assemble_envelope(
    identity: ClientIdentity, signed: SignedProposal, responses: Sequence[ProposalResponse]
) -> Envelope:
    """Check the endorsements agree, then sign the transaction as its creator."""
    if not responses:
        raise EndorsementError("no endorsements")
    refused = [r.response for r in responses if r.endorsement is None or not r.response.ok]
    if refused:
        # Endorsers usually refuse for the same reason: say each distinct reason once.
        reasons = "; ".join(dict.fromkeys(f"{r.status} {r.message}" for r in refused))
        raise EndorsementError(f"endorsement refused: {reasons}")
    payloads = {r.payload for r in responses}
    if len(payloads) != 1:
        raise EndorsementError(
            f"the {len(responses)} endorsers simulated different results (state differs "
            "between peers, or the contract is not deterministic)"
        )
    endorsements = tuple(r.endorsement for r in responses if r.endorsement is not None)
    payload = TransactionPayload(signed.proposal, responses[0].payload, endorsements).encode()
    return Envelope(payload, identity.key.sign(Domain.ENVELOPE, payload))
