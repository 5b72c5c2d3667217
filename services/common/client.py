"""Calls from one service to another, through the gateway, as the service itself.

The client logs in with the service's client credentials, keeps the token
until shortly before it expires, and passes the current request id on, so
one id follows a request across every service it touches.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from services.common.context import REQUEST_ID_HEADER, current_request_id
from services.common.problems import GatewayTimeout, ServiceUnavailable
from services.common.settings import ServiceSettings

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
_REFRESH_MARGIN_SECONDS = 30


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
    base_url: str, *, timeout: httpx.Timeout, transport: AiohttpTransport | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url, transport=transport or pooled_transport(), timeout=timeout, trust_env=False
    )


class ServiceClient:
    def __init__(self, settings: ServiceSettings) -> None:
        self._client_id = settings.client_id
        self._client_secret = settings.client_secret
        self._http = pooled_client(settings.gateway_url, timeout=httpx.Timeout(10.0, connect=3.0))
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = asyncio.Lock()

    async def _bearer(self) -> str:
        async with self._lock:
            if self._token is None or time.time() > self._token_expires - _REFRESH_MARGIN_SECONDS:
                response = await self._http.post(
                    TOKEN_PATH,
                    data={
                        "grant_type": "client_credentials",
                        "client_id": self._client_id,
                        "client_secret": self._client_secret,
                    },
                )
                if response.status_code != 200:
                    raise ServiceUnavailable(
                        f"The gateway refused this service's credentials ({response.status_code})."
                    )
                body = response.json()
                self._token = body["access_token"]
                self._token_expires = time.time() + float(body["expires_in"])
            return self._token

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["authorization"] = f"Bearer {await self._bearer()}"
        request_id = current_request_id()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        try:
            return await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.ReadTimeout as exc:
            raise GatewayTimeout(f"{method} {path} timed out.") from exc
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"{method} {path} could not be reached.") from exc

    async def aclose(self) -> None:
        await self._http.aclose()
