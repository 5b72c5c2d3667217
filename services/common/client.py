"""Typed calls from one part of the platform to another.

:class:`ServiceClient` is the one way a service (or the gateway) calls another,
in a route or in an arq job alike:

* it authenticates with a token provider: by default the service's client
  credentials at the gateway (kept until shortly before expiry), or the
  gateway's own signed token; a 401 renews the token once and retries;
* it passes the current request id on, so one id follows a request across
  every service it touches;
* ``get`` / ``post`` / ``put`` / ``patch`` / ``delete`` return the answer parsed
  into a pydantic model (or any type a ``TypeAdapter`` takes: ``list[X]``,
  ``Page[X]``) and raise our typed errors from a problem answer (404 →
  ``NotFound``, 409 → ``Conflict``…, carrying its type, detail and errors);
* safe reads are retried on connection failures and 502 / 503 / 504 with a
  short jittered backoff; a write is retried only when it carries an
  ``Idempotency-Key`` (every POST does: the caller's, or one generated and
  kept across the retries), except that a connection never made is always
  retried: nothing was sent. A keyed write answered 409
  ``idempotency-key-in-progress`` (an earlier attempt still running) is retried
  too, until its answer is replayed.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import TypeAdapter, ValidationError

from services.common.auth import Principal, TokenSigner
from services.common.context import REQUEST_ID_HEADER, current_request_id
from services.common.idempotency import IDEMPOTENCY_KEY_HEADER, KeyInProgress
from services.common.problems import (
    PROBLEM_TYPE_BASE,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
    UpstreamProblem,
)
from services.common.settings import ServiceSettings

T = TypeVar("T")

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
KEY_IN_PROGRESS = PROBLEM_TYPE_BASE + KeyInProgress.slug
_REFRESH_MARGIN_SECONDS = 30
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRIED_STATUSES = frozenset({502, 503, 504})
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF_SECONDS = 0.1
_MAX_BACKOFF_SECONDS = 2.0


def _aiohttp_session(max_connections: int) -> aiohttp.ClientSession:
    # No cookie jar (a proxy must not keep cookies) and no headers of aiohttp's own,
    # so what goes upstream is exactly what the caller sent.
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=30),
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        auto_decompress=False,
        trust_env=False,
    )


def pooled_transport(max_connections: int = 100) -> AiohttpTransport:
    """One connection pool to one upstream, on aiohttp (a fraction of httpx's own CPU per request).

    The aiohttp session is made on first use, inside the running event loop.
    """
    return AiohttpTransport(client=lambda: _aiohttp_session(max_connections))


def pooled_client(
    base_url: str, *, timeout: httpx.Timeout, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, transport=transport or pooled_transport(), timeout=timeout, trust_env=False
    )


# --- tokens ------------------------------------------------------------------

# ``await provider(renew=False)`` → an access token; ``renew=True`` after a 401.
TokenProvider = Callable[..., Awaitable[str]]


class ClientCredentials:
    """A service's own token, obtained at the gateway with its client credentials."""

    def __init__(self, http: httpx.AsyncClient, client_id: str, client_secret: str) -> None:
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self, *, renew: bool = False) -> str:
        async with self._lock:
            if renew or self._token is None or time.time() > self._expires - _REFRESH_MARGIN_SECONDS:
                form = {
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                }
                try:
                    response = await self._http.post(TOKEN_PATH, data=form)
                except httpx.TransportError as exc:
                    raise ServiceUnavailable("The gateway could not be reached to obtain a token.") from exc
                if response.status_code != 200:
                    raise ServiceUnavailable(
                        f"The gateway refused this service's credentials ({response.status_code})."
                    )
                body = response.json()
                self._token = body["access_token"]
                self._expires = time.time() + float(body["expires_in"])
            return self._token


class SignedTokens:
    """Tokens the gateway signs for itself (it holds the key), renewed at half their lifetime."""

    def __init__(self, signer: TokenSigner, principal: Principal) -> None:
        self._signer = signer
        self._principal = principal
        self._token = ""
        self._until = 0.0

    async def __call__(self, *, renew: bool = False) -> str:
        now = time.time()
        if renew or now >= self._until:
            self._token = self._signer.issue(self._principal)
            self._until = now + self._signer.lifetime_seconds / 2
        return self._token


async def _callers_credentials_only(*, renew: bool = False) -> str:
    raise RuntimeError("This client has no token of its own: pass authorization= on every call.")


