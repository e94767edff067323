"""ECDSA P-256 signatures: fixed 64-byte low-S form, domain separation, key handling."""

from __future__ import annotations

import itertools

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from cctvchain.codec import decode
from cctvchain.crypto import Domain, SignatureError, SigningKey, VerifyingKey, signed_bytes
from cctvchain.crypto.signing import CONTEXT, CURVE_ORDER, SIGNATURE_SIZE

HALF = CURVE_ORDER // 2


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.generate()


def split(signature: bytes) -> tuple[int, int]:
    return int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")


def join(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_curve_order_is_p256() -> None:
    # SEC 2 / FIPS 186-4: the order n of the P-256 base point.
    n = int("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)
    assert n == CURVE_ORDER
    assert SIGNATURE_SIZE == 64


@settings(max_examples=30, deadline=None)
@given(message=st.binary(max_size=300), domain=st.sampled_from(Domain))
def test_sign_verify_round_trip(key: SigningKey, message: bytes, domain: Domain) -> None:
    signature = key.sign(domain, message)
    key.verifying_key.verify(domain, message, signature)  # does not raise
    assert key.verifying_key.is_valid(domain, message, signature)


def test_signatures_are_64_bytes_and_low_s(key: SigningKey) -> None:
    message = b"segment 42"
    signatures = [key.sign(Domain.SEGMENT, message) for _ in range(200)]
    for signature in signatures:
        assert len(signature) == SIGNATURE_SIZE
        r, s = split(signature)
        assert 0 < r < CURVE_ORDER
        assert 0 < s <= HALF
        key.verifying_key.verify(Domain.SEGMENT, message, signature)
    # ECDSA is randomised: no two signatures repeat.
    assert len(set(signatures)) == len(signatures)


def test_normalisation_is_needed(key: SigningKey) -> None:
    """The raw library output is high-S about half the time; ours never is."""
    data = signed_bytes(Domain.TEST, b"x")
    raw_s = [
        decode_dss_signature(key.native.sign(data, ec.ECDSA(hashes.SHA256())))[1] for _ in range(64)
    ]
    assert any(s > HALF for s in raw_s)
    assert all(split(key.sign(Domain.TEST, b"x"))[1] <= HALF for _ in range(64))


def test_high_s_twin_is_refused(key: SigningKey) -> None:
    vk = key.verifying_key
    message = b"evidence"
    for _ in range(10):
        signature = key.sign(Domain.SEGMENT, message)
        r, s = split(signature)
        twin = join(r, CURVE_ORDER - s)
        # The twin is a mathematically valid ECDSA signature...
        vk.native.verify(
            encode_dss_signature(r, CURVE_ORDER - s),
            signed_bytes(Domain.SEGMENT, message),
            ec.ECDSA(hashes.SHA256()),
        )
        # ...but not in the one accepted form.
        with pytest.raises(SignatureError, match="low-S"):
            vk.verify(Domain.SEGMENT, message, twin)
        assert not vk.is_valid(Domain.SEGMENT, message, twin)


def test_foreign_low_s_signature_interoperates(key: SigningKey) -> None:
    """A plain ECDSA-SHA256 signature over signed_bytes, low-S normalised, verifies."""
    der = key.native.sign(signed_bytes(Domain.BLOCK, b"block"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    s = min(s, CURVE_ORDER - s)
    key.verifying_key.verify(Domain.BLOCK, b"block", join(r, s))


def test_wrong_domain_is_refused(key: SigningKey) -> None:
    vk = key.verifying_key
    signatures = {d: key.sign(d, b"same bytes") for d in Domain}
    for signed_for, checked_as in itertools.permutations(Domain, 2):
        with pytest.raises(SignatureError, match="does not verify"):
            vk.verify(checked_as, b"same bytes", signatures[signed_for])
    for d in Domain:
        vk.verify(d, b"same bytes", signatures[d])


@settings(max_examples=25, deadline=None)
@given(message=st.binary(min_size=1, max_size=100), data=st.data())
def test_tampered_message_is_refused(key: SigningKey, message: bytes, data: st.DataObject) -> None:
    signature = key.sign(Domain.ENVELOPE, message)
    i = data.draw(st.integers(0, len(message) - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = message[:i] + bytes((message[i] ^ (1 << bit),)) + message[i + 1 :]
    with pytest.raises(SignatureError):
        key.verifying_key.verify(Domain.ENVELOPE, tampered, signature)
    for extended in (message + b"\x00", message[:-1]):
        assert not key.verifying_key.is_valid(Domain.ENVELOPE, extended, signature)


def test_tampered_signature_is_refused(key: SigningKey) -> None:
    signature = key.sign(Domain.PROPOSAL, b"p")
    for i in (0, 15, 31, 32, 47, 63):
        bad = bytearray(signature)
        bad[i] ^= 0x01
        assert not key.verifying_key.is_valid(Domain.PROPOSAL, b"p", bytes(bad))


def test_other_key_is_refused(key: SigningKey, other_key: SigningKey) -> None:
    signature = key.sign(Domain.PROPOSAL_RESPONSE, b"endorse")
    with pytest.raises(SignatureError, match="does not verify"):
        other_key.verifying_key.verify(Domain.PROPOSAL_RESPONSE, b"endorse", signature)
    key.verifying_key.verify(Domain.PROPOSAL_RESPONSE, b"endorse", signature)


def test_wrong_length_is_refused(key: SigningKey) -> None:
    vk = key.verifying_key
    signature = key.sign(Domain.TEST, b"m")
    r, s = split(signature)
    der = encode_dss_signature(r, s)
    for bad in (b"", signature[:63], signature + b"\x00", b"\x00" + signature, der):
        with pytest.raises(SignatureError, match="must be 64 bytes"):
            vk.verify(Domain.TEST, b"m", bad)
        assert not vk.is_valid(Domain.TEST, b"m", bad)


def test_out_of_range_scalars_are_refused(key: SigningKey) -> None:
    vk = key.verifying_key
    r, s = split(key.sign(Domain.TEST, b"m"))
    for bad_r, bad_s in (
        (0, s),
        (r, 0),
        (0, 0),
        (CURVE_ORDER, s),
        (r, HALF + 1),
        (r, CURVE_ORDER),
        (2**256 - 1, 2**256 - 1),
    ):
        with pytest.raises(SignatureError, match="low-S form"):
            vk.verify(Domain.TEST, b"m", join(bad_r, bad_s))


def test_pem_and_der_round_trips(key: SigningKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = SigningKey.from_pem(pem)
    assert loaded.to_pem() == pem
    assert loaded.verifying_key.to_der() == key.verifying_key.to_der()
    key.verifying_key.verify(Domain.TEST, b"m", loaded.sign(Domain.TEST, b"m"))

    der = key.verifying_key.to_der()
    vk = VerifyingKey.from_der(der)
    assert vk.to_der() == der
    vk.verify(Domain.TEST, b"m", key.sign(Domain.TEST, b"m"))
    assert not VerifyingKey.from_der(SigningKey.generate().verifying_key.to_der()).is_valid(
        Domain.TEST, b"m", key.sign(Domain.TEST, b"m")
    )


def test_encrypted_pem(key: SigningKey) -> None:
    pem = key.native.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    loaded = SigningKey.from_pem(pem, password=b"secret")
    assert loaded.verifying_key.to_der() == key.verifying_key.to_der()


def test_only_p256_keys_are_accepted() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ValueError, match="only P-256 keys are supported, got secp384r1"):
        SigningKey(p384)
    with pytest.raises(ValueError, match="only P-256"):
        VerifyingKey(p384.public_key())
    p384_pem = p384.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="only P-256"):
        SigningKey.from_pem(p384_pem)
    p384_der = p384.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="only P-256"):
        VerifyingKey.from_der(p384_der)

    ed = ed25519.Ed25519PrivateKey.generate()
    ed_pem = ed.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="not an elliptic-curve private key"):
        SigningKey.from_pem(ed_pem)
    ed_der = ed.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="not an elliptic-curve public key"):
        VerifyingKey.from_der(ed_der)


def test_signed_bytes_are_domain_separated() -> None:
    message = b"payload"
    per_domain = {d: signed_bytes(d, message) for d in Domain}
    assert len(set(per_domain.values())) == len(Domain)
    for d, data in per_domain.items():
        assert decode(data) == [CONTEXT, d.value, message]
    assert signed_bytes(Domain.BLOCK, b"a") != signed_bytes(Domain.BLOCK, b"b")
    assert CONTEXT == "cctvchain/signature/v1"
    assert signed_bytes(Domain.TEST, b"m").hex() == (
        "83" + "76" + b"cctvchain/signature/v1".hex() + "64" + b"test".hex() + "41" + b"m".hex()
    )
