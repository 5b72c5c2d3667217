"""Test-run fixtures: per-run databases migrated with Alembic, signing keys,
in-process apps driven through ASGI, and token factories.

The environment is set at import time, before any settings object exists,
so every part of the platform reads the test databases and keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from services.common.settings import VAR_DIR

RUN_ID = os.environ.get("TEST_RUN_ID") or f"t{os.getpid()}"
RUN_DIR = VAR_DIR / "test-runs" / RUN_ID
# Mutation testing runs the suite once per mutant, one run at a time: the first run
# sets the databases up and later ones reuse them (the tests already share them).
KEEP_DATABASES = os.environ.get("TEST_KEEP_DATABASES") == "1"
READY_MARK = RUN_DIR / "databases-ready"
PARTS = ("registry", "enforcement", "statistics", "gateway")
TEST_ENV = {
    "PLATFORM_ENV": "test",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    # Runs share that Redis database: each run's workers take only its own jobs.
    "ARQ_QUEUE_PREFIX": f"arq:{RUN_ID}:",
    "JWKS_PATH": str(RUN_DIR / "keys" / "jwks.json"),
    "GATEWAY_SIGNING_KEY_DIR": str(RUN_DIR / "keys" / "signing"),
    # The run's first key (the tests that sign tokens by hand read it here).
    "GATEWAY_PRIVATE_KEY_PATH": str(RUN_DIR / "keys" / "signing" / "signing-key.pem"),
    # The audit chains' checkpoints of this run only, though runs share the Redis database.
    "AUDIT_CHECKPOINT_KEY_PREFIX": f"audit-checkpoint:{RUN_ID}:",
    "LOG_LEVEL": "WARNING",
    # Failed logins counted by this run only, though runs share the Redis database.
    "GATEWAY_LOGIN_THROTTLE_KEY_PREFIX": f"login-throttle:{RUN_ID}:",
    "GATEWAY_RATE_LIMIT_KEY_PREFIX": f"rate-limit:{RUN_ID}:",
    **{
        f"{p.upper()}_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_{RUN_ID}_{p}"
        for p in PARTS
    },
    **{f"{p.upper()}_CLIENT_SECRET": f"test-secret-{p}-{RUN_ID}" for p in PARTS if p != "gateway"},
    "DEMO_ADMIN_PASSWORD": "demo-password-for-tests",
}
os.environ.update(TEST_ENV)

# Imported after the environment is set.
from gateway.config import GatewaySettings  # noqa: E402
from gateway.keys import active_signing_pem, ensure_keys  # noqa: E402
from services.common.auth import Principal, PrincipalKind, Role, TokenSigner  # noqa: E402
from services.registry.models import NATIONAL_BUREAU_ID  # noqa: E402
from tools.platform import create_databases, database_urls, drop_databases, migrate  # noqa: E402


@pytest.fixture(scope="session")
def database_urls_for_run() -> dict[str, str]:
    return database_urls(TEST_ENV)


# The in-process apps and the real processes of the end-to-end tests run side by side, each
# with its pools: PostgreSQL's default of 100 connections is too few for the whole suite.
NEEDED_CONNECTIONS = 300


async def _check_connection_room() -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        allowed = int(await conn.fetchval("SHOW max_connections"))
    finally:
        await conn.close()
    if allowed < NEEDED_CONNECTIONS:
        pytest.exit(
            f"PostgreSQL allows {allowed} connections; the suite needs {NEEDED_CONNECTIONS}. Raise it "
            f"(psql -U postgres -c 'ALTER SYSTEM SET max_connections = {NEEDED_CONNECTIONS}', then "
            "restart PostgreSQL; .ci/run does both) and run again.",
            returncode=3,
        )


@pytest.fixture(scope="session", autouse=True)
async def platform_databases(database_urls_for_run) -> AsyncIterator[dict[str, str]]:
    """Fresh databases for this run, migrated and seeded once; dropped at the end."""
    from services.registry.config import get_settings as registry_settings
    from services.registry.seed import seed

    await _check_connection_room()
    ensure_keys(GatewaySettings())
    if not (KEEP_DATABASES and READY_MARK.exists()):
        await drop_databases(database_urls_for_run)
        await create_databases(database_urls_for_run)
        await asyncio.to_thread(migrate, database_urls_for_run)
        await seed(registry_settings())
        READY_MARK.touch()
    yield database_urls_for_run
    if not KEEP_DATABASES:
        await drop_databases(database_urls_for_run)
        shutil.rmtree(RUN_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def signer() -> TokenSigner:
    settings = GatewaySettings()
    return TokenSigner(
        active_signing_pem(settings),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime_seconds=300,
    )


TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def token_for(signer) -> TokenFactory:
    """A token for a principal of a bureau: ``token_for(bureau, roles=("admin",))``."""

    def make(
        bureau: dict | None = None,
        roles=(Role.ADMIN,),
        kind=PrincipalKind.OFFICER,
        officer_id: int | None = None,
        body: str | None = None,
        **overrides,
    ) -> str:
        bureau = bureau or {"id": NATIONAL_BUREAU_ID, "path": f"{NATIONAL_BUREAU_ID}."}
        principal = Principal(
            account_id=overrides.pop("account_id", str(uuid.uuid4())),
            kind=kind,
            bureau_id=bureau["id"],
            bureau_path=bureau["path"],
            roles=frozenset(roles),
            body=body,
            officer_id=officer_id,
        )
        return signer.issue(principal, **overrides)

    return make


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict:
    """``response`` is the problem ``type_`` (``/problems/<rule>``, the rule broken) with
    ``status``: a status alone does not tell which rule refused the request. Returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    problem = response.json()
    assert (problem["type"], problem["status"]) == (type_, status), problem
    return problem


