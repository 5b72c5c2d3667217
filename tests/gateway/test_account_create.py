"""Creating officer logins and system clients: the registry, read with the administrator's own
token, decides which officers and bureaus exist within scope.

The gateway here talks to the run's registry app on a socket of its own; the registry's own
failures (no answer, not reachable, an unexpected status) come from real servers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import select as select_model

from gateway import accounts, passwords
from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.models import Account, AuditEntry
from services.common.client import ServiceClient
from services.common.context import reset_request_id, set_request_id
from services.common.problems import GatewayTimeout, NotFound, ServiceUnavailable, UpstreamProblem
from tests.conftest import _app_client, auth
from tests.factories import create_officer, pilot_unit
from tests.servers import silent_server
from tools.platform import free_port

OFFICERS = "/api/v1/auth/accounts/officers"
SYSTEMS = "/api/v1/auth/accounts/systems"
TOKEN = "/api/v1/auth/token"
PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
async def admin_gateway(registry_url) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, reading the registry app of this run on its socket."""
    app = create_app(GatewaySettings(registry_url=registry_url))
    async for client in _app_client(app, "http://gateway", raise_app_exceptions=False):
        yield client


@pytest.fixture(scope="module")
async def units(registry, token_for) -> dict:
    """Two provincial units, each with an enforcement officer; a deactivated officer in the first."""
    national = token_for()
    zj = await pilot_unit(registry, national, "quality_supervision", "330000")
    sd = await pilot_unit(registry, national, "quality_supervision", "370000")
    inactive = await create_officer(registry, national, zj)
    response = await registry.patch(
        f"/api/v1/registry/officers/{inactive['id']}",
        json={"active": False},
        headers={**auth(national), "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text
    return {"zj": zj, "sd": sd, "inactive": inactive}


@pytest.fixture
async def officer(registry, token_for, units) -> dict:
    """A fresh enforcement officer of the first unit (one login per officer)."""
    return await create_officer(registry, token_for(), units["zj"])


def problem_type(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()["type"]


def username() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


async def stored(client: httpx.AsyncClient, name: str) -> Account | None:
    async with client.app.state.sessionmaker() as session:
        return (await session.exec(select_model(Account).where(Account.username == name))).first()


async def audit_entries(client: httpx.AsyncClient, account_id) -> list:
    async with client.app.state.sessionmaker() as session:
        query = select(AuditEntry).where(AuditEntry.c.entity_id == str(account_id))
        return list((await session.exec(query)).all())


class TestOfficerAccount:
    async def test_admin_creates_the_login_of_an_officer_in_scope(
        self, admin_gateway, token_for, units, officer
    ):
        name = username()
        response = await admin_gateway.post(
            OFFICERS,
            json={
                "username": name,
                "password": PASSWORD,
                "officer_id": officer["id"],
                "roles": ["admin", "enforcement", "admin"],
            },
            headers=auth(token_for(units["zj"])),
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert response.headers["location"] == f"/api/v1/auth/accounts/{body['id']}"
        assert response.headers["etag"] == '"1"'
        assert {k: body[k] for k in ("username", "kind", "officer_id", "bureau_id", "bureau_path")} == {
            "username": name,
            "kind": "officer",
            "officer_id": officer["id"],
            "bureau_id": units["zj"]["id"],
            "bureau_path": units["zj"]["path"],
        }
        assert (body["roles"], body["body"], body["active"]) == (
            ["admin", "enforcement"],
            "enforcement",
            True,
        )
        assert body["display_name"] == officer["name"]
        account = await stored(admin_gateway, name)
        assert await passwords.verify_secret(account.secret_hash, PASSWORD)
        [entry] = await audit_entries(admin_gateway, account.id)
        assert (entry.action, entry.entity) == ("account.created", "account")
        assert "password" not in entry.data and entry.data["username"] == name
        login = await admin_gateway.post(
            TOKEN, data={"grant_type": "password", "username": name, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text

    async def test_a_display_name_of_its_own(self, admin_gateway, token_for, units, officer):
        response = await admin_gateway.post(
            OFFICERS,
            json={
                "username": username(),
                "password": PASSWORD,
                "officer_id": officer["id"],
                "roles": ["enforcement"],
                "display_name": "  王队长  ",
            },
            headers=auth(token_for(units["zj"])),
        )
        assert response.status_code == 201, response.text
        assert response.json()["display_name"] == "王队长"

    async def test_officer_out_of_scope_is_not_found(self, admin_gateway, token_for, units, officer):
        name = username()
        response = await admin_gateway.post(
            OFFICERS,
            json={
                "username": name,
                "password": PASSWORD,
                "officer_id": officer["id"],
                "roles": ["enforcement"],
            },
            headers=auth(token_for(units["sd"])),
        )
        assert problem_type(response, 404) == "/problems/not-found"
        assert await stored(admin_gateway, name) is None

    async def test_inactive_officer(self, admin_gateway, token_for, units):
        name = username()
        response = await admin_gateway.post(
            OFFICERS,
            json={
                "username": name,
                "password": PASSWORD,
                "officer_id": units["inactive"]["id"],
                "roles": ["enforcement"],
            },
            headers=auth(token_for(units["zj"])),
        )
        assert problem_type(response, 409) == "/problems/officer-inactive"
        assert await stored(admin_gateway, name) is None

    async def test_one_login_per_officer(self, admin_gateway, token_for, units, officer):
        payload = {"password": PASSWORD, "officer_id": officer["id"], "roles": ["enforcement"]}
        headers = auth(token_for(units["zj"]))
        first = await admin_gateway.post(OFFICERS, json={**payload, "username": username()}, headers=headers)
        assert first.status_code == 201, first.text
        second_name = username()
        second = await admin_gateway.post(
            OFFICERS, json={**payload, "username": second_name}, headers=headers
        )
        assert problem_type(second, 409) == "/problems/officer-has-account"
        assert await stored(admin_gateway, second_name) is None

    async def test_username_taken(self, admin_gateway, token_for, units, officer, make_account):
        taken = await make_account()
        response = await admin_gateway.post(
            OFFICERS,
            json={
                "username": taken.username,
                "password": PASSWORD,
                "officer_id": officer["id"],
                "roles": ["enforcement"],
            },
            headers=auth(token_for(units["zj"])),
        )
        assert problem_type(response, 409) == "/problems/username-taken"

    @pytest.mark.parametrize(
        ("roles", "rule"),
        [
            (["system"], "role-not-grantable"),
            (["enforcement", "service"], "role-not-grantable"),
            (["legal"], "role-body-mismatch"),
            (["supervision", "enforcement"], "role-body-mismatch"),
        ],
    )
    async def test_roles_the_officer_cannot_hold(self, admin_gateway, token_for, units, officer, roles, rule):
        name = username()
        response = await admin_gateway.post(
            OFFICERS,
            json={"username": name, "password": PASSWORD, "officer_id": officer["id"], "roles": roles},
            headers=auth(token_for(units["zj"])),
        )
        assert problem_type(response, 409) == f"/problems/{rule}"
        assert await stored(admin_gateway, name) is None

    async def test_non_admin_is_refused(self, admin_gateway, token_for, units, officer):
        name = username()
        response = await admin_gateway.post(
            OFFICERS,
            json={
                "username": name,
                "password": PASSWORD,
                "officer_id": officer["id"],
                "roles": ["enforcement"],
            },
            headers=auth(token_for(units["zj"], roles=("head", "enforcement"))),
        )
        assert problem_type(response, 403) == "/problems/role-required"
        assert await stored(admin_gateway, name) is None


class TestSystemAccount:
    async def test_admin_creates_a_client_for_a_bureau_in_scope(self, admin_gateway, token_for, units):
        client_id = username()
        response = await admin_gateway.post(
            SYSTEMS,
            json={"client_id": client_id, "bureau_id": units["zj"]["id"]},
            headers=auth(token_for(units["zj"])),
        )
        assert response.status_code == 201, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert response.headers["location"] == f"/api/v1/auth/accounts/{body['id']}"
        assert (body["username"], body["kind"], body["roles"]) == (client_id, "system", ["system"])
        assert (body["bureau_id"], body["bureau_path"]) == (units["zj"]["id"], units["zj"]["path"])
        assert body["display_name"] == units["zj"]["name"]
        assert body["officer_id"] is None and body["body"] is None
        secret = body["client_secret"]
        assert len(secret) >= 32
        [entry] = await audit_entries(admin_gateway, body["id"])
        assert entry.action == "account.created" and secret not in str(entry.data)
        token = await admin_gateway.post(
            TOKEN, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        )
        assert token.status_code == 200, token.text

    async def test_a_display_name_of_its_own(self, admin_gateway, token_for, units):
        response = await admin_gateway.post(
            SYSTEMS,
            json={"client_id": username(), "bureau_id": units["zj"]["id"], "display_name": "浙江省执法系统"},
            headers=auth(token_for(units["zj"])),
        )
        assert response.status_code == 201, response.text
        assert response.json()["display_name"] == "浙江省执法系统"

    async def test_bureau_out_of_scope_is_not_found(self, admin_gateway, token_for, units):
        client_id = username()
        response = await admin_gateway.post(
            SYSTEMS,
            json={"client_id": client_id, "bureau_id": units["sd"]["id"]},
            headers=auth(token_for(units["zj"])),
        )
        assert problem_type(response, 404) == "/problems/not-found"
        assert await stored(admin_gateway, client_id) is None

    async def test_client_id_taken(self, admin_gateway, token_for, units, make_account):
        taken = await make_account()
        response = await admin_gateway.post(
            SYSTEMS,
            json={"client_id": taken.username, "bureau_id": units["zj"]["id"]},
            headers=auth(token_for(units["zj"])),
        )
        assert problem_type(response, 409) == "/problems/username-taken"

    async def test_non_admin_is_refused(self, admin_gateway, token_for, units):
        client_id = username()
        response = await admin_gateway.post(
            SYSTEMS,
            json={"client_id": client_id, "bureau_id": units["zj"]["id"]},
            headers=auth(token_for(units["zj"], roles=("system",))),
        )
        assert problem_type(response, 403) == "/problems/role-required"
        assert await stored(admin_gateway, client_id) is None


async def capture_app(scope, receive, send):
    """Answers 200 with the path and headers it was called with."""
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    body = httpx.Response(200, json={"path": scope["path"], "headers": headers}).content
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


async def failing_app(scope, receive, send):
    """Answers a 500 problem, as a service with a bug would."""
    body = b'{"type": "/problems/internal-error", "title": "Internal error", "status": 500}'
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/problem+json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def registry_client(http: httpx.AsyncClient) -> ServiceClient:
    """The gateway's registry client over ``http``; these reads send the caller's token."""
    return ServiceClient(http=http, backoff_seconds=0.01)


def asgi_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")


class TestRegistryRead:
    """How the gateway reads the registry: as the caller, and what each failure becomes."""

    async def test_reads_with_the_callers_token_and_request_id(self):
        async with asgi_client(capture_app) as client:
            token = set_request_id("gateway-request-0001")
            try:
                seen = await accounts.registry_get(registry_client(client), "/bureaus/7", "Bearer abc")
            finally:
                reset_request_id(token)
        assert seen["path"] == "/api/v1/registry/bureaus/7"
        assert seen["headers"]["authorization"] == "Bearer abc"
        assert seen["headers"]["x-request-id"] == "gateway-request-0001"

    async def test_without_a_request_id_none_is_sent(self):
        async with asgi_client(capture_app) as client:
            seen = await accounts.registry_get(registry_client(client), "/bureaus/7", "Bearer abc")
        assert "x-request-id" not in seen["headers"]

    async def test_registry_that_does_not_answer_in_time(self):
        async with (
            silent_server() as url,
            httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(0.3)) as client,
        ):
            with pytest.raises(GatewayTimeout):
                await accounts.registry_get(registry_client(client), "/bureaus/7", "Bearer abc")

    async def test_registry_that_cannot_be_reached(self):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}") as client:
            with pytest.raises(ServiceUnavailable):
                await accounts.registry_get(registry_client(client), "/bureaus/7", "Bearer abc")

    async def test_a_registry_error_without_a_counterpart_is_an_upstream_problem(self):
        async with asgi_client(failing_app) as client:
            with pytest.raises(UpstreamProblem, match="answered 500") as caught:
                await accounts.registry_get(registry_client(client), "/bureaus/7", "Bearer abc")
        assert caught.value.status == 502
        assert caught.value.extra["upstream_type"] == "/problems/internal-error"

    async def test_not_found_in_the_registry(self, registry, token_for):
        async with asgi_client(registry.app) as client:
            with pytest.raises(NotFound):
                await accounts.registry_get(
                    registry_client(client), "/bureaus/999999999", f"Bearer {token_for()}"
                )
