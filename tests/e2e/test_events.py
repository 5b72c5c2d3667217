"""Events between real processes: the registry's worker relays an officer change, the
gateway's worker applies it, and the gateway refuses the officer's login and tokens."""

from __future__ import annotations

import asyncio
import os

import httpx

from tests.conftest import auth
from tests.e2e.test_platform import login
from tests.factories import unique

PASSWORD = "a long enough password"


async def eventually(check, timeout: float = 30.0, interval: float = 0.25):
    """The first truthy result of ``check()``, polled until ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(interval)


async def officer_with_login(
    client: httpx.AsyncClient, admin: dict, bureau_id: int
) -> tuple[dict, dict, str]:
    """A new enforcement officer of the bureau, its account, and a live token of it."""
    officer = await client.post(
        "/api/v1/registry/officers",
        headers=admin,
        json={
            "bureau_id": bureau_id,
            "body": "enforcement",
            "name": "赵六",
            "credential_number": unique("ZJ"),
        },
    )
    assert officer.status_code == 201, officer.text
    username = unique("zhao").lower()
    account = await client.post(
        "/api/v1/auth/accounts/officers",
        headers=admin,
        json={
            "username": username,
            "password": PASSWORD,
            "officer_id": officer.json()["id"],
            "roles": ["enforcement"],
        },
    )
    assert account.status_code == 201, account.text
    token = (await login(client, username, PASSWORD)).json()["access_token"]
    assert (await client.get("/api/v1/enforcement/me", headers=auth(token))).status_code == 200
    return officer.json(), {**account.json(), "username": username}, token


async def change_officer(client: httpx.AsyncClient, admin: dict, officer: dict, changes: dict) -> dict:
    response = await client.patch(
        f"/api/v1/registry/officers/{officer['id']}",
        headers={**admin, "If-Match": f'"{officer["version"]}"'},
        json=changes,
    )
    assert response.status_code == 200, response.text
    return response.json()


class TestOfficerChangesReachTheGateway:
    async def test_a_deactivated_officer_loses_login_and_tokens_through_the_event(
        self, through_gateway, national_admin_token
    ):
        admin = auth(
            (await login(through_gateway, "admin-330000-qs", os.environ["DEMO_ADMIN_PASSWORD"])).json()[
                "access_token"
            ]
        )
        province = (await through_gateway.get("/api/v1/registry/me", headers=admin)).json()
        officer, account, token = await officer_with_login(through_gateway, admin, province["bureau_id"])

        changed = await change_officer(through_gateway, admin, officer, {"active": False})

        async def refused():
            response = await through_gateway.get("/api/v1/registry/me", headers=auth(token))
            return response if response.status_code == 401 else None

        # Within the gateway's revocation refresh: the token's account changed after it was issued.
        response = await eventually(refused)
        assert (
            response.json()["detail"] == "The account changed after this token was issued; obtain a new one."
        )
        again = await login(through_gateway, account["username"], PASSWORD)
        assert again.status_code == 400
        assert again.json()["detail"] == "The officer is not active in the registry."

        events = {"type": "registry.officer.changed", "aggregate_id": str(officer["id"])}

        async def delivered():
            listed = await through_gateway.get("/api/v1/registry/events", params=events, headers=admin)
            items = listed.json()["items"]
            return items if items and items[0]["state"] == "delivered" else None

        [event] = await eventually(delivered)
        assert (event["aggregate_version"], event["payload"]["active"], event["attempts"]) == (
            changed["version"],
            False,
            1,
        )
        inbox = await through_gateway.get(
            "/api/v1/auth/events/inbox", params=events, headers=auth(national_admin_token)
        )
        assert [(i["event_id"], i["outcome"]) for i in inbox.json()["items"]] == [(event["id"], "applied")]

    async def test_a_moved_officers_login_follows_before_its_next_login(self, through_gateway):
        admin = auth(
            (await login(through_gateway, "admin-330000-qs", os.environ["DEMO_ADMIN_PASSWORD"])).json()[
                "access_token"
            ]
        )
        province = (await through_gateway.get("/api/v1/registry/me", headers=admin)).json()
        city = await through_gateway.post(
            "/api/v1/registry/bureaus",
            headers=admin,
            json={
                "parent_id": province["bureau_id"],
                "name": unique("湖州市局"),
                "level": "city",
                "division_code": "330500",
            },
        )
        assert city.status_code == 201, city.text
        officer, account, _ = await officer_with_login(through_gateway, admin, province["bureau_id"])

        await change_officer(through_gateway, admin, officer, {"bureau_id": city.json()["id"]})

        async def followed():
            read = await through_gateway.get(f"/api/v1/auth/accounts/{account['id']}", headers=admin)
            return read.json() if read.json()["bureau_path"] == city.json()["path"] else None

        moved = await eventually(followed)
        assert (moved["bureau_id"], moved["version"]) == (city.json()["id"], account["version"] + 1)
