"""The `cases` and `transitions` sections of ``make bench``.

* ``cases`` — the case list at 1,000,000 cases (loaded with COPY into the enforcement
  database), filtered to "overdue in my subtree", through the gateway under concurrent
  load (wrk), p50 and p99.
* ``transitions`` — a case transition (its timeline entry, audit entry and outbox event
  included) under concurrent load, straight to the enforcement service, against the
  same number of plain single-row ``UPDATE`` + ``INSERT`` transactions in asyncpg with
  the same concurrency, alternating rounds in the same run.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import httpx

from services.common.auth import Role

CHUNK = 50_000
PROVINCE_ID = 8  # a provincial pilot unit the registry seed makes
STATES = (
    ("investigating", 0.35),
    ("opened", 0.1),
    ("under_review", 0.1),
    ("notified", 0.1),
    ("decided", 0.1),
    ("executing", 0.05),
    ("closed", 0.2),
)
BENCH_OFFICER = 990_001  # the officer of the "mine" filter: assigned to a few hundred cases


def raw_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _pick(rng: random.Random, weighted) -> str:
    value, total = rng.random(), 0.0
    for item, weight in weighted:
        total += weight
        if value < total:
            return item
    return weighted[-1][0]


async def load_cases(url: str, count: int, provinces: list[tuple[int, str]]) -> dict[str, Any]:
    """``count`` cases spread over 10 cities × 10 counties of each province (paths below the
    provinces' own), about 40 % of the running ones past their earliest deadline."""
    started = time.perf_counter()
    rng = random.Random(20261129)  # noqa: S311 - bench data
    today = date.today()
    conn = await asyncpg.connect(raw_url(url))
    try:
        subtrees = [
            (pid, f"{path}{pid * 1000 + city}.{pid * 100000 + city * 100 + county}.")
            for pid, path in provinces
            for city in range(10)
            for county in range(10)
        ]
        columns = [
            "number", "bureau_id", "bureau_path", "procedure", "state", "title", "party_name",
            "party_kind", "subject_type", "subject_id", "rule_set", "opened_on", "decision_extension_days",
            "needs_legal_review", "legal_review_categories", "needs_filing", "circumstances", "flag_reasons",
            "review_state", "statement_waived", "collective_decision", "fine_decided", "fine_current",
            "paid_total", "next_due", "next_due_rule", "created_by", "version", "created_at", "updated_at",
            "violation_code",
        ]  # fmt: skip
        now = datetime.now(UTC)
        overdue = 0
        serial = 0
        for start in range(0, count, CHUNK):
            rows = []
            for _ in range(min(CHUNK, count - start)):
                serial += 1
                _, path = subtrees[serial % len(subtrees)]
                bureau_id = int(path.rstrip(".").split(".")[-1])
                state = _pick(rng, STATES)
                opened = today - timedelta(days=rng.randint(1, 400))
                due = None if state == "closed" else opened + timedelta(days=rng.choice((15, 90, 120)))
                overdue += due is not None and due < today
                rows.append((
                    f"基准罚字〔{opened.year}〕{serial}号", bureau_id, path, "ordinary", state, "基准案件",
                    f"基准企业{serial % 100000:06d}", "organisation", "enterprise", serial % 100000 + 1,
                    "samr-2022", opened, 0, serial % 50 == 0, [], serial % 20 == 0, [], "{}", "not_requested",
                    False, False, 0, 0, 0, due, "decision" if due else None, "bench", 1, now, now,
                    "uncertified-ccc-product",
                ))  # fmt: skip
            await conn.copy_records_to_table("case", records=rows, columns=columns)
        # The bench officer is one of two officers of every 3,000th case.
        ids = await conn.fetch('SELECT id FROM "case" WHERE id % 3000 = 0')
        await conn.copy_records_to_table(
            "case_officer",
            records=[(r["id"], BENCH_OFFICER, "基准执法员", "ZJ-BENCH", today, "bench") for r in ids],
            columns=["case_id", "officer_id", "name", "credential_number", "assigned_on", "assigned_by"],
        )
        await conn.execute('ANALYZE "case"; ANALYZE case_officer')
    finally:
        await conn.close()
    return {"cases": count, "overdue": overdue, "mine": len(ids), "seconds": time.perf_counter() - started}


CASE_QUERIES = [
    "/api/v1/enforcement/cases?overdue=true&limit=50",
    "/api/v1/enforcement/cases?overdue=true&state=investigating&limit=50",
    "/api/v1/enforcement/cases?overdue=true&mine=true&limit=50",
    "/api/v1/enforcement/cases?overdue=true&opened_from={year_ago}&limit=50",
]


# --- transitions --------------------------------------------------------------------

SUSPEND = {"step": "suspend_investigation", "reason": "等待检测结果", "suspension_kind": "testing"}
RESUME = {"step": "resume_investigation", "reason": "检测完成"}


async def transition_load(base: str, token: str, case_ids: list[int], seconds: float) -> dict[str, float]:
    """Each client takes its own case to suspended and back, as fast as it is answered."""
    done, failed, latencies = 0, 0, []
    stop_at = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=len(case_ids))
    async with aiohttp.ClientSession(base, connector=connector) as http:

        async def client(case_id: int) -> None:
            nonlocal done, failed
            async with http.get(
                f"/api/v1/enforcement/cases/{case_id}", headers={"Authorization": token}
            ) as r:
                version, state = r.headers["ETag"], (await r.json())["state"]
            while time.perf_counter() < stop_at:
                body = SUSPEND if state == "investigating" else RESUME
                t0 = time.perf_counter()
                async with http.post(
                    f"/api/v1/enforcement/cases/{case_id}/transitions",
                    json=body,
                    headers={"Authorization": token, "If-Match": version},
                ) as r:
                    answer = await r.json()
                    if r.status != 200:
                        failed += 1
                        raise RuntimeError(f"transition answered {r.status}: {answer}")
                    version, state = r.headers["ETag"], answer["state"]
                latencies.append((time.perf_counter() - t0) * 1000)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(c) for c in case_ids))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": done / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "failed": failed,
    }


