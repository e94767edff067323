"""The HTTP skeleton every node shares: JSON errors, request logging, health, JSON bodies.

:func:`make_app` builds an :class:`aiohttp.web.Application` with

* the error middleware (outermost): every refusal is answered as
  ``{"code": ..., "message": ...}`` with its status (400 malformed, 401/403 identity,
  404, 405, 409, 413 body too large, 415, 500 without any detail: the traceback goes to
  the node's log only); each request is logged at debug level, refusals at info (401
  and 403 at warning), failures at error;
* the service's own middlewares (e.g. :func:`cctvchain.node.auth.mtls_auth`);
* ``GET /healthz`` (the process serves requests) and ``GET /readyz`` (the node has
  started and every readiness check of its service passes);
* a request body limit (``client_max_size``), also checked by :func:`read_json`.

Handlers read bodies with :func:`read_json` and the ``field_*`` helpers, which raise
:class:`~cctvchain.node.errors.BadRequest` with a precise code and message.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from cctvchain.msp.identity import Identity
from cctvchain.node.errors import (
    BadRequest,
    HttpError,
    InternalError,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)

DEFAULT_MAX_BODY: Final = 1024 * 1024
HEALTH_PATHS: Final = frozenset({"/healthz", "/readyz"})
JSON_TYPE: Final = "application/json"

_STATUS_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "body_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "headers_too_large",
}

_MISSING: Final = object()

# Where the caller's identity is kept on a request (see cctvchain.node.auth). aiohttp
# 3.14 types request storage with RequestKey (and warns about plain strings); older
# versions take the string.
IDENTITY_KEY: Final[Any] = (
    web.RequestKey("identity", Identity) if hasattr(web, "RequestKey") else "identity"
)

ReadinessCheck = Callable[[], str | None]


class Readiness:
    """Whether a node is ready: started, and every check returns ``None`` (not a reason)."""

    def __init__(self) -> None:
        self.started = False
        self._checks: list[ReadinessCheck] = []

    def add_check(self, check: ReadinessCheck) -> None:
        """``check()`` returns ``None`` when ready, or why not (e.g. "catching up")."""
        self._checks.append(check)

    def reasons(self) -> list[str]:
        if not self.started:
            return ["starting"]
        return [reason for check in self._checks if (reason := check()) is not None]


@dataclass(frozen=True)
class NodeInfo:
    name: str
    kind: str
    max_body: int
    log: logging.Logger = field(compare=False)


NODE_INFO: Final = web.AppKey("node_info", NodeInfo)
READINESS: Final = web.AppKey("readiness", Readiness)


def node_info(app: web.Application) -> NodeInfo:
    return app[NODE_INFO]


def readiness(app: web.Application) -> Readiness:
    return app[READINESS]


def make_app(
    name: str,
    kind: str,
    *,
    log: logging.Logger,
    middlewares: Iterable[Middleware] = (),
    max_body: int = DEFAULT_MAX_BODY,
) -> web.Application:
    """A node's application: error handling, logging, health routes, body limit."""
    app = web.Application(
        middlewares=[error_middleware(log), *middlewares], client_max_size=max_body
    )
    app[NODE_INFO] = NodeInfo(name=name, kind=kind, max_body=max_body, log=log)
    app[READINESS] = Readiness()
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    return app


async def _healthz(request: web.Request) -> web.Response:
    info = node_info(request.app)
    return json_response({"status": "ok", "node": info.name, "kind": info.kind})


async def _readyz(request: web.Request) -> web.Response:
    info = node_info(request.app)
    reasons = readiness(request.app).reasons()
    if reasons:
        raise ServiceUnavailable(
            f"{info.name} is not ready: {'; '.join(reasons)}", code="not_ready"
        )
    return json_response({"status": "ready", "node": info.name, "kind": info.kind})


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type=JSON_TYPE,
        headers=headers,
    )


def error_response(error: HttpError) -> web.Response:
    return json_response(error.to_json(), status=error.http_status, headers=error.headers)


# -- the error and logging middleware ----------------------------------------------------


def error_middleware(log: logging.Logger) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        try:
            response = await handler(request)
        except HttpError as exc:
            response = _refused(request, exc, log, started)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _refused(request, _from_aiohttp(request, exc), log, started)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            response = error_response(
                InternalError("internal error; the node's log has the details")
            )
            _log_request(log, logging.ERROR, request, response.status, started)
        else:
            _log_request(log, logging.DEBUG, request, response.status, started)
        return response

    return middleware


