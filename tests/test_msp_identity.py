"""MSP identity validation against real certificates issued by our own CA."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cctvchain.crypto import Domain, SigningKey, sha256
from cctvchain.ledger.config import ChannelConfig
from cctvchain.msp import errors, issuing
from cctvchain.msp.attributes import ATTRIBUTES_OID, attributes_extension, decode_attributes
from cctvchain.msp.certs import certificate_der, parse_certificate
from cctvchain.msp.errors import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRevoked,
    InvalidMSPConfig,
    MalformedAttributes,
    MalformedCertificate,
    NotChainedToMSP,
    UnknownMSP,
    UntrustedCRL,
    WrongIdentityType,
)
from cctvchain.msp.identity import MSP, MSPManager, ValidationCache
from cctvchain.msp.testing import InMemoryOrg

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=[False, True], ids=["root-only", "root+intermediate"])
def org(request: pytest.FixtureRequest) -> InMemoryOrg:
    return InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW, intermediate=request.param)


@pytest.fixture(scope="module")
def police() -> InMemoryOrg:
    return InMemoryOrg("Police", "PoliceMSP", NOW)


def _leaf(
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer_name: x509.Name,
    subject: x509.Name,
    *,
    public_key: ec.EllipticCurvePublicKey | None = None,
    ca: bool = False,
    extra: list[x509.ExtensionType] | None = None,
) -> bytes:
    """A hand-built certificate (for forgeries and malformed inputs)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key or ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    for extension in extra or []:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _subject(org: str, ou: str, cn: str) -> x509.Name:
    return issuing.identity_subject(org, ou, cn)


def test_chain_accepted_and_attributes_read_out(org: InMemoryOrg) -> None:
    alice = org.new_identity("alice", "client", attributes={"role": "CRM", "unit": "north"})
    identity = org.msp().validate(alice.cert_pem, NOW)

    assert (identity.msp_id, identity.name, identity.id_type) == ("CityCCTVMSP", "alice", "client")
    assert identity.role == "CRM"
    assert identity.attribute("unit") == "north"
    assert identity.attribute("missing") is None
    assert identity.cert_hash == sha256(certificate_der(alice.cert_pem))
    assert identity.serial_number == alice.serial
    assert identity.not_before <= NOW <= identity.not_after
    signature = alice.key.sign(Domain.TEST, b"frame digest")
    identity.verify(Domain.TEST, b"frame digest", signature)
    assert not identity.verifying_key.is_valid(Domain.TEST, b"other", signature)
    # DER input is the same identity.
    assert org.msp().validate(certificate_der(alice.cert_pem), NOW) == identity
    expected_issuer = org.material.issuer_cert.subject
    assert parse_certificate(alice.cert_pem).issuer == expected_issuer


def test_leaf_of_an_intermediate_needs_the_intermediate_in_the_msp() -> None:
    org = InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW, intermediate=True)
    alice = org.new_identity("alice", "client")
    roots_only = MSP(org.msp_id, [org.material.root_pem])
    with pytest.raises(NotChainedToMSP):
        roots_only.validate(alice.cert_pem, NOW)
    assert org.msp().validate(alice.cert_pem, NOW).name == "alice"


def test_expired_certificate_refused(org: InMemoryOrg) -> None:
    alice = org.new_identity("alice", "client", validity=timedelta(days=1))
    msp = org.msp()
    assert msp.validate(alice.cert_pem, NOW + timedelta(hours=23)).name == "alice"
    with pytest.raises(CertificateExpired):
        msp.validate(alice.cert_pem, NOW + timedelta(days=1, seconds=1))


def test_not_yet_valid_certificate_refused(org: InMemoryOrg) -> None:
    alice = org.new_identity("alice", "client")
    with pytest.raises(CertificateNotYetValid):
        # Certificates are backdated by a few minutes for clock skew, not by an hour.
        org.msp().validate(alice.cert_pem, NOW - timedelta(hours=1))


