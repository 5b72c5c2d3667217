"""End to end through real processes: what an integrator and an administrator do first."""

from __future__ import annotations

import asyncio
import json
import os

import httpx
import pytest

from services.common.client import ServiceClient
from services.common.context import reset_request_id, set_request_id
from services.common.jobs import create_job_pool
from services.common.problems import ServiceUnavailable
from services.registry.config import RegistrySettings
from tests.conftest import RUN_DIR, TEST_ENV, assert_problem, auth
from tests.e2e.conftest import E2E_ENV
from tests.factories import unique


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


class TestFirstSession:
    """The README's curl session: get a token, read the bureau tree."""

    async def test_token_then_bureau_tree(self, through_gateway, national_admin_token):
        response = await through_gateway.get(
            "/api/v1/registry/bureaus", params={"limit": 100}, headers=auth(national_admin_token)
        )
        assert response.status_code == 200
        bureaus = response.json()["items"]
        assert bureaus[0]["level"] == "national"
        assert sum(b["pilot"] == "provincial" for b in bureaus) == 16

    async def test_every_pilot_unit_has_a_demo_administrator(self, through_gateway):
        response = await login(through_gateway, "admin-330200-ee", os.environ["DEMO_ADMIN_PASSWORD"])
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        me = (await through_gateway.get("/api/v1/registry/me", headers=auth(token))).json()
        bureau = (
            await through_gateway.get(f"/api/v1/registry/bureaus/{me['bureau_id']}", headers=auth(token))
        ).json()
        assert bureau["name"] == "宁波出入境检验检疫局" and "admin" in me["roles"]

    async def test_a_service_reached_directly_without_a_token_is_401(self, platform, national_admin_token):
        async with httpx.AsyncClient() as client:
            for name in platform.service_ports:
                url = f"{platform.service_url(name)}/api/v1/{name}/me"
                assert_problem(await client.get(url), 401, "/problems/unauthorized")
                forged = await client.get(url, headers=auth("forged.token.value"))
                assert_problem(forged, 401, "/problems/unauthorized")
                assert (await client.get(url, headers=auth(national_admin_token))).status_code == 200

    async def test_provinces_do_not_see_each_other_through_the_gateway(self, through_gateway):
        token = (await login(through_gateway, "admin-330000-qs", os.environ["DEMO_ADMIN_PASSWORD"])).json()[
            "access_token"
        ]
        visible = (
            await through_gateway.get("/api/v1/registry/bureaus", params={"limit": 100}, headers=auth(token))
        ).json()["items"]
        assert {b["division_code"] for b in visible if b["level"] == "provincial"} == {"330000"}
        assert all(b["system"] == "quality_supervision" for b in visible)

    async def test_docs_are_served_without_internet(self, through_gateway):
        html = (await through_gateway.get("/docs")).text
        assert "/docs-assets/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
        assert "/docs-assets/redoc.standalone.js" in (await through_gateway.get("/redoc")).text
        assert (await through_gateway.get("/docs-assets/swagger-ui-bundle.js")).status_code == 200
        doc = (await through_gateway.get("/openapi.json")).json()
        assert "x-unavailable-services" not in doc
        for path in (
            "/api/v1/auth/token",
            "/api/v1/registry/bureaus",
            "/api/v1/enforcement/me",
            "/api/v1/statistics/me",
        ):
            assert path in doc["paths"], path


class TestAdministratorAddsAnOfficer:
    async def test_officer_account_from_registry_officer(self, through_gateway):
        password = os.environ["DEMO_ADMIN_PASSWORD"]
        admin = auth((await login(through_gateway, "admin-330000-qs", password)).json()["access_token"])
        province = (await through_gateway.get("/api/v1/registry/me", headers=admin)).json()
        city = await through_gateway.post(
            "/api/v1/registry/bureaus",
            headers=admin,
            json={
                "parent_id": province["bureau_id"],
                "name": unique("温州市局"),
                "level": "city",
                "division_code": "330300",
            },
        )
        assert city.status_code == 201, city.text
        officer = await through_gateway.post(
            "/api/v1/registry/officers",
            headers=admin,
            json={
                "bureau_id": city.json()["id"],
                "body": "enforcement",
                "name": "张三",
                "credential_number": unique("ZJ"),
            },
        )
        assert officer.status_code == 201, officer.text
        username, officer_password = unique("zhang").lower(), "a long enough password"
        account = await through_gateway.post(
            "/api/v1/auth/accounts/officers",
            headers=admin,
            json={
                "username": username,
                "password": officer_password,
                "officer_id": officer.json()["id"],
                "roles": ["enforcement"],
            },
        )
        assert account.status_code == 201, account.text
        assert account.json()["bureau_path"] == city.json()["path"]

        token = (await login(through_gateway, username, officer_password)).json()["access_token"]
        me = (await through_gateway.get("/api/v1/enforcement/me", headers=auth(token))).json()
        assert me["bureau_id"] == city.json()["id"] and me["officer_id"] == officer.json()["id"]
        assert me["body"] == "enforcement"

        # Disabled: the gateway refuses the live token at once, and no new token is issued.
        etag = account.headers["etag"]
        disabled = await through_gateway.patch(
            f"/api/v1/auth/accounts/{account.json()['id']}",
            headers={**admin, "If-Match": etag},
            json={"active": False},
        )
        assert disabled.status_code == 200, disabled.text
        refused = await through_gateway.get("/api/v1/enforcement/me", headers=auth(token))
        assert_problem(refused, 401, "/problems/unauthorized")
        again = await login(through_gateway, username, officer_password)
        assert assert_problem(again, 400, "/problems/oauth-invalid-grant")["error"] == "invalid_grant"

    async def test_officer_of_another_province_cannot_be_given_a_login(self, through_gateway):
        password = os.environ["DEMO_ADMIN_PASSWORD"]
        shandong = auth((await login(through_gateway, "admin-370000-qs", password)).json()["access_token"])
        zhejiang = auth((await login(through_gateway, "admin-330000-qs", password)).json()["access_token"])
        sd = (await through_gateway.get("/api/v1/registry/me", headers=shandong)).json()
        officer = await through_gateway.post(
            "/api/v1/registry/officers",
            headers=shandong,
            json={"bureau_id": sd["bureau_id"], "body": "legal", "name": "李四"},
        )
        assert officer.status_code == 201
        response = await through_gateway.post(
            "/api/v1/auth/accounts/officers",
            headers=zhejiang,
            json={
                "username": unique("li").lower(),
                "password": "a long enough password",
                "officer_id": officer.json()["id"],
                "roles": ["legal"],
            },
        )
        assert_problem(response, 404, "/problems/not-found")

    async def test_provincial_system_gets_client_credentials(self, through_gateway):
        admin = auth(
            (await login(through_gateway, "admin-330000-qs", os.environ["DEMO_ADMIN_PASSWORD"])).json()[
                "access_token"
            ]
        )
        province = (await through_gateway.get("/api/v1/registry/me", headers=admin)).json()
        created = await through_gateway.post(
            "/api/v1/auth/accounts/systems",
            headers=admin,
            json={"client_id": unique("zj-qs-sync").lower(), "bureau_id": province["bureau_id"]},
        )
        assert created.status_code == 201, created.text
        token = await through_gateway.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": created.json()["username"],
                "client_secret": created.json()["client_secret"],
            },
        )
        assert token.status_code == 200
        me = (
            await through_gateway.get("/api/v1/statistics/me", headers=auth(token.json()["access_token"]))
        ).json()
        assert me["kind"] == "system" and me["bureau_path"] == province["bureau_path"]


