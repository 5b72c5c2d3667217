"""The gateway's guards against abuse at the edge: rate limits, read timeouts, size limits.

* **Rate limits** (:class:`RateLimits`): every proxied request is counted per
  client in a fixed window shared by all replicas through Redis
  (``services.common.ratelimit``): a client is its verified token's subject,
  a caller without a token (the open paths) its address bucket. Past
  ``GATEWAY_RATE_LIMIT_REQUESTS`` per ``GATEWAY_RATE_LIMIT_WINDOW_SECONDS``
  the answer is 429 ``/problems/too-many-requests`` with ``Retry-After``;
  every proxied answer carries ``RateLimit-*`` headers. The platform's own
  services are not counted (their calls follow the work, not a client).
* **Slow headers** (:func:`edge_protocol`): uvicorn's httptools protocol has
  no timeout while it reads a request's head. The edge protocol gives the
  request line and headers ``GATEWAY_HEADER_TIMEOUT_SECONDS`` from the
  connection's (or the request's) first byte, then answers 408
  ``/problems/request-timeout`` and closes; a connection that sends nothing is
  closed quietly. It also refuses, as the bytes arrive, a URL above
  ``GATEWAY_MAX_URL_BYTES`` (414 ``/problems/uri-too-long``) and a head above
  ``GATEWAY_MAX_HEADER_BYTES`` (431 ``/problems/request-headers-too-large``).
* **Slow bodies** (:class:`BodyDeadline`): the time the gateway waits for a
  body is limited to ``GATEWAY_BODY_TIMEOUT_SECONDS`` plus one second per
  ``GATEWAY_BODY_MIN_RATE_BYTES`` received (Apache's mod_reqtimeout
  ``body=…,MinRate=…``), so a client trickling a byte every few seconds is
  answered 408 and disconnected while a large upload at a sane pace is not.
  Only time spent waiting on the client counts, not time the upstream takes
  to read what it was sent. A body the answer did not wait for (a refusal
  before it was read) may drain for ``GATEWAY_BODY_TIMEOUT_SECONDS``; then the
  connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle
from typing import Any

from prometheus_client import Counter
from redis.asyncio import Redis
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.config import GatewaySettings
from services.common.auth import Principal, PrincipalKind
from services.common.problems import (
    HeadersTooLarge,
    ProblemError,
    RequestTimeout,
    TooManyRequests,
    UriTooLong,
)
from services.common.ratelimit import Allowance, FixedWindowLimiter, address_bucket, guard_redis

log = logging.getLogger("gateway.edge")

REQUESTS_LIMITED = Counter(
    "gateway_requests_rate_limited_total", "Proxied requests refused by the rate limit"
)
REQUESTS_CUT = Counter(
    "gateway_requests_cut_total", "Requests refused at the edge as they arrived", ["reason"]
)


class RateLimits:
    """The per-client request limit of the proxied API."""

    def __init__(self, redis: Redis, settings: GatewaySettings) -> None:
        self.redis = redis
        self.limiter = FixedWindowLimiter(
            limit=settings.rate_limit_requests,
            window_seconds=settings.rate_limit_window_seconds,
            key_prefix=settings.rate_limit_key_prefix,
        )

    @classmethod
    def connect(cls, settings: GatewaySettings) -> RateLimits:
        return cls(guard_redis(settings.redis_url), settings)

    async def aclose(self) -> None:
        await self.redis.aclose()

    @staticmethod
    def client_of(scope: Scope, principal: Principal | None) -> str | None:
        """The key a request is counted under; None for the platform's own services."""
        if principal is None:
            client = scope.get("client")
            return "address:" + address_bucket(client[0] if client else None)
        if principal.kind == PrincipalKind.SERVICE:
            return None
        return "subject:" + principal.account_id

    async def check(self, scope: Scope, principal: Principal | None) -> Allowance | None:
        """Count the request; 429 past the limit. The allowance gives the response's headers."""
        client = self.client_of(scope, principal)
        if client is None:
            return None
        allowance = await self.limiter.count(self.redis, client)
        if allowance is not None and allowance.exceeded:
            REQUESTS_LIMITED.inc()
            who = "this client" if principal is not None else "one address"
            raise TooManyRequests(
                f"At most {allowance.limit} requests per {allowance.window_seconds} s from {who}; "
                f"retry in {allowance.reset_seconds} s.",
                headers=allowance.headers(),
            )
        return allowance


class BodyTimedOut(HTTPException):
    """Raised from ``receive``; an HTTPException, so body parsing passes it on as a 408."""

    def __init__(self, waited: float) -> None:
        super().__init__(
            408,
            f"The body did not arrive in time (waited {waited:.0f} s for it); the connection is closed.",
            headers={"Connection": "close"},
        )


class BodyDeadline:
    """Limits the time spent waiting for a request's body (see the module's description)."""

    def __init__(self, app: ASGIApp, *, timeout_seconds: float, min_rate_bytes: int) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds
        self.min_rate_bytes = min_rate_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        received = 0
        waited = 0.0
        complete = False

        async def timed_receive() -> Message:
            nonlocal received, waited, complete
            if complete:  # the body is in: waiting for a disconnect is not the client's delay
                return await receive()
            allowed = self.timeout_seconds + received / self.min_rate_bytes - waited
            started = loop.time()
            try:
                async with asyncio.timeout(max(allowed, 0.0)):
                    message = await receive()
            except TimeoutError:
                REQUESTS_CUT.labels("body-timeout").inc()
                raise BodyTimedOut(waited + loop.time() - started) from None
            finally:
                waited += loop.time() - started
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        await self.app(scope, timed_receive, send)


