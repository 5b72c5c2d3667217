"""The gateway restarted: the tokens it issued before verify after, at the gateway and at each
service, and the services go on verifying them while the gateway is away (its keys are on disk,
the services keep the keys they verify with)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import TEST_ENV, assert_problem, auth
from tests.e2e.test_enforcement import PASSWORD
from tests.e2e.test_platform import login

pytestmark = pytest.mark.e2e

SERVICES = ("registry", "enforcement", "statistics")


async def service_token(client: httpx.AsyncClient, part: str) -> str:
    response = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": f"svc-{part}",
            "client_secret": TEST_ENV[f"{part.upper()}_CLIENT_SECRET"],
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def who_at_each_service(platform, token: str) -> dict[str, tuple[str, str]]:
    """What each service, reached directly, makes of the token: the principal's kind and id."""
    seen = {}
    async with httpx.AsyncClient(timeout=10) as direct:
        for name in SERVICES:
            response = await direct.get(f"{platform.service_url(name)}/api/v1/{name}/me", headers=auth(token))
            assert response.status_code == 200, (name, response.text)
            seen[name] = (response.json()["kind"], response.json()["account_id"])
    return seen


async def test_tokens_issued_before_a_restart_verify_everywhere_during_and_after(platform, client, county):
    officer = (await login(client, county.officer.username, PASSWORD)).json()["access_token"]
    service = await service_token(client, "enforcement")
    officer_is = await who_at_each_service(platform, officer)
    service_is = await who_at_each_service(platform, service)
    assert {kind for kind, _ in officer_is.values()} == {"officer"}
    assert len(set(service_is.values())) == 1 and next(iter(service_is.values()))[0] == "service"

    await asyncio.to_thread(platform.stop, "gateway-worker")
    await asyncio.to_thread(platform.stop, "gateway")
    try:
        with pytest.raises(httpx.ConnectError):
            await client.get("/api/v1/registry/me", headers=auth(officer))
        # The services verify without the gateway.
        assert await who_at_each_service(platform, officer) == officer_is
        assert await who_at_each_service(platform, service) == service_is
    finally:
        platform.start_gateway()
        await asyncio.to_thread(platform.wait_ready, [platform.gateway_url])

    for token, principal in ((officer, officer_is), (service, service_is)):
        for name in SERVICES:
            response = await client.get(f"/api/v1/{name}/me", headers=auth(token))
            assert response.status_code == 200, (name, response.text)
            assert (response.json()["kind"], response.json()["account_id"]) == principal[name]
        assert await who_at_each_service(platform, token) == principal
    # A token of the restarted gateway verifies alike, and a forged one still does not.
    fresh = (await login(client, county.officer.username, PASSWORD)).json()["access_token"]
    assert await who_at_each_service(platform, fresh) == officer_is
    assert_problem(
        await client.get("/api/v1/registry/me", headers=auth(officer[:-4] + "AAAA")),
        401,
        "/problems/unauthorized",
    )
