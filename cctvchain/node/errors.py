"""HTTP errors of a node: a status, a stable ``code`` and a message, answered as JSON.

Handlers raise :class:`HttpError` (or one of its subclasses); the error middleware of
:mod:`cctvchain.node.http` turns it into ``{"code": ..., "message": ...}`` with the
status. Clients branch on the code, never on the message. The mappings below give the
status of every refusal of the MSP (identity validation) and of the CA.
"""

from __future__ import annotations

from typing import ClassVar

from cctvchain.msp import errors as msp_errors


class HttpError(Exception):
    """A refusal (4xx) or failure (5xx) answered to the caller as a JSON error."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.http_status = status if status is not None else self.status
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class BadRequest(HttpError):
    status = 400
    default_code = "bad_request"


class Unauthorized(HttpError):
    """The caller did not prove who they are (no certificate, bad secret, bad signature)."""

    status = 401
    default_code = "unauthorized"


class Forbidden(HttpError):
    """The caller is known but refused (revoked, expired, wrong type, not allowed)."""

    status = 403
    default_code = "forbidden"


class NotFound(HttpError):
    status = 404
    default_code = "not_found"


class MethodNotAllowed(HttpError):
    status = 405
    default_code = "method_not_allowed"


class Conflict(HttpError):
    status = 409
    default_code = "conflict"


class PayloadTooLarge(HttpError):
    status = 413
    default_code = "body_too_large"


class UnsupportedMediaType(HttpError):
    status = 415
    default_code = "unsupported_media_type"


class ServiceUnavailable(HttpError):
    status = 503
    default_code = "unavailable"


class InternalError(HttpError):
    """Never carries details: those go to the node's log, not to the caller."""

    status = 500
    default_code = "internal_error"


# The status of each refusal of the certificate authority, by its stable code.
CA_ERROR_STATUS: dict[str, int] = {
    msp_errors.BadRequest.code: 400,
    msp_errors.BadCSR.code: 400,
    msp_errors.BadRequestSignature.code: 401,
    msp_errors.StaleRequest.code: 401,
    msp_errors.BadEnrollmentSecret.code: 401,
    msp_errors.NotAuthorized.code: 403,
    msp_errors.NotARegistrar.code: 403,
    msp_errors.RegistrarRefused.code: 403,
    msp_errors.IdentityRevoked.code: 403,
    msp_errors.UnknownIdentity.code: 404,
    msp_errors.UnknownCertificate.code: 404,
    msp_errors.ReplayedRequest.code: 409,
    msp_errors.IdentityExists.code: 409,
    msp_errors.AlreadyRevoked.code: 409,
    msp_errors.SecretAlreadyUsed.code: 409,
    # The CA's own certificate expired: the service cannot issue, the caller did no wrong.
    msp_errors.CAExpired.code: 503,
}


def from_ca_error(exc: msp_errors.CAError) -> HttpError:
    status = CA_ERROR_STATUS.get(exc.code, 400)
    return HttpError(str(exc), code=exc.code, status=status)


def from_msp_error(exc: msp_errors.MSPError) -> HttpError:
    """An identity the MSP refuses: 403 with the MSP's code (``certificate_revoked``, ...)."""
    return Forbidden(str(exc), code=exc.code)


# -- the client side: calling a node failed ------------------------------------------------


class NodeClientError(Exception):
    """A call to a node failed; the message is one line."""


class NodeUnreachable(NodeClientError):
    pass


class NodeTLSError(NodeClientError):
    pass


class NodeProtocolError(NodeClientError):
    pass


class NodeRefused(NodeClientError):
    def __init__(self, what: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{what} refused the request: {code}: {message} (HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
