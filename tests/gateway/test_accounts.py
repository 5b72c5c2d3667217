"""Account administration at the gateway, and what disabling an account does to its tokens."""

from __future__ import annotations

import asyncio

import pytest

from gateway.app import Revocations
from gateway.models import AccountKind
from tests.conftest import assert_problem, auth

ACCOUNTS = "/api/v1/auth/accounts"
PROVINCE = {"id": 8, "path": "1.8."}  # a provincial unit
OTHER_PROVINCE = {"id": 9, "path": "1.9."}
NATIONAL = {"id": 1, "path": "1."}


async def patch_account(gateway, account, token: str, changes: dict):
    """PATCH with the ETag just read, as a careful client does."""
    url = f"{ACCOUNTS}/{account.id}"
    read = await gateway.get(url, headers=auth(token))
    assert read.status_code == 200, read.text
    return await gateway.patch(url, json=changes, headers={**auth(token), "If-Match": read.headers["etag"]})


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
        assert_problem(response, 404, "/problems/not-found")

    async def test_non_admin_is_refused(self, gateway, token_for):
        response = await gateway.get(ACCOUNTS, headers=auth(token_for(PROVINCE, roles=("legal",))))
        assert_problem(response, 403, "/problems/role-required")

    async def test_change_roles_with_if_match(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        url, headers = f"{ACCOUNTS}/{account.id}", auth(token_for(NATIONAL))
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
        assert stale.json()["type"] == "/problems/precondition-failed"

    async def test_if_match_star_does_not_skip_the_version_check(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"display_name": "x"},
            headers={**auth(token_for(PROVINCE)), "If-Match": "*"},
        )
        assert response.status_code == 428
        assert response.json()["type"] == "/problems/precondition-required"
        read = await gateway.get(f"{ACCOUNTS}/{account.id}", headers=auth(token_for(PROVINCE)))
        assert read.json()["display_name"] == "" and read.json()["version"] == account.version

    @pytest.mark.parametrize("value", [0, 1, "false", "no"])
    async def test_active_is_a_json_boolean(self, gateway, make_account, token_for, value):
        account = await make_account(bureau=PROVINCE)
        response = await patch_account(gateway, account, token_for(PROVINCE), {"active": value})
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"
        assert response.json()["errors"][0]["loc"].startswith("body")

    async def test_roles_an_officer_cannot_hold(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await patch_account(gateway, account, token_for(PROVINCE), {"roles": ["service"]})
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/role-not-grantable"

    async def test_unknown_role_is_malformed(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"roles": ["emperor"]},
            headers={**auth(token_for(PROVINCE)), "If-Match": "*"},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["body.roles.0"]

    async def test_admin_cannot_disable_itself(self, gateway, make_account, token_for):
        admin = await make_account(bureau=PROVINCE, roles=("admin",))
        token = token_for(PROVINCE, account_id=str(admin.id))
        response = await patch_account(gateway, admin, token, {"active": False})
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/self-disable"

    async def test_short_password_is_refused(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await gateway.patch(
            f"{ACCOUNTS}/{account.id}",
            json={"password": "short"},
            headers={**auth(token_for(PROVINCE)), "If-Match": "*"},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["body.password"]


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
        response = await patch_account(gateway, account, token_for(PROVINCE), {"active": False})
        assert response.status_code == 200 and response.json()["active"] is False
        refused = await gateway.get("/api/v1/registry/me", headers=auth(token))
        assert "disabled" in assert_problem(refused, 401, "/problems/unauthorized")["detail"]
        again = await gateway.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "password",
                "username": account.username,
                "password": "correct horse battery",
            },
        )
        assert assert_problem(again, 400, "/problems/oauth-invalid-grant")["error"] == "invalid_grant"

    async def test_other_gateway_replicas_learn_of_it_from_the_database(self, gateway, make_account):
        """A replica that did not handle the PATCH picks the disabled account up on its next refresh."""
        account = await make_account(AccountKind.SYSTEM, roles=("system",), active=False)
        replica = Revocations()
        watcher = asyncio.create_task(replica.watch(gateway.app.state.sessionmaker, 0.05, 900))
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
        response = await patch_account(
            gateway, account, token_for(PROVINCE), {"roles": ["enforcement", "legal"]}
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/role-body-mismatch"

    async def test_head_is_not_bound_to_a_body(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await patch_account(
            gateway, account, token_for(NATIONAL), {"roles": ["enforcement", "head"]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["roles"] == ["enforcement", "head"]

    @pytest.mark.parametrize(
        ("roles", "body"), [(["head", "admin"], "enforcement"), (["head", "legal"], "legal")]
    )
    async def test_the_head_holds_no_role_that_checks_the_head(
        self, gateway, make_account, token_for, roles, body
    ):
        # An officer of the body whose role is asked for, so the body rule does not answer first.
        account = await make_account(bureau=PROVINCE, body=body, roles=(body,))
        response = await patch_account(gateway, account, token_for(NATIONAL), {"roles": roles})
        assert_problem(response, 409, "/problems/roles-incompatible")
        read = await gateway.get(f"{ACCOUNTS}/{account.id}", headers=auth(token_for(NATIONAL)))
        assert read.json()["roles"] == [body]

    async def test_head_and_admin_together_are_refused(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await patch_account(gateway, account, token_for(NATIONAL), {"roles": ["admin", "head"]})
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/roles-incompatible"

    async def test_an_administrator_cannot_make_itself_head(self, gateway, make_account, token_for):
        admin = await make_account(bureau=PROVINCE, roles=("admin",))
        token = token_for(PROVINCE, account_id=str(admin.id))
        for roles in (["admin", "head"], ["head"], ["admin", "enforcement"]):
            response = await patch_account(gateway, admin, token, {"roles": roles})
            assert response.status_code == 403, roles
            assert response.json()["type"] == "/problems/self-grant"
        read = await gateway.get(f"{ACCOUNTS}/{admin.id}", headers=auth(token))
        assert read.json()["roles"] == ["admin"] and read.json()["version"] == admin.version

    async def test_a_bureau_head_is_appointed_from_above(self, gateway, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        response = await patch_account(gateway, account, token_for(PROVINCE), {"roles": ["head"]})
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/head-granted-from-above"
        read = await gateway.get(f"{ACCOUNTS}/{account.id}", headers=auth(token_for(PROVINCE)))
        assert read.json()["roles"] == ["enforcement"]


class TestRevocationRefresh:
    async def test_a_disable_noted_during_a_refresh_survives_it(self, gateway):
        """The refresh's query may have read the account before the disabling commit."""
        replica = Revocations()
        maker = gateway.app.state.sessionmaker

        class NoteWhileQuerying:
            def __call__(self):
                replica.note("account-disabled-meanwhile", active=False)
                return maker()

        await replica.refresh(NoteWhileQuerying(), 900)
        assert "account-disabled-meanwhile" in replica.disabled
