"""Account administration at the gateway, and what disabling an account does to its tokens."""

from __future__ import annotations

import asyncio

from gateway.app import Revocations
from gateway.models import AccountKind
from tests.conftest import auth

ACCOUNTS = "/api/v1/auth/accounts"
PROVINCE = {"id": 8, "path": "1.8."}  # a provincial unit
OTHER_PROVINCE = {"id": 9, "path": "1.9."}


class TestAdministration:
    async def test_admin_lists_only_its_subtree(self, gateway, make_account, token_for):
        inside = await make_account(bureau={"id": 900, "path": "1.8.900."})
        outside = await make_account(bureau=OTHER_PROVINCE)
        names, cursor = [], None
        while True:
            params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
            page = (await gateway.get(ACCOUNTS, params=params, headers=auth(token_for(PROVINCE)))).json()
            names += [a["username"] for a in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert inside.username in names and outside.username not in names

    async def test_out_of_scope_account_is_not_found(self, gateway, make_account, token_for):
        outside = await make_account(bureau=OTHER_PROVINCE)
        response = await gateway.get(f"{ACCOUNTS}/{outside.id}", headers=auth(token_for(PROVINCE)))
        assert response.status_code == 404

    async def test_non_admin_is_refused(self, gateway, token_for):
        response = await gateway.get(ACCOUNTS, headers=auth(token_for(PROVINCE, roles=("legal",))))
        assert response.status_code == 403

    async def test_change_roles_with_if_match(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        url, headers = f"{ACCOUNTS}/{account.id}", auth(token_for(PROVINCE))
        etag = (await gateway.get(url, headers=headers)).headers["etag"]
        response = await gateway.patch(
            url, json={"roles": ["enforcement", "head"]}, headers={**headers, "If-Match": etag}
        )
        assert response.status_code == 200, response.text
        assert response.json()["roles"] == ["enforcement", "head"]
        stale = await gateway.patch(
            url, json={"roles": ["enforcement"]}, headers={**headers, "If-Match": etag}
        )
        assert stale.status_code == 412

    async def test_roles_an_officer_cannot_hold(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"roles": ["service"]},
            headers={**auth(token_for(PROVINCE)), "If-Match": "*"},
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/role-not-grantable"

    async def test_unknown_role_is_malformed(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"roles": ["emperor"]},
            headers={**auth(token_for(PROVINCE)), "If-Match": "*"},
        )
        assert response.status_code == 422

    async def test_admin_cannot_disable_itself(self, gateway, make_account, token_for):
        admin = await make_account(bureau=PROVINCE, roles=("admin",))
        token = token_for(PROVINCE, account_id=str(admin.id))
        response = await gateway.patch(
            f"{ACCOUNTS}/{admin.id}", json={"active": False}, headers={**auth(token), "If-Match": "*"}
        )
        assert response.status_code == 409

    async def test_short_password_is_refused(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"password": "short"},
            headers={**auth(token_for(PROVINCE)), "If-Match": "*"},
        )
        assert response.status_code == 422


class TestDisabling:
    async def test_disabled_accounts_tokens_stop_at_the_gateway_at_once(
        self, gateway, make_account, token_for
    ):
        account = await make_account(bureau=PROVINCE)
        login = await gateway.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "password",
                "username": account.username,
                "password": "correct horse battery",
            },
        )
        token = login.json()["access_token"]
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"active": False},
            headers={**auth(token_for(PROVINCE)), "If-Match": "*"},
        )
        assert response.status_code == 200 and response.json()["active"] is False
        refused = await gateway.get("/api/v1/registry/me", headers=auth(token))
        assert refused.status_code == 401
        assert "disabled" in refused.json()["detail"]
        again = await gateway.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "password",
                "username": account.username,
                "password": "correct horse battery",
            },
        )
        assert again.status_code == 400

    async def test_other_gateway_replicas_learn_of_it_from_the_database(self, gateway, make_account):
        """A replica that did not handle the PATCH picks the disabled account up on its next refresh."""
        account = await make_account(AccountKind.SYSTEM, roles=("system",), active=False)
        replica = Revocations()
        watcher = asyncio.create_task(replica.watch(gateway.app.state.sessionmaker, 0.05))
        try:
            for _ in range(100):
                if str(account.id) in replica.disabled:
                    break
                await asyncio.sleep(0.05)
        finally:
            watcher.cancel()
        assert str(account.id) in replica.disabled


class TestSeparationOfDuties:
    async def test_a_body_role_goes_only_to_an_officer_of_that_body(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)  # an officer of the enforcement body
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"roles": ["enforcement", "legal"]},
            headers={**auth(token_for(PROVINCE)), "If-Match": "*"},
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/role-body-mismatch"

    async def test_head_and_admin_are_not_bound_to_a_body(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"roles": ["enforcement", "head", "admin"]},
            headers={**auth(token_for(PROVINCE)), "If-Match": "*"},
        )
        assert response.status_code == 200


class TestRevocationRefresh:
    async def test_a_disable_noted_during_a_refresh_survives_it(self, gateway):
        """The refresh's query may have read the account before the disabling commit."""
        replica = Revocations()
        maker = gateway.app.state.sessionmaker

        class NoteWhileQuerying:
            def __call__(self):
                replica.note("account-disabled-meanwhile", active=False)
                return maker()

        await replica.refresh(NoteWhileQuerying())
        assert "account-disabled-meanwhile" in replica.disabled
