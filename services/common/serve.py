"""Start one part of the platform with JSON logs from the first line.

    python -m services.common.serve registry --port 8001
    python -m services.common.serve registry --worker
    python -m services.common.serve gateway --worker

and the one-shot parts, each run to completion before (or beside) the others:

    python -m services.common.serve migrate        # alembic upgrade head, all four databases
    python -m services.common.serve seed           # reference data and the administrators' logins
    python -m services.common.serve seed --demo    # ... and the demo data
    python -m services.common.serve keys           # development signing key (never in production)
    python -m services.common.serve keys rotate    # ... or any command of gateway.keys

This module is the container image's entrypoint: its first argument selects the part.
uvicorn and arq are run programmatically so that neither installs its own
plain-text logging before ours.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from typing import Any

import uvicorn

from services.common.logging import configure_logging

APPS = {
    "gateway": "gateway.app:create_app",
    "registry": "services.registry.app:create_app",
    "enforcement": "services.enforcement.app:create_app",
    "statistics": "services.statistics.app:create_app",
}

# Each part's settings (where it listens by default).
SETTINGS = {
    "gateway": "gateway.config:GatewaySettings",
    "registry": "services.registry.config:RegistrySettings",
    "enforcement": "services.enforcement.config:EnforcementSettings",
    "statistics": "services.statistics.config:StatisticsSettings",
}

# Each part's WorkerSettings.
WORKERS = {
    "gateway": "gateway.tasks",
    "registry": "services.registry.tasks",
    "enforcement": "services.enforcement.tasks",
    "statistics": "services.statistics.tasks",
}

# Parts that run once and exit: 0 when done.
ONE_SHOT = ("migrate", "seed", "keys")
PARTS = (*APPS, *ONE_SHOT)

# A service keeps an idle connection open longer than its callers' pools keep one
# (services.common.client: 30 s), so a caller never sends a request on a connection the
# service is closing; with uvicorn's 5 s, a request after a pause met a reset (a 503).
SERVICE_KEEP_ALIVE_SECONDS = 75.0


def _load(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def serve_http(part: str, host: str | None, port: int | None) -> None:
    settings = _load(SETTINGS[part])()
    http: Any = "httptools"
    keep_alive = SERVICE_KEEP_ALIVE_SECONDS
    if part == "gateway":
        # The edge: header read timeout and head size limits on top of httptools (gateway/edge.py).
        from gateway.edge import edge_protocol

        http, keep_alive = edge_protocol(settings), settings.keep_alive_timeout_seconds
    uvicorn.run(
        APPS[part],
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        loop="uvloop",
        http=http,
        timeout_keep_alive=keep_alive,
        log_config=None,
        access_log=False,
        # The gateway is the edge: its peer's address is the client's (login throttling counts
        # by it), never what an X-Forwarded-For header claims.
        proxy_headers=part != "gateway",
        timeout_graceful_shutdown=10,
    )


def run_worker_settings(settings: type) -> None:
    """Run an arq worker until SIGTERM/SIGINT. With ``job_completion_wait`` set (every
    service's worker sets it: ``<PART>_WORKER_DRAIN_SECONDS``), the signal stops it taking
    new jobs and lets the running ones finish within that time; only those still running
    then are cancelled (and, being idempotent, run again by another worker)."""
    from services.common.jobs import run_worker

    asyncio.set_event_loop(asyncio.new_event_loop())
    run_worker(settings)


def serve_worker(part: str) -> None:
    run_worker_settings(importlib.import_module(WORKERS[part]).WorkerSettings)


def migrate() -> None:
    """Alembic ``upgrade head`` for the four databases, creating any that is missing (where
    the database user may; a managed server's databases are made beforehand)."""
    import asyncpg

    from tools.platform import create_databases, database_urls
    from tools.platform import migrate as upgrade_all

    urls = database_urls(dict(os.environ))
    try:
        created = asyncio.run(create_databases(urls))
    except (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidCatalogNameError) as exc:
        # Not allowed to look or create: the databases must exist, and the upgrade says if not.
        created = [f"none ({type(exc).__name__}: {exc})"]
    upgrade_all(urls)
    print(json.dumps({"migrate": {"databases": sorted(urls), "created": created, "revision": "head"}}))


def seed(demo: bool) -> None:
    """The seeds ``make run`` runs, each idempotent: the registry's reference data (GB/T 2260
    divisions, the national regulator, the pilot units and their administrator officers), then
    the gateway's accounts (each service's client, an administrator login per bureau; it reads
    the bureaus from the running registry and needs ``DEMO_ADMIN_PASSWORD``). With ``demo``
    also the demo certification chain, officers and plans, and, through the running gateway,
    the demo cases and pilot work (those two are made in development only)."""
    from gateway import seed as gateway_seed
    from services.registry import seed as registry_seed

    registry_seed.main(demo=demo)
    gateway_seed.main()
    if demo:
        from services.enforcement import seed as enforcement_seed
        from services.statistics import seed as statistics_seed

        enforcement_seed.main()
        statistics_seed.main()


def keys(command: list[str]) -> None:
    """The gateway's key tool: with no command, a development signing key made if there is
    none (refused in production); else ``rotate``, ``activate KID``, ``retire KID``, ``list``."""
    from gateway.keys import main as keys_main

    keys_main(command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.common.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("part", choices=PARTS)
    parser.add_argument("--host", help="address to listen on (default: the part's HOST setting)")
    parser.add_argument("--port", type=int, help="port to listen on (default: the part's PORT setting)")
    parser.add_argument("--worker", action="store_true", help="run the part's arq worker instead")
    parser.add_argument("--demo", action="store_true", help="seed: make the demo data too")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker and args.part not in APPS:
        parser.error(f"--worker: {args.part} has no worker")
    if args.demo and args.part != "seed":
        parser.error("--demo goes with seed only")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:  # the rest is the key tool's own command line
        configure_logging("keys", os.environ.get("LOG_LEVEL", "INFO"))
        keys(argv[1:])
        return
    args = parse_args(argv)
    if args.part in ONE_SHOT:
        configure_logging(args.part, os.environ.get("LOG_LEVEL", "INFO"))
        if args.part == "migrate":
            migrate()
        else:
            seed(args.demo)
        sys.stdout.flush()
    elif args.worker:
        configure_logging(f"{args.part}-worker")
        serve_worker(args.part)
    else:
        configure_logging(args.part)
        serve_http(args.part, args.host, args.port)


if __name__ == "__main__":
    main()
