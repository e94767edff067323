"""X.509 builders for the CA: root and intermediate CA certificates, identity and TLS
certificates, CRLs. Pure functions of their inputs (the time included); the policy of
who may get what lives in :mod:`cctvchain.msp.ca`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cctvchain.crypto import SigningKey
from cctvchain.msp.attributes import attributes_extension

ROOT_VALIDITY = timedelta(days=3650)
IDENTITY_VALIDITY = timedelta(days=365)
# Certificates start a little in the past so that a peer whose clock runs slightly
# behind the CA's does not see a brand-new certificate as not yet valid.
BACKDATE = timedelta(minutes=5)

PROFILES = ("msp", "tls")

_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def ca_subject(org_name: str, label: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{org_name} {label}"),
        ]
    )


def identity_subject(org_name: str, id_type: str, name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, id_type),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(issuer_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def create_root(
    org_name: str, now: datetime, validity: timedelta = ROOT_VALIDITY
) -> tuple[SigningKey, x509.Certificate]:
    """A self-signed P-256 root CA: CA:true, keyCertSign + cRLSign."""
    key = SigningKey.generate()
    subject = ca_subject(org_name, "Root CA")
    public_key = key.native.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key.native, hashes.SHA256())
    )
    return key, cert


def create_intermediate(
    org_name: str,
    root_key: SigningKey,
    root_cert: x509.Certificate,
    now: datetime,
    validity: timedelta = ROOT_VALIDITY,
) -> tuple[SigningKey, x509.Certificate]:
    """An intermediate CA under ``root_cert`` that may issue only end-entity certs."""
    key = SigningKey.generate()
    public_key = key.native.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(ca_subject(org_name, "Intermediate CA"))
        .issuer_name(root_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + validity, root_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(root_cert), critical=False)
        .sign(root_key.native, hashes.SHA256())
    )
    return key, cert


def parse_hosts(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """SAN entries for host names and IP addresses; ``ValueError`` for anything else."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"{host!r} is neither a host name nor an IP address")
        names.append(x509.DNSName(host.lower()))
    return names


@dataclass(frozen=True)
class LeafSpec:
    """What goes into an end-entity certificate."""

    org_name: str
    name: str
    id_type: str
    attributes: Mapping[str, str]
    profile: str  # "msp": signing identity; "tls": TLS client and server
    hosts: Sequence[x509.GeneralName] = ()


def issue_leaf(
    spec: LeafSpec,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: SigningKey,
    issuer_cert: x509.Certificate,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    if spec.profile not in PROFILES:
        raise ValueError(f"unknown profile {spec.profile!r}")
    builder = (
        x509.CertificateBuilder()
        .subject_name(identity_subject(spec.org_name, spec.id_type, spec.name))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(_authority_key_id(issuer_cert), critical=False)
        # TLS certificates carry the attributes too: a peer that identifies its caller by
        # the TLS client certificate can then read the caller's role from it.
        .add_extension(attributes_extension(spec.attributes), critical=False)
    )
    if spec.profile == "tls":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        if spec.hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(list(spec.hosts)), critical=False
            )
    return builder.sign(issuer_key.native, hashes.SHA256())


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags


def build_crl(
    issuer_key: SigningKey,
    issuer_cert: x509.Certificate,
    entries: Iterable[RevokedEntry],
    now: datetime,
    next_update: datetime,
    crl_number: int,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(_authority_key_id(issuer_cert), critical=False)
    )
    for entry in entries:
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
        )
        # RFC 5280 §5.3.1: "unspecified" is expressed by leaving the reason out.
        if entry.reason != x509.ReasonFlags.unspecified:
            revoked = revoked.add_extension(x509.CRLReason(entry.reason), critical=False)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(issuer_key.native, hashes.SHA256())
