"""The whole platform as real processes: gateway, three services and their workers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from tests.conftest import RUN_DIR, TEST_ENV
from tools.platform import Platform, free_port


@pytest.fixture(scope="session")
async def platform(platform_databases):
    ports = {name: free_port() for name in ("registry", "enforcement", "statistics")}
    running = Platform(
        env={**TEST_ENV, "LOG_LEVEL": "INFO"},
        gateway_port=free_port(),
        service_ports=ports,
        log_dir=RUN_DIR / "logs",
    )
    try:
        running.start_services()
        await asyncio.to_thread(running.wait_ready, [running.service_url(n) for n in ports])
        running.start_gateway()
        await asyncio.to_thread(running.wait_ready, [running.gateway_url])
        seeded = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway.seed"],
            env=running.process_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert seeded.returncode == 0, seeded.stderr
        yield running
    finally:
        await asyncio.to_thread(running.stop)


@pytest.fixture(scope="session")
async def through_gateway(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def national_admin_token(through_gateway):
    response = await through_gateway.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "admin", "password": os.environ["DEMO_ADMIN_PASSWORD"]},
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture(scope="session")
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
