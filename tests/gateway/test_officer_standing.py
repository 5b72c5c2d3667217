"""An officer's login stands on the registry: checked at every login, brought in line when
the registry reports a change, and its tokens end at the gateway when its account changes."""

from __future__ import annotations

import asyncio

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.models import Account, AccountKind
from services.common.auth import PrincipalKind
from tests.conftest import _app_client, assert_problem, auth
from tools.platform import free_port

TOKEN = "/api/v1/auth/token"
SECRET = "correct horse battery"
PROVINCE = {"id": 8, "path": "1.8."}
OTHER_PROVINCE = {"id": 9, "path": "1.9."}


async def password_login(client, account):
    return await client.post(
        TOKEN, data={"grant_type": "password", "username": account.username, "password": SECRET}
    )


async def set_officer(registry, token_for, officer_id: int, changes: dict) -> dict:
    url = f"/api/v1/registry/officers/{officer_id}"
    read = await registry.get(url, headers=auth(token_for()))
    response = await registry.patch(
        url, json=changes, headers={**auth(token_for()), "If-Match": read.headers["etag"]}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def stored(gateway, account_id) -> Account:
    async with gateway.app.state.sessionmaker() as session:
        return await session.get(Account, account_id)


def service_token(token_for) -> str:
    return token_for(roles=("service",), kind=PrincipalKind.SERVICE)


class TestLogin:
    async def test_an_officer_inactive_in_the_registry_gets_no_token(
        self, gateway, registry, make_account, token_for
    ):
        account = await make_account(bureau=PROVINCE)
        assert (await password_login(gateway, account)).status_code == 200
        await set_officer(registry, token_for, account.officer_id, {"active": False})
        response = await password_login(gateway, account)
        assert response.status_code == 400
        assert response.json()["type"] == "/problems/oauth-invalid-grant"
        assert "not active in the registry" in response.json()["detail"]

    async def test_a_login_with_no_registry_officer_gets_no_token(self, gateway, make_account):
        account = await make_account(bureau={"id": 424242, "path": "1.424242."})  # no such bureau: no officer
        assert account.officer_id is None
        response = await password_login(gateway, account)
        assert response.status_code == 400
        assert response.json()["type"] == "/problems/oauth-invalid-grant"

    async def test_login_follows_a_move_the_gateway_was_not_told_of(
        self, gateway, registry, make_account, token_for
    ):
        account = await make_account(bureau=PROVINCE, roles=("enforcement", "admin"))
        # Moved straight in the registry's database-backed API; the in-process registry
        # cannot reach this gateway, so only the login check sees it.
        await set_officer(registry, token_for, account.officer_id, {"bureau_id": OTHER_PROVINCE["id"]})
        response = await password_login(gateway, account)
        assert response.status_code == 200, response.text
        me = (await registry.get("/api/v1/registry/me", headers=auth(response.json()["access_token"]))).json()
        assert (me["bureau_id"], me["bureau_path"], me["roles"]) == (
            OTHER_PROVINCE["id"],
            OTHER_PROVINCE["path"],
            ["enforcement"],
        )
        row = await stored(gateway, account.id)
        assert row.version == account.version + 1

    async def test_no_registry_no_officer_login(self, make_account):
        """The registry's word cannot be had: the login is refused as unavailable, not let through."""
        account = await make_account(bureau=PROVINCE)
        settings = GatewaySettings(registry_url=f"http://127.0.0.1:{free_port()}")
        async for client in _app_client(create_app(settings), "http://gateway"):
            response = await password_login(client, account)
            assert response.status_code == 503
            assert response.json()["type"] == "/problems/service-unavailable"


class TestRegistryNotice:
    async def test_a_deactivation_notice_ends_the_officers_tokens_at_once(
        self, gateway, registry, make_account, token_for
    ):
        account = await make_account(bureau=PROVINCE)
        token = (await password_login(gateway, account)).json()["access_token"]
        assert (await gateway.get("/api/v1/registry/me", headers=auth(token))).status_code == 200
        await set_officer(registry, token_for, account.officer_id, {"active": False})
        notice = await gateway.post(
            "/api/v1/auth/officer-changes",
            json={"officer_id": account.officer_id},
            headers=auth(service_token(token_for)),
        )
        assert notice.status_code == 204
        refused = await gateway.get("/api/v1/registry/me", headers=auth(token))
        assert refused.status_code == 401
        assert refused.json()["type"] == "/problems/unauthorized"

    async def test_a_notice_carries_no_state_a_forger_could_set(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        notice = await gateway.post(
            "/api/v1/auth/officer-changes",
            json={"officer_id": account.officer_id, "bureau_path": "1.", "active": True},
            headers=auth(service_token(token_for)),
        )
        assert notice.status_code == 422
        assert notice.json()["type"] == "/problems/validation-error"
        unchanged = await gateway.post(
            "/api/v1/auth/officer-changes",
            json={"officer_id": account.officer_id},
            headers=auth(service_token(token_for)),
        )
        assert unchanged.status_code == 204
        row = await stored(gateway, account.id)
        assert (row.bureau_path, row.version) == (PROVINCE["path"], account.version)

    async def test_a_notice_for_an_officer_without_a_login_changes_nothing(self, gateway, token_for):
        notice = await gateway.post(
            "/api/v1/auth/officer-changes",
            json={"officer_id": 987654321},
            headers=auth(service_token(token_for)),
        )
        assert notice.status_code == 204

    async def test_only_services_send_notices(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        for roles in (("admin",), ("system",)):
            notice = await gateway.post(
                "/api/v1/auth/officer-changes",
                json={"officer_id": account.officer_id},
                headers=auth(token_for(roles=roles)),
            )
            assert notice.status_code == 403
            assert notice.json()["type"] == "/problems/role-required"


class TestTokensEndWhenTheAccountChanges:
    async def test_a_token_from_before_a_role_change_is_refused_here(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE, roles=("enforcement", "admin"))
        token = (await password_login(gateway, account)).json()["access_token"]
        url = f"/api/v1/auth/accounts/{account.id}"
        etag = (await gateway.get(url, headers=auth(token_for()))).headers["etag"]
        changed = await gateway.patch(
            url, json={"roles": ["enforcement"]}, headers={**auth(token_for()), "If-Match": etag}
        )
        assert changed.status_code == 200
        refused = await gateway.get("/api/v1/registry/me", headers=auth(token))
        problem = assert_problem(refused, 401, "/problems/unauthorized")
        assert "changed after this token was issued" in problem["detail"]
        fresh = (await password_login(gateway, account)).json()["access_token"]
        me = await gateway.get("/api/v1/registry/me", headers=auth(fresh))
        assert me.status_code == 200 and me.json()["roles"] == ["enforcement"]

    async def test_another_replica_learns_the_version_from_the_database(
        self, gateway, make_account, token_for
    ):
        from gateway.app import Revocations

        account = await make_account(AccountKind.SYSTEM, roles=("system",))
        async with gateway.app.state.sessionmaker() as session:
            row = await session.get(Account, account.id)
            row.version += 3
            await session.commit()
        replica = Revocations()
        await replica.refresh(gateway.app.state.sessionmaker, 900)
        assert replica.versions[str(account.id)] == account.version + 3


async def test_concurrent_refreshes_of_the_revocations_keep_every_note(gateway, make_account):
    """The watcher's refresh and an on-demand one may overlap: neither loses the other's notes."""
    from gateway.app import Revocations

    revocations = Revocations()
    account = await make_account(active=False)
    maker = gateway.app.state.sessionmaker
    await asyncio.gather(*(revocations.refresh(maker, 900) for _ in range(5)))
    assert str(account.id) in revocations.disabled
