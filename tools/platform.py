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


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


@dataclass
class _Restarts:
    quick_exits: int = 0  # exits in a row, each soon after its start
    due: float | None = None  # when the exited process is started again


@dataclass
class Platform:
    """The processes of a running platform, started and stopped together.

    :meth:`supervise` starts again any process that exits on its own: an arq worker
    exits when Redis goes away, and a service may crash; the rest keeps running.
    """

    env: dict[str, str]
    gateway_port: int
    service_ports: dict[str, int]
    workers: bool = True
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Restart backoff: the first wait, doubled per quick exit in a row, up to the cap; a
    # process that ran longer than ``stable_after`` seconds starts the count afresh.
    restart_delay: float = 1.0
    max_restart_delay: float = 30.0
    stable_after: float = 30.0
    commands: dict[str, list[str]] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _restarts: dict[str, _Restarts] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.service_ports[name]}"

    def process_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "GATEWAY_URL": self.gateway_url}
        # Services take the signing keys from the gateway (JWKS_PATH while it is away).
        env.setdefault("JWKS_URL", f"{self.gateway_url}/.well-known/jwks.json")
        for name in self.service_ports:
            env.setdefault(f"GATEWAY_{name.upper()}_URL", self.service_url(name))
        return env

    def _spawn(self, name: str, args: list[str]) -> None:
        self.commands[name] = args
        self._started[name] = time.monotonic()
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
                self.start_worker(name)

    def start_service(self, name: str) -> None:
        self._spawn(name, ["-m", "services.common.serve", name, "--port", str(self.service_ports[name])])

    def start_worker(self, part: str) -> None:
        self._spawn(f"{part}-worker", ["-m", "services.common.serve", part, "--worker"])

    def start_gateway(self) -> None:
        self._spawn("gateway", ["-m", "services.common.serve", "gateway", "--port", str(self.gateway_port)])
        if self.workers:
            self.start_worker("gateway")  # it applies the registry's officer changes

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

    def supervise(self) -> list[str]:
        """One round of supervision: say which processes exited and why, and start each
        again once its backoff has passed. Returns what happened, one line each."""
        now = time.monotonic()
        said = []
        for name, proc in list(self.processes.items()):
            if proc.poll() is None:
                continue
            restarts = self._restarts.setdefault(name, _Restarts())
            if restarts.due is None:
                quick = now - self._started[name] < self.stable_after
                restarts.quick_exits = restarts.quick_exits + 1 if quick else 1
                delay = min(self.max_restart_delay, self.restart_delay * 2 ** (restarts.quick_exits - 1))
                restarts.due = now + delay
                said.append(f"{name} exited ({exit_reason(proc.returncode)}); restarting in {delay:g} s")
            elif now >= restarts.due:
                restarts.due = None
                self._spawn(name, self.commands[name])
                said.append(f"{name} restarted")
        return said

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
