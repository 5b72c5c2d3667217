"""Forwarding of ``/api/v1/<service>/…`` to the services.

Plain ASGI, outside FastAPI's routing, so the gateway's own work per request
stays a few tenths of a millisecond. The request goes to the service with the
same path (no rewriting), bodies stream both ways, and headers are cleaned:
hop-by-hop headers and anything a client could use to claim an identity or a
network origin are dropped; the gateway sets the request id and the
``X-Forwarded-*`` headers itself. A service that cannot be reached answers
503; one that does not answer in time, 504.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx
from starlette.types import Receive, Scope, Send

from gateway.edge import BodyTimedOut, RateLimits
from services.common.asgi import BodyTooLarge
from services.common.auth import Principal
from services.common.context import REQUEST_ID_HEADER, current_request_id
from services.common.problems import (
    BadRequest,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
)

log = logging.getLogger("gateway.proxy")

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
# Headers only the gateway may set: client-sent copies are dropped.
GATEWAY_OWNED = frozenset({b"forwarded", b"x-real-ip", REQUEST_ID_HEADER.encode()})
GATEWAY_OWNED_PREFIXES = (
    b"x-forwarded-",
    b"x-principal",
    b"x-user",
    b"x-account",
    b"x-bureau",
    b"x-officer",
    b"x-roles",
    b"x-auth",
)
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class ClientDisconnected(Exception):
    pass


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """Headers named in ``Connection`` are hop-by-hop too (RFC 9110 §7.6.1)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        # An upstream's raw response headers keep the case it wrote them in.
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return tokens


class AmbiguousFraming(BadRequest):
    """A request whose body length the gateway and a service could read differently."""

    slug, title = "ambiguous-framing", "The request's body framing is ambiguous"


