"""Errors of the MSP (identity validation) and of the certificate authority.

Every class carries a stable ``code`` string: callers (the CLI, the HTTP API, the
validator's transaction codes) branch on the class or the code, never on the message.
"""

from __future__ import annotations

from typing import ClassVar


class MSPError(Exception):
    """Base of every identity-validation failure."""

    code: ClassVar[str] = "msp_error"


class UnknownMSP(MSPError):
    """No organisation with this MSP id is configured."""

    code = "unknown_msp"


class MalformedCertificate(MSPError):
    """The bytes are not a usable X.509 identity certificate."""

    code = "malformed_certificate"


class MalformedAttributes(MalformedCertificate):
    """The attributes extension is present but not a canonical ``str -> str`` map."""

    code = "malformed_attributes"


class NotChainedToMSP(MSPError):
    """The certificate does not chain to a root of the claimed MSP (wrong org, forged)."""

    code = "not_chained_to_msp"


class CertificateExpired(MSPError):
    """The certificate, or a CA certificate on its chain, has expired."""

    code = "certificate_expired"


class CertificateNotYetValid(MSPError):
    """The certificate, or a CA certificate on its chain, is not valid yet."""

    code = "certificate_not_yet_valid"


class CertificateRevoked(MSPError):
    """The certificate, or an intermediate CA on its chain, is on one of the MSP's CRLs."""

    code = "certificate_revoked"


class WrongIdentityType(MSPError):
    """The OU is not a known identity type, or not one the caller accepts here."""

    code = "wrong_identity_type"


class InvalidMSPConfig(MSPError):
    """The MSP definition itself is unusable (a root is not a CA, an orphan intermediate)."""

    code = "invalid_msp_config"


class UntrustedCRL(InvalidMSPConfig):
    """A CRL in the MSP definition is not signed by a CA of that MSP."""

    code = "untrusted_crl"


class CAError(Exception):
    """Base of every refusal by the certificate authority."""

    code: ClassVar[str] = "ca_error"


class BadRequest(CAError):
    """A request is malformed: bad name, unknown type, bad attribute, bad host, ..."""

    code = "bad_request"


class BadRequestSignature(CAError):
    """A registrar request's signature does not verify with its certificate."""

    code = "bad_request_signature"


class StaleRequest(CAError):
    """A registrar request's timestamp is too far from the CA's clock."""

    code = "stale_request"


class ReplayedRequest(CAError):
    """This exact signed request was already processed."""

    code = "replayed_request"


class NotAuthorized(CAError):
    """The caller may not perform this operation."""

    code = "not_authorized"


class NotARegistrar(NotAuthorized):
    """The requester holds no registrar attribute."""

    code = "not_a_registrar"


class RegistrarRefused(NotAuthorized):
    """The registrar's certificate is not a valid, unrevoked identity of this CA."""

    code = "registrar_refused"


class IdentityExists(CAError):
    code = "identity_exists"


class UnknownIdentity(CAError):
    code = "unknown_identity"


class UnknownCertificate(CAError):
    """No certificate with this serial number was issued by this CA."""

    code = "unknown_certificate"


class BadEnrollmentSecret(CAError):
    code = "bad_enrollment_secret"


class SecretAlreadyUsed(CAError):
    """The enrollment secret was already used for this profile (msp or tls)."""

    code = "secret_already_used"


class IdentityRevoked(CAError):
    code = "identity_revoked"


class AlreadyRevoked(CAError):
    code = "already_revoked"


class BadCSR(CAError):
    """The certificate signing request is malformed, badly signed, or not P-256."""

    code = "bad_csr"


class CAExpired(CAError):
    """The issuing CA certificate is no longer valid, so it cannot issue."""

    code = "ca_expired"


class StoreError(Exception):
    """A CA directory or a wallet on disk is missing, incomplete or corrupt."""

    code: ClassVar[str] = "store_error"


class InsecureKeyFile(StoreError):
    """A private key file is readable or writable by group or others."""

    code = "insecure_key_file"
