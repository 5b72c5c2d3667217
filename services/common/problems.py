"""RFC 9457 problem responses for every error a service or the gateway answers.

Domain code raises the typed exceptions below; one set of handlers renders
them, FastAPI's validation errors, Starlette's HTTP errors and anything
unexpected as ``application/problem+json``. A stack trace never leaves the
process: unknown errors are logged with the request id and answered with a
generic 500 that carries that id.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import get_route_path

from services.common.context import current_request_id
from services.common.disconnects import CLIENT_CLOSED_REQUEST, client_went_away
from services.common.outages import DATABASE, outage_log, outage_of

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "/problems/"

log = logging.getLogger("platform.problems")


class FieldError(BaseModel):
    loc: str
    message: str
    type: str


class Problem(BaseModel):
    """The body of every error response (RFC 9457)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"type": PROBLEM_TYPE_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


class ProblemError(Exception):
    """Base of the typed errors; subclasses fix status, slug and title."""

    status = 500
    slug = "internal-error"
    title = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        if slug:
            self.slug = slug
        if title:
            self.title = title
        self.headers = headers
        self.extra = extra

    def to_response(self) -> Response:
        return problem_response(
            self.status, self.slug, self.title, self.detail, headers=self.headers, **self.extra
        )


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(detail, **kwargs)


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed for this principal"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    """A business rule is broken; ``slug`` names the rule."""

    status, slug, title = 409, "conflict", "Conflict with the current state"


class InvalidTransition(Conflict):
    """A step of a procedure that its state does not allow; ``allowed`` lists the steps it does
    (see ``services.common.transitions``)."""

    slug, title = "invalid-transition", "Transition not allowed from the current state"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "The resource changed since it was read"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class RequestTimeout(ProblemError):
    """The request's headers or body arrived too slowly; the connection is closed after it."""

    status, slug, title = 408, "request-timeout", "The request arrived too slowly"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Connection": "close"})
        super().__init__(detail, **kwargs)


class UriTooLong(ProblemError):
    status, slug, title = 414, "uri-too-long", "The request's URL is too long"


class HeadersTooLarge(ProblemError):
    status, slug, title = 431, "request-headers-too-large", "The request's headers are too large"


class UnprocessableEntity(ProblemError):
    status, slug, title = 422, "validation-error", "The request is not valid"


class PreconditionRequired(ProblemError):
    status, slug, title = 428, "precondition-required", "If-Match is required for this update"


class TooManyRequests(ProblemError):
    """Send ``Retry-After`` (seconds) in ``headers``."""

    status, slug, title = 429, "too-many-requests", "Too many requests"


class UpstreamProblem(ProblemError):
    """Another service answered an error this caller has no typed counterpart for."""

    status, slug, title = 502, "upstream-error", "A service this request needs answered an error"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "service-unavailable", "A service this request needs is unavailable"


# Seconds a client should wait before retrying after a backing store failed.
OUTAGE_RETRY_AFTER_SECONDS = 5


class StoreUnavailable(ServiceUnavailable):
    """A backing store (database, Redis) cannot be reached: worth retrying a little later."""

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)})
        super().__init__(detail, **kwargs)


class DatabaseUnavailable(StoreUnavailable):
    slug, title = "database-unavailable", "The database is unavailable"


class QueueUnavailable(StoreUnavailable):
    slug, title = "queue-unavailable", "The job queue (Redis) is unavailable"


class GatewayTimeout(ProblemError):
    status, slug, title = 504, "upstream-timeout", "A service did not answer in time"


# The problem types of the mechanisms, one documented list (DESIGN §6). A service's own
# rules (``/problems/credential-taken``…) are named where they are raised.
PROBLEM_TYPES: dict[str, str] = {
    "bad-request": "The request cannot be read as sent",
    "unauthorized": "Missing, invalid or expired token",
    "forbidden": "The principal may not do this",
    "role-required": "The principal lacks the role this needs",
    "not-found": "No such object, or none within the principal's scope",
    "method-not-allowed": "The path does not serve this method (`Allow` lists those it does)",
    "conflict": "The change conflicts with stored data",
    "invalid-transition": "The step is not allowed from the object's state; `allowed` lists those that are",
    "precondition-failed": "If-Match names an older version than the stored one",
    "precondition-required": "An update must send If-Match",
    "payload-too-large": "The body exceeds the size limit",
    "request-timeout": "The headers or the body arrived too slowly (the connection is closed)",
    "uri-too-long": "The URL (path and query string) exceeds the gateway's limit",
    "request-headers-too-large": "The headers exceed the gateway's limit",
    "validation-error": "Malformed payload; `errors` names the fields",
    "invalid-value": "A value the database cannot hold",
    "too-many-requests": "Retry after `Retry-After` seconds",
    "idempotency-key-invalid": "Idempotency-Key is not 1–255 printable ASCII characters",
    "idempotency-key-in-progress": "A request with this Idempotency-Key is still running (or was cut short)",
    "idempotency-key-reused": "This Idempotency-Key was used for another request (method, path or body)",
    "idempotency-key-not-replayable": "The request was carried out but its answer was not kept",
    "internal-error": "An unexpected error, logged under the request id",
    "upstream-error": "A service this request needs answered an unexpected error",
    "service-unavailable": "A service this request needs is unavailable",
    "database-unavailable": "The database cannot be reached; retry after `Retry-After` seconds",
    "queue-unavailable": "The job queue (Redis) cannot be reached; retry after `Retry-After` seconds",
    "upstream-timeout": "A service did not answer in time",
}


