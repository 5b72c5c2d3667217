"""Faults survived by the real processes: the platform runs on a PostgreSQL cluster and a Redis
of this run's own, which the tests stop and start. The shared PostgreSQL and Redis other test
runs use are never touched.

The processes are supervised as in production (``Platform.supervise``): an arq worker that
exits because Redis went away is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PARTS, RUN_DIR, RUN_ID, TEST_ENV
from tests.e2e.test_enforcement import Person, admin_of, bureau, person, post_with_steps
from tests.e2e.test_events import eventually
from tests.factories import create_enterprise
from tests.servers import RedisServer
from tests.world import OFFICER_STEPS
from tools.platform import Platform, free_port

PG_BIN = Path(os.environ.get("FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin"))
# Seconds an event job may run; a worker killed mid-job leaves its job marked in progress
# this long plus arq's 10 s, after which a worker takes it again.
JOB_TIMEOUT_SECONDS = 5


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Postgres:
    """A throwaway PostgreSQL cluster on a port of its own, trusting local connections."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off"
        )
        self._run(
            PG_BIN / "pg_ctl", "-D", self.data, "-l", self.root / "server.log", "-o", options, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no checkpoint, every connection cut."""
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def _run(self, *args: object) -> None:
        done = subprocess.run(
            _as_postgres([str(a) for a in args]), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    root = Path(tempfile.mkdtemp(prefix=f"faults-pg-{RUN_ID}-"))
    server = Postgres(root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(AssertionError):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def platform(platform_databases, postgres, redis_server) -> AsyncIterator[Platform]:
    from tests.e2e.conftest import running_platform

    env = {
        **TEST_ENV,
        "LOG_LEVEL": "INFO",
        "REDIS_URL": redis_server.url,
        "ARQ_QUEUE_PREFIX": "arq:faults:",
        "WORKER_JOB_TIMEOUT_SECONDS": str(JOB_TIMEOUT_SECONDS),
        **{
            f"{p.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{postgres.port}/cert_{p}"
            for p in PARTS
        },
    }
    async with running_platform(env, RUN_DIR / "faults-logs", restart_delay=0.5) as running:
        supervisor = asyncio.create_task(_supervise(running))
        try:
            yield running
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor


async def _supervise(running: Platform) -> None:
    while True:
        await asyncio.to_thread(running.supervise)
        await asyncio.sleep(0.25)


@pytest.fixture(scope="session")
async def client(platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as http:
        yield http


@dataclass
class County:
    """A county bureau of Zhejiang's pilot unit, an enforcement officer of it with a login, and
    an enterprise it keeps: enough to write leads, whose events statistics counts."""

    admin: dict[str, str]
    county: dict
    officer: Person
    enterprise: dict


@pytest.fixture(scope="session")
async def county(client) -> County:
    admin = await admin_of(client, "admin-330000-qs")
    me = (await client.get("/api/v1/registry/me", headers=admin)).json()
    province = (await client.get(f"/api/v1/registry/bureaus/{me['bureau_id']}", headers=admin)).json()
    city = await bureau(client, admin, province, "city", "330100")
    county = await bureau(client, admin, city, "county", "330106")
    post = await post_with_steps(client, admin, county["id"], "enforcement", OFFICER_STEPS)
    officer = await person(client, admin, county["id"], "enforcement", post, ["enforcement"])
    token = admin["Authorization"].removeprefix("Bearer ")
    enterprise = await create_enterprise(client, token, bureau_id=county["id"])
    return County(admin, county, officer, enterprise)


def lead_payload(county: County, summary: str) -> dict:
    return {
        "source": "complaint",
        "subject_type": "enterprise",
        "subject_id": county.enterprise["id"],
        "summary": summary,
        "received_on": "2026-06-01",
    }


@contextlib.asynccontextmanager
async def database(postgres: Postgres, part: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres.dsn(f"cert_{part}"))
    try:
        yield conn
    finally:
        await conn.close()


async def leads_written(postgres: Postgres, marker: str) -> list[int]:
    """The ids of the enforcement service's leads whose summary starts with ``marker``."""
    async with database(postgres, "enforcement") as conn:
        rows = await conn.fetch("SELECT id FROM lead WHERE summary LIKE $1 ORDER BY id", f"{marker}%")
    return [r["id"] for r in rows]


async def lead_events(postgres: Postgres, lead_ids: list[int]) -> list[asyncpg.Record]:
    """The enforcement outbox's events of those leads."""
    async with database(postgres, "enforcement") as conn:
        return await conn.fetch(
            "SELECT id, enqueued_at, delivered_at FROM outbox_event"
            " WHERE type = 'enforcement.lead.changed' AND aggregate_id = ANY($1::text[])",
            [str(i) for i in lead_ids],
        )


async def counted_leads(postgres: Postgres, lead_ids: list[int]) -> dict[str, int]:
    """What statistics holds of those leads: its facts, the events its inbox applied, and
    the events of its inbox in all (an event applied twice would be two)."""
    ids = [str(i) for i in lead_ids]
    async with database(postgres, "statistics") as conn:
        facts = await conn.fetchval(
            "SELECT count(*) FROM lead_fact WHERE lead_id = ANY($1::bigint[])", lead_ids
        )
        inbox = await conn.fetch(
            "SELECT outcome, count(*) AS n FROM inbox_event"
            " WHERE aggregate_type = 'lead' AND aggregate_id = ANY($1::text[]) GROUP BY outcome",
            ids,
        )
    return {"facts": facts, **{r["outcome"]: r["n"] for r in inbox}}


async def all_counted(postgres: Postgres, lead_ids: list[int], timeout: float = 60.0) -> dict[str, int]:
    """Waits until statistics holds a fact of each lead and the outbox knows every event
    delivered; then what statistics holds of them (see :func:`counted_leads`)."""

    async def done():
        events = await lead_events(postgres, lead_ids)
        counted = await counted_leads(postgres, lead_ids)
        delivered = len(events) == len(lead_ids) and all(e["delivered_at"] for e in events)
        return counted if delivered and counted["facts"] == len(lead_ids) else None

    return await eventually(done, timeout=timeout)


async def write_lead(client: httpx.AsyncClient, county: County, summary: str) -> dict:
    response = await client.post(
        "/api/v1/enforcement/leads", headers=county.officer.headers, json=lead_payload(county, summary)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def lead_figures(postgres: Postgres, county: County) -> tuple[int, int]:
    """The county's leads as the enforcement service holds them, and as statistics counts them
    (the year's ``leads_received`` figure, moved by each lead's first event)."""
    async with database(postgres, "enforcement") as conn:
        source = await conn.fetchval("SELECT count(*) FROM lead WHERE bureau_id = $1", county.county["id"])
    async with database(postgres, "statistics") as conn:
        counted = await conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM aggregate WHERE bureau_id = $1 AND period = '2026'"
            " AND dimension = 'all' AND value = '' AND measure = 'leads_received'",
            county.county["id"],
        )
    return source, int(counted)


def direct(platform: Platform, part: str) -> httpx.AsyncClient:
    """A client of one service, reached without the gateway."""
    return httpx.AsyncClient(base_url=platform.service_url(part), timeout=30)