def test_validity_capped_by_the_ca_and_expired_ca_refused() -> None:
    org = InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW, ca_validity=timedelta(days=30))
    alice = org.new_identity("alice", "client", validity=timedelta(days=365))
    cert = parse_certificate(alice.cert_pem)
    assert cert.not_valid_after_utc == org.material.root_cert.not_valid_after_utc
    with pytest.raises(CertificateExpired):
        org.msp().validate(alice.cert_pem, NOW + timedelta(days=31))


def test_revoked_certificate_refused_through_a_crl(org: InMemoryOrg) -> None:
    alice = org.new_identity("alice", "client")
    bob = org.new_identity("bob", "client")
    assert org.revoke(name="alice", reason="keyCompromise") == (alice.serial,)
    crl = org.crl()

    with_crl = org.msp([crl])
    with pytest.raises(CertificateRevoked):
        with_crl.validate(alice.cert_pem, NOW)
    assert with_crl.validate(bob.cert_pem, NOW).name == "bob"
    assert with_crl.revoked_serials == frozenset({alice.serial})
    # Revocation reaches validators only through a CRL in the MSP definition.
    assert org.msp().validate(alice.cert_pem, NOW).name == "alice"


def test_intermediate_revoked_by_the_roots_crl_refuses_its_leaves() -> None:
    org = InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW, intermediate=True)
    alice = org.new_identity("alice", "client")
    intermediate = org.material.intermediate_cert
    assert intermediate is not None
    root_crl = issuing.build_crl(
        org.material.root_key,
        org.material.root_cert,
        [issuing.RevokedEntry(intermediate.serial_number, NOW, x509.ReasonFlags.ca_compromise)],
        NOW,
        NOW + timedelta(days=7),
        1,
    ).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CertificateRevoked, match="intermediate"):
        org.msp([root_crl]).validate(alice.cert_pem, NOW)


def test_certificate_of_another_org_refused(org: InMemoryOrg, police: InMemoryOrg) -> None:
    officer = police.new_identity(f"officer-{org.material.intermediate_cert is None}", "client")
    with pytest.raises(NotChainedToMSP):
        org.msp().validate(officer.cert_pem, NOW)

    manager = MSPManager([org.msp(), police.msp()])
    assert manager.validate("PoliceMSP", officer.cert_pem, NOW).msp_id == "PoliceMSP"
    with pytest.raises(NotChainedToMSP):
        manager.validate("CityCCTVMSP", officer.cert_pem, NOW)
    with pytest.raises(UnknownMSP):
        manager.validate("NoSuchMSP", officer.cert_pem, NOW)


def test_wrong_identity_type_refused(org: InMemoryOrg) -> None:
    peer = org.new_identity("peer0", "peer")
    msp = org.msp()
    assert msp.validate(peer.cert_pem, NOW, allowed_types={"peer", "orderer"}).id_type == "peer"
    with pytest.raises(WrongIdentityType):
        msp.validate(peer.cert_pem, NOW, allowed_types={"client", "admin"})


def test_unknown_ou_refused(org: InMemoryOrg) -> None:
    issuer = org.material.issuer_cert
    cert = _leaf(
        org.material.issuer_key.native, issuer.subject, _subject("CityCCTV", "janitor", "eve")
    )
    with pytest.raises(WrongIdentityType):
        org.msp().validate(cert, NOW)


def test_every_refusal_has_its_own_class_and_code() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.MSPError | errors.CAError | errors.StoreError)
    ]
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes)) > 25
    refusals = {
        CertificateExpired,
        CertificateNotYetValid,
        CertificateRevoked,
        NotChainedToMSP,
        WrongIdentityType,
        MalformedCertificate,
        UnknownMSP,
    }
    for cls in refusals:
        assert not any(issubclass(cls, other) for other in refusals - {cls})


