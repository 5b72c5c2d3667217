"""Login throttling at the token endpoint: per account, per client address, shared by
gateway replicas through Redis, with the secret left unchecked while locked.

Each test uses its own usernames and client addresses, so the counters of one test
never reach another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.models import AccountKind
from gateway.throttle import LoginThrottle, address_bucket
from tools.platform import free_port

TOKEN = "/api/v1/auth/token"
SECRET = "correct horse battery"


def new_address() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


@pytest.fixture(scope="module")
async def gateways(registry_url) -> AsyncIterator[dict]:
    """Gateways on the test Redis with small limits; ``strict`` and ``replica`` share them."""
    strict = dict(
        login_max_failures=3,
        login_slowdown_after=100,  # locks only, so counts are easy to follow
        login_address_max_failures=6,
        login_lockout_seconds=60,
        login_failure_window_seconds=60,
    )
    configs = {
        "strict": strict,
        "replica": strict,
        # Waits of a few seconds: a lock runs from the start of the attempt that sets it, and an
        # argon2 check can take most of a second on a busy machine.
        "fast": dict(login_max_failures=2, login_lockout_seconds=3, login_failure_window_seconds=10),
        "slowing": dict(login_slowdown_after=2, login_slowdown_seconds=3, login_max_failures=10),
    }
    apps = {
        name: create_app(GatewaySettings(registry_url=registry_url, **values))
        for name, values in configs.items()
    }
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.api.router.lifespan_context(app.api))
        yield apps


class Gateway:
    """A client of one gateway app, connecting from one address."""

    def __init__(self, app, address: str) -> None:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://gateway")

    async def login(self, username: str, password: str, **headers) -> httpx.Response:
        data = {"grant_type": "password", "username": username, "password": password}
        return await self.http.post(TOKEN, data=data, headers=headers)


@pytest.fixture
async def connect(gateways) -> AsyncIterator:
    clients: list[Gateway] = []

    def make(name: str = "strict", address: str | None = None) -> Gateway:
        clients.append(Gateway(gateways[name], address or new_address()))
        return clients[-1]

    yield make
    for client in clients:
        await client.http.aclose()


def assert_throttled(response: httpx.Response, at_most: int) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/too-many-login-attempts" and problem["status"] == 429
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= at_most
    return retry_after


def assert_wrong_secret(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "/problems/oauth-invalid-grant"


class TestAccountLimit:
    async def test_locked_after_the_failures_with_retry_after(self, connect, make_account):
        account, gateway = await make_account(), connect()
        for _ in range(3):
            assert_wrong_secret(await gateway.login(account.username, "wrong password"))
        assert_throttled(await gateway.login(account.username, "wrong password"), at_most=60)

    async def test_right_password_is_refused_while_locked_from_any_address(self, connect, make_account):
        account, gateway = await make_account(), connect()
        for _ in range(3):
            assert_wrong_secret(await gateway.login(account.username, "wrong password"))
        assert_throttled(await gateway.login(account.username, SECRET), at_most=60)
        assert_throttled(await connect().login(account.username, SECRET), at_most=60)

    async def test_unknown_usernames_lock_like_real_ones(self, connect):
        # Otherwise a 429 would tell which usernames exist.
        gateway, username = connect(), f"nobody-{uuid.uuid4().hex[:8]}"
        for _ in range(3):
            assert_wrong_secret(await gateway.login(username, "wrong password"))
        assert_throttled(await gateway.login(username, "wrong password"), at_most=60)

    async def test_success_forgets_the_failures(self, connect, make_account):
        account, gateway = await make_account(), connect()
        for _ in range(2):
            assert_wrong_secret(await gateway.login(account.username, "wrong password"))
        assert (await gateway.login(account.username, SECRET)).status_code == 200
        # Counted on from 2, the next attempt would be refused; counted from 0, three pass.
        for _ in range(2):
            assert_wrong_secret(await gateway.login(account.username, "wrong password"))
        assert (await gateway.login(account.username, SECRET)).status_code == 200

    async def test_concurrent_guesses_do_not_overshoot_the_limit(self, connect, make_account):
        account, gateway = await make_account(), connect()
        responses = await asyncio.gather(
            *(gateway.login(account.username, "wrong password") for _ in range(8))
        )
        outcomes = sorted((r.status_code, r.json()["type"]) for r in responses)
        assert (
            outcomes
            == [(400, "/problems/oauth-invalid-grant")] * 3 + [(429, "/problems/too-many-login-attempts")] * 5
        )

    async def test_client_credentials_are_throttled_too(self, connect, make_account):
        account, gateway = await make_account(AccountKind.SYSTEM, roles=("system",)), connect()
        for _ in range(3):
            response = await gateway.http.post(
                TOKEN, data={"grant_type": "client_credentials"}, auth=(account.username, "wrong secret")
            )
            assert response.json()["type"] == "/problems/oauth-invalid-client"
        response = await gateway.http.post(
            TOKEN, data={"grant_type": "client_credentials"}, auth=(account.username, SECRET)
        )
        assert_throttled(response, at_most=60)

    async def test_a_bad_request_is_not_counted(self, connect, make_account):
        account, gateway = await make_account(), connect()
        for _ in range(5):
            response = await gateway.http.post(
                TOKEN, data={"grant_type": "password", "username": account.username}
            )
            assert response.json()["type"] == "/problems/oauth-invalid-request"
        assert (await gateway.login(account.username, SECRET)).status_code == 200


class TestAddressLimit:
    async def test_one_address_cannot_try_many_accounts(self, connect, make_account):
        gateway, account = connect(), await make_account()
        for _ in range(6):
            assert_wrong_secret(await gateway.login(f"victim-{uuid.uuid4().hex[:8]}", "spray-password"))
        assert_throttled(await gateway.login(f"victim-{uuid.uuid4().hex[:8]}", "spray"), at_most=60)
        # The address is locked, even for a right password; the account is not.
        assert_throttled(await gateway.login(account.username, SECRET), at_most=60)
        assert (await connect().login(account.username, SECRET)).status_code == 200

    async def test_success_takes_the_accounts_failures_off_its_address(self, connect, make_account):
        gateway, account = connect(), await make_account()
        for _ in range(2):
            assert_wrong_secret(await gateway.login(account.username, "typo"))
        assert (await gateway.login(account.username, SECRET)).status_code == 200
        # Had the typos stayed on the address, it would lock three attempts sooner.
        for _ in range(6):
            assert_wrong_secret(await gateway.login(f"other-{uuid.uuid4().hex[:8]}", "guess"))
        assert_throttled(await gateway.login(f"other-{uuid.uuid4().hex[:8]}", "guess"), at_most=60)

    async def test_forwarded_for_sent_by_the_client_is_not_trusted(self, connect):
        address = new_address()
        gateway = connect(address=address)
        for _ in range(6):
            assert_wrong_secret(await gateway.login(f"x-{uuid.uuid4().hex[:8]}", "guess"))
        response = await gateway.login(
            f"x-{uuid.uuid4().hex[:8]}", "guess", **{"X-Forwarded-For": new_address(), "X-Real-IP": "1.2.3.4"}
        )
        assert_throttled(response, at_most=60)

    def test_ipv6_addresses_count_by_their_64_prefix(self):
        assert address_bucket("2001:db8:1:2::1") == address_bucket("2001:db8:1:2:ffff::9")
        assert address_bucket("2001:db8:1:2::1") != address_bucket("2001:db8:1:3::1")
        assert address_bucket("::ffff:10.0.0.7") == "10.0.0.7"
        assert address_bucket("10.0.0.7") != address_bucket("10.0.0.8")


class TestSharedAndTimed:
    async def test_a_lock_holds_on_every_gateway_replica(self, connect, make_account):
        account, address = await make_account(), new_address()
        first, second = connect("strict", address), connect("replica", address)
        for _ in range(3):
            assert_wrong_secret(await first.login(account.username, "wrong password"))
        assert_throttled(await second.login(account.username, SECRET), at_most=60)

    async def test_the_lock_expires(self, connect, make_account):
        account, gateway = await make_account(), connect("fast")
        for _ in range(2):
            assert_wrong_secret(await gateway.login(account.username, "wrong password"))
        retry_after = assert_throttled(await gateway.login(account.username, SECRET), at_most=3)
        await asyncio.sleep(retry_after + 0.2)
        assert (await gateway.login(account.username, SECRET)).status_code == 200

    async def test_attempts_slow_down_before_the_lock(self, connect, make_account):
        account, gateway = await make_account(), connect("slowing")
        for _ in range(2):
            assert_wrong_secret(await gateway.login(account.username, "wrong password"))
        retry_after = assert_throttled(await gateway.login(account.username, SECRET), at_most=3)
        await asyncio.sleep(retry_after + 0.2)
        assert_wrong_secret(await gateway.login(account.username, "wrong password"))
        # The wait doubles with each further failure: 6 s from the start of that attempt.
        assert assert_throttled(await gateway.login(account.username, SECRET), at_most=6) >= 4


class TestRedisDown:
    async def test_logins_go_on_unthrottled_with_a_warning(self, gateways, connect, make_account, caplog):
        state = gateways["strict"].api.state
        working = state.login_throttle
        unreachable = LoginThrottle(
            Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5), state.settings
        )
        state.login_throttle = unreachable
        account, gateway = await make_account(), connect("strict")
        try:
            for _ in range(4):  # one more than the limit
                assert_wrong_secret(await gateway.login(account.username, "wrong password"))
            assert (await gateway.login(account.username, SECRET)).status_code == 200
        finally:
            state.login_throttle = working
            await unreachable.aclose()
        warnings = [r for r in caplog.records if r.name == "gateway.throttle"]
        assert warnings and all(r.levelno == logging.WARNING for r in warnings)


class TestDocumented:
    def test_token_endpoint_declares_429(self, gateways):
        responses = gateways["strict"].api.openapi()["paths"][TOKEN]["post"]["responses"]
        assert "Retry-After" in responses["429"]["headers"]
        assert "application/problem+json" in responses["429"]["content"]
