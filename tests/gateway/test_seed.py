"""The seed's demo administrators: in development the printed password is the one that works."""

from __future__ import annotations

import pytest

from gateway.models import Account
from gateway.seed import DemoHashes, _reset_demo_password
from services.common.settings import Environment

pytestmark = pytest.mark.asyncio(loop_scope="session")

FIRST = "first demo password"
SECOND = "second demo password"


REFUSED = "400 /problems/oauth-invalid-grant"


async def _login(gateway, username: str, password: str) -> str:
    """ "200 token" when the password works; the status and problem type of the refusal otherwise."""
    response = await gateway.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    body = response.json()
    return f"{response.status_code} {'token' if 'access_token' in body else body.get('type')}"


async def _reset(gateway, account: Account, environment: Environment, password: str) -> bool:
    settings = gateway.app.state.settings.model_copy(update={"environment": environment})
    async with gateway.app.state.sessionmaker() as session:
        stored = await session.get(Account, account.id)
        changed = await _reset_demo_password(session, settings, stored, DemoHashes(password))
        await session.commit()
    return changed


class TestDemoPassword:
    async def test_development_makes_the_new_password_work(self, gateway, make_account):
        account = await make_account(secret=FIRST, roles=("admin",))
        assert await _login(gateway, account.username, FIRST) == "200 token"

        assert await _reset(gateway, account, Environment.DEVELOPMENT, SECOND) is True

        assert await _login(gateway, account.username, SECOND) == "200 token"
        assert await _login(gateway, account.username, FIRST) == REFUSED

    async def test_the_same_password_is_left_alone(self, gateway, make_account):
        account = await make_account(secret=FIRST, roles=("admin",))
        assert await _reset(gateway, account, Environment.DEVELOPMENT, FIRST) is False
        async with gateway.app.state.sessionmaker() as session:
            assert (await session.get(Account, account.id)).version == account.version

    async def test_outside_development_an_existing_password_is_never_touched(self, gateway, make_account):
        account = await make_account(secret=FIRST, roles=("admin",))
        assert await _reset(gateway, account, Environment.PRODUCTION, SECOND) is False
        assert await _login(gateway, account.username, FIRST) == "200 token"
        assert await _login(gateway, account.username, SECOND) == REFUSED
