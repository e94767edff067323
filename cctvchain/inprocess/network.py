"""A whole channel in one process: CAs, one orderer, N peers, clients — real LevelDB.

For tests and the demo: every component is the real one (certificates from real CAs,
ECDSA signatures, LevelDB ledgers in directories, the validator and committer), only the
wires between them are function calls and the clock is a :class:`ManualClock`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cctvchain.chaincode import Contract
from cctvchain.client.transaction import ClientIdentity, assemble_envelope, new_proposal
from cctvchain.ledger.block import Block
from cctvchain.ledger.config import AclRule, BatchConfig, ChannelConfig, OrdererConfig
from cctvchain.ledger.genesis import make_genesis_block
from cctvchain.ledger.store import Ledger
from cctvchain.msp.identity import ValidationCache
from cctvchain.msp.testing import EnrolledIdentity, InMemoryOrg
from cctvchain.ordering.orderer import Orderer, OrdererSigner
from cctvchain.peer.channel import ChannelContext
from cctvchain.peer.committer import Committer
from cctvchain.peer.endorser import Endorser
from cctvchain.peer.events import BlockEvent, TxEvent
from cctvchain.tx.messages import (
    Envelope,
    ProposalResponse,
    Response,
    SerializedIdentity,
    SignedProposal,
)

DEFAULT_ORGS = ("CityCCTV", "Police", "LocalAuthority")
CHANNEL = "cctv"


class ManualClock:
    """Milliseconds since the epoch, moved only by the test."""

    def __init__(self, start: datetime) -> None:
        self.now_ms = int(start.timestamp() * 1000)

    def advance(self, ms: int) -> None:
        self.now_ms += ms

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms / 1000, tz=UTC)


@dataclass
class InProcessPeer:
    name: str
    org: str
    identity: EnrolledIdentity
    ledger: Ledger
    committer: Committer
    endorser: Endorser

    def endorse(self, signed: SignedProposal, now_ms: int) -> ProposalResponse:
        with self.ledger.snapshot() as snapshot:
            return self.endorser.process(signed, snapshot, now_ms)


def default_channel_config(
    orgs: Mapping[str, InMemoryOrg],
    orderer: EnrolledIdentity,
    batch: BatchConfig,
    endorsement: Mapping[str, str],
    acl_rules: Sequence[AclRule] = (),
) -> ChannelConfig:
    members = ", ".join(f"'{name}.member'" for name in orgs)
    admins = ", ".join(f"'{name}.admin'" for name in orgs)
    return ChannelConfig(
        channel_id=CHANNEL,
        sequence=0,
        organizations=tuple(org.organization_config() for org in orgs.values()),
        orderers=(
            OrdererConfig(
                name=orderer.name,
                msp_id=orderer.msp_id,
                host="127.0.0.1",
                port=7050,
                identity_cert=orderer.cert_pem,
            ),
        ),
        batch=batch,
        policies={
            "Readers": f"OR({members})",
            "Writers": f"OR({members})",
            "Admins": f"OutOf({len(orgs) // 2 + 1}, {admins})",
            "BlockValidation": f"OR('{orderer.msp_id}.orderer')",
        },
        endorsement_policies=dict(endorsement),
        acl_rules=tuple(acl_rules),
    )


@dataclass
class InProcessNetwork:
    root: Path
    contracts: Mapping[str, Contract]
    org_names: Sequence[str] = DEFAULT_ORGS
    peers_per_org: int = 1
    batch: BatchConfig = field(default_factory=lambda: BatchConfig(batch_timeout_ms=250))
    endorsement: Mapping[str, str] | None = None
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    parallel_validation: bool = True
    acl_rules: Sequence[AclRule] = ()

    def __post_init__(self) -> None:
        self.clock = ManualClock(self.start)
        ca_time = self.start - timedelta(days=1)
        self.orgs = {name: InMemoryOrg(name, name, ca_time) for name in self.org_names}
        first = self.orgs[self.org_names[0]]
        self.orderer_identity = first.new_identity("orderer0", "orderer")
        endorsement = self.endorsement or {
            name: f"OutOf({min(2, len(self.orgs))}, "
            + ", ".join(f"'{org}.peer'" for org in self.orgs)
            + ")"
            for name in self.contracts
        }
        self.genesis_config = default_channel_config(
            self.orgs, self.orderer_identity, self.batch, endorsement, self.acl_rules
        )
        genesis = make_genesis_block(self.genesis_config)
        self._executor = (
            ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
            if self.parallel_validation
            else None
        )
        self.orderer_ledger = Ledger.open(self.root / "orderer0", create=True)
        self.orderer_ledger.append_block(genesis)
        self.orderer = Orderer(
            channel=self._orderer_channel,
            signer=OrdererSigner(
                self.orderer_identity.msp_id,
                self.orderer_identity.cert_pem,
                self.orderer_identity.key,
            ),
            height=self.orderer_ledger.height,
            head_hash=self.orderer_ledger.head_hash,
            certificates=self.orderer_ledger.certificate,
        )
        self._orderer_context: ChannelContext | None = None
        self.peers: list[InProcessPeer] = []
        for org_name, org in self.orgs.items():
            for i in range(self.peers_per_org):
                self.peers.append(self._make_peer(f"peer{i}.{org_name}", org, genesis))
        self.events: list[BlockEvent] = []

    # -- construction ----------------------------------------------------------------------

    def _orderer_channel(self) -> ChannelContext:
        config = self.orderer_ledger.channel_config()
        if self._orderer_context is None or self._orderer_context.config != config:
            self._orderer_context = ChannelContext.from_config(config)
        return self._orderer_context

    def _make_peer(self, name: str, org: InMemoryOrg, genesis: Block) -> InProcessPeer:
        identity = org.new_identity(name, "peer")
        ledger = Ledger.open(self.root / name, create=True)
        ledger.append_block(genesis)
        map_fn = self._executor.map if self._executor is not None else map
        committer = Committer(ledger, map_fn=map_fn, cache=ValidationCache())
        endorser = Endorser(
            channel=lambda: committer.channel,
            identity=SerializedIdentity(identity.msp_id, identity.cert_pem),
            key=identity.key,
            contracts=self.contracts,
            certificates=ledger.certificate,
        )
        return InProcessPeer(name, org.msp_id, identity, ledger, committer, endorser)

    def client(
        self, org: str, name: str, id_type: str = "client", **attributes: str
    ) -> ClientIdentity:
        enrolled = self.orgs[org].new_identity(name, id_type, attributes=attributes or None)
        return ClientIdentity(enrolled.msp_id, enrolled.cert_pem, enrolled.key, enrolled.name)

    def peer(self, name: str) -> InProcessPeer:
        for peer in self.peers:
            if peer.name == name:
                return peer
        raise KeyError(name)

    # -- the transaction flow ---------------------------------------------------------------

    def endorsing_peers(self) -> list[InProcessPeer]:
        """One peer per organisation: enough for any OutOf over the organisations' peers."""
        chosen: dict[str, InProcessPeer] = {}
        for peer in self.peers:
            chosen.setdefault(peer.org, peer)
        return list(chosen.values())

    def propose(
        self, client: ClientIdentity, contract: str, function: str, args: Sequence[str]
    ) -> SignedProposal:
        return new_proposal(
            client,
            channel_id=CHANNEL,
            contract=contract,
            function=function,
            args=args,
            nonce=os.urandom(24),
            timestamp_ms=self.clock.now_ms,
        )

    def endorse(
        self, signed: SignedProposal, peers: Sequence[InProcessPeer] | None = None
    ) -> list[ProposalResponse]:
        return [p.endorse(signed, self.clock.now_ms) for p in (peers or self.endorsing_peers())]

    def prepare(
        self,
        client: ClientIdentity,
        contract: str,
        function: str,
        args: Sequence[str] = (),
        peers: Sequence[InProcessPeer] | None = None,
    ) -> bytes:
        """Propose, endorse and assemble: the envelope bytes, ready to broadcast."""
        signed = self.propose(client, contract, function, args)
        return assemble_envelope(client, signed, self.endorse(signed, peers)).encode()

    def broadcast(self, envelope: bytes) -> list[Block]:
        blocks = self.orderer.broadcast(envelope, self.clock.now_ms)
        self._persist(blocks)
        return blocks

    def cut(self) -> list[Block]:
        """Let the batch timeout expire and cut what is pending."""
        self.clock.advance(self.batch.batch_timeout_ms)
        blocks = self.orderer.tick(self.clock.now_ms)
        self._persist(blocks)
        return blocks

    def _persist(self, blocks: Sequence[Block]) -> None:
        for block in blocks:
            self.orderer_ledger.append_block(block)

    def deliver(self) -> list[BlockEvent]:
        """Every peer pulls and commits the blocks it lacks from the orderer's ledger."""
        delivered: list[BlockEvent] = []
        for i, peer in enumerate(self.peers):
            while peer.ledger.height < self.orderer_ledger.height:
                block = self.orderer_ledger.get_block(peer.ledger.height)
                event = peer.committer.commit(block, self.clock.now)
                if i == 0:
                    delivered.append(event)
        self.events.extend(delivered)
        return delivered

    def submit(
        self,
        client: ClientIdentity,
        contract: str,
        function: str,
        args: Sequence[str] = (),
    ) -> TxEvent:
        """Submit and wait for commit: the transaction's validation code, as Fabric's
        Gateway ``Submit`` + ``CommitStatus``."""
        envelope = self.prepare(client, contract, function, args)
        tx_id = Envelope.decode(envelope).tx_id
        self.broadcast(envelope)
        self.cut()
        for event in self.deliver():
            found = event.tx(tx_id)
            if found is not None:
                return found
        raise RuntimeError(f"transaction {tx_id} was not committed")

    def evaluate(
        self,
        client: ClientIdentity,
        contract: str,
        function: str,
        args: Sequence[str] = (),
        peer: InProcessPeer | None = None,
    ) -> Response:
        """A query: simulate on one peer, never ordered."""
        signed = self.propose(client, contract, function, args)
        return (peer or self.peers[0]).endorse(signed, self.clock.now_ms).response

    def head_hashes(self) -> set[bytes]:
        return {peer.ledger.head_hash for peer in self.peers}

    def close(self) -> None:
        for peer in self.peers:
            peer.ledger.close()
        self.orderer_ledger.close()
        if self._executor is not None:
            self._executor.shutdown()

    def __enter__(self) -> InProcessNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
