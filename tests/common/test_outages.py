"""A database or Redis that cannot be reached is an outage, not a bug: requests are answered
503 with Retry-After (never 500), the outage is logged once, and requests succeed again as
soon as the store is back.

The shared PostgreSQL is never stopped: an app reaches it through a TCP forwarder of the
test's own, which the test stops and starts, or its own connections are terminated.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app as create_gateway
from gateway.config import GatewaySettings
from services.common.app import create_service_app
from services.common.deps import AuditDep, PrincipalDep, ReadSessionDep, SessionDep
from services.registry.app import AUDIT
from services.registry.app import create_app as create_registry
from services.registry.config import RegistrySettings
from tests.common.test_problems import assert_problem
from tests.conftest import TEST_ENV, auth
from tests.servers import TcpProxy
from tools.platform import free_port

PREFIX = "/api/v1/faults"
DIRECT_URL = TEST_ENV["REGISTRY_DATABASE_URL"]
CLOSED_DATABASE = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
TERMINATE = text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE client_port = ANY(:ports)")


def fault_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    @router.get("/things")
    async def read(session: ReadSessionDep, _: PrincipalDep) -> dict:
        return {"one": (await session.exec(text("SELECT 1"))).scalar_one()}

    @router.post("/things", status_code=201)
    async def write(session: SessionDep, audit: AuditDep, principal: PrincipalDep) -> dict:
        await audit.record(session, principal, "fault.probe", "probe", uuid.uuid4().hex, {})
        await session.commit()
        return {"written": True}

    @router.post("/jobs", status_code=202)
    async def enqueue(request: Request, _: PrincipalDep) -> dict:
        await request.app.state.jobs.enqueue_job("nothing", _job_id=uuid.uuid4().hex)
        return {"queued": True}

    return router


@asynccontextmanager
async def fault_app(**settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(
        name="faults",
        title="t",
        description="t",
        settings=RegistrySettings(**settings),
        routers=[fault_router()],
        audit=AUDIT,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://faults") as client:
            yield client


class Records(logging.Handler):
    """What the platform's loggers said during a test (the apps replace the root handlers)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.WARNING) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def logged() -> AsyncIterator[Records]:
    records = Records()
    platform = logging.getLogger("platform")
    platform.addHandler(records)
    try:
        yield records
    finally:
        platform.removeHandler(records)


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    forwarder = TcpProxy(("127.0.0.1", 5432))
    await forwarder.start()
    try:
        yield forwarder
    finally:
        if forwarder._server is not None:
            await forwarder.stop()


def through(proxy: TcpProxy) -> str:
    return DIRECT_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


def assert_unavailable(response: httpx.Response, type_: str = "/problems/database-unavailable") -> None:
    assert_problem(response, 503, type_)
    assert response.headers["retry-after"] == "5"


class TestDatabaseGoesAwayAndComesBack:
    async def test_503_while_it_is_away_logged_once_then_requests_succeed(self, proxy, token_for, logged):
        headers = auth(token_for())
        async with fault_app(database_url=through(proxy), db_connect_timeout_seconds=2) as client:
            assert (await client.get(f"{PREFIX}/things", headers=headers)).status_code == 200

            await proxy.stop()
            during = [
                await client.get(f"{PREFIX}/things", headers=headers),
                await client.post(f"{PREFIX}/things", headers=headers),
                await client.post(f"{PREFIX}/things", headers={**headers, "Idempotency-Key": "k-1"}),
                await client.get(f"{PREFIX}/things", headers=headers),
            ]
            for response in during:
                assert_unavailable(response)
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("unavailable")

            await proxy.start()
            assert (await client.get(f"{PREFIX}/things", headers=headers)).json() == {"one": 1}
            assert (await client.post(f"{PREFIX}/things", headers=headers)).status_code == 201

        assert logged.messages() == ["database unavailable", "database available again"]
        assert not [r for r in logged.records if r.exc_info]  # no traceback per request
        back = next(r for r in logged.records if r.getMessage() == "database available again")
        assert back.failed_requests == len(during)

    async def test_connections_terminated_while_idle_are_replaced_unnoticed(self, proxy, token_for, logged):
        headers = auth(token_for())
        async with fault_app(database_url=through(proxy)) as client:
            for _ in range(2):
                assert (await client.get(f"{PREFIX}/things", headers=headers)).status_code == 200
            ports = sorted(proxy.upstream_ports)
            admin = create_async_engine(DIRECT_URL)
            try:
                async with admin.connect() as conn:
                    killed = await conn.execute(TERMINATE, {"ports": ports})
                    terminated = killed.scalars().all()
                assert terminated and all(terminated)
            finally:
                await admin.dispose()
            await asyncio.sleep(0.2)  # the server's goodbye reaches the pooled connections
            for _ in range(2):
                assert (await client.get(f"{PREFIX}/things", headers=headers)).status_code == 200
            assert (await client.post(f"{PREFIX}/things", headers=headers)).status_code == 201
        assert logged.messages() == []


class TestDatabaseNeverReachable:
    async def test_a_service_answers_503_on_reads(self, token_for, logged):
        app = create_registry(RegistrySettings(database_url=CLOSED_DATABASE))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:
                for _ in range(3):
                    response = await client.get("/api/v1/registry/bureaus/1", headers=auth(token_for()))
                    assert_unavailable(response)
        assert logged.messages() == ["database unavailable"]

    async def test_the_gateways_token_endpoint_answers_503(self, logged):
        settings = GatewaySettings(database_url=CLOSED_DATABASE, revocation_refresh_seconds=3600)
        app = create_gateway(settings)
        api = app.api  # type: ignore[attr-defined]
        async with api.router.lifespan_context(api):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                form = {
                    "grant_type": "password",
                    "username": f"nobody-{uuid.uuid4().hex[:8]}",
                    "password": "x",
                }
                response = await client.post("/api/v1/auth/token", data=form)
        assert_unavailable(response)
        assert "unhandled error" not in logged.messages()


class TestRedisUnreachable:
    async def test_reads_and_writes_go_on_readiness_reports_it(self, token_for, logged):
        headers = auth(token_for())
        async with fault_app(redis_url=f"redis://127.0.0.1:{free_port()}/0") as client:
            assert (await client.get(f"{PREFIX}/things", headers=headers)).status_code == 200
            assert (await client.post(f"{PREFIX}/things", headers=headers)).status_code == 201
            for _ in range(2):
                assert_unavailable(
                    await client.post(f"{PREFIX}/jobs", headers=headers), "/problems/queue-unavailable"
                )
            ready = await client.get("/readyz")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == "ok" and checks["redis"].startswith("unavailable")
        assert logged.messages() == ["queue unavailable"]
