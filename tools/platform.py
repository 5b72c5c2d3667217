"""Bringing the platform up on one machine: preflight checks, databases,
migrations, seeds and the processes (gateway, services, workers).

Used by ``make run`` (tools/run.py), by the end-to-end tests and by the
benchmarks, so all three start the platform the same way.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import redis.asyncio as aioredis

from services.common.migrations import MIGRATED_PARTS, upgrade
from services.common.settings import REPO_ROOT, VAR_DIR, ServiceSettings

DEV_ENV = VAR_DIR / "dev.env"
DEV_SECRETS = (
    "REGISTRY_CLIENT_SECRET",
    "ENFORCEMENT_CLIENT_SECRET",
    "STATISTICS_CLIENT_SECRET",
    "DEMO_ADMIN_PASSWORD",
)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PreflightError(SystemExit):
    pass


def configured_settings(env: dict[str, str]) -> dict[str, ServiceSettings]:
    """The settings of every migrated part, as each would read them under ``env``."""
    from gateway.config import GatewaySettings
    from services.enforcement.config import EnforcementSettings
    from services.registry.config import RegistrySettings
    from services.statistics.config import StatisticsSettings

    with _environ(env):
        return {
            "registry": RegistrySettings(),
            "enforcement": EnforcementSettings(),
            "statistics": StatisticsSettings(),
            "gateway": GatewaySettings(),
        }


def database_urls(env: dict[str, str]) -> dict[str, str]:
    return {part: settings.database_url for part, settings in configured_settings(env).items()}


class _environ:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __enter__(self) -> None:
        self.saved = dict(os.environ)
        os.environ.update(self.env)

    def __exit__(self, *exc: object) -> None:
        os.environ.clear()
        os.environ.update(self.saved)


def load_dev_env() -> dict[str, str]:
    """Development secrets, made once and kept in var/dev.env (the environment wins)."""
    values: dict[str, str] = {}
    if DEV_ENV.exists():
        for line in DEV_ENV.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip()
    missing = [k for k in DEV_SECRETS if k not in values]
    if missing:
        for key in missing:
            values[key] = secrets.token_urlsafe(18)
        DEV_ENV.parent.mkdir(parents=True, exist_ok=True)
        DEV_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        DEV_ENV.chmod(0o600)
    return {**values, **{k: os.environ[k] for k in values if k in os.environ}}


def server_dsn(url: str, database: str = "postgres") -> str:
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
    return parts._replace(path=f"/{database}").geturl()


async def check_postgres(url: str) -> None:
    try:
        conn = await asyncpg.connect(server_dsn(url), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        host = urlsplit(url).netloc.rpartition("@")[2]
        raise PreflightError(
            f"PostgreSQL is not reachable at {host} ({type(exc).__name__}: {exc}). Start it with: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        ) from None
    await conn.close()


async def check_redis(url: str) -> None:
    client = aioredis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as exc:
        raise PreflightError(
            f"Redis is not reachable at {urlsplit(url).netloc} ({type(exc).__name__}). Start it with: "
            'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
        ) from None
    finally:
        await client.aclose()


async def create_databases(urls: dict[str, str]) -> list[str]:
    created = []
    for url in urls.values():
        name = urlsplit(url).path.lstrip("/")
        conn = await asyncpg.connect(server_dsn(url))
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
        finally:
            await conn.close()
    return created


async def drop_databases(urls: dict[str, str]) -> None:
    for url in urls.values():
        name = urlsplit(url).path.lstrip("/")
        conn = await asyncpg.connect(server_dsn(url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def migrate(urls: dict[str, str]) -> None:
    for part in MIGRATED_PARTS:
        upgrade(part, urls[part])


@dataclass
class Platform:
    """The processes of a running platform, started and stopped together."""

    env: dict[str, str]
    gateway_port: int
    service_ports: dict[str, int]
    workers: bool = True
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.service_ports[name]}"

    def process_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "GATEWAY_URL": self.gateway_url}
        for name in self.service_ports:
            env.setdefault(f"GATEWAY_{name.upper()}_URL", self.service_url(name))
        return env

    def _spawn(self, name: str, args: list[str]) -> None:
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env=self.process_env(),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )

    def start_services(self) -> None:
        for name in self.service_ports:
            self.start_service(name)
            if self.workers:
                self._spawn(f"{name}-worker", ["-m", "services.common.serve", name, "--worker"])

    def start_service(self, name: str) -> None:
        self._spawn(name, ["-m", "services.common.serve", name, "--port", str(self.service_ports[name])])

    def start_gateway(self) -> None:
        self._spawn("gateway", ["-m", "services.common.serve", "gateway", "--port", str(self.gateway_port)])

    def wait_ready(self, urls: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(urls)
        while pending:
            self.check_alive()
            url = pending[0]
            try:
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not become ready within {timeout:.0f} s")
            time.sleep(0.2)

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}")

    def stop(self, name: str | None = None, timeout: float = 15.0) -> None:
        names = [name] if name else list(self.processes)
        for n in names:
            proc = self.processes[n]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for n in names:
            proc = self.processes[n]
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if name:
                del self.processes[n]
