"""The outermost ASGI layer of every app: request id, body limit, metrics, access log.

Written as plain ASGI rather than ``BaseHTTPMiddleware`` so it adds only a few
microseconds per request and never buffers a streamed body.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.context import (
    REQUEST_ID_HEADER,
    accept_request_id,
    reset_request_id,
    set_request_id,
)
from services.common.disconnects import CLIENT_CLOSED_REQUEST, client_went_away
from services.common.metrics import observe_request
from services.common.problems import PayloadTooLarge, internal_error_response, outage_problem

access_log = logging.getLogger("platform.access")
log = logging.getLogger("platform.errors")
_REQUEST_ID_BYTES = REQUEST_ID_HEADER.encode()


class RequestContextMiddleware:
    """``max_body_bytes`` holds for every route; ``body_allowances`` raises it for a few
    exact (method, path) pairs that take large streamed uploads (the registry's bulk
    import), so no other route is loosened."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_allowances: Mapping[tuple[str, str], int] | None = None,
        access_log_enabled: bool = True,
    ):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_allowances = dict(body_allowances or {})
        self.access_log_enabled = access_log_enabled

    def body_limit(self, method: str, path: str) -> int:
        if not self.body_allowances:
            return self.max_body_bytes
        return self.body_allowances.get((method, path), self.max_body_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming_id = None
        declared_length = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_BYTES:
                incoming_id = value
            elif name == b"content-length":
                declared_length = value
        request_id = accept_request_id(incoming_id)
        token = set_request_id(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        status_holder = [500]
        started_response = [False]
        completed_response = [False]
        client_gone = [False]
        rid_header = (_REQUEST_ID_BYTES, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                started_response[0] = True
                message["headers"] = [*message.get("headers", ()), rid_header]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                completed_response[0] = True
            await send(message)

        async def watched_receive() -> Message:
            message = await receive()
            # Servers also answer http.disconnect once the response is complete: not a hang-up.
            if message["type"] == "http.disconnect" and not completed_response[0]:
                client_gone[0] = True
            return message

        limit = self.body_limit(scope["method"], scope["path"])
        try:
            if declared_length is not None and _too_long(declared_length, limit):
                await PayloadTooLarge(f"The limit is {limit} bytes.").to_response()(
                    scope, receive, send_with_id
                )
                return
            await self.app(scope, _limited(watched_receive, limit), send_with_id)
        except Exception as exc:
            if client_went_away(exc):
                client_gone[0] = True
            elif client_gone[0]:
                # Most likely a consequence of the cut body; nobody is left to answer.
                log.warning("error after the client disconnected", extra={"error": type(exc).__name__})
            elif not started_response[0]:
                # Answered here, while the request id is still known; a response that has
                # started (an app's own error page, already sent) is left as it is.
                unavailable = outage_problem(scope.get("app"), exc)
                if unavailable is not None:  # a store that cannot be reached: 503, logged once
                    await unavailable.to_response()(scope, receive, send_with_id)
                else:
                    log.exception("unhandled error")
                    await internal_error_response()(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or scope.get("route_label") or "unmatched"
            if client_gone[0]:
                status_holder[0] = CLIENT_CLOSED_REQUEST
            observe_request(scope["method"], template, status_holder[0], elapsed)
            if self.access_log_enabled:
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status_holder[0],
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            reset_request_id(token)


def _too_long(declared: bytes, limit: int) -> bool:
    try:
        return int(declared) > limit
    except ValueError:
        return False


class BodyTooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException, so body parsing passes it on as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The limit is {limit} bytes.")


def _limited(receive: Receive, limit: int) -> Receive:
    """Count a chunked body as it arrives and stop it at the limit."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped
