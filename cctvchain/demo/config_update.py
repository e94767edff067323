"""A revocation carried to the channel: the CA revokes and issues a CRL, organisation
admins sign a configuration update holding it, an orderer cuts and signs the block, and
the committing peer checks both signatures against the configuration in force.

The checks are the ones a peer applies to a configuration block (admin signatures
against the ``Admins`` policy, the orderer's against ``BlockValidation``), written with
the MSP and policy modules directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cctvchain.crypto import SignatureError
from cctvchain.demo import DemoError
from cctvchain.ledger.block import Block, sign_block, verify_block_signature
from cctvchain.ledger.config import ChannelConfig
from cctvchain.ledger.genesis import (
    ConfigTransaction,
    make_config_block,
    sign_config,
    verify_config_signature,
)
from cctvchain.msp.certref import resolve_certificate
from cctvchain.msp.errors import MSPError
from cctvchain.msp.identity import Identity, MSPManager
from cctvchain.msp.requests import make_revoke_request
from cctvchain.msp.store import CAStore
from cctvchain.msp.wallet import WalletIdentity
from cctvchain.peer.validator import orderer_certificates
from cctvchain.policy import evaluate, parse_policy

CRL_VALIDITY = timedelta(days=7)


@dataclass(frozen=True)
class Revocation:
    serials: tuple[int, ...]
    crl: bytes  # PEM
    crl_number: int
    revoked_count: int  # every certificate the CRL lists


def revoke(
    store: CAStore, registrar: WalletIdentity, name: str, reason: str, now: datetime
) -> Revocation:
    """Revoke every certificate of ``name`` at its CA and write the CA's new CRL."""
    request = make_revoke_request(
        registrar.signing_key, registrar.cert_pem, now=now, name=name, reason=reason
    )
    with store.open() as ca:
        serials = ca.revoke(request, now)
        crl = ca.generate_crl(now, now + CRL_VALIDITY)
        number = ca.registry.crl_number
        count = len(ca.registry.revoked_certificates())
    store.write_crl(crl)
    return Revocation(serials, crl, number, count)


def with_crl(current: ChannelConfig, msp_id: str, crl: bytes) -> ChannelConfig:
    """The next configuration: ``msp_id``'s CRL replaced, the sequence advanced."""
    if current.organization(msp_id) is None:
        raise DemoError(f"the channel has no organisation {msp_id}")
    # A CA's new CRL lists every certificate it has revoked so far, so it replaces the
    # organisation's previous CRL rather than joining it.
    organizations = tuple(
        dataclasses.replace(org, crls=(crl,)) if org.msp_id == msp_id else org
        for org in current.organizations
    )
    return dataclasses.replace(current, sequence=current.sequence + 1, organizations=organizations)


def signed_update(update: ChannelConfig, admins: Sequence[WalletIdentity]) -> ConfigTransaction:
    signatures = tuple(
        sign_config(update, admin.signing_key, admin.msp_id, admin.cert_pem) for admin in admins
    )
    return ConfigTransaction(update, signatures)


def cut_block(
    number: int, previous_hash: bytes, tx: ConfigTransaction, orderer: WalletIdentity
) -> Block:
    """The orderer's part: a block of the one config transaction, signed over its header."""
    block = make_config_block(number, previous_hash, tx)
    signature = sign_block(block.header, orderer.signing_key, orderer.msp_id, orderer.cert_pem)
    return block.with_signatures([signature])


def _policy(current: ChannelConfig, name: str) -> str:
    text = current.policies.get(name)
    if text is None:
        raise DemoError(f"the channel configuration has no {name} policy")
    return text


def check_admins(current: ChannelConfig, tx: ConfigTransaction, now: datetime) -> list[Identity]:
    """The admins whose signatures count, checked against the configuration in force;
    raise :class:`DemoError` unless they satisfy its ``Admins`` policy."""
    msps = MSPManager.from_channel_config(current)
    if tx.config.sequence != current.sequence + 1:
        raise DemoError(f"config sequence {tx.config.sequence} does not follow {current.sequence}")
    admins = []
    for signature in tx.signatures:
        try:
            identity = msps.validate(signature.msp_id, signature.cert, now, ("admin",))
            verify_config_signature(tx.config, signature, identity.verifying_key)
        except (MSPError, SignatureError) as exc:
            raise DemoError(f"admin signature of {signature.msp_id} refused: {exc}") from exc
        admins.append(identity)
    text = _policy(current, "Admins")
    if not evaluate(parse_policy(text), admins, keys=[a.cert_hash for a in admins]):
        raise DemoError(f"{len(admins)} admin signature(s) do not satisfy Admins: {text}")
    return admins


def check_orderer(current: ChannelConfig, block: Block, now: datetime) -> Identity:
    """The orderer that signed ``block``, if the ``BlockValidation`` policy accepts it."""
    msps = MSPManager.from_channel_config(current)
    text = _policy(current, "BlockValidation")
    policy = parse_policy(text)
    orderers = orderer_certificates(current)  # orderers sign by reference when listed
    for signature in block.metadata.signatures:
        try:
            cert = resolve_certificate(signature.cert, orderers)
            identity = msps.validate(signature.msp_id, cert, now, ("orderer",))
            verify_block_signature(block.header, signature, identity.verifying_key)
        except (MSPError, SignatureError) as exc:
            raise DemoError(f"orderer signature of {signature.msp_id} refused: {exc}") from exc
        if evaluate(policy, [identity]):
            return identity
    raise DemoError(f"no orderer signature on block {block.number} satisfies {text}")
