"""Start one part of the platform with JSON logs from the first line.

    python -m services.common.serve registry --port 8001
    python -m services.common.serve registry --worker
    python -m services.common.serve gateway --worker

uvicorn and arq are run programmatically so that neither installs its own
plain-text logging before ours.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib

import uvicorn

from services.common.logging import configure_logging

APPS = {
    "gateway": "gateway.app:create_app",
    "registry": "services.registry.app:create_app",
    "enforcement": "services.enforcement.app:create_app",
    "statistics": "services.statistics.app:create_app",
}

# Each part's WorkerSettings.
WORKERS = {
    "gateway": "gateway.tasks",
    "registry": "services.registry.tasks",
    "enforcement": "services.enforcement.tasks",
    "statistics": "services.statistics.tasks",
}


SERVICE_KEEP_ALIVE_SECONDS = 75


def serve_http(part: str, host: str, port: int) -> None:
    uvicorn.run(
        APPS[part],
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        # The gateway is the edge: its peer's address is the client's (login throttling counts
        # by it), never what an X-Forwarded-For header claims.
        proxy_headers=part != "gateway",
        # A service keeps an idle connection open longer than its callers' pools keep one
        # (services.common.client: 30 s), so a caller never sends a request on a connection the
        # service is closing; with uvicorn's 5 s, a request after a pause met a reset (a 503).
        timeout_keep_alive=5 if part == "gateway" else SERVICE_KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=10,
    )


def serve_worker(part: str) -> None:
    from arq.worker import run_worker

    settings = importlib.import_module(WORKERS[part]).WorkerSettings
    asyncio.set_event_loop(asyncio.new_event_loop())
    run_worker(settings)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=sorted(APPS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--worker", action="store_true", help="run the part's arq worker instead")
    args = parser.parse_args()
    if args.worker:
        configure_logging(f"{args.part}-worker")
        serve_worker(args.part)
    else:
        configure_logging(args.part)
        serve_http(args.part, args.host, args.port)


if __name__ == "__main__":
    main()
