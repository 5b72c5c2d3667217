"""The skeleton every service app shares: lifespan, middleware, problems, health."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from services.common.asgi import RequestContextMiddleware
from services.common.audit import AuditLog, CheckpointStore
from services.common.auth import TokenVerifier, jwks_fetcher
from services.common.client import ServiceClient
from services.common.db import Database, make_engine, make_read_sessionmaker, make_sessionmaker
from services.common.health import router as health_router
from services.common.idempotency import IdempotencyMiddleware
from services.common.jobs import job_pool
from services.common.logging import configure_logging
from services.common.openapi import PlatformAPI
from services.common.outages import OutageLog, watch_engine
from services.common.outbox import Inbox, Outbox
from services.common.problems import install_problem_handlers
from services.common.routers import audit_router, events_router, principal_router
from services.common.settings import ServiceSettings


def load_verifier(settings: ServiceSettings) -> TokenVerifier:
    """A verifier on the gateway's key set (``JWKS_URL``, else or failing that ``JWKS_PATH``),
    fetched again for an unknown key id and by :meth:`TokenVerifier.refresh_periodically`."""
    fetch = jwks_fetcher(settings.jwks_url or None, settings.jwks_path, settings.jwks_fetch_timeout_seconds)
    try:
        jwks = fetch()
    except LookupError as exc:
        raise RuntimeError(
            f"The gateway's public key set is missing ({exc}): run `make keys` (or set JWKS_PATH / JWKS_URL)."
        ) from exc
    return TokenVerifier(
        jwks,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        fetch=fetch,
        min_refresh_seconds=settings.jwks_min_refresh_seconds,
    )


@asynccontextmanager
async def platform_state(
    app: FastAPI,
    name: str,
    settings: ServiceSettings,
    audit: AuditLog,
    constraint_problems: dict[str, tuple[str, str]] | None = None,
    outbox: Outbox | None = None,
    inbox: Inbox | None = None,
    verifier: TokenVerifier | None = None,
) -> AsyncIterator[None]:
    """What every app keeps on its state: settings, token checks, database, job queue, events.

    ``verifier``: one kept up to date by its owner (the gateway, which holds the keys);
    otherwise one on the gateway's published key set, refreshed in the background."""
    configure_logging(name, settings.log_level)
    app.state.settings = settings
    app.state.audit = audit
    app.state.outbox = outbox
    app.state.inbox = inbox
    app.state.constraint_problems = constraint_problems or {}
    app.state.verifier = verifier or load_verifier(settings)
    app.state.authorize = app.state.verifier.verify_authorization
    app.state.outages = OutageLog()
    app.state.engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        connect_timeout=settings.db_connect_timeout_seconds,
        connection_wait_seconds=settings.db_connection_wait_seconds,
    )
    app.state.idempotency_engine = make_engine(
        settings.database_url,
        pool_size=settings.idempotency_pool_size,
        max_overflow=0,
        connect_timeout=settings.db_connect_timeout_seconds,
    )
    for engine in (app.state.engine, app.state.idempotency_engine):
        watch_engine(engine, app.state.outages)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.read_sessionmaker = make_read_sessionmaker(app.state.engine)
    app.state.database = Database(app.state.engine)
    app.state.jobs = job_pool(settings.redis_url)
    app.state.audit_checkpoints = CheckpointStore.for_service(settings, name)
    refreshing = None
    if verifier is None:
        refreshing = asyncio.create_task(
            app.state.verifier.refresh_periodically(settings.jwks_refresh_seconds)
        )
    try:
        yield
    finally:
        if refreshing is not None:
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing
        await app.state.audit_checkpoints.aclose()
        await app.state.jobs.aclose()
        await app.state.idempotency_engine.dispose()
        await app.state.engine.dispose()


def create_service_app(
    *,
    name: str,
    title: str,
    description: str,
    settings: ServiceSettings,
    routers: Sequence[APIRouter] = (),
    audit: AuditLog,
    constraint_problems: dict[str, tuple[str, str]] | None = None,
    outbox: Outbox | None = None,
    inbox: Inbox | None = None,
    body_allowances: dict[tuple[str, str], int] | None = None,
    version: str = "1.0.0",
) -> FastAPI:
    """``body_allowances``: (method, exact path) → a body limit above ``settings.max_body_bytes``
    for the few routes that take large streamed uploads."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with platform_state(app, name, settings, audit, constraint_problems, outbox, inbox):
            app.state.services = ServiceClient(settings)
            try:
                yield
            finally:
                await app.state.services.aclose()

    app = PlatformAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"/api/v1/{name}/openapi.json",
        # A redirect would carry the service's own address to the client: a path
        # that is not exactly a route is a 404.
        redirect_slashes=False,
    )
    install_problem_handlers(app)
    app.include_router(health_router)
    for router in (*routers, principal_router(name), audit_router(name)):
        app.include_router(router)
    # Inside the request-context layer (request id, body limit), outside the routes.
    app.add_middleware(IdempotencyMiddleware, ttl_seconds=settings.idempotency_key_ttl_seconds)
    if outbox is not None and inbox is not None:
        app.include_router(events_router(name))
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, body_allowances=body_allowances
    )
    return app