# What an endpoint may answer besides its success, for its OpenAPI `responses`.
def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Bad request",
        401: "Missing, invalid or expired token",
        403: "The principal's role does not allow this",
        404: "Not found, or outside the principal's scope",
        409: "A business rule is broken (the `type` names it)",
        412: "The resource changed since it was read (If-Match)",
        408: "The request arrived too slowly",
        413: "Request body too large",
        414: "The URL is too long",
        422: "Malformed payload, with the field errors",
        428: "If-Match is required",
        429: "Too many requests: retry after `Retry-After` seconds",
        431: "The request's headers are too large",
        502: "A service this request needs answered an unexpected error",
        503: "A service or the database is unavailable or busy: retry after `Retry-After` seconds",
        504: "A service did not answer in time",
    }
    # Every route may find all database connections busy (503 + Retry-After).
    return {s: problem_doc(descriptions[s]) for s in (401, 422, 503, *statuses)}


def problem_doc(description: str) -> dict[str, Any]:
    """One error response for OpenAPI: the Problem schema on the media type sent.

    Not FastAPI's ``model``, which would declare it on ``application/json``; the
    app (``services.common.openapi.PlatformAPI``) adds the component itself.
    """
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _loc(parts: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in parts)


def field_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"loc": _loc(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]


async def _problem_error(_: Request, exc: ProblemError) -> Response:
    return exc.to_response()


def _malformed_body(message: str, error_type: str) -> Response:
    errors = [{"loc": "body", "message": message, "type": error_type}]
    return problem_response(
        422, "validation-error", "The request is not valid", f"body: {message}", errors=errors
    )


async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
    raw = list(exc.errors())
    if raw and raw[0].get("type") == "json_invalid":
        # FastAPI puts the character offset in the location; the field is the body itself.
        error = raw[0]
        offset = error.get("loc", ("body",))[-1]
        reason = (error.get("ctx") or {}).get("error") or error.get("msg", "")
        return _malformed_body(
            f"The body is not valid JSON ({reason} at character {offset}).", "json_invalid"
        )
    errors = field_errors(raw)
    detail = "; ".join(f"{e['loc']}: {e['message']}" for e in errors[:5])
    return problem_response(422, "validation-error", "The request is not valid", detail, errors=errors)


_HTTP_SLUGS = {
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    401: ("unauthorized", "Authentication required"),
    408: (RequestTimeout.slug, RequestTimeout.title),
    413: ("payload-too-large", "Request body too large"),
}


def allowed_methods(request: Request) -> str:
    """Every method the app serves at this path.

    Starlette's 405 names only the methods of the first route matching the path,
    although other routes (``GET`` and ``PATCH`` of one item) may share it.
    """
    path = get_route_path(request.scope)
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if route.methods and regex is not None and regex.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI's answer to a body that is not UTF-8: a malformed payload like any other.
        return _malformed_body("The body is not UTF-8 text.", "unicode_invalid")
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": allowed_methods(request)}
    return problem_response(exc.status_code, slug, title, detail, headers=headers)


def internal_error_response() -> Response:
    return problem_response(
        500, "internal-error", "Internal error", "The error was logged under this request id."
    )


def outage_problem(app: Any, exc: BaseException) -> StoreUnavailable | None:
    """The 503 for an error that means a backing store cannot be reached (logged once per
    incident on ``app``'s outage log), or None for any other error."""
    store = outage_of(exc)
    if store is None:
        return None
    outage_log(app).failed(store, exc)
    if store == DATABASE:
        return DatabaseUnavailable("The database cannot be reached; retry shortly.")
    return QueueUnavailable("The job queue cannot be reached; retry shortly.")


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    if client_went_away(exc):
        return Response(status_code=CLIENT_CLOSED_REQUEST)  # nobody is left to read an answer
    unavailable = outage_problem(request.app, exc)
    if unavailable is not None:
        return unavailable.to_response()
    log.exception("unhandled error", exc_info=exc)
    return internal_error_response()


async def _integrity_error(request: Request, exc: IntegrityError) -> Response:
    """A constraint the checks before a write did not catch (two writers at once): 409, not 500.

    Each app names its constraints' rules in ``app.state.constraint_problems``.
    """
    cause = getattr(exc.orig, "__cause__", None)
    constraint = getattr(cause, "constraint_name", None) or ""
    known = getattr(request.app.state, "constraint_problems", {}).get(constraint)
    if known:
        slug, detail = known
        return problem_response(409, slug, "Conflict with the current state", detail)
    if getattr(cause, "sqlstate", None) in ("23505", "23503", "23514"):
        return problem_response(
            409,
            "conflict",
            "Conflict with the current state",
            f"The change conflicts with stored data ({constraint or 'a constraint'}).",
        )
    log.exception("integrity error", exc_info=exc)
    return internal_error_response()


async def _data_error(request: Request, exc: DBAPIError) -> Response:
    """A value the database cannot hold (SQLSTATE class 22: out of range, bad character…),
    or a database that cannot be reached."""
    unavailable = outage_problem(request.app, exc)
    if unavailable is not None:
        return unavailable.to_response()
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if sqlstate.startswith("22"):
        return problem_response(
            422,
            "invalid-value",
            "The request is not valid",
            "A value in the request cannot be stored or compared (out of range or an invalid character).",
        )
    log.exception("database error", exc_info=exc)
    return internal_error_response()


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _problem_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(IntegrityError, _integrity_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _data_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)
