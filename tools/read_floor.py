"""The floor under the registry's hot read: a minimal FastAPI endpoint on raw asyncpg.

It serves the row the registry's ``GET /api/v1/registry/bureaus/{id}`` serves (the
bureau with its division's name), with no token check, no ORM and no middleware:
what any FastAPI app on this machine pays at least for the same read. Run by uvicorn
exactly like the services (one worker, uvloop, httptools), from ``make bench``:

    FLOOR_DATABASE_URL=postgresql://… python -m uvicorn tools.read_floor:create_app --factory
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

BUREAU_SQL = (
    "SELECT b.*, d.name AS division_name FROM bureau b "
    "LEFT JOIN division d ON d.code = b.division_code WHERE b.id = $1"
)


def create_app() -> FastAPI:
    dsn = os.environ["FLOOR_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    pool_size = int(os.environ.get("FLOOR_POOL_SIZE", "20"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            dsn, min_size=pool_size, max_size=pool_size, server_settings={"timezone": "UTC"}
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/bureaus/{bureau_id}")
    async def read_bureau(bureau_id: int, request: Request) -> Response:
        async with request.app.state.pool.acquire() as conn:
            row = await conn.fetchrow(BUREAU_SQL, bureau_id)
        if row is None:
            return Response(status_code=404)
        return Response(orjson.dumps(dict(row)), media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> Response:
        return Response(b"{}", media_type="application/json")

    return app
