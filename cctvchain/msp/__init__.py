"""Membership service provider and certificate authority.

* :mod:`~cctvchain.msp.identity` (pure): :class:`MSP`, :class:`MSPManager`,
  :class:`Identity` — certificate validation with a cache keyed by certificate hash;
* :mod:`~cctvchain.msp.ca` (pure): :class:`CertificateAuthority` — register, enroll,
  revoke, CRLs; :mod:`~cctvchain.msp.requests`: the registrar's signed requests;
* :mod:`~cctvchain.msp.store` and :mod:`~cctvchain.msp.wallet` (shells): the CA
  directory and enrolled identities on disk; :mod:`~cctvchain.msp.tls`: ``ssl``
  contexts for mutual TLS.
"""

from cctvchain.msp.attributes import ATTRIBUTES_OID, REGISTRAR_ATTRIBUTE, ROLE_ATTRIBUTE
from cctvchain.msp.ca import CAMaterial, CertificateAuthority, create_ca_material
from cctvchain.msp.certs import ID_TYPES, build_csr
from cctvchain.msp.errors import CAError, MSPError, StoreError
from cctvchain.msp.identity import MSP, Identity, MSPManager, ValidationCache
from cctvchain.msp.requests import (
    RegisterRequest,
    RevokeRequest,
    SignedCARequest,
    make_register_request,
    make_revoke_request,
)

__all__ = [
    "ATTRIBUTES_OID",
    "ID_TYPES",
    "MSP",
    "REGISTRAR_ATTRIBUTE",
    "ROLE_ATTRIBUTE",
    "CAError",
    "CAMaterial",
    "CertificateAuthority",
    "Identity",
    "MSPError",
    "MSPManager",
    "RegisterRequest",
    "RevokeRequest",
    "SignedCARequest",
    "StoreError",
    "ValidationCache",
    "build_csr",
    "create_ca_material",
    "make_register_request",
    "make_revoke_request",
]
