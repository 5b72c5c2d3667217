"""``make run``: bring the whole platform up on this machine, and stop it on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from tools.platform import (
    DEV_ENV,
    Platform,
    PreflightError,
    check_postgres,
    check_redis,
    configured_settings,
    create_databases,
    database_urls,
    load_dev_env,
    migrate,
    server_dsn,
)


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run_module(module: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", module], check=True, env={**os.environ, **env})


def main() -> None:
    env = load_dev_env()
    os.environ.update(env)
    settings = configured_settings(env)
    urls = database_urls(env)
    try:
        for url in {server_dsn(u): u for u in urls.values()}.values():  # each PostgreSQL server once
            asyncio.run(check_postgres(url))
        asyncio.run(check_redis(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")))
    except PreflightError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    step("databases")
    created = asyncio.run(create_databases(urls))
    print(f"    created: {', '.join(created) or 'none (all present)'}")
    step("signing keys")
    run_module("gateway.keys", env)
    step("migrations")
    migrate(urls)
    step("reference data")
    run_module("services.registry.seed", env)

    platform = Platform(
        env=env,
        gateway_port=settings["gateway"].port,
        service_ports={name: settings[name].port for name in ("registry", "enforcement", "statistics")},
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        step("starting services and workers")
        platform.start_services()
        platform.wait_ready([platform.service_url(n) for n in platform.service_ports])
        step("starting the gateway")
        platform.start_gateway()
        platform.wait_ready([platform.gateway_url])
        # The seeds call the running platform: where its processes listen, as they are told.
        step("accounts")
        run_module("gateway.seed", platform.process_env())
        step("demo cases")
        try:
            # Through the gateway, as the demo officers: the enforcement service asks the
            # registry for subjects and officers' posts, and its worker sends the revocation.
            run_module("services.enforcement.seed", platform.process_env())
        except subprocess.CalledProcessError:
            print("    the demo cases were not all made (see above); the platform runs on", flush=True)
        step("demo pilot work")
        try:
            # The pilot board's demo submissions and problems, as two pilot units' administrators.
            run_module("services.statistics.seed", platform.process_env())
        except subprocess.CalledProcessError:
            print("    the demo pilot work was not all made (see above); the platform runs on", flush=True)
        print_welcome(platform, env)
        while not stopping:
            # A crashed process is started again (an arq worker exits when Redis restarts).
            for line in platform.supervise():
                step(line)
            time.sleep(0.5)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
    finally:
        step("stopping")
        platform.stop()
    sys.exit(0 if stopping else 1)


def print_welcome(platform: Platform, env: dict[str, str]) -> None:
    url = platform.gateway_url
    password = env["DEMO_ADMIN_PASSWORD"]
    print(
        f"""
The platform is running. Ctrl-C stops all of it.

  API docs       {url}/docs  (ReDoc: {url}/redoc, OpenAPI: {url}/openapi.json)
  Demo logins    user "admin" (national regulator) and "admin-<division>-<ee|qs>" for each
                 pilot unit (e.g. admin-330000-qs); its enforcement officers
                 "officer1-<division>-<ee|qs>", "officer2-…", the head "head-…" and the
                 legal-affairs reviewer "legal-…" (e.g. head-330000-qs); password {password}
                 (kept in {DEV_ENV}; set DEMO_ADMIN_PASSWORD before the first run to choose it)
  Demo cases     the Zhejiang quality-supervision pilot (officer1-330000-qs) has cases at
                 several stages: {url}/api/v1/enforcement/cases

First request:

  TOKEN=$(curl -s -X POST {url}/api/v1/auth/token \\
      -d grant_type=password -d username=admin -d password='{password}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -H "Authorization: Bearer $TOKEN" '{url}/api/v1/registry/bureaus?limit=5'
""",
        flush=True,
    )


if __name__ == "__main__":
    main()
