"""The CA core: registration by registrars, enrollment, revocation, CRLs."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cctvchain.crypto import SigningKey
from cctvchain.msp.attributes import certificate_attributes
from cctvchain.msp.certs import build_csr, parse_certificate
from cctvchain.msp.errors import (
    AlreadyRevoked,
    BadCSR,
    BadEnrollmentSecret,
    BadRequest,
    BadRequestSignature,
    IdentityExists,
    IdentityRevoked,
    NotARegistrar,
    NotAuthorized,
    RegistrarRefused,
    ReplayedRequest,
    SecretAlreadyUsed,
    StaleRequest,
    UnknownCertificate,
    UnknownIdentity,
)
from cctvchain.msp.registry import Registry, verify_secret
from cctvchain.msp.requests import (
    RegisterRequest,
    SignedCARequest,
    make_register_request,
    make_revoke_request,
    sign_ca_request,
)
from cctvchain.msp.testing import InMemoryOrg

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def org() -> InMemoryOrg:
    return InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW)


def _register_as(org: InMemoryOrg, registrar_key: SigningKey, registrar_cert: bytes) -> str:
    request = make_register_request(
        registrar_key, registrar_cert, name="newcomer", id_type="client", now=NOW
    )
    return org.ca.register(request, NOW)


def test_identity_certificate_contents(org: InMemoryOrg) -> None:
    alice = org.new_identity("alice", "client", attributes={"role": "CRM"})
    cert = parse_certificate(alice.cert_pem)
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "client"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "CityCCTV"
    assert certificate_attributes(cert) == {"role": "CRM"}
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ski = x509.SubjectKeyIdentifier.from_public_key(alice.key.native.public_key())
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value == ski
    root_ski = org.material.root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == root_ski.value.digest
    assert cert.not_valid_after_utc - NOW == timedelta(days=365)
    cert.verify_directly_issued_by(org.material.root_cert)
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    record = org.ca.identity("alice")
    assert [issued.serial for issued in record.certificates] == [cert.serial_number]
    assert record.status == "enrolled"


def test_root_ca_certificate(org: InMemoryOrg) -> None:
    root = org.material.root_cert
    assert root.subject == root.issuer
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = root.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.not_valid_after_utc - NOW == timedelta(days=3650)
    intermediate_org = InMemoryOrg("Police", "PoliceMSP", NOW, intermediate=True)
    intermediate = intermediate_org.material.intermediate_cert
    assert intermediate is not None
    assert intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value == (
        x509.BasicConstraints(ca=True, path_length=0)
    )
    intermediate.verify_directly_issued_by(intermediate_org.material.root_cert)


def test_tls_certificate_contents(org: InMemoryOrg) -> None:
    secret = org.register("peer0", "peer")
    tls = org.enroll("peer0", secret, profile="tls", hosts=["peer0.city.example", "127.0.0.1"])
    cert = parse_certificate(tls.cert_pem)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["peer0.city.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "peer"
    with pytest.raises(BadRequest, match="host"):
        org.enroll("peer0", secret, profile="msp", hosts=["peer0"])
    with pytest.raises(BadRequest, match="neither"):
        org.enroll("peer0", secret, profile="tls", hosts=["bad host!"])


def test_register_requires_a_registrar(org: InMemoryOrg) -> None:
    client = org.new_identity("alice", "client", attributes={"role": "CRM"})
    with pytest.raises(NotARegistrar):
        _register_as(org, client.key, client.cert_pem)
    assert "newcomer" not in org.ca.registry.identities
    # The bootstrap admin can.
    assert _register_as(org, org.admin.key, org.admin.cert_pem)
    assert org.ca.identity("newcomer").registered_by == "admin"


def test_registrar_limited_to_its_types_and_cannot_escalate(org: InMemoryOrg) -> None:
    crm = org.new_identity("crm", "client", attributes={"registrar": "client,camera"})
    assert org.register("cam1", "camera", registrar=crm)
    with pytest.raises(NotAuthorized):
        org.register("peer9", "peer", registrar=crm)
    with pytest.raises(NotAuthorized, match="beyond"):
        org.register("deputy", "client", attributes={"registrar": "*"}, registrar=crm)
    with pytest.raises(NotAuthorized):
        org.register("deputy", "client", attributes={"registrar": "client,peer"}, registrar=crm)
    assert org.register("deputy", "client", attributes={"registrar": "camera"}, registrar=crm)
    with pytest.raises(BadRequest):
        org.register("deputy2", "client", attributes={"registrar": "janitor"})


def test_forged_request_signature_refused(org: InMemoryOrg) -> None:
    forger = SigningKey.generate()
    with pytest.raises(BadRequestSignature):
        _register_as(org, forger, org.admin.cert_pem)
    # A signature made for another request does not carry over.
    genuine = make_register_request(
        org.admin.key, org.admin.cert_pem, name="a", id_type="client", now=NOW
    )
    other = make_register_request(
        org.admin.key, org.admin.cert_pem, name="b", id_type="admin", now=NOW
    )
    spliced = SignedCARequest(request=other.request, signature=genuine.signature)
    with pytest.raises(BadRequestSignature):
        org.ca.register(spliced, NOW)
    assert not {"a", "b"} & set(org.ca.registry.identities)


def test_stale_and_replayed_requests_refused(org: InMemoryOrg) -> None:
    old = make_register_request(
        org.admin.key,
        org.admin.cert_pem,
        name="late",
        id_type="client",
        now=NOW - timedelta(minutes=6),
    )
    with pytest.raises(StaleRequest):
        org.ca.register(old, NOW)
    future = make_register_request(
        org.admin.key,
        org.admin.cert_pem,
        name="early",
        id_type="client",
        now=NOW + timedelta(minutes=6),
    )
    with pytest.raises(StaleRequest):
        org.ca.register(future, NOW)
    recent = make_register_request(
        org.admin.key,
        org.admin.cert_pem,
        name="ok",
        id_type="client",
        now=NOW - timedelta(minutes=4),
    )
    assert org.ca.register(recent, NOW)
    revoke = make_revoke_request(org.admin.key, org.admin.cert_pem, now=NOW, name="ok")
    assert org.ca.revoke(revoke, NOW) == ()
    org.ca.registry.identities["ok"].revoked_at = None  # undo, to see the replay check
    with pytest.raises(ReplayedRequest):
        org.ca.revoke(revoke, NOW + timedelta(seconds=1))


def test_registrar_certificate_must_be_current(org: InMemoryOrg) -> None:
    deputy = org.new_identity("deputy", "admin", attributes={"registrar": "*"})
    assert org.register("one", "client", registrar=deputy)
    org.revoke(name="deputy")
    with pytest.raises(RegistrarRefused):
        org.register("two", "client", registrar=deputy)
    other = InMemoryOrg("Police", "PoliceMSP", NOW)
    with pytest.raises(RegistrarRefused):
        org.register("three", "client", registrar=other.admin)
    with pytest.raises(RegistrarRefused):
        org.register("four", "client", now=NOW + timedelta(days=400))


def test_register_validates_its_input(org: InMemoryOrg) -> None:
    org.register("alice", "client")
    with pytest.raises(IdentityExists):
        org.register("alice", "peer")
    with pytest.raises(BadRequest, match="type"):
        org.register("bob", "janitor")
    with pytest.raises(BadRequest, match="attribute name"):
        org.register("bob", "client", attributes={"bad name": "x"})
    with pytest.raises(BadRequest, match="name"):
        org.register("bad/name", "client")
    with pytest.raises(BadRequest, match="secret"):
        org.register("bob", "client", secret="short")
    payload = RegisterRequest(
        name="x",
        id_type="client",
        attributes={},
        secret=None,
        registrar_cert=org.admin.cert_pem,
        timestamp_ms=0,
        nonce=b"n",
    ).encode()
    with pytest.raises(BadRequest):
        org.ca.revoke(SignedCARequest(request=payload, signature=b"x" * 64), NOW)


def test_secret_is_single_use_per_profile(org: InMemoryOrg) -> None:
    secret = org.register("alice", "client", secret="correct-horse")
    with pytest.raises(BadEnrollmentSecret):
        org.enroll("alice", "wrong-horse!")
    org.enroll("alice", secret)
    with pytest.raises(SecretAlreadyUsed):
        org.enroll("alice", secret)
    org.enroll("alice", secret, profile="tls")
    with pytest.raises(SecretAlreadyUsed):
        org.enroll("alice", secret, profile="tls")
    with pytest.raises(UnknownIdentity):
        org.enroll("nobody", secret)
    assert [c.profile for c in org.ca.identity("alice").certificates] == ["msp", "tls"]


def test_secret_stored_only_as_a_salted_hash(org: InMemoryOrg) -> None:
    first = org.register("alice", "client", secret="same-secret-1")
    org.register("bob", "client", secret="same-secret-1")
    dumped = json.dumps(org.ca.registry.to_json())
    assert first not in dumped
    alice_hash = org.ca.identity("alice").secret_hash
    assert alice_hash.startswith("scrypt$") and alice_hash != org.ca.identity("bob").secret_hash
    assert verify_secret(first, alice_hash) and not verify_secret("same-secret-2", alice_hash)
    generated = org.register("carol", "client")
    assert len(generated) >= 24


def test_revoked_identity_cannot_enroll(org: InMemoryOrg) -> None:
    secret = org.register("alice", "client")
    org.enroll("alice", secret)
    org.revoke(name="alice", reason="privilegeWithdrawn")
    with pytest.raises(IdentityRevoked):
        org.enroll("alice", secret, profile="tls")
    # Without the secret, a caller learns nothing about the revocation.
    with pytest.raises(BadEnrollmentSecret):
        org.enroll("alice", "not-the-secret")
    with pytest.raises(AlreadyRevoked):
        org.revoke(name="alice")
    record = org.ca.identity("alice")
    assert record.status == "revoked" and record.revocation_reason == "privilegeWithdrawn"


def test_revoke_one_serial(org: InMemoryOrg) -> None:
    secret = org.register("peer0", "peer")
    signing = org.enroll("peer0", secret)
    tls = org.enroll("peer0", secret, profile="tls")
    assert org.revoke(serial=tls.serial, reason="superseded") == (tls.serial,)
    record = org.ca.identity("peer0")
    assert record.revoked_at is None
    assert [c.revoked_at is not None for c in record.certificates] == [False, True]
    with pytest.raises(AlreadyRevoked):
        org.revoke(serial=tls.serial)
    with pytest.raises(UnknownCertificate):
        org.revoke(serial=12345)
    with pytest.raises(BadRequest, match="reason"):
        org.revoke(serial=signing.serial, reason="because")
    with pytest.raises(BadRequest, match="exactly one"):
        org.revoke(name="peer0", serial=signing.serial)
    limited = org.new_identity("crm", "client", attributes={"registrar": "client"})
    request = make_revoke_request(limited.key, limited.cert_pem, now=NOW, name="peer0")
    with pytest.raises(NotAuthorized):
        org.ca.revoke(request, NOW)


def test_crl_lists_every_revocation_with_reason(org: InMemoryOrg) -> None:
    alice = org.new_identity("alice", "client")
    bob = org.new_identity("bob", "client")
    carol = org.new_identity("carol", "client")
    org.revoke(name="alice", reason="keyCompromise")
    later = NOW + timedelta(hours=1)
    org.revoke(serial=bob.serial, now=later)
    crl = x509.load_pem_x509_crl(org.ca.generate_crl(later, later + timedelta(days=7)))
    assert crl.is_signature_valid(org.material.issuer_cert.public_key())  # type: ignore[arg-type]
    assert crl.issuer == org.material.issuer_cert.subject
    assert crl.next_update_utc == later + timedelta(days=7)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    entry = crl.get_revoked_certificate_by_serial_number(alice.serial)
    assert entry is not None and entry.revocation_date_utc == NOW
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    bob_entry = crl.get_revoked_certificate_by_serial_number(bob.serial)
    assert bob_entry is not None and bob_entry.revocation_date_utc == later
    assert crl.get_revoked_certificate_by_serial_number(carol.serial) is None
    second = x509.load_pem_x509_crl(org.crl())
    assert second.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    with pytest.raises(BadRequest):
        org.ca.generate_crl(NOW, NOW)


def test_crl_of_an_intermediate_ca_is_signed_by_it() -> None:
    org = InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW, intermediate=True)
    alice = org.new_identity("alice", "client")
    org.revoke(name="alice")
    crl = x509.load_pem_x509_crl(org.crl())
    intermediate = org.material.intermediate_cert
    assert intermediate is not None
    assert crl.issuer == intermediate.subject
    assert crl.get_revoked_certificate_by_serial_number(alice.serial) is not None


def _csr_with(key: ec.EllipticCurvePrivateKey) -> bytes:
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


def test_bad_csrs_refused(org: InMemoryOrg) -> None:
    secret = org.register("alice", "client")
    p384 = _csr_with(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(BadCSR, match="P-256"):
        org.ca.enroll("alice", secret, p384, NOW)

    good = x509.load_pem_x509_csr(build_csr(SigningKey.generate(), "alice"))
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # flip a bit inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(BadCSR, match="signature"):
        org.ca.enroll("alice", secret, tampered, NOW)
    with pytest.raises(BadCSR):
        org.ca.enroll("alice", secret, b"not a csr", NOW)
    # None of the refusals used up the secret.
    assert org.ca.enroll("alice", secret, build_csr(SigningKey.generate(), "alice"), NOW)


def test_registry_json_round_trip(org: InMemoryOrg) -> None:
    org.new_identity("alice", "client", attributes={"role": "CRM"})
    org.revoke(name="alice", reason="keyCompromise")
    org.crl()
    restored = Registry.from_json(json.loads(json.dumps(org.ca.registry.to_json())))
    assert restored == org.ca.registry
    broken = org.ca.registry.to_json()
    broken["identities"][0]["attributes"] = {"role": 5}
    with pytest.raises(ValueError):
        Registry.from_json(broken)
    with pytest.raises(ValueError):
        Registry.from_json({"version": 2})


def test_signed_request_round_trips_through_the_codec(org: InMemoryOrg) -> None:
    request = RegisterRequest(
        name="cam1",
        id_type="camera",
        attributes={"location": "A1"},
        secret=None,
        registrar_cert=org.admin.cert_pem,
        timestamp_ms=int(NOW.timestamp() * 1000),
        nonce=b"\x00" * 16,
    )
    signed = sign_ca_request(request, org.admin.key)
    decoded = SignedCARequest.decode(signed.encode())
    assert decoded == signed
    assert org.ca.register(decoded, NOW)
    tampered = replace(decoded, request=replace(request, name="cam2").encode())
    with pytest.raises(BadRequestSignature):
        org.ca.register(tampered, NOW)
