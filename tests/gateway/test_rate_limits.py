"""Rate limits per client at the gateway: every proxied request counted per token subject
(per address without one), shared by gateway replicas through Redis, 429 with
``Retry-After`` past the limit, ``RateLimit-*`` headers on every proxied answer.

Each test counts under its own key prefix, subjects and addresses, so no count of one
test reaches another's; the limit is small and the window long (a window boundary met
during a test is waited out first).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.edge import RateLimits
from services.common.auth import PrincipalKind, Role
from tests.conftest import assert_problem, auth
from tools.platform import free_port

LIMIT = 3
WINDOW = 3600
ME = "/api/v1/registry/me"
OPEN = "/api/v1/registry/openapi.json"


def new_address() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


async def clear_of_window_end() -> None:
    """Counts start afresh at a window's end: keep a test's requests within one window."""
    left = WINDOW - time.time() % WINDOW
    if left < 10:
        await asyncio.sleep(left + 0.1)


@pytest.fixture(scope="module")
async def replicas(registry_url) -> AsyncIterator[list]:
    """Two gateway apps on the test Redis with the same small limit: two replicas."""
    settings = GatewaySettings(
        registry_url=registry_url,
        rate_limit_requests=LIMIT,
        rate_limit_window_seconds=WINDOW,
        rate_limit_key_prefix=f"rate-limit-test:{uuid.uuid4().hex}:",
    )
    apps = [create_app(settings), create_app(settings)]
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.api.router.lifespan_context(app.api))
        yield apps


@pytest.fixture(autouse=True)
async def _within_one_window() -> None:
    await clear_of_window_end()


@pytest.fixture
async def connect() -> AsyncIterator:
    clients: list[httpx.AsyncClient] = []

    def make(app, address: str | None = None) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address or new_address(), 40000))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://gateway"))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


def assert_limited(response: httpx.Response) -> None:
    problem = assert_problem(response, 429, "/problems/too-many-requests")
    assert 0 < int(response.headers["Retry-After"]) <= WINDOW
    assert response.headers["RateLimit-Remaining"] == "0"
    assert str(LIMIT) in problem["detail"]


class TestPerClient:
    async def test_a_client_is_counted_across_replicas(self, replicas, connect, token_for):
        """The limit holds for the client, wherever its requests land."""
        one, two = connect(replicas[0]), connect(replicas[1])
        token = token_for(roles=(Role.ENFORCEMENT,))
        remaining = []
        for gateway in (one, two, one):
            response = await gateway.get(ME, headers=auth(token))
            assert response.status_code == 200, response.text
            assert response.headers["RateLimit-Limit"] == str(LIMIT)
            assert response.headers["RateLimit-Policy"] == f"{LIMIT};w={WINDOW}"
            remaining.append(int(response.headers["RateLimit-Remaining"]))
        assert remaining == [2, 1, 0]
        assert_limited(await two.get(ME, headers=auth(token)))
        assert_limited(await one.get(ME, headers=auth(token)))

    async def test_clients_are_counted_apart(self, replicas, connect, token_for):
        """One client at its limit leaves another's requests alone, from the same address too."""
        address = new_address()
        gateway = connect(replicas[0], address)
        busy, other = token_for(), token_for()
        for _ in range(LIMIT):
            assert (await gateway.get(ME, headers=auth(busy))).status_code == 200
        assert_limited(await gateway.get(ME, headers=auth(busy)))
        response = await connect(replicas[1], address).get(ME, headers=auth(other))
        assert response.status_code == 200
        assert response.headers["RateLimit-Remaining"] == str(LIMIT - 1)

    async def test_the_count_follows_the_subject_not_the_token(self, replicas, connect, token_for):
        """A client that fetches new tokens (or new addresses) is still one client."""
        account = str(uuid.uuid4())
        for index in range(LIMIT):
            response = await connect(replicas[index % 2]).get(ME, headers=auth(token_for(account_id=account)))
            assert response.status_code == 200
        assert_limited(await connect(replicas[0]).get(ME, headers=auth(token_for(account_id=account))))

    async def test_the_platforms_own_services_are_not_counted(self, replicas, connect, token_for):
        gateway = connect(replicas[0])
        token = token_for(roles=(Role.SERVICE,), kind=PrincipalKind.SERVICE)
        for _ in range(LIMIT + 2):
            response = await gateway.get(ME, headers=auth(token))
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers


class TestWithoutToken:
    async def test_open_paths_are_counted_per_address(self, replicas, connect):
        address = new_address()
        for index in range(LIMIT):
            response = await connect(replicas[index % 2], address).get(OPEN)
            assert response.status_code == 200
        assert_limited(await connect(replicas[1], address).get(OPEN))
        assert (await connect(replicas[0]).get(OPEN)).status_code == 200  # another address

    async def test_an_ipv6_subscriber_is_one_address(self, replicas, connect):
        """Addresses rotated within one /64 share its count."""
        raw = uuid.uuid4().bytes
        prefix = f"2001:db8:{raw[0]:x}:{raw[1]:x}"
        for host in range(LIMIT):
            assert (await connect(replicas[0], f"{prefix}::{host + 1}").get(OPEN)).status_code == 200
        assert_limited(await connect(replicas[1], f"{prefix}::ffff").get(OPEN))

    async def test_refused_tokens_count_against_the_address(self, replicas, connect):
        """Guessing tokens is limited too: the refusals are counted per address."""
        address = new_address()
        for index in range(LIMIT):
            response = await connect(replicas[index % 2], address).get(ME, headers=auth("not-a-token"))
            assert_problem(response, 401, "/problems/unauthorized")
        assert_limited(await connect(replicas[0], address).get(ME, headers=auth("not-a-token")))
        assert_limited(await connect(replicas[0], address).get(OPEN))


class TestSettings:
    def test_the_default_limit_leaves_heavy_clients_alone(self):
        """Suites, schemathesis runs and load tests run on the defaults: a flood guard only."""
        settings = GatewaySettings()
        assert settings.rate_limit_requests / settings.rate_limit_window_seconds >= 100

    def test_the_limits_are_read_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("GATEWAY_RATE_LIMIT_REQUESTS", "7")
        monkeypatch.setenv("GATEWAY_RATE_LIMIT_WINDOW_SECONDS", "2")
        settings = GatewaySettings()
        assert (settings.rate_limit_requests, settings.rate_limit_window_seconds) == (7, 2)

    async def test_without_redis_requests_are_served_unlimited(self, registry_url, connect, token_for):
        settings = GatewaySettings(registry_url=registry_url, rate_limit_requests=1)
        app = create_app(settings)
        async with app.api.router.lifespan_context(app.api):
            await app.api.state.rate_limits.aclose()
            away = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
            app.api.state.rate_limits = RateLimits(away, settings)
            gateway, token = connect(app), token_for()
            for _ in range(3):
                response = await gateway.get(ME, headers=auth(token))
                assert response.status_code == 200
                assert "RateLimit-Limit" not in response.headers
