"""The seed's demo logins: in development the printed password is the one that works; each
pilot unit's demo enforcement officers get theirs."""

from __future__ import annotations

import os

import pytest

from gateway.accounts import find_by_username
from gateway.models import Account
from gateway.seed import DemoHashes, _reset_demo_password, seed
from services.common.settings import Environment
from services.registry.demo import seed_demo_officers
from services.registry.models import AUDIT as REGISTRY_AUDIT
from services.registry.network.models import Bureau
from tests.conftest import auth
from tests.factories import pilot_unit

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


async def test_demo_officers_get_their_logins_once(gateway, registry, token_for):
    """Each pilot unit's demo enforcement officers (registry demo seed) get a login with the
    role of their post; a second seed makes none."""
    unit = await pilot_unit(registry, token_for(), "quality_supervision", "330000")
    async with registry.app.state.sessionmaker() as session:
        await seed_demo_officers(session, REGISTRY_AUDIT, [await session.get(Bureau, unit["id"])])
        await session.commit()
    settings = gateway.app.state.settings
    password = os.environ["DEMO_ADMIN_PASSWORD"]
    await seed(settings, password)
    again = await seed(settings, password)
    assert again["demo_logins_created"] == []

    officers = {
        o["name"]: o
        for o in (
            await registry.get(
                "/api/v1/registry/officers", params={"bureau_id": unit["id"]}, headers=auth(token_for())
            )
        ).json()["items"]
    }
    expected = {
        "officer1-330000-qs": ("演示执法员甲", ["enforcement"]),
        "officer2-330000-qs": ("演示执法员乙", ["enforcement"]),
        "head-330000-qs": ("演示执法负责人", ["head"]),
        "legal-330000-qs": ("演示法制审核员", ["legal"]),
    }
    async with gateway.app.state.sessionmaker() as session:
        for username, (name, roles) in expected.items():
            account = await find_by_username(session, username)
            assert (account.officer_id, account.roles, account.bureau_id) == (
                officers[name]["id"],
                roles,
                unit["id"],
            )
    assert await _login(gateway, "head-330000-qs", password) == "200 token"