def test_cache_keyed_by_certificate_hash(org: InMemoryOrg) -> None:
    alice = org.new_identity("alice", "client")
    bob = org.new_identity("bob", "client")
    cache = ValidationCache()
    msp = org.msp(cache=cache)

    first = msp.validate(alice.cert_pem, NOW)
    assert (cache.hits, cache.misses) == (0, 1)
    assert msp.validate(alice.cert_pem, NOW) == first
    assert (cache.hits, cache.misses) == (1, 1)
    # PEM and DER of one certificate share the entry: the key is the DER's hash.
    msp.validate(certificate_der(alice.cert_pem), NOW)
    assert (cache.hits, cache.misses) == (2, 1)
    msp.validate(bob.cert_pem, NOW)
    assert (cache.hits, cache.misses) == (2, 2)

    # A cached identity is still subject to the time window ...
    with pytest.raises(CertificateExpired):
        msp.validate(alice.cert_pem, NOW + timedelta(days=400))
    assert cache.hits == 3
    # ... and to revocation by a new MSP instance (a config update) sharing the cache.
    org.revoke(name="alice")
    updated = org.msp([org.crl()], cache=cache)
    with pytest.raises(CertificateRevoked):
        updated.validate(alice.cert_pem, NOW)
    assert cache.hits == 4
    assert updated.validate(bob.cert_pem, NOW).name == "bob"
    assert cache.hits == 5


def test_cache_is_bounded_lru(org: InMemoryOrg) -> None:
    people = [org.new_identity(f"user{i}", "client") for i in range(3)]
    cache = ValidationCache(maxsize=2)
    msp = org.msp(cache=cache)
    for person in people:
        msp.validate(person.cert_pem, NOW)
    assert len(cache) == 2
    msp.validate(people[0].cert_pem, NOW)  # evicted as least recently used
    assert (cache.hits, cache.misses) == (0, 4)


def test_shared_cache_does_not_leak_between_orgs(police: InMemoryOrg) -> None:
    city = InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW)
    officer = police.new_identity("officer-cache", "client")
    cache = ValidationCache()
    police.msp(cache=cache).validate(officer.cert_pem, NOW)
    with pytest.raises(NotChainedToMSP):
        city.msp(cache=cache).validate(officer.cert_pem, NOW)


def test_forged_certificate_with_the_ca_subject_refused(org: InMemoryOrg) -> None:
    forger = ec.generate_private_key(ec.SECP256R1())
    ca_subject = org.material.issuer_cert.subject
    usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    fake_ca = _leaf(forger, ca_subject, ca_subject, public_key=forger.public_key(), ca=True)
    fake_ca_with_usage = _leaf(
        forger, ca_subject, ca_subject, public_key=forger.public_key(), ca=True, extra=[usage]
    )
    fake_admin = _leaf(
        forger,
        ca_subject,
        _subject("CityCCTV", "admin", "mallory"),
        extra=[attributes_extension({"registrar": "*"})],
    )
    msp = org.msp()
    for forged in (fake_ca, fake_ca_with_usage, fake_admin):
        with pytest.raises(NotChainedToMSP):
            msp.validate(forged, NOW)


def test_ca_certificate_is_not_an_identity(org: InMemoryOrg) -> None:
    with pytest.raises(MalformedCertificate, match="CA certificate"):
        org.msp().validate(org.material.root_pem, NOW)


def test_crl_signed_by_a_foreign_ca_refused(org: InMemoryOrg, police: InMemoryOrg) -> None:
    with pytest.raises(UntrustedCRL):
        org.msp([police.crl()])
    # An impostor CA that copies the issuer's name still cannot sign our CRLs.
    impostor = SigningKey.generate()
    issuer = org.material.issuer_cert
    impostor_cert = x509.load_pem_x509_certificate(
        _leaf(
            impostor.native,
            issuer.subject,
            issuer.subject,
            public_key=impostor.native.public_key(),
            ca=True,
            extra=[x509.SubjectKeyIdentifier.from_public_key(impostor.native.public_key())],
        )
    )
    forged_crl = issuing.build_crl(
        impostor, impostor_cert, [], NOW, NOW + timedelta(days=1), 1
    ).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(UntrustedCRL):
        org.msp([forged_crl])
    org.msp([org.crl()])  # its own CRL is accepted


