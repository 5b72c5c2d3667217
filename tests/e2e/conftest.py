"""The whole platform as real processes: gateway, three services and their workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import KEEP_DATABASES, PARTS, RUN_DIR, RUN_ID, TEST_ENV, auth
from tests.factories import pilot_unit, unique
from tests.world import LEGAL_STEPS, OFFICER_STEPS
from tools.platform import Platform, create_databases, database_urls, drop_databases, free_port, migrate

# The processes get databases and queues of their own: their workers relay and apply
# events in the background, which must not reach into the in-process tests' rows.
E2E_ENV = {
    **TEST_ENV,
    "LOG_LEVEL": "INFO",
    "ARQ_QUEUE_PREFIX": f"arq:{RUN_ID}:e2e:",
    "AUDIT_CHECKPOINT_KEY_PREFIX": f"audit-checkpoint:{RUN_ID}:e2e:",
    # The contract runs send one administrator's requests far faster than any client may
    # (tests/gateway/test_rate_limits.py checks the limit on a gateway of its own).
    "GATEWAY_RATE_LIMIT_REQUESTS": "1000000",
    **{
        f"{p.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_{RUN_ID}_e2e_{p}"
        for p in PARTS
    },
}


@pytest.fixture(scope="session")
async def platform(platform_databases):
    async with running_platform(E2E_ENV, RUN_DIR / "logs") as running:
        yield running


@contextlib.asynccontextmanager
async def running_platform(env: dict[str, str], log_dir: Path, **options) -> AsyncIterator[Platform]:
    """The whole platform as processes under ``env``: its databases made afresh and migrated,
    the registry seeded, the services, the gateway and their workers started and ready, the
    gateway's accounts seeded. ``options`` go to :class:`Platform`."""
    urls = database_urls(env)
    await drop_databases(urls)
    await create_databases(urls)
    await asyncio.to_thread(migrate, urls)
    ports = {name: free_port() for name in ("registry", "enforcement", "statistics")}
    running = Platform(env=env, gateway_port=free_port(), service_ports=ports, log_dir=log_dir, **options)
    try:
        await seed_part(running, "services.registry.seed")
        running.start_services()
        await asyncio.to_thread(running.wait_ready, [running.service_url(n) for n in ports])
        running.start_gateway()
        await asyncio.to_thread(running.wait_ready, [running.gateway_url])
        await seed_part(running, "gateway.seed")
        yield running
    finally:
        await asyncio.to_thread(running.stop)
        if not KEEP_DATABASES:
            await drop_databases(urls)


async def seed_part(running: Platform, module: str) -> None:
    seeded = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", module],
        env=running.process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr


@pytest.fixture(scope="session")
async def through_gateway(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        yield client


# Tokens are fresh for each test: a run is long, and a token lives one lifetime (15 minutes).
@pytest.fixture
async def national_admin_token(through_gateway):
    response = await through_gateway.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "admin", "password": os.environ["DEMO_ADMIN_PASSWORD"]},
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
async def provincial_admin_token(through_gateway):
    """The demo administrator of Zhejiang's quality-supervision bureau (a provincial pilot)."""
    response = await through_gateway.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": "admin-330000-qs",
            "password": os.environ["DEMO_ADMIN_PASSWORD"],
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


# A county bureau under Zhejiang's quality-supervision bureau, with a login for an officer of each
# body (certification supervision, enforcement, legal affairs): the grassroots users of the platform.
# The enforcement officer holds a post with the officer's steps of the procedure, the legal-affairs
# officer the reviewer's.
COUNTY_DIVISION = "330102"  # 杭州市上城区
COUNTY_BODIES = ("supervision", "enforcement", "legal")
COUNTY_PASSWORD = "county-password-for-tests"


@dataclass(frozen=True)
class County:
    bureau: dict
    usernames: dict[str, str]  # by body


@pytest.fixture(scope="session")
async def county(through_gateway) -> County:
    """Made by Zhejiang's administrator through the gateway, as a provincial system would."""
    headers = auth(await login(through_gateway, "admin-330000-qs", os.environ["DEMO_ADMIN_PASSWORD"]))

    async def created(url: str, payload: dict) -> dict:
        response = await through_gateway.post(url, json=payload, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()

    province = await pilot_unit(
        through_gateway, headers["Authorization"].split()[1], "quality_supervision", "330000"
    )
    bureau = await created(
        "/api/v1/registry/bureaus",
        {
            "parent_id": province["id"],
            "name": unique("县局"),
            "level": "county",
            "division_code": COUNTY_DIVISION,
        },
    )
    steps = {"enforcement": OFFICER_STEPS, "legal": LEGAL_STEPS}
    usernames = {}
    for body in COUNTY_BODIES:
        post = None
        if body in steps:
            payload = {
                "body": body,
                "name": unique("岗位")[:30],
                "duties": "执法责任制",
                "steps": steps[body],
            }
            post = await created(f"/api/v1/registry/bureaus/{bureau['id']}/posts", payload)
        officer = await created(
            "/api/v1/registry/officers",
            {
                "bureau_id": bureau["id"],
                "body": body,
                "name": unique("县局")[:20],
                "post_id": post and post["id"],
                "credential_number": unique("ZJ").upper() if body == "enforcement" else None,
            },
        )
        username = unique(f"county-{body}").lower()
        await created(
            "/api/v1/auth/accounts/officers",
            {"username": username, "password": COUNTY_PASSWORD, "officer_id": officer["id"], "roles": [body]},
        )
        usernames[body] = username
    return County(bureau, usernames)


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
