"""An organisation with an in-memory CA, for tests and demos: real certificates, no files.

org = InMemoryOrg("CityCCTV", "CityCCTVMSP", now)
alice = org.new_identity("alice", "client", attributes={"role": "CRM"})
identity = org.msp().validate(alice.cert_pem, now)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cctvchain.crypto import SigningKey
from cctvchain.ledger.config import OrganizationConfig
from cctvchain.msp import certs, issuing
from cctvchain.msp.ca import CAMaterial, CertificateAuthority, create_ca_material
from cctvchain.msp.identity import MSP, ValidationCache
from cctvchain.msp.registry import Registry
from cctvchain.msp.requests import make_register_request, make_revoke_request


@dataclass(frozen=True)
class EnrolledIdentity:
    name: str
    msp_id: str
    id_type: str
    key: SigningKey
    cert_pem: bytes

    @property
    def serial(self) -> int:
        return certs.parse_certificate(self.cert_pem).serial_number


class InMemoryOrg:
    def __init__(
        self,
        org_name: str,
        msp_id: str,
        now: datetime,
        *,
        intermediate: bool = False,
        admin: str = "admin",
        ca_validity: timedelta = issuing.ROOT_VALIDITY,
    ) -> None:
        self.now = now
        material = create_ca_material(
            org_name, msp_id, now, intermediate=intermediate, validity=ca_validity
        )
        self.ca = CertificateAuthority(material, Registry())
        secret = self.ca.register_bootstrap(admin, now)
        self.admin = self.enroll(admin, secret)

    @property
    def msp_id(self) -> str:
        return self.ca.material.msp_id

    @property
    def material(self) -> CAMaterial:
        return self.ca.material

    def register(
        self,
        name: str,
        id_type: str,
        *,
        attributes: Mapping[str, str] | None = None,
        secret: str | None = None,
        registrar: EnrolledIdentity | None = None,
        now: datetime | None = None,
    ) -> str:
        by = registrar or self.admin
        when = now or self.now
        request = make_register_request(
            by.key,
            by.cert_pem,
            name=name,
            id_type=id_type,
            now=when,
            attributes=attributes,
            secret=secret,
        )
        return self.ca.register(request, when)

    def enroll(
        self,
        name: str,
        secret: str,
        *,
        profile: str = "msp",
        hosts: Sequence[str] = (),
        validity: timedelta = issuing.IDENTITY_VALIDITY,
        now: datetime | None = None,
    ) -> EnrolledIdentity:
        key = SigningKey.generate()
        cert_pem = self.ca.enroll(
            name,
            secret,
            certs.build_csr(key, name),
            now or self.now,
            profile=profile,
            hosts=hosts,
            validity=validity,
        )
        id_type = self.ca.identity(name).id_type
        return EnrolledIdentity(name, self.msp_id, id_type, key, cert_pem)

    def new_identity(
        self,
        name: str,
        id_type: str,
        *,
        attributes: Mapping[str, str] | None = None,
        validity: timedelta = issuing.IDENTITY_VALIDITY,
        now: datetime | None = None,
    ) -> EnrolledIdentity:
        """Register and enroll (msp profile) in one step."""
        secret = self.register(name, id_type, attributes=attributes, now=now)
        return self.enroll(name, secret, validity=validity, now=now)

    def revoke(
        self,
        *,
        name: str | None = None,
        serial: int | None = None,
        reason: str = "unspecified",
        now: datetime | None = None,
    ) -> tuple[int, ...]:
        when = now or self.now
        request = make_revoke_request(
            self.admin.key, self.admin.cert_pem, now=when, name=name, serial=serial, reason=reason
        )
        return self.ca.revoke(request, when)

    def crl(self, now: datetime | None = None) -> bytes:
        when = now or self.now
        return self.ca.generate_crl(when, when + timedelta(days=7))

    def msp(self, crls: Sequence[bytes] = (), cache: ValidationCache | None = None) -> MSP:
        return self.material.msp(crls, cache)

    def organization_config(self, crls: Sequence[bytes] = ()) -> OrganizationConfig:
        return OrganizationConfig(
            msp_id=self.msp_id,
            name=self.material.org_name,
            root_certs=(self.material.root_pem,),
            intermediate_certs=self.material.intermediate_pems,
            crls=tuple(crls),
            tls_root_certs=(self.material.root_pem,),
        )
