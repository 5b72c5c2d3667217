"""Seed the pilot board's demo data (development only), through the gateway as the demo
administrators of two pilot units and of the national regulator would enter it:

    DEMO_ADMIN_PASSWORD=... GATEWAY_URL=http://127.0.0.1:8000 python -m services.statistics.seed

The platform must be running with the registry and gateway seeded (``make run`` calls this
after both). Idempotent: a unit that already has submissions is left as it is.
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
from services.statistics.config import StatisticsSettings, get_settings

API = "/api/v1/statistics/pilots"


class DemoSeedError(RuntimeError):
    pass


# (login of the unit's administrator, what it submits, the problem it reports)
DEMO_UNITS: tuple[tuple[str, list[dict[str, Any]], dict[str, Any]], ...] = (
    (
        "admin-330000-qs",
        [
            {
                "milestone": "implementation_plan",
                "submitted_on": "2008-09-08",
                "title": "浙江省认证执法监督机制试点实施方案",
                "plan": "一、工作目标；二、试点内容：执法责任制、全过程执法监督；三、进度安排。",
            },
            {
                "milestone": "summary_2008",
                "submitted_on": "2008-12-09",
                "achievements": "建立认证执法责任制，明确各岗位职责与执法步骤。",
                "problems": "基层执法人员不足，执法文书格式不统一。",
                "typical_experience": "双人执法、全过程记录、案件集体讨论。",
            },
        ],
        {
            "subject": "执法文书格式不统一",
            "description": "各地市使用的认证执法文书格式不一致，请总局明确统一格式。",
            "reported_on": "2008-10-06",
        },
    ),
    (
        "admin-320000-ee",
        [
            {
                "milestone": "implementation_plan",
                "submitted_on": "2008-09-12",
                "title": "江苏出入境检验检疫局认证执法监督试点实施方案",
                "plan": "以分支局为基层试点单位，建立进出口认证产品执法监督机制。",
            }
        ],
        {
            "subject": "口岸认证产品查验与执法衔接",
            "description": "口岸查验发现的认证违法线索如何移交执法机构，请明确程序。",
            "reported_on": "2008-11-03",
        },
    ),
)


async def _login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    if response.status_code != 200:
        raise DemoSeedError(f"log in as {username}: {response.status_code} {response.text[:300]}")
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _checked(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        raise DemoSeedError(f"{what}: {response.status_code} {response.text[:300]}")
    return response.json()


async def seed_pilot_work(client: httpx.AsyncClient, headers_of: dict[str, dict[str, str]]) -> list[str]:
    """Each demo unit's submissions and problem, as its administrator (``headers_of[login]``);
    a unit that already has submissions is left as it is. Returns the logins that seeded."""
    seeded: list[str] = []
    for username, submissions, problem in DEMO_UNITS:
        headers = headers_of[username]
        board = _checked(
            await client.get(API, params={"limit": 1}, headers=headers), f"{username}: the board"
        )
        if not board["items"]:
            raise DemoSeedError(f"{username}: no pilot unit in its scope")
        unit_id = board["items"][0]["unit_id"]
        listed = _checked(
            await client.get(f"{API}/{unit_id}/submissions", headers=headers), f"{username}: submissions"
        )
        if listed["items"]:
            continue
        for body in submissions:
            _checked(
                await client.post(f"{API}/{unit_id}/submissions", json=body, headers=headers),
                f"{username}: {body['milestone']}",
            )
        _checked(
            await client.post(f"{API}/{unit_id}/problems", json=problem, headers=headers),
            f"{username}: problem",
        )
        seeded.append(username)
    return seeded


async def seed(settings: StatisticsSettings, password: str) -> dict[str, Any]:
    if settings.environment != Environment.DEVELOPMENT:
        return {"skipped": f"demo pilot work is made in development only, not in {settings.environment}"}
    async with pooled_client(settings.gateway_url, timeout=httpx.Timeout(30.0)) as client:
        headers_of = {login: await _login(client, login, password) for login, _, _ in DEMO_UNITS}
        return {"seeded_units": await seed_pilot_work(client, headers_of)}


def main() -> None:
    password = os.environ.get("DEMO_ADMIN_PASSWORD", "")
    if not password:
        sys.exit("Set DEMO_ADMIN_PASSWORD: the demo administrators log in with it.")
    try:
        summary = asyncio.run(seed(get_settings(), password))
    except DemoSeedError as exc:
        sys.exit(f"demo pilot work: {exc}")
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