def test_invalid_msp_definitions_refused(org: InMemoryOrg, police: InMemoryOrg) -> None:
    alice = org.new_identity("alice", "client")
    with pytest.raises(InvalidMSPConfig, match="not a CA"):
        MSP("CityCCTVMSP", [alice.cert_pem])
    with pytest.raises(InvalidMSPConfig, match="no root"):
        MSP("CityCCTVMSP", [])
    orphan = InMemoryOrg("Police", "PoliceMSP", NOW, intermediate=True).material
    assert orphan.intermediate_cert is not None
    with pytest.raises(InvalidMSPConfig, match="do not chain"):
        MSP("CityCCTVMSP", [org.material.root_pem], orphan.intermediate_pems)
    with pytest.raises(InvalidMSPConfig, match="unreadable CRL"):
        org.msp([b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"])
    with pytest.raises(InvalidMSPConfig, match="twice"):
        MSPManager([org.msp(), org.msp()])


def test_malformed_input_refused(org: InMemoryOrg) -> None:
    msp = org.msp()
    with pytest.raises(MalformedCertificate):
        msp.validate(b"not a certificate", NOW)
    with pytest.raises(MalformedCertificate):
        msp.validate(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", NOW)
    alice = org.new_identity("alice", "client")
    with pytest.raises(MalformedCertificate, match="exactly one"):
        msp.validate(alice.cert_pem + alice.cert_pem, NOW)
    with pytest.raises(ValueError, match="timezone"):
        msp.validate(alice.cert_pem, NOW.replace(tzinfo=None))


def test_non_p256_key_refused(org: InMemoryOrg) -> None:
    issuer = org.material.issuer_cert
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    cert = _leaf(
        org.material.issuer_key.native,
        issuer.subject,
        _subject("CityCCTV", "client", "eve"),
        public_key=p384,
    )
    with pytest.raises(MalformedCertificate, match="P-256"):
        org.msp().validate(cert, NOW)


def test_malformed_attributes_extension_refused(org: InMemoryOrg) -> None:
    # A map with unsorted keys: valid CBOR, but not canonical.
    unsorted = b"\xa2\x62zz\x61a\x61a\x61b"
    with pytest.raises(MalformedAttributes):
        decode_attributes(unsorted)
    with pytest.raises(MalformedAttributes):
        decode_attributes(b"\xa1\x61a\x01")  # value not text
    assert decode_attributes(b"\xa1\x64role\x63CRM") == {"role": "CRM"}

    issuer = org.material.issuer_cert
    cert = _leaf(
        org.material.issuer_key.native,
        issuer.subject,
        _subject("CityCCTV", "client", "eve"),
        extra=[x509.UnrecognizedExtension(ATTRIBUTES_OID, unsorted)],
    )
    with pytest.raises(MalformedAttributes):
        org.msp().validate(cert, NOW)


def test_msp_manager_from_channel_config(police: InMemoryOrg) -> None:
    city = InMemoryOrg("CityCCTV", "CityCCTVMSP", NOW, intermediate=True)
    alice = city.new_identity("alice", "client", attributes={"role": "CRS"})
    officer = police.new_identity("officer-config", "client", attributes={"role": "PO"})
    city.revoke(name="alice")
    config = ChannelConfig(
        channel_id="cctv",
        sequence=0,
        organizations=(
            city.organization_config(crls=(city.crl(),)),
            police.organization_config(),
        ),
    )
    # Round-trip through the canonical encoding, as a config block would carry it.
    manager = MSPManager.from_channel_config(ChannelConfig.decode(config.encode()))
    assert set(manager.msp_ids) == {"CityCCTVMSP", "PoliceMSP"}
    assert manager.validate("PoliceMSP", officer.cert_pem, NOW).role == "PO"
    with pytest.raises(CertificateRevoked):
        manager.validate("CityCCTVMSP", alice.cert_pem, NOW)
    assert manager.get("CityCCTVMSP").cache is manager.get("PoliceMSP").cache
    with pytest.raises(UnknownMSP):
        manager.get("LocalAuthorityMSP")


def test_identity_common_name_is_required(org: InMemoryOrg) -> None:
    issuer = org.material.issuer_cert
    no_cn = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CityCCTV"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
        ]
    )
    cert = _leaf(org.material.issuer_key.native, issuer.subject, no_cn)
    with pytest.raises(MalformedCertificate, match="CN"):
        org.msp().validate(cert, NOW)
