"""Per-transaction validation codes, numbered exactly as Fabric's ``TxValidationCode``.

The committing peer stores one code per transaction in the block metadata
(``BlockMetadata.tx_flags``, one byte each); only ``VALID`` transactions change state.
"""

from __future__ import annotations

import enum


class TxValidationCode(enum.IntEnum):
    VALID = 0
    NIL_ENVELOPE = 1
    BAD_PAYLOAD = 2
    BAD_COMMON_HEADER = 3
    BAD_CREATOR_SIGNATURE = 4
    INVALID_ENDORSER_TRANSACTION = 5
    INVALID_CONFIG_TRANSACTION = 6
    UNSUPPORTED_TX_PAYLOAD = 7
    BAD_PROPOSAL_TXID = 8
    DUPLICATE_TXID = 9
    ENDORSEMENT_POLICY_FAILURE = 10
    MVCC_READ_CONFLICT = 11
    PHANTOM_READ_CONFLICT = 12
    UNKNOWN_TX_TYPE = 13
    TARGET_CHAIN_NOT_FOUND = 14
    MARSHAL_TX_ERROR = 15
    NIL_TXACTION = 16
    EXPIRED_CHAINCODE = 17
    CHAINCODE_VERSION_CONFLICT = 18
    BAD_HEADER_EXTENSION = 19
    BAD_CHANNEL_HEADER = 20
    BAD_RESPONSE_PAYLOAD = 21
    BAD_RWSET = 22
    ILLEGAL_WRITESET = 23
    INVALID_WRITESET = 24
    INVALID_CHAINCODE = 25
    # Not in Fabric (which folds it into BAD_CREATOR_SIGNATURE): the creator's certificate
    # was expired, not yet valid or revoked at the proposal's time. Kept apart because
    # for evidence "signed by a revoked camera" must not read like "forged signature".
    EXPIRED_OR_REVOKED_IDENTITY = 26
    # Not in Fabric (which carries every certificate in full): the creator or an
    # endorser is given as a certificate reference (SHA-256 of the PEM) that no earlier
    # block carried the certificate for. Kept apart from BAD_CREATOR_SIGNATURE because
    # nothing is forged: the client should resend with the full certificate.
    UNKNOWN_CERTIFICATE_REFERENCE = 27
    NOT_VALIDATED = 254
    INVALID_OTHER_REASON = 255


_KNOWN = frozenset(int(code) for code in TxValidationCode)


def is_known_code(value: int) -> bool:
    return value in _KNOWN


def code_name(value: int) -> str:
    """The name of a code, or ``UNKNOWN(n)`` for a byte that is not one."""
    return TxValidationCode(value).name if value in _KNOWN else f"UNKNOWN({value})"
