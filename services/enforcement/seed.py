"""Seed the enforcement service's demo cases (development only), through the gateway as the
demo officers of the Zhejiang quality-supervision pilot unit would work them:

    DEMO_ADMIN_PASSWORD=... GATEWAY_URL=http://127.0.0.1:8000 python -m services.enforcement.seed

The platform must be running with the registry and gateway seeded (``make run`` calls this
after both). Idempotent: stages already made are left as they are (services/enforcement/demo.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import httpx

from services.common.client import pooled_client
from services.common.settings import Environment
from services.enforcement.config import EnforcementSettings, get_settings
from services.enforcement.demo import (
    DEMO_OFFICER_NAMES,
    DemoPerson,
    DemoSeedError,
    find_demo_officers,
    queue_answerer,
    seed_demo_cases,
)

# The pilot unit whose demo cases are made, as the gateway names its logins.
DEMO_UNIT = "330000-qs"


async def _login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    if response.status_code != 200:
        raise DemoSeedError(f"log in as {username}: {response.status_code} {response.text[:300]}")
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def seed(settings: EnforcementSettings, password: str) -> dict[str, Any]:
    if settings.environment != Environment.DEVELOPMENT:
        return {"skipped": f"demo cases are made in development only, not in {settings.environment}"}
    async with pooled_client(settings.gateway_url, timeout=httpx.Timeout(30.0)) as client:
        headers = {key: await _login(client, f"{key}-{DEMO_UNIT}", password) for key in DEMO_OFFICER_NAMES}
        officers = await find_demo_officers(client, headers["head"])
        people = {key: DemoPerson(officers[key]["id"], headers[key]) for key in DEMO_OFFICER_NAMES}
        # Reviews are answered in the legal-affairs queue by the demo reviewer.
        answerer = queue_answerer(client, headers["legal"], headers["head"])
        return await seed_demo_cases(client, client, people, officers["head"]["bureau_id"], answerer)


def main() -> None:
    password = os.environ.get("DEMO_ADMIN_PASSWORD", "")
    if not password:
        sys.exit("Set DEMO_ADMIN_PASSWORD: the demo officers log in with it.")
    try:
        summary = asyncio.run(seed(get_settings(), password))
    except DemoSeedError as exc:
        sys.exit(f"enforcement demo seed: {exc}")
    print(json.dumps({"enforcement_seed": summary}, ensure_ascii=False))


if __name__ == "__main__":
    main()