async def _app_client(
    app, base_url: str, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """``raise_app_exceptions=False`` drives the app as a server would: an error becomes a response."""
    api = getattr(app, "api", app)
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            client.app = api  # type: ignore[attr-defined]
            client.asgi = app  # type: ignore[attr-defined]  # the whole app, middleware included
            yield client


@pytest.fixture(scope="session")
async def registry() -> AsyncIterator[httpx.AsyncClient]:
    from services.registry.app import create_app

    async for client in _app_client(create_app(), "http://registry"):
        yield client


@pytest.fixture(scope="session")
async def enforcement(registry_url, signer) -> AsyncIterator[httpx.AsyncClient]:
    """The enforcement app, calling the in-process registry over a real socket as the
    enforcement service (the gateway's part of such a call is the token, signed here)."""
    from services.common.client import ServiceClient, SignedTokens
    from services.enforcement.app import create_app

    async for client in _app_client(create_app(), "http://enforcement"):
        api = client.app  # type: ignore[attr-defined]
        await api.state.services.aclose()
        api.state.services = ServiceClient(
            base_url=registry_url, tokens=SignedTokens(signer, service_principal("enforcement"))
        )
        api.state.registry = None
        yield client
        await api.state.services.aclose()


@pytest.fixture(scope="session")
async def enforcement_url(enforcement) -> AsyncIterator[str]:
    """The in-process enforcement app on a real socket, for the statistics service to call."""
    from tests.servers import serve

    async with serve(enforcement.app) as url:
        yield url


@pytest.fixture(scope="session")
async def statistics(registry_url, enforcement_url, signer) -> AsyncIterator[httpx.AsyncClient]:
    """The statistics app, calling the in-process registry and enforcement over real sockets as
    the statistics service (routed by path prefix, as the gateway routes)."""
    from services.common.client import ServiceClient, SignedTokens
    from services.statistics.app import create_app
    from tests.servers import RoutedTransport

    transport = RoutedTransport({"registry": registry_url, "enforcement": enforcement_url})
    async for client in _app_client(create_app(), "http://statistics"):
        api = client.app  # type: ignore[attr-defined]
        await api.state.services.aclose()
        http = httpx.AsyncClient(base_url="http://services", transport=transport, trust_env=False)
        api.state.services = ServiceClient(
            http=http, tokens=SignedTokens(signer, service_principal("statistics"))
        )
        yield client
        await http.aclose()


def service_principal(name: str) -> Principal:
    return Principal(
        account_id=f"svc-{name}",
        kind=PrincipalKind.SERVICE,
        bureau_id=NATIONAL_BUREAU_ID,
        bureau_path=f"{NATIONAL_BUREAU_ID}.",
        roles=frozenset({Role.SERVICE}),
    )


@pytest.fixture(scope="session")
async def registry_url(registry) -> AsyncIterator[str]:
    """The in-process registry on a real socket, for the gateway to call."""
    from tests.servers import serve

    async with serve(registry.app) as url:
        yield url


@pytest.fixture(scope="session")
async def gateway(registry_url) -> AsyncIterator[httpx.AsyncClient]:
    from gateway.app import create_app

    async for client in _app_client(create_app(GatewaySettings(registry_url=registry_url)), "http://gateway"):
        yield client


@contextlib.asynccontextmanager
async def scratch_registry(name: str, **settings) -> AsyncIterator[httpx.AsyncClient]:
    """A registry app on a freshly migrated, empty database of its own (``name`` tells it
    apart), for tests that tamper with what other tests must not see. Its audit chain has
    checkpoints of its own; ``settings`` override the registry's."""
    from services.common.migrations import upgrade
    from services.registry.app import create_app
    from services.registry.config import RegistrySettings

    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_{RUN_ID}_scratch_{name}"
    await drop_databases({"scratch": url})
    await create_databases({"scratch": url})
    try:
        await asyncio.to_thread(upgrade, "registry", url)
        prefix = f"{TEST_ENV['AUDIT_CHECKPOINT_KEY_PREFIX']}scratch-{name}:"
        settings = {"database_url": url, "audit_checkpoint_key_prefix": prefix, **settings}
        async for client in _app_client(create_app(RegistrySettings(**settings)), "http://scratch"):
            yield client
    finally:
        await drop_databases({"scratch": url})


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def run_dir() -> Path:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    return RUN_DIR


@pytest.fixture(scope="session")
async def world(registry, enforcement, token_for):
    """The enforcement procedure's world (tests/world.py): a province, city and county with
    posts and officers; shared by the enforcement tests and the registry's dossier tests."""
    from tests.world import build_world

    return await build_world(registry, token_for)