async def raw_floor(url: str, case_ids: list[int], seconds: float) -> dict[str, float]:
    """The floor: one UPDATE of the case row and one INSERT of a timeline row per transaction."""
    pool = await asyncpg.create_pool(raw_url(url), min_size=len(case_ids), max_size=len(case_ids))
    done, latencies = 0, []
    stop_at = time.perf_counter() + seconds
    today = date.today()

    async def client(case_id: int) -> None:
        nonlocal done
        async with pool.acquire() as conn:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                async with conn.transaction():
                    await conn.execute(
                        'UPDATE "case" SET version = version + 1, updated_at = now() WHERE id = $1', case_id
                    )
                    await conn.execute(
                        "INSERT INTO procedure_step (case_id, step, from_state, to_state, occurred_on, "
                        "account_id, details, recorded_at) VALUES ($1, 'floor', 'investigating', "
                        "'investigating', $2, 'bench', '{}', now())",
                        case_id,
                        today,
                    )
                latencies.append((time.perf_counter() - t0) * 1000)
                done += 1

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(c) for c in case_ids))
    finally:
        await pool.close()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rate": done / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
    }


def prepare_transitions(bench, clients: int) -> dict[str, Any]:
    """A head officer whose post lists the suspension steps, and one investigating case per client."""
    running = bench.running
    # The gateway seed makes the service accounts (the enforcement service calls the registry as one).
    env = {**bench.running.process_env(), "DEMO_ADMIN_PASSWORD": "bench-demo-password"}
    subprocess.run([sys.executable, "-m", "gateway.seed"], check=True, env=env, stdout=subprocess.DEVNULL)
    admin = {"Authorization": f"Bearer {bench.signed(1, '1.', (Role.ADMIN,))}"}
    registry = running.service_url("registry")
    post = httpx.post(
        f"{registry}/api/v1/registry/bureaus/{PROVINCE_ID}/posts",
        headers=admin,
        json={"body": "enforcement", "name": f"基准负责人{time.time_ns()}", "duties": "bench",
              "steps": ["suspend_investigation", "resume_investigation"]},
    )  # fmt: skip
    post.raise_for_status()
    officer = httpx.post(
        f"{registry}/api/v1/registry/officers",
        headers=admin,
        json={"bureau_id": PROVINCE_ID, "body": "enforcement", "name": "基准负责人",
              "post_id": post.json()["id"], "credential_number": f"BENCH{time.time_ns() % 10**9}"},
    )  # fmt: skip
    officer.raise_for_status()
    province = httpx.get(f"{registry}/api/v1/registry/bureaus/{PROVINCE_ID}", headers=admin).json()
    case_ids = asyncio.run(_transition_cases(bench.urls["enforcement"], province, clients))
    token = bench.signed(PROVINCE_ID, province["path"], (Role.HEAD,), officer.json()["id"])
    return {"token": f"Bearer {token}", "case_ids": case_ids}


async def _transition_cases(url: str, province: dict, clients: int) -> list[int]:
    conn = await asyncpg.connect(raw_url(url))
    opened = date.today() - timedelta(days=20)
    try:
        # A deadline may reach beyond the years chinese-calendar knows: the bench databases get
        # those years as an administrator would load them (bench data, New Year's Day only).
        import chinese_calendar

        for year in range(max(chinese_calendar.constants.holidays).year + 1, opened.year + 3):
            await conn.execute(
                "INSERT INTO calendar_year (year, source, loaded_by, loaded_at) "
                "VALUES ($1, 'bench', 'bench', now()) ON CONFLICT DO NOTHING",
                year,
            )
            await conn.execute(
                "INSERT INTO calendar_day (day, year, kind, name) VALUES ($1, $2, 'holiday', '元旦') "
                "ON CONFLICT DO NOTHING",
                date(year, 1, 1),
                year,
            )
        ids = []
        for i in range(clients):
            ids.append(
                await conn.fetchval(
                    'INSERT INTO "case" (number, bureau_id, bureau_path, procedure, state, title, '
                    "party_name, party_kind, subject_type, subject_id, rule_set, opened_on, created_by, "
                    "last_step_on, review_state, created_at, updated_at) VALUES ($1, $2, $3, 'ordinary', "
                    "'investigating', '基准案件', '基准企业', 'organisation', 'enterprise', 1, 'samr-2022', "
                    "$4, 'bench', $4, 'not_requested', now(), now()) RETURNING id",
                    f"基准转换〔{opened.year}〕{time.time_ns()}-{i}号",
                    province["id"],
                    province["path"],
                    opened,
                )
            )
        return ids
    finally:
        await conn.close()