class TestServicesAndWorkers:
    async def test_each_service_gets_its_own_token(self, through_gateway):
        response = await through_gateway.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "svc-enforcement",
                "client_secret": TEST_ENV["ENFORCEMENT_CLIENT_SECRET"],
            },
        )
        assert response.status_code == 200
        me = (
            await through_gateway.get("/api/v1/registry/me", headers=auth(response.json()["access_token"]))
        ).json()
        assert me["kind"] == "service" and me["roles"] == ["service"]

    async def test_workers_run_jobs_with_json_payloads(self, platform):
        pool = await create_job_pool(TEST_ENV["REDIS_URL"])
        try:
            job = await pool.enqueue_job(
                "check_audit_chain", _queue_name=f"{E2E_ENV['ARQ_QUEUE_PREFIX']}registry"
            )
            result = await job.result(timeout=30)
        finally:
            await pool.aclose()
        assert result["valid"] is True and result["entries"] > 0

    async def test_request_id_follows_the_request_into_the_service_logs(
        self, through_gateway, national_admin_token
    ):
        request_id = unique("trace-e2e")
        response = await through_gateway.get(
            "/api/v1/registry/bureaus/1", headers={**auth(national_admin_token), "X-Request-ID": request_id}
        )
        assert response.headers["x-request-id"] == request_id
        await asyncio.sleep(0.3)
        for part in ("gateway", "registry"):
            text = (RUN_DIR / "logs" / f"{part}.log").read_text()
            # What follows the last newline is a line still being written: leave it out.
            lines = [json.loads(line) for line in text.split("\n")[:-1] if line.startswith("{")]
            assert any(
                line.get("request_id") == request_id and line.get("path") == "/api/v1/registry/bureaus/1"
                for line in lines
            ), part

    async def test_a_stopped_service_is_503_and_comes_back(
        self, platform, through_gateway, national_admin_token
    ):
        await asyncio.to_thread(platform.stop, "statistics")
        try:
            response = await through_gateway.get("/api/v1/statistics/me", headers=auth(national_admin_token))
            assert response.status_code == 503
            assert response.json()["type"] == "/problems/service-unavailable"
            # The others are unaffected.
            assert (
                await through_gateway.get("/api/v1/registry/me", headers=auth(national_admin_token))
            ).status_code == 200
        finally:
            platform.start_service("statistics")
            await asyncio.to_thread(platform.wait_ready, [platform.service_url("statistics")])
        response = await through_gateway.get("/api/v1/statistics/me", headers=auth(national_admin_token))
        assert response.status_code == 200


class TestServiceToService:
    async def test_a_service_calls_another_through_the_gateway_as_itself(self, platform):

        settings = RegistrySettings(gateway_url=platform.gateway_url)
        client = ServiceClient(settings)
        request_id = unique("s2s-call")
        token = set_request_id(request_id)
        try:
            first = await client.request("GET", "/api/v1/enforcement/me")
            second = await client.request("GET", "/api/v1/statistics/me")
        finally:
            reset_request_id(token)
            await client.aclose()
        assert first.status_code == 200 and second.status_code == 200
        assert first.json()["kind"] == "service" and first.json()["roles"] == ["service"]
        assert first.headers["x-request-id"] == request_id
        # One token serves both calls until it nears its expiry.
        assert first.request.headers["authorization"] == second.request.headers["authorization"]

    async def test_wrong_service_credentials_are_a_clear_503(self, platform):

        client = ServiceClient(
            RegistrySettings(gateway_url=platform.gateway_url, client_secret="wrong-secret")
        )
        try:
            with pytest.raises(ServiceUnavailable):
                await client.request("GET", "/api/v1/enforcement/me")
        finally:
            await client.aclose()