def _refused(
    request: web.Request, error: HttpError, log: logging.Logger, started: float
) -> web.Response:
    if error.http_status >= 500:
        level = logging.ERROR
    elif error.http_status in (401, 403):
        level = logging.WARNING
    else:
        level = logging.INFO
    _log_request(log, level, request, error.http_status, started, f"{error.code}: {error.message}")
    return error_response(error)


def _log_request(
    log: logging.Logger,
    level: int,
    request: web.Request,
    status: int,
    started: float,
    detail: str = "",
) -> None:
    if not log.isEnabledFor(level):
        return
    identity = request.get(IDENTITY_KEY)
    caller = request.remote or "?"
    if identity is not None:
        caller += f" ({identity.msp_id}/{identity.name})"
    elapsed = (time.monotonic() - started) * 1000
    suffix = f": {detail}" if detail else ""
    log.log(
        level,
        "%s %s -> %d in %.1f ms from %s%s",
        request.method,
        request.path,
        status,
        elapsed,
        caller,
        suffix,
    )


def _from_aiohttp(request: web.Request, exc: web.HTTPException) -> HttpError:
    status = exc.status
    code = _STATUS_CODES.get(status, f"http_{status}")
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPNotFound):
        message = f"no route for {request.method} {request.path}"
    elif isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        message = f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
        headers["Allow"] = ",".join(sorted(exc.allowed_methods))
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = node_info(request.app).max_body
        message = f"the request body exceeds the limit of {limit} bytes"
    else:
        message = exc.text if exc.text and exc.text != f"{status}: {exc.reason}" else exc.reason
    return HttpError(message or f"HTTP {status}", code=code, status=status, headers=headers)


# -- JSON bodies -------------------------------------------------------------------------


async def read_json(request: web.Request, *, max_bytes: int | None = None) -> dict[str, Any]:
    """The request body as a JSON object: 415 unless JSON, 413 if over the limit, 400 if
    malformed or not an object."""
    limit = node_info(request.app).max_body if max_bytes is None else max_bytes
    if request.content_type != JSON_TYPE:
        raise UnsupportedMediaType(
            f"send the request body as {JSON_TYPE}, not {request.content_type or 'nothing'}"
        )
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
    data = await request.read()  # aiohttp enforces client_max_size on chunked bodies
    if len(data) > limit:
        raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(
            f"the request body is not valid JSON: {exc}", code="malformed_json"
        ) from None
    if not isinstance(value, dict):
        raise BadRequest("the request body must be a JSON object", code="malformed_json")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _missing(key: str) -> BadRequest:
    return BadRequest(f"the request lacks '{key}'", code="missing_field")


def _bad(key: str, expected: str) -> BadRequest:
    return BadRequest(f"'{key}' must be {expected}", code="bad_field")


def field_str(
    body: Mapping[str, Any], key: str, *, default: Any = _MISSING, max_length: int = 4096
) -> str:
    value = body.get(key, default)
    if value is _MISSING:
        raise _missing(key)
    if not isinstance(value, str):
        raise _bad(key, "a string")
    if len(value) > max_length:
        raise _bad(key, f"at most {max_length} characters")
    return value


def field_optional_str(body: Mapping[str, Any], key: str, *, max_length: int = 4096) -> str | None:
    if body.get(key) is None:
        return None
    return field_str(body, key, max_length=max_length)


def field_int(
    body: Mapping[str, Any],
    key: str,
    *,
    default: Any = _MISSING,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = body.get(key, default)
    if value is _MISSING:
        raise _missing(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(key, "an integer")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _bad(key, f"between {minimum} and {maximum}")
    return value


def field_bool(body: Mapping[str, Any], key: str, *, default: bool = False) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise _bad(key, "true or false")
    return value


def field_str_list(
    body: Mapping[str, Any], key: str, *, max_items: int = 64, max_length: int = 1024
) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad(key, "a list of strings")
    if len(value) > max_items or any(len(item) > max_length for item in value):
        raise _bad(key, f"at most {max_items} strings of at most {max_length} characters")
    return list(value)


def field_b64(body: Mapping[str, Any], key: str, *, max_bytes: int | None = None) -> bytes:
    text = field_str(body, key, max_length=1 << 30)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(key, "base64") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise _bad(key, f"at most {max_bytes} bytes")
    return data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_fields(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse keys the endpoint does not know (a typo must not be silently ignored)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}", code="unknown_field")
