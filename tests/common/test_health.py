"""Liveness, readiness (database and Redis) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.registry.app import create_app
from services.registry.config import RegistrySettings
from tests.conftest import auth

UNREACHABLE_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/x"
BUREAU_TEMPLATE = "/api/v1/registry/bureaus/{bureau_id}"


async def serve(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_counts(text: str) -> dict[tuple[str, str, str], float]:
    """``http_requests_total`` samples by (method, route, status)."""
    counts = {}
    for family in text_string_to_metric_families(text):
        if family.name == "http_requests":
            for sample in family.samples:
                if sample.name == "http_requests_total":
                    labels = sample.labels
                    counts[(labels["method"], labels["route"], labels["status"])] = sample.value
    return counts


class TestLiveness:
    async def test_healthz_answers_without_a_token(self, registry):
        response = await registry.get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "ok"}


class TestReadiness:
    async def test_ready_when_database_and_redis_answer(self, registry):
        response = await registry.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}

    async def test_not_ready_when_the_database_is_unreachable(self):
        app = create_app(RegistrySettings(database_url=UNREACHABLE_DATABASE))
        async for client in serve(app):
            response = await client.get("/readyz")
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["status"] == "not-ready"
            assert body["checks"]["database"].startswith("unavailable")
            assert body["checks"]["redis"] == "ok"
            # Liveness does not depend on the database.
            assert (await client.get("/healthz")).status_code == 200

    @pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs a redis-server binary")
    async def test_not_ready_when_redis_goes_away(self):
        # The lifespan needs Redis to start, so start on a Redis of our own, then stop it.
        port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                await asyncio.sleep(0.05)
            app = create_app(RegistrySettings(redis_url=f"redis://127.0.0.1:{port}/0"))
            async for client in serve(app):
                assert (await client.get("/readyz")).status_code == 200
                redis.terminate()
                await asyncio.to_thread(redis.wait, 10)
                response = await client.get("/readyz")
                assert response.status_code == 503, response.text
                checks = response.json()["checks"]
                assert checks["database"] == "ok" and checks["redis"].startswith("unavailable")
        finally:
            if redis.poll() is None:
                redis.kill()
                redis.wait()


class TestMetrics:
    async def test_requests_are_counted_by_route_template(self, registry, token_for):
        before = request_counts((await registry.get("/metrics")).text)
        token = token_for()
        for bureau_id in (1, 2, 999999999):
            await registry.get(f"/api/v1/registry/bureaus/{bureau_id}", headers=auth(token))
        after = request_counts((await registry.get("/metrics")).text)
        key = ("GET", BUREAU_TEMPLATE, "200")
        assert after[key] - before.get(key, 0) == 2
        not_found = ("GET", BUREAU_TEMPLATE, "404")
        assert after[not_found] - before.get(not_found, 0) == 1

    async def test_no_concrete_id_or_unknown_path_becomes_a_label(self, registry, token_for):
        stray = f"/api/v1/registry/nowhere-{uuid.uuid4().hex}"
        await registry.get(stray, headers=auth(token_for()))
        await registry.get("/api/v1/registry/bureaus/424242", headers=auth(token_for()))
        text = (await registry.get("/metrics")).text
        routes = {route for _, route, _ in request_counts(text)}
        assert stray not in text
        assert "unmatched" in routes
        assert not [r for r in routes if re.search(r"/\d+(/|$)", r)], routes
        assert BUREAU_TEMPLATE in routes

    async def test_metrics_are_prometheus_text(self, registry):
        response = await registry.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "http_request_duration_seconds_bucket" in response.text
