"""The peer's memos (cctvchain.peer.memo): a hit answers exactly what the lookup or the
verification would, and nothing that was not found or did not verify is remembered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from cctvchain.crypto import Domain, SignatureError, SigningKey
from cctvchain.msp.certref import certificate_reference
from cctvchain.msp.identity import Identity
from cctvchain.peer.memo import CertificateMemo, DecodedTransactions, VerifiedSignatures
from cctvchain.tx.messages import SerializedIdentity


@dataclass
class CountingRegistry:
    entries: dict[bytes, bytes]
    calls: int = 0

    def __call__(self, reference: bytes) -> bytes | None:
        self.calls += 1
        return self.entries.get(reference)


def test_certificate_memo_remembers_hits_only() -> None:
    pem = b"-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n"
    reference = certificate_reference(pem)
    registry = CountingRegistry({})
    memo = CertificateMemo(registry)
    assert memo(reference) is None
    assert memo(reference) is None
    assert registry.calls == 2  # a miss is asked again: a later block may carry it
    registry.entries[reference] = pem
    assert memo(reference) == pem
    assert memo(reference) == pem
    assert registry.calls == 3  # found once, then remembered


class CountingKey:
    """Stands in for an identity's verifying key and counts the ECDSA verifications."""

    def __init__(self, key: SigningKey) -> None:
        self.inner = key.verifying_key
        self.calls = 0

    def verify(self, domain: Domain, message: bytes, signature: bytes) -> None:
        self.calls += 1
        self.inner.verify(domain, message, signature)


def identity(key: SigningKey, cert_hash: bytes) -> tuple[Identity, CountingKey]:
    counting = CountingKey(key)
    now = datetime.now(UTC)
    ident = Identity(
        msp_id="Org",
        name="peer0",
        id_type="peer",
        attributes={},
        cert_der=b"",
        cert_hash=cert_hash,
        serial_number=1,
        verifying_key=counting,  # type: ignore[arg-type]
        not_before=now,
        not_after=now,
    )
    return ident, counting


def test_verified_signature_is_not_verified_again() -> None:
    key = SigningKey.generate()
    signer, counting = identity(key, b"\x01" * 32)
    message = b"endorsed bytes" * 200
    signature = key.sign(Domain.PROPOSAL_RESPONSE, message)
    memo = VerifiedSignatures()
    memo.verify(signer, Domain.PROPOSAL_RESPONSE, message, signature)
    memo.verify(signer, Domain.PROPOSAL_RESPONSE, message, signature, remember=False)
    assert counting.calls == 1 and memo.hits == 1


def test_anything_else_is_verified() -> None:
    key = SigningKey.generate()
    signer, counting = identity(key, b"\x01" * 32)
    message = b"endorsed bytes"
    signature = key.sign(Domain.PROPOSAL_RESPONSE, message)
    memo = VerifiedSignatures()
    memo.verify(signer, Domain.PROPOSAL_RESPONSE, message, signature)
    # Another message under the same signature: verified, and refused.
    with pytest.raises(SignatureError):
        memo.verify(signer, Domain.PROPOSAL_RESPONSE, message + b"!", signature)
    # Another domain, another certificate: verified (and refused) too.
    with pytest.raises(SignatureError):
        memo.verify(signer, Domain.ENVELOPE, message, signature)
    other, other_counting = identity(SigningKey.generate(), b"\x02" * 32)
    with pytest.raises(SignatureError):
        memo.verify(other, Domain.PROPOSAL_RESPONSE, message, signature)
    assert counting.calls == 3 and other_counting.calls == 1 and memo.hits == 0


def test_a_signature_that_failed_is_not_remembered() -> None:
    key = SigningKey.generate()
    signer, counting = identity(key, b"\x01" * 32)
    bad = bytes(64)
    memo = VerifiedSignatures()
    for _ in range(2):
        with pytest.raises(SignatureError):
            memo.verify(signer, Domain.PROPOSAL_RESPONSE, b"m", bad)
    assert len(memo) == 0 and counting.calls == 2


def test_remember_false_does_not_fill_the_memo() -> None:
    key = SigningKey.generate()
    signer, counting = identity(key, b"\x01" * 32)
    signature = key.sign(Domain.PROPOSAL_RESPONSE, b"m")
    memo = VerifiedSignatures()
    memo.verify(signer, Domain.PROPOSAL_RESPONSE, b"m", signature, remember=False)
    memo.verify(signer, Domain.PROPOSAL_RESPONSE, b"m", signature, remember=False)
    assert len(memo) == 0 and counting.calls == 2


def test_the_memo_is_bounded() -> None:
    key = SigningKey.generate()
    signer, counting = identity(key, b"\x01" * 32)
    memo = VerifiedSignatures(capacity=3)
    signed = [(m, key.sign(Domain.PROPOSAL_RESPONSE, m)) for m in (b"a", b"b", b"c", b"d")]
    for message, signature in signed:
        memo.verify(signer, Domain.PROPOSAL_RESPONSE, message, signature)
    assert len(memo) <= 2 * memo.capacity
    # The newest entries are still remembered after a generation turned over.
    memo.verify(signer, Domain.PROPOSAL_RESPONSE, *signed[-1])
    assert memo.hits == 1 and counting.calls == 4
    with pytest.raises(ValueError):
        VerifiedSignatures(capacity=0)


def test_decoded_transactions_are_taken_once_and_bounded() -> None:
    # Any message will do: the memo maps bytes to what the caller decoded them to.
    message = SerializedIdentity("Org", b"x" * 32)
    data = message.encode()
    memo = DecodedTransactions(capacity=2)
    memo.put(data, message)
    assert memo.take(data) is message
    assert memo.take(data) is None  # taken once
    memo.put(data, message)
    memo.drop(data)
    assert memo.take(data) is None and memo.hits == 1
    for n in range(3):
        memo.put(bytes([n]), message)
    assert len(memo) == 2 and memo.take(bytes([0])) is None  # the oldest was dropped
    assert memo.take(bytes([2])) is message
    with pytest.raises(ValueError):
        DecodedTransactions(capacity=0)
