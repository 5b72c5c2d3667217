"""Database connections: first come first served, a bounded wait, and the driver read path.

SQLAlchemy's asyncio pool lets a newly arriving checkout take a connection that is
being returned ahead of checkouts that have waited for one; ``FairAsyncPool`` puts a
FIFO gate in front of it. These tests run on a small pool of the registry's test
database.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import bindparam, event, literal, literal_column, select, text

from services.common.db import (
    Database,
    driver_query,
    like_prefix,
    make_engine,
    make_read_sessionmaker,
    make_sessionmaker,
)
from services.common.deps import DatabaseDep, ReadSessionDep, SessionDep
from services.common.metrics import DB_CONNECTION_WAIT_TIMEOUTS
from services.common.outages import OutageLog
from services.common.problems import install_problem_handlers
from services.common.responses import fast_json, fast_page

ONE = driver_query(select(literal_column("1").label("one")))
SLEEP = driver_query(text("SELECT pg_sleep(:seconds)").bindparams(bindparam("seconds")))
SLOW_MARKED = driver_query(
    text("SELECT pg_sleep(:seconds) /* lost-mid-read */").bindparams(bindparam("seconds"))
)


@pytest.fixture
async def pool_of_two(database_urls_for_run):
    engine = make_engine(
        database_urls_for_run["registry"], pool_size=2, max_overflow=0, connection_wait_seconds=10
    )
    # Open both connections first, so every later checkout is a plain hand-over.
    held = [await engine.connect() for _ in range(2)]
    for conn in held:
        await conn.close()
    yield engine
    await engine.dispose()


@pytest.fixture
async def pool_of_one(database_urls_for_run):
    engine = make_engine(
        database_urls_for_run["registry"], pool_size=1, max_overflow=0, connection_wait_seconds=0.2
    )
    yield engine
    await engine.dispose()


class TestInterpreter:
    def test_python_has_the_fifo_semaphore(self):
        # asyncio.Semaphore hands a released permit to the longest waiter since 3.11.1 (gh-90155).
        assert sys.version_info >= (3, 11, 1)

    async def test_semaphore_serves_waiters_in_order_and_a_newcomer_queues_behind_them(self):
        permits = asyncio.Semaphore(1)
        await permits.acquire()
        order = []

        async def waiter(i: int) -> None:
            async with permits:
                order.append(i)
                await asyncio.sleep(0)

        queued = [asyncio.create_task(waiter(i)) for i in range(10)]
        await asyncio.sleep(0)
        permits.release()
        newcomer = asyncio.create_task(waiter(99))  # arrives just as a permit frees
        await asyncio.gather(*queued, newcomer)
        assert order == [*range(10), 99]


class TestArrivalOrder:
    async def test_twenty_sessions_on_a_pool_of_two_are_served_in_arrival_order(self, pool_of_two):
        granted: list[str] = []
        late: list[asyncio.Task] = []
        maker = make_read_sessionmaker(pool_of_two)

        async def use(hold: float) -> None:
            async with maker() as session:
                await session.exec(text("SELECT pg_sleep(:s)").bindparams(s=hold))

        def on_checkout(*_: object) -> None:
            granted.append(asyncio.current_task().get_name())

        def on_checkin(*_: object) -> None:
            # A request arriving exactly as a connection comes back must queue behind the waiters.
            if len(late) < 5:
                name = f"late{len(late)}"
                late.append(asyncio.get_running_loop().create_task(use(0), name=name))

        event.listen(pool_of_two.sync_engine, "checkout", on_checkout)
        event.listen(pool_of_two.sync_engine, "checkin", on_checkin)
        names = [f"w{i:02d}" for i in range(20)]
        waiters = [asyncio.create_task(use(0.01), name=n) for n in names]
        await asyncio.gather(*waiters)
        await asyncio.gather(*late)
        assert granted == names + [f"late{i}" for i in range(5)]

    async def test_driver_reads_wait_in_the_same_queue_as_sessions(self, pool_of_two):
        granted: list[str] = []
        db = Database(pool_of_two)
        maker = make_sessionmaker(pool_of_two)

        async def session_read() -> None:
            async with maker() as session:
                await session.exec(text("SELECT pg_sleep(0.01)"))

        async def driver_read() -> None:
            await db.fetch_one(SLEEP, seconds=0.01)

        event.listen(
            pool_of_two.sync_engine, "checkout", lambda *_: granted.append(asyncio.current_task().get_name())
        )
        names = [f"t{i:02d}" for i in range(12)]
        tasks = [
            asyncio.create_task(session_read() if i % 2 else driver_read(), name=n)
            for i, n in enumerate(names)
        ]
        await asyncio.gather(*tasks)
        assert granted == names


def gated_app(engine) -> FastAPI:
    """The common dependencies on a pool of one connection, as a service app uses them."""
    app = FastAPI()
    install_problem_handlers(app)
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.read_sessionmaker = make_read_sessionmaker(engine)
    app.state.database = Database(engine)
    app.state.outages = OutageLog()

    @app.get("/read-session")
    async def read_session(session: ReadSessionDep) -> dict:
        return {"one": (await session.exec(text("SELECT 1"))).scalar_one()}

    @app.post("/write-session")
    async def write_session(session: SessionDep) -> dict:
        value = (await session.exec(text("SELECT 1"))).scalar_one()
        await session.commit()
        return {"one": value}

    @app.get("/driver")
    async def driver(db: DatabaseDep) -> dict:
        return {"one": (await db.fetch_one(ONE))["one"]}

    @app.get("/driver-slow")
    async def driver_slow(db: DatabaseDep) -> dict:
        await db.fetch_one(SLOW_MARKED, seconds=5)
        return {}

    return app


class TestBoundedWait:
    @pytest.mark.parametrize(
        ("method", "path"), [("GET", "/read-session"), ("POST", "/write-session"), ("GET", "/driver")]
    )
    async def test_no_connection_within_the_wait_is_a_503_problem_with_retry_after(
        self, pool_of_one, method, path
    ):
        transport = httpx.ASGITransport(app=gated_app(pool_of_one))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            before = DB_CONNECTION_WAIT_TIMEOUTS._value.get()
            async with pool_of_one.connect() as busy:
                await busy.execute(text("SELECT 1"))
                response = await client.request(method, path)
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("/problems/service-unavailable")
            assert response.headers["retry-after"] == "1"
            assert DB_CONNECTION_WAIT_TIMEOUTS._value.get() == before + 1
            # Once the connection is back, the same request succeeds.
            again = await client.request(method, path)
            assert again.status_code == 200
            assert again.json() == {"one": 1}

    async def test_a_request_that_timed_out_leaves_the_gate_whole(self, pool_of_one):
        db = Database(pool_of_one)
        async with pool_of_one.connect() as busy:
            await busy.execute(text("SELECT 1"))
            timed_out = await asyncio.gather(*(db.fetch_one(ONE) for _ in range(3)), return_exceptions=True)
        assert all(type(e).__name__ == "DatabaseBusy" for e in timed_out)
        assert pool_of_one.sync_engine.pool.gate.waiting == 0
        assert (await db.fetch_one(ONE))["one"] == 1


class TestDriverPath:
    async def test_a_cancelled_read_gives_its_connection_and_permit_back(self, pool_of_two):
        db = Database(pool_of_two)
        reading = asyncio.create_task(db.fetch_one(SLEEP, seconds=5))
        await asyncio.sleep(0.3)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        assert pool_of_two.sync_engine.pool.checkedout() == 0
        results = await asyncio.gather(*(db.fetch_one(ONE) for _ in range(4)))
        assert [r["one"] for r in results] == [1, 1, 1, 1]

    async def test_a_connection_lost_mid_read_is_a_503_and_is_not_reused(
        self, pool_of_two, database_urls_for_run
    ):
        import asyncpg

        transport = httpx.ASGITransport(app=gated_app(pool_of_two), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            reading = asyncio.create_task(client.get("/driver-slow"))
            admin = await asyncpg.connect(database_urls_for_run["registry"].replace("+asyncpg", ""))
            try:
                for _ in range(50):
                    await asyncio.sleep(0.1)
                    killed = await admin.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE query LIKE '%lost-mid-read%' AND pid <> pg_backend_pid()"
                    )
                    if killed:
                        break
            finally:
                await admin.close()
            response = await reading
            assert response.status_code == 503
            assert response.json()["type"].endswith("/problems/database-unavailable")
            assert pool_of_two.sync_engine.pool.checkedout() == 0
            for _ in range(3):
                assert (await client.get("/driver")).json() == {"one": 1}

    async def test_a_refused_statement_keeps_the_connection_usable(self, pool_of_two):
        import asyncpg

        db = Database(pool_of_two)
        bad = driver_query(text("SELECT 1 / :zero").bindparams(bindparam("zero")))
        with pytest.raises(asyncpg.DivisionByZeroError):
            await db.fetch_one(bad, zero=0)
        assert pool_of_two.sync_engine.pool.checkedout() == 0
        assert (await db.fetch_one(ONE))["one"] == 1

    async def test_compiled_values_are_defaults_and_named_values_fill_the_rest(self, pool_of_two):
        db = Database(pool_of_two)
        query = driver_query(
            select((literal(40) + bindparam("n")).label("sum"), bindparam("word").label("word"))
        )
        row = await db.fetch_one(query, n=2, word="ok")
        assert (row["sum"], row["word"]) == (42, "ok")

    def test_a_missing_value_is_named(self):
        query = driver_query(select(bindparam("n").label("n")))
        with pytest.raises(TypeError, match="'n'"):
            query.args({})

    def test_like_prefix_escapes_the_wildcards(self):
        assert like_prefix("1.7.") == "1.7.%"
        assert like_prefix("a_b%c/") == "a/_b/%c//%"


class Kind(StrEnum):
    CITY = "city"


class Sample(BaseModel):
    id: int
    name: str
    kind: Kind
    at: datetime
    on: date
    amount: Decimal
    note: str | None
    tags: list[str] = []
    extra: dict = {}


ROWS = [
    {
        "id": 7,
        "name": '浙江省质量技术监督局 "quoted"',
        "kind": "city",
        "at": datetime(2026, 11, 29, 18, 37, 45, 179064, tzinfo=UTC),
        "on": date(2026, 1, 2),
        "amount": Decimal("1234.50"),
        "note": None,
        "tags": ["a", "b"],
        "extra": {"k": [1, 2]},
    },
    {
        "id": 8,
        "name": "x",
        "kind": Kind.CITY,
        "at": datetime(2026, 1, 1, tzinfo=UTC),
        "on": date(2026, 1, 2),
        "amount": Decimal("0"),
        "note": "n",
        "unrelated": "not in the model",
    },
]


class TestFastJson:
    @pytest.mark.parametrize("row", ROWS)
    def test_same_bytes_as_pydantic(self, row):
        assert fast_json(Sample, row).body == Sample.model_validate(row).model_dump_json().encode()

    def test_page_is_the_page_shape(self):
        body = json.loads(fast_page(Sample, ROWS, "abc").body)
        assert body["next_cursor"] == "abc"
        assert body["items"] == [json.loads(Sample.model_validate(r).model_dump_json()) for r in ROWS]

    def test_missing_required_column_is_an_error_not_a_null(self):
        row = dict(ROWS[0])
        del row["name"]
        with pytest.raises(KeyError):
            fast_json(Sample, row)