# --- problems ------------------------------------------------------------------

# The typed error for a status; a subclass whose own slug matches the problem's type
# (409 /problems/invalid-transition → InvalidTransition) is preferred.
_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
    428: PreconditionRequired,
    429: TooManyRequests,
    503: ServiceUnavailable,
    504: GatewayTimeout,
}
_PASSED_ON_HEADERS = ("Retry-After", "WWW-Authenticate")


def _subclasses(cls: type[ProblemError]) -> list[type[ProblemError]]:
    return [cls, *(s for sub in cls.__subclasses__() for s in _subclasses(sub))]


def _error_class(status: int, slug: str) -> type[ProblemError]:
    base = _BY_STATUS.get(status)
    if base is None:
        return UpstreamProblem
    for cls in _subclasses(base):
        if cls.slug == slug and cls.status == status:
            return cls
    return base


def problem_error(response: httpx.Response) -> ProblemError:
    """The typed error for an error answer, carrying its problem document's type, title,
    detail, field errors and other members (``allowed``, ``current_etag``…)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    text = {k: v for k, v in body.items() if k in ("type", "title", "detail") and isinstance(v, str)}
    slug = text.get("type", "").removeprefix(PROBLEM_TYPE_BASE)
    extra = {k: v for k, v in body.items() if k not in {"type", "title", "status", "detail", "request_id"}}
    headers = {h: response.headers[h] for h in _PASSED_ON_HEADERS if h in response.headers}
    cls = _error_class(response.status_code, slug)
    title = text.get("title")
    if cls is UpstreamProblem:  # answered as our own 502, naming what the upstream said
        extra |= {"upstream_status": response.status_code, "upstream_type": text.get("type")}
        slug, title = "", None
    request = response.request
    detail = text.get("detail") or f"{request.method} {request.url.path} answered {response.status_code}."
    # Built through the base initializer: a subclass's own one (TooManyLoginAttempts(retry_after),
    # Unauthorized's default WWW-Authenticate) describes raising it here, not receiving it.
    error = cls.__new__(cls)
    ProblemError.__init__(error, detail, slug=slug or None, title=title, headers=headers or None, **extra)
    return error


def raise_for_problem(response: httpx.Response) -> None:
    if response.is_error:
        raise problem_error(response)


@functools.lru_cache(maxsize=256)
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def parse(response: httpx.Response, model: Any = None) -> Any:
    """The body of a successful answer: parsed into ``model``, or JSON as is; None if empty."""
    if not response.content:
        return None
    if model is None:
        return response.json()
    try:
        return _adapter(model).validate_json(response.content)
    except ValidationError as exc:
        method, path = response.request.method, response.request.url.path
        raise UpstreamProblem(f"{method} {path} answered a body this caller cannot read.") from exc


# --- the client ---------------------------------------------------------------


UNSENT, TIMED_OUT, BROKEN = "unsent", "timed out", "broken"


def _failure(exc: httpx.TransportError) -> str:
    """How a request failed: before a connection carried it (any method may be retried),
    waiting for the answer, or with the connection broken on the way.

    The aiohttp transport maps every connection error, a server hanging up
    mid-answer included, to ``ConnectTimeout``: its cause tells them apart.
    """
    cause = exc.__cause__
    if isinstance(cause, aiohttp.ClientError):
        if isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            return UNSENT
        return TIMED_OUT if isinstance(cause, aiohttp.ServerTimeoutError) else BROKEN
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return UNSENT
    return TIMED_OUT if isinstance(exc, httpx.TimeoutException) else BROKEN


def _worth_retrying(response: httpx.Response) -> bool:
    """A gateway or service failure, or an earlier attempt of this very request still running
    (its answer will be replayed once it is done)."""
    if response.status_code in RETRIED_STATUSES:
        return True
    return response.status_code == 409 and KEY_IN_PROGRESS.encode() in response.content


class ServiceClient:
    """Calls to the platform's services; see the module docstring.

    ``ServiceClient(settings)`` calls through the gateway as the service itself.
    The gateway builds one per service with ``base_url``, its own pooled
    ``http`` client and ``tokens=SignedTokens(...)``. Close it with ``aclose()``
    or use it as ``async with``; an ``http`` client passed in stays the caller's.
    """

    def __init__(
        self,
        settings: ServiceSettings | None = None,
        *,
        base_url: str | None = None,
        tokens: TokenProvider | None = None,
        http: httpx.AsyncClient | None = None,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
    ) -> None:
        if http is None:
            url = base_url or (settings.gateway_url if settings else None)
            if url is None:
                raise ValueError("A ServiceClient needs settings, a base_url or an http client.")
            http = pooled_client(url, timeout=httpx.Timeout(10.0, connect=3.0))
            self._owns_http = True
        else:
            self._owns_http = False
        self._http = http
        if tokens is None:
            tokens = (
                ClientCredentials(http, settings.client_id, settings.client_secret)
                if settings is not None
                else _callers_credentials_only
            )
        self._tokens = tokens
        self.attempts = max(1, attempts)
        self.backoff_seconds = backoff_seconds

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _pause(self, attempt: int) -> None:
        # Full jitter: concurrent callers do not come back in step.
        ceiling = min(_MAX_BACKOFF_SECONDS, self.backoff_seconds * 2 ** (attempt - 1))
        await asyncio.sleep(random.uniform(ceiling / 2, ceiling))  # noqa: S311 - not cryptographic

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        content: bytes | str | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        if_match: str | None = None,
        authorization: str | None = None,
    ) -> httpx.Response:
        """Send one request (retried as the module docstring says) and return the answer,
        whatever its status. ``authorization`` sends a caller's own credentials instead of
        this client's token (no renewal then: the 401 is the caller's)."""
        method = method.upper()
        sent = dict(headers or {})
        if method == "POST" and idempotency_key is None:
            idempotency_key = str(uuid.uuid4())
        if idempotency_key is not None:
            sent[IDEMPOTENCY_KEY_HEADER] = idempotency_key
        if if_match is not None:
            sent["If-Match"] = if_match
        request_id = current_request_id()
        if request_id:
            sent[REQUEST_ID_HEADER] = request_id
        repeatable = method in SAFE_METHODS or idempotency_key is not None
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            sent["Authorization"] = authorization or f"Bearer {await self._tokens(renew=renewed)}"
            try:
                response = await self._http.request(
                    method, path, params=params, json=json, content=content, data=data, headers=sent
                )
            except httpx.TransportError as exc:
                failure = _failure(exc)
                # A read that timed out is not repeated: the next would most likely wait as long.
                retry = failure == UNSENT or (repeatable and failure == BROKEN)
                if retry and attempt < self.attempts:
                    await self._pause(attempt)
                    continue
                if failure == TIMED_OUT:
                    raise GatewayTimeout(f"{method} {path} timed out.") from exc
                raise ServiceUnavailable(f"{method} {path} could not be reached.") from exc
            if response.status_code == 401 and authorization is None and not renewed:
                # A token the service no longer accepts (rotated keys, a changed account): renew once.
                renewed = True
                attempt -= 1
                continue
            if repeatable and attempt < self.attempts and _worth_retrying(response):
                await self._pause(attempt)
                continue
            return response

    async def call(self, method: str, path: str, *, model: Any = None, **kwargs: Any) -> Any:
        """``request`` that raises the typed error of an error answer and parses a success."""
        response = await self.request(method, path, **kwargs)
        if response.status_code == 401 and kwargs.get("authorization") is None:
            # This service's own fresh token refused: the platform is misconfigured, not the caller.
            raise ServiceUnavailable(f"{method} {path} refused this service's credentials.")
        raise_for_problem(response)
        return parse(response, model)

    @overload
    async def get(self, path: str, *, model: type[T], **kwargs: Any) -> T: ...
    @overload
    async def get(self, path: str, *, model: None = None, **kwargs: Any) -> Any: ...
    async def get(self, path: str, *, model: Any = None, **kwargs: Any) -> Any:
        return await self.call("GET", path, model=model, **kwargs)

    async def post(self, path: str, *, model: Any = None, **kwargs: Any) -> Any:
        return await self.call("POST", path, model=model, **kwargs)

    async def put(self, path: str, *, model: Any = None, **kwargs: Any) -> Any:
        return await self.call("PUT", path, model=model, **kwargs)

    async def patch(self, path: str, *, model: Any = None, **kwargs: Any) -> Any:
        return await self.call("PATCH", path, model=model, **kwargs)

    async def delete(self, path: str, *, model: Any = None, **kwargs: Any) -> Any:
        return await self.call("DELETE", path, model=model, **kwargs)