def _raw_problem(problem: ProblemError) -> bytes:
    """A problem as a whole HTTP/1.1 response that closes the connection."""
    response = problem.to_response()
    head = [f"HTTP/1.1 {problem.status} {problem.title}".encode()]
    for name, value in response.raw_headers:
        if name != b"connection":
            head.append(name + b": " + value)
    head.append(b"connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + response.body


# How long a connection closed while its client may still be sending is read and dropped.
LINGER_SECONDS = 2.0


class _LingeringTransport:
    """The connection's transport, closing gently while the client may still be sending.

    Closing a socket with the client's bytes unread resets the connection, and the
    client can lose the answer it was sent (a 408, a 413). So the answer is followed by
    a half close, and what the client still sends is read and dropped for a moment
    (a lingering close), or until it closes its side.
    """

    def __init__(self, transport: asyncio.Transport, protocol: EdgeProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.is_closing():
            return
        if not self._protocol.client_may_be_sending():
            self._transport.close()
            return
        self._lingering = True
        self._protocol.drop_input()
        try:
            self._transport.write_eof()
            self._transport.resume_reading()
        except (OSError, RuntimeError, NotImplementedError):
            self._transport.close()
            return
        self._protocol.loop.call_later(LINGER_SECONDS, self._transport.close)

    def close_now(self) -> None:
        self._transport.close()


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header read timeout and head size limits."""

    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_url_bytes: int = 8 * 1024
    max_header_bytes: int = 32 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: TimerHandle | None = None
        self._drain_timer: TimerHandle | None = None
        self._head_bytes = 0  # of the request whose head is being read
        self._reading_head = True
        self._parsed_head_bytes = 0
        self._refused = False
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]
        self._arm_header_timer()  # a connection that never sends a request is closed too

    def client_may_be_sending(self) -> bool:
        """Part of a request's head, or of a body, has arrived and the rest may follow."""
        return not self._reading_head or self._head_bytes > 0

    def drop_input(self) -> None:
        self._refused = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        self._disarm_drain_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.max_header_bytes and not self._refused:
            self._refuse(self._headers_too_large(), "header-size")

    def _headers_too_large(self) -> HeadersTooLarge:
        limit = self.max_header_bytes
        return HeadersTooLarge(f"The request line and headers may take at most {limit} bytes.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._parsed_head_bytes = 0
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.max_url_bytes:
            self._refuse(UriTooLong(f"The URL may take at most {self.max_url_bytes} bytes."), "url-size")
            raise _Refused  # the parser stops here; uvicorn's answer to it is suppressed

    def on_header(self, name: bytes, value: bytes) -> None:
        # A whole head can come in one read: counted here too, before the app sees it.
        self._parsed_head_bytes += len(name) + len(value) + 4
        if len(self.url) + self._parsed_head_bytes > self.max_header_bytes:
            self._refuse(self._headers_too_large(), "header-size")
            raise _Refused
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # not when the edge stopped the parser, having answered already
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        self._reading_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._disarm_drain_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._reading_head and not self.transport.is_closing():
            # Answered before the body was needed (a refusal): what is left of it is read and
            # dropped for as long as a body may take, no longer; then the connection is closed.
            self._drain_timer = self.loop.call_later(self.body_timeout_seconds, self._drain_timed_out)

    def _disarm_drain_timer(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def _drain_timed_out(self) -> None:
        self._drain_timer = None
        if not self._reading_head and not self.transport.is_closing():
            REQUESTS_CUT.labels("body-drain-timeout").inc()
            self.transport.close_now()  # type: ignore[attr-defined]  # it has lingered long enough

    def timeout_keep_alive_handler(self) -> None:
        self._disarm_header_timer()
        super().timeout_keep_alive_handler()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_seconds, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _answering(self) -> bool:
        """A response to an earlier request on this connection is still being sent."""
        return self.cycle is not None and not self.cycle.response_complete

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._reading_head:
            return
        if self._answering():  # a pipelined head: its time runs once the answer before it is out
            self._arm_header_timer()
            return
        if self._head_bytes == 0:
            self.transport.close()  # nothing of a request arrived: nobody to answer
            return
        self._refuse(
            RequestTimeout(f"The request's headers did not arrive within {self.header_timeout_seconds:g} s."),
            "header-timeout",
        )

    def _refuse(self, problem: ProblemError, reason: str) -> None:
        REQUESTS_CUT.labels(reason).inc()
        log.warning("request refused at the edge", extra={"reason": reason, "status": problem.status})
        self._refused = True
        self._disarm_header_timer()
        if not self.transport.is_closing():
            if not self._answering():  # never into the middle of an earlier request's answer
                self.transport.write(_raw_problem(problem))
            self.transport.close()


class _Refused(Exception):
    """Stops the parser once a request is refused (the protocol has answered already)."""


def edge_protocol(settings: GatewaySettings) -> type[EdgeProtocol]:
    """The protocol class for uvicorn's ``http=``, with the gateway's limits."""
    attributes: dict[str, Any] = {
        "header_timeout_seconds": settings.header_timeout_seconds,
        "body_timeout_seconds": settings.body_timeout_seconds,
        "max_url_bytes": settings.max_url_bytes,
        "max_header_bytes": settings.max_header_bytes,
    }
    return type("GatewayEdgeProtocol", (EdgeProtocol,), attributes)
