"""The gateway: tokens, accounts, forwarding to the services, the merged API docs.

``create_app()`` returns a plain ASGI app: requests under a service's prefix go
straight to the proxy; everything else (tokens, accounts, docs, health) to a
FastAPI app. Both sit under the same request-id / metrics / body-limit layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import accounts, keys
from gateway.config import IMPORTS_PATH, SERVICES, GatewaySettings, get_settings
from gateway.edge import BodyDeadline, RateLimits
from gateway.models import AUDIT, INBOX, OUTBOX
from gateway.openapi import MergedOpenAPI, install_docs
from gateway.proxy import Proxy
from gateway.routes import router
from gateway.throttle import LoginThrottle
from services.common.app import platform_state
from services.common.asgi import RequestContextMiddleware
from services.common.auth import Principal, TokenSigner, TokenVerifier
from services.common.client import ServiceClient, SignedTokens, pooled_client, pooled_transport
from services.common.db import utcnow
from services.common.health import router as health_router
from services.common.idempotency import IdempotencyMiddleware
from services.common.openapi import PlatformAPI
from services.common.outages import OutageLog, outage_of
from services.common.problems import Unauthorized, install_problem_handlers
from services.common.routers import audit_router, events_router

CONSTRAINT_PROBLEMS = {
    "uq_account_username": ("username-taken", "The username is taken."),
    "uq_account_officer_id": ("officer-has-account", "The officer already has an account."),
}
TITLE = "Certification enforcement supervision platform"
log = logging.getLogger("gateway")


class Revocations:
    """Tokens the gateway refuses before they expire.

    A disabled account's tokens, and any token issued before its account last
    changed (roles, password, a move or a deactivation in the registry): the
    token carries the account version it was issued from. Services, which check
    tokens on their own, stop accepting them when they expire (one lifetime).
    """

    def __init__(self) -> None:
        self.disabled: set[str] = set()
        self.versions: dict[str, int] = {}
        self._noted_during_refresh: dict[str, tuple[bool, int]] | None = None
        # One refresh at a time: the watcher's and an on-demand one share the notes above.
        self._refreshing = asyncio.Lock()

    def note(self, account_id: str, active: bool, version: int = 0) -> None:
        if active:
            self.disabled.discard(account_id)
        else:
            self.disabled.add(account_id)
        self.versions[account_id] = max(version, self.versions.get(account_id, 0))
        if self._noted_during_refresh is not None:
            self._noted_during_refresh[account_id] = (active, version)

    def refusal(self, principal: Principal) -> str | None:
        """Why the token of ``principal`` is refused, or None."""
        if principal.account_id in self.disabled:
            return "The account of this token is disabled."
        current = self.versions.get(principal.account_id)
        if current is not None and (principal.account_version or 0) < current:
            return "The account changed after this token was issued; obtain a new one."
        return None

    async def refresh(self, maker, lifetime_seconds: float) -> None:
        async with self._refreshing:
            # A change noted while the query runs may be newer than what it read: keep it.
            self._noted_during_refresh = {}
            try:
                since = utcnow() - timedelta(seconds=lifetime_seconds + 60)
                async with maker() as session:  # type: AsyncSession
                    disabled, versions = await accounts.revoked_accounts(session, since)
                for account_id, (active, version) in self._noted_during_refresh.items():
                    (disabled.discard if active else disabled.add)(account_id)
                    versions[account_id] = max(version, versions.get(account_id, 0))
                self.disabled, self.versions = disabled, versions
            finally:
                self._noted_during_refresh = None

    async def watch(
        self, maker, interval: float, lifetime_seconds: float, outages: OutageLog | None = None
    ) -> None:
        outages = outages or OutageLog()
        while True:
            try:
                await self.refresh(maker, lifetime_seconds)
            except Exception as exc:  # keep the last known set; the next round tries again
                store = outage_of(exc)
                if store is None:
                    log.exception("could not refresh revoked accounts")
                else:
                    outages.failed(store, exc)  # logged once per outage
            await asyncio.sleep(interval)


def build_api(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            ring = keys.KeyRing.load(settings)
        except keys.NoSigningKey as exc:
            raise RuntimeError(f"{exc} (`make keys`)") from exc
        # The gateway holds the keys: its verifier takes them from the directory, never over HTTP.
        own_verifier = TokenVerifier(
            ring.jwks(), issuer=settings.token_issuer, audience=settings.token_audience
        )
        async with platform_state(
            app, "gateway", settings, AUDIT, CONSTRAINT_PROBLEMS, OUTBOX, INBOX, verifier=own_verifier
        ):
            app.state.signer = TokenSigner(
                ring.active_pem,
                issuer=settings.token_issuer,
                audience=settings.token_audience,
                lifetime_seconds=settings.token_lifetime_seconds,
            )
            app.state.jwks_bytes = ring.jwks_bytes()

            def use_keys(ring: keys.KeyRing) -> None:
                # Published first, then signing: a token of the new key is never issued before
                # its key is in the set this gateway serves and verifies with.
                own_verifier.set_keys(ring.jwks())
                app.state.jwks_bytes = ring.jwks_bytes()
                app.state.signer.use(ring.active_pem)

            with contextlib.suppress(OSError):  # a read-only mount: the key tool writes it
                keys.write_jwks(ring, settings.jwks_path)
            app.state.login_throttle = LoginThrottle.connect(settings)
            app.state.rate_limits = RateLimits.connect(settings)
            verifier, revocations = app.state.verifier, Revocations()

            def authorize(header: str | None) -> Principal:
                principal = verifier.verify_authorization(header)
                refusal = revocations.refusal(principal)
                if refusal is not None:
                    raise Unauthorized(refusal)
                return principal

            app.state.revocations = revocations
            app.state.authorize = authorize
            timeout = httpx.Timeout(
                connect=settings.upstream_connect_timeout,
                read=settings.upstream_read_timeout,
                write=settings.upstream_read_timeout,
                pool=settings.upstream_pool_timeout,
            )
            app.state.upstream_timeout = timeout
            # One pool per upstream, shared by the proxy and the gateway's own calls.
            transports = {name: pooled_transport(settings.upstream_max_connections) for name in SERVICES}
            app.state.upstreams = {
                name: pooled_client(url, timeout=timeout, transport=transports[name])
                for name, url in settings.upstreams().items()
            }
            app.state.upstream_transports = transports
            # The gateway's own calls to the registry: its pool, its own signed token.
            app.state.registry = ServiceClient(
                http=app.state.upstreams["registry"],
                tokens=SignedTokens(app.state.signer, accounts.GATEWAY_PRINCIPAL),
            )
            app.state.registry_officers = accounts.RegistryOfficers(app.state.registry)
            app.state.openapi = MergedOpenAPI(app, app.state.upstreams)
            background = [
                asyncio.create_task(keys.watch(settings, use_keys, settings.signing_key_reload_seconds)),
                asyncio.create_task(
                    revocations.watch(
                        app.state.sessionmaker,
                        settings.revocation_refresh_seconds,
                        settings.token_lifetime_seconds,
                        app.state.outages,
                    )
                ),
            ]
            try:
                yield
            finally:
                for task in background:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                for client in app.state.upstreams.values():
                    await client.aclose()
                await app.state.login_throttle.aclose()
                await app.state.rate_limits.aclose()

    api = PlatformAPI(
        title=TITLE,
        version="1.0.0",
        description=(
            "REST API of the certification enforcement supervision platform (认证执法监督平台). "
            "Obtain a token at `POST /api/v1/auth/token`, then call the registry, enforcement and "
            "statistics services under `/api/v1/registry`, `/api/v1/enforcement` and "
            "`/api/v1/statistics` with `Authorization: Bearer <token>`. Errors are RFC 9457 "
            "problem documents. Lists are keyset-paginated: pass `next_cursor` back as `cursor`."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # as the services: no redirects, a path is exact or 404
    )
    install_problem_handlers(api)
    api.add_middleware(IdempotencyMiddleware, ttl_seconds=settings.idempotency_key_ttl_seconds)
    api.include_router(health_router)
    api.include_router(router)
    api.include_router(audit_router("auth"))
    api.include_router(events_router("auth"))
    install_docs(api, TITLE)
    return api


class GatewayApp:
    """Sends service paths to the proxy and the rest to the gateway's own API."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api
        self.prefixes = {f"/api/v1/{name}/": name for name in SERVICES}
        self._proxy: Proxy | None = None

    def proxy(self) -> Proxy:
        if self._proxy is None:
            state = self.api.state
            self._proxy = Proxy(
                {
                    name: (client.base_url, state.upstream_transports[name])
                    for name, client in state.upstreams.items()
                },
                state.upstream_timeout,
                state.authorize,
                state.rate_limits,
            )
        return self._proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/api/v1/"):
                service = self.prefixes.get(path[: path.find("/", 8) + 1])
                if service is not None:
                    await self.proxy()(scope, receive, send, service)
                    return
        await self.api(scope, receive, send)


def create_app(settings: GatewaySettings | None = None) -> ASGIApp:
    settings = settings or get_settings()
    api = build_api(settings)
    app = RequestContextMiddleware(
        BodyDeadline(
            GatewayApp(api),
            timeout_seconds=settings.body_timeout_seconds,
            min_rate_bytes=settings.body_min_rate_bytes,
        ),
        max_body_bytes=settings.max_body_bytes,
        body_allowances={("POST", IMPORTS_PATH): settings.import_max_body_bytes},
    )
    app.api = api  # type: ignore[attr-defined]  # tests and tools reach the FastAPI app here
    return app