def request_headers(scope: Scope) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Headers to send upstream, and whether the request's body goes with them.

    The upstream connection is pooled: a request must reach the service framed
    exactly as forwarded, or the service reads the next caller's request as this
    one's body. So the length headers go upstream only with the body they
    describe, and a request whose framing is in any doubt is refused here.
    """
    raw = scope["headers"]
    named = _connection_tokens(raw)
    out: list[tuple[bytes, bytes]] = []
    lengths: list[bytes] = []
    chunked = False
    host = b""
    for name, value in raw:
        if name == b"host":
            host = value
        elif name == b"content-length":
            lengths.append(value)
            continue  # added back below, only with a body
        elif name == b"transfer-encoding":
            chunked = True
        if (
            name in HOP_BY_HOP
            or name in GATEWAY_OWNED
            or name in named
            or name.startswith(GATEWAY_OWNED_PREFIXES)
        ):
            continue
        out.append((name, value))
    if len(lengths) > 1 or (lengths and chunked):
        raise AmbiguousFraming("Send one Content-Length, or a chunked body, not both or several.")
    if lengths and not lengths[0].isdigit():
        raise AmbiguousFraming("Content-Length must be a decimal number of bytes.")
    # A body on GET, HEAD, OPTIONS or DELETE means nothing to the services: neither it
    # nor its length goes upstream (the gateway's own server reads past it).
    has_body = scope["method"] not in _BODYLESS and (chunked or (bool(lengths) and int(lengths[0]) > 0))
    if has_body and lengths:
        out.append((b"content-length", lengths[0]))
    client = scope.get("client")
    if client:
        out.append((b"x-forwarded-for", client[0].encode()))
    out.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    if host:
        out.append((b"x-forwarded-host", host))
    out.append((REQUEST_ID_HEADER.encode(), (current_request_id() or "").encode()))
    return out, has_body


# The gateway's server adds its own Date and Server; the request id is set by our middleware.
_NOT_RETURNED = HOP_BY_HOP | {b"date", b"server", REQUEST_ID_HEADER.encode()}
_LOCATION_HEADERS = frozenset({b"location", b"content-location"})


def response_headers(raw: list[tuple[bytes, bytes]], origin: bytes) -> list[tuple[bytes, bytes]]:
    """Headers to return to the client; a ``Location`` on the service's own
    address (``origin``, e.g. ``http://127.0.0.1:8001``) is cut to its path, so
    no answer sends a client past the gateway with its token."""
    named = _connection_tokens(raw)
    out = []
    for name, value in raw:
        name = name.lower()
        if name in _NOT_RETURNED or name in named:
            continue
        if name in _LOCATION_HEADERS and value.lower().startswith(origin):
            rest = value[len(origin) :]
            if not rest[:1] or rest[:1] in b"/?#":  # not "…:80011", another origin
                value = rest if rest.startswith(b"/") else b"/" + rest
        out.append((name, value))
    return out


class RequestBody:
    """The client's body as it arrives, remembering why it stopped early.

    aiohttp reports an error raised while it reads the body as a connection
    error; what the client did (sent too much, went away) is kept here so the
    answer is a 413, not a 503.
    """

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.failure: Exception | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected
                body = message.get("body", b"")
                if body:
                    yield body
                if not message.get("more_body", False):
                    return
        except (BodyTooLarge, BodyTimedOut, ClientDisconnected) as exc:
            self.failure = exc
            raise


_ENCODED_SEPARATORS = (b"%2f", b"%5c")


def forwardable(path: str, raw_path: bytes) -> bool:
    """Only paths the service sees exactly as the gateway routed them.

    A dot segment (``..``, also as ``%2e%2e``) or an encoded slash would be
    resolved on the way and could land outside the service's API prefix.
    """
    if any(segment in (".", "..") for segment in path.split("/")) or "\\" in path:
        return False
    lowered = raw_path.lower()
    return not any(sep in lowered for sep in _ENCODED_SEPARATORS)


def open_path(path: str, service: str) -> bool:
    """Paths forwarded without a token: the service's API document, and what it publishes
    to everyone under ``/api/v1/<service>/public/`` (the published inspection results, 一公开).
    Dot segments and encoded slashes never reach here (``forwardable``)."""
    prefix = f"/api/v1/{service}/"
    return path == prefix + "openapi.json" or path.startswith(prefix + "public/")


def _upstream_error(service: str, exc: Exception) -> ProblemError:
    if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
        log.warning("upstream timed out", extra={"upstream": service})
        return GatewayTimeout(f"The {service} service did not answer in time.")
    # Connect error, connect or pool timeout, connection reset.
    log.warning("upstream unavailable", extra={"upstream": service, "error": type(exc).__name__})
    return ServiceUnavailable(f"The {service} service is unavailable.", headers={"Retry-After": "5"})


class Proxy:
    def __init__(
        self,
        upstreams: dict[str, tuple[httpx.URL, httpx.AsyncBaseTransport]],
        timeout: httpx.Timeout,
        authorize: Callable[[str | None], Principal],
        rate_limits: RateLimits | None = None,
    ) -> None:
        self._upstreams = upstreams
        self._origins = {name: str(url).rstrip("/").lower().encode() for name, (url, _) in upstreams.items()}
        self._timeout = timeout.as_dict()
        self._authorize = authorize
        self._rate_limits = rate_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        scope["route_label"] = f"proxy:{service}"
        try:
            await self._forward(scope, receive, send, service)
        except ProblemError as exc:
            await exc.to_response()(scope, receive, send)
        except BodyTooLarge as exc:
            await PayloadTooLarge(exc.detail).to_response()(scope, receive, send)
        except BodyTimedOut as exc:
            await RequestTimeout(exc.detail).to_response()(scope, receive, send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        if not forwardable(scope["path"], raw_path):
            raise NotFound("No such resource.")
        headers, has_body = request_headers(scope)
        principal = None
        if not open_path(scope["path"], service):
            authorization = next((v for n, v in headers if n == b"authorization"), None)
            try:
                principal = self._authorize(
                    authorization.decode("latin-1") if authorization is not None else None
                )
            except Unauthorized:
                # Refused tokens count against the caller's address: a flood of them is limited too.
                if self._rate_limits is not None:
                    await self._rate_limits.check(scope, None)
                raise
        allowance = await self._rate_limits.check(scope, principal) if self._rate_limits is not None else None
        base_url, transport = self._upstreams[service]
        query = scope.get("query_string", b"")
        url = base_url.copy_with(raw_path=raw_path + b"?" + query if query else raw_path)
        body = RequestBody(receive) if has_body else None
        request = httpx.Request(
            scope["method"], url, headers=headers, content=body, extensions={"timeout": self._timeout}
        )
        try:
            # Straight to the pool's transport: no auth, redirect or cookie handling per request.
            upstream = await transport.handle_async_request(request)
        except (ClientDisconnected, BodyTooLarge, BodyTimedOut, httpx.TransportError) as exc:
            failure = body.failure if body is not None else exc
            if isinstance(failure, (BodyTooLarge, BodyTimedOut)):
                raise failure from None
            if isinstance(failure, ClientDisconnected):
                return  # nobody is waiting for an answer
            raise _upstream_error(service, exc) from exc
        returned = response_headers(upstream.headers.raw, self._origins[service])
        if allowance is not None:
            returned += [(n.lower().encode(), v.encode()) for n, v in allowance.headers().items()]
        try:
            await send({"type": "http.response.start", "status": upstream.status_code, "headers": returned})
            async for chunk in upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.TransportError:
            # The response has started: nothing to do but end it; the client sees a cut body.
            log.warning("upstream failed mid-response", extra={"upstream": service})
        finally:
            await upstream.aclose()  # always, or the pool drains when clients go away
