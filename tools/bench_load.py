"""The `load` section of ``make bench``: a provincial day's peak hour at 10× its rate.

One province's traffic in its busiest hour is written down below as a table (``MIX``): each
operation, its rate at that peak and where the rate comes from. The section multiplies every
rate by ``--load-factor`` (10) and sends the mix through the gateway of the real running
platform (the three services, their arq workers and outbox relay, PostgreSQL, Redis) **open
loop**: every request is sent at its planned moment (Poisson arrivals, seeded), whether or not
the earlier ones have been answered, for ``--load-seconds``; a latency runs from the planned
moment, so a stalled platform shows as latency and not as fewer requests. Rounds repeat the
run; figures are the medians of the rounds.

The load generator is one asyncio process on aiohttp (this one); its own CPU is measured and
reported beside the platform's. The callers are several accounts, as a province's officers and
its information systems would be: tokens of distinct subjects per operation, so the gateway's
per-client limits (raised for the run, see ``tools/bench.py`` ``ENV``) see many clients.

Data seeded first (reused when an earlier section has seeded it): certificates and enterprises
(tools/bench_data.py), cases of every province (tools/bench_cases.py), the province's monthly
report with its cities' (tools/bench_reports.py), and investigating cases for the transitions.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import platform as host
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import orjson

from services.common.auth import Principal, PrincipalKind, Role

PROVINCE_ID = 8  # a provincial pilot unit the registry seed makes (Zhejiang)
API = "/api/v1"


# --- the mix ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One kind of request of the day, at the province's peak-hour rate (requests a second)."""

    name: str
    peak_per_second: float
    why: str
    goal_p99_ms: float | None = None  # the goal an earlier issue set for this kind of request
    goal_source: str = ""


# A province of the size of Zhejiang: 11 cities, about 90 counties; about 1,000 officers of the
# certification supervision and enforcement bodies using the platform; about 100,000 enterprises
# holding about 300,000 certificates; a provincial information system (and the cities' systems)
# synchronising with the registry and pulling statistics. The busiest hour of a working day
# (mid-morning) carries about 3× the mean hour of an 8-hour day.
MIX: tuple[Operation, ...] = (
    Operation(
        "certificate_list", 3.0,
        "about 300 officers active in the peak hour, each filtering the certificate list about "
        "every 2 minutes (2.5/s), plus the provincial enquiry system's searches",
        50, "issue 6: filtered certificate list, p99 < 50 ms",
    ),
    Operation(
        "certificate_read", 5.0,
        "about 1.5 certificates opened per search (4/s), plus certificates checked by the "
        "provincial market-inspection system on site",
        50, "issue 2/6: a registry read, p99 < 50 ms",
    ),
    Operation(
        "enterprise_read", 2.0, "the holder opened from about half the certificate reads", 50,
        "issue 2/6: a registry read, p99 < 50 ms",
    ),
    Operation(
        "dossier_read", 0.5, "a certificate's whole dossier, opened before an inspection or a case",
        50, "issue 6: a registry read, p99 < 50 ms",
    ),
    Operation(
        "bulk_sync", 0.2,
        "the province's and its 11 cities' systems each pushing a batch of 100 changed "
        "enterprises about every minute (NDJSON import)",
    ),
    Operation(
        "case_list", 1.5,
        "about 150 enforcement officers active in the peak hour, a worklist (overdue in my "
        "subtree) about every 100 s",
        50, "issue 7: case list, overdue in my subtree, p99 < 50 ms",
    ),
    Operation(
        "case_read", 2.0, "a case opened from about every list", 50, "issue 7: a case read, p99 < 50 ms"
    ),
    Operation(
        "case_transition", 0.2,
        "about 10,000 cases a year in the province, about 15 recorded steps each: 600 steps a "
        "working day, 0.06/s at the peak hour; taken at 0.2/s with the leads' own steps and margin",
    ),
    Operation(
        "lead_registration", 0.05,
        "about 30,000 complaints and referrals a year (12315 and inspections): 120 a working "
        "day, 0.04/s at the peak hour",
    ),
    Operation(
        "report_pull", 0.2,
        "the province's monthly report (162 KiB with its cities' rollup) read in full by the "
        "provincial system and legal-affairs officers when it changed",
        20, "issue 8: report read through the gateway, p99 < 20 ms",
    ),
    Operation(
        "report_revalidate", 0.5,
        "the scheduled pulls of the province's and cities' systems that find nothing new "
        "(If-None-Match, 304)",
        20, "issue 8: report read through the gateway, p99 < 20 ms",
    ),
    Operation(
        "aggregate_read", 1.0, "dashboards of the province's and cities' heads, refreshed each minute",
        50, "a statistics read (no own goal; the registry reads' 50 ms)",
    ),
)  # fmt: skip


def scaled(mix: tuple[Operation, ...], factor: float) -> dict[str, float]:
    """Requests a second of each operation at ``factor`` × the peak."""
    return {op.name: op.peak_per_second * factor for op in mix}


def arrivals(rate: float, seconds: float, rng: random.Random) -> list[float]:
    """Poisson arrival moments (seconds from the start) of ``rate`` a second over ``seconds``."""
    moments, t = [], 0.0
    if rate <= 0:
        return moments
    while True:
        t += rng.expovariate(rate)
        if t >= seconds:
            return moments
        moments.append(t)


def timeline(rates: dict[str, float], seconds: float, seed: int) -> list[tuple[float, str]]:
    """Every request of the run, (moment, operation), in the order they are due."""
    rng = random.Random(seed)  # noqa: S311 - load shape, not secrets
    return sorted((t, name) for name in sorted(rates) for t in arrivals(rates[name], seconds, rng))


# --- accounting ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q ≤ 100) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Tally:
    """What one operation's requests got: latencies (ms) and statuses (0: no answer)."""

    expected: frozenset[int] = frozenset({200})
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    def record(self, status: int, latency_ms: float) -> None:
        self.statuses[status] += 1
        self.latencies.append(latency_ms)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        """5xx answers, and requests that got no answer at all (connection lost, timed out)."""
        return sum(n for s, n in self.statuses.items() if s >= 500 or s == 0)

    @property
    def other_errors(self) -> int:
        """Answers that are neither expected nor 5xx (4xx, or a 2xx/3xx the operation does not expect)."""
        return sum(n for s, n in self.statuses.items() if 0 < s < 500 and s not in self.expected)

    def summary(self, seconds: float) -> dict[str, float]:
        return {
            "requests": self.requests,
            "rate": self.requests / seconds,
            "p50": percentile(self.latencies, 50),
            "p99": percentile(self.latencies, 99),
            "server_errors": self.server_errors,
            "other_errors": self.other_errors,
        }


def totals(tallies: dict[str, Tally]) -> dict[str, float]:
    requests = sum(t.requests for t in tallies.values())
    server = sum(t.server_errors for t in tallies.values())
    other = sum(t.other_errors for t in tallies.values())
    return {
        "requests": requests,
        "server_errors": server,
        "other_errors": other,
        "server_share": server / requests if requests else 0.0,
        "other_share": other / requests if requests else 0.0,
    }


# --- the open-loop driver -----------------------------------------------------------------

# One request of an operation: given the session, answers the status (the body read in full).
Sender = Callable[[aiohttp.ClientSession], Awaitable[int]]


@dataclass
class RunResult:
    seconds: float
    tallies: dict[str, Tally]
    cpu_seconds: float  # the generator's own CPU (this process) over the run
    late: int  # requests sent more than 10 ms after their planned moment (the generator lagging)
    planned: int


async def drive(
    base: str,
    senders: dict[str, Sender],
    rates: dict[str, float],
    seconds: float,
    *,
    seed: int = 20261130,
    expected: dict[str, frozenset[int]] | None = None,
    patience: float = 30.0,
) -> RunResult:
    """Send each operation at its rate, open loop, for ``seconds``; latencies from the planned moment."""
    plan = timeline(rates, seconds, seed)
    tallies = {name: Tally((expected or {}).get(name, frozenset({200}))) for name in rates}
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=512)
    late = 0
    cpu_before = time.process_time()
    async with aiohttp.ClientSession(
        base, connector=connector, timeout=aiohttp.ClientTimeout(total=patience)
    ) as http:
        tasks: set[asyncio.Task] = set()

        async def one(name: str, due: float) -> None:
            try:
                status = await senders[name](http)
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            tallies[name].record(status, (time.perf_counter() - due) * 1000)

        start = time.perf_counter()
        for moment, name in plan:
            due = start + moment
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.010:
                late += 1
            task = asyncio.create_task(one(name, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    return RunResult(seconds, tallies, time.process_time() - cpu_before, late, len(plan))


# --- the platform's data and the senders ---------------------------------------------------


def raw_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def token(account: str, roles, *, kind=PrincipalKind.OFFICER, bureau=(PROVINCE_ID, ""), officer=None) -> str:
    from tools.bench import _signer

    return _signer().issue(
        Principal(
            account_id=account,
            kind=kind,
            bureau_id=bureau[0],
            bureau_path=bureau[1],
            roles=frozenset(roles),
            officer_id=officer,
        )
    )


class Accounts:
    """Tokens of ``count`` distinct accounts of one kind, handed out in turn."""

    def __init__(self, prefix: str, count: int, roles, **kw) -> None:
        self.headers = [
            {"Authorization": f"Bearer {token(f'{prefix}-{i}', roles, **kw)}"} for i in range(count)
        ]
        self._turn = itertools.cycle(self.headers)

    def next(self) -> dict[str, str]:
        return next(self._turn)


async def _count(url: str, table: str) -> int:
    conn = await asyncpg.connect(raw_url(url))
    try:
        return await conn.fetchval(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - our table names
    finally:
        await conn.close()


async def _province_rows(urls: dict[str, str], path: str) -> dict[str, list]:
    """Ids of the province's subtree to read: certificates, enterprises (with their import keys), cases."""
    registry = await asyncpg.connect(raw_url(urls["registry"]))
    enforcement = await asyncpg.connect(raw_url(urls["enforcement"]))
    try:
        certificates = [
            r["id"]
            for r in await registry.fetch(
                "SELECT id FROM certificate WHERE bureau_path LIKE $1 || '%' ORDER BY id LIMIT 5000", path
            )
        ]
        enterprises = [
            dict(r)
            for r in await registry.fetch(
                "SELECT id, credit_code, name, division_code FROM enterprise "
                "WHERE bureau_path LIKE $1 || '%' AND credit_code IS NOT NULL ORDER BY id LIMIT 5000",
                path,
            )
        ]
        cases = [
            r["id"]
            for r in await enforcement.fetch(
                "SELECT id FROM \"case\" WHERE bureau_path LIKE $1 || '%' ORDER BY id LIMIT 5000", path
            )
        ]
        return {"certificates": certificates, "enterprises": enterprises, "cases": cases}
    finally:
        await registry.close()
        await enforcement.close()


def months(back: int) -> list[str]:
    """The ``back`` months up to this one, oldest first (``2026-05``)."""
    today = date.today()
    index = today.year * 12 + today.month - 1
    return [f"{i // 12}-{i % 12 + 1:02d}" for i in range(index - back + 1, index + 1)]


async def _aggregates(url: str, path: str) -> None:
    """Two years of the real measures for the province and its cities (dimension all and the two
    systems), as the dashboards read them; once."""
    from services.statistics.aggregates.measures import MEASURES
    from tools.bench_reports import CITIES, COLUMNS, FIRST_CITY_ID

    conn = await asyncpg.connect(raw_url(url))
    try:
        if await conn.fetchval("SELECT count(*) FROM aggregate WHERE bureau_id = $1 AND measure = $2",
                               PROVINCE_ID, MEASURES[0].name):  # fmt: skip
            return
        rng = random.Random(20261130)  # noqa: S311 - bench data
        now = datetime.now(UTC)
        bureaus = [(PROVINCE_ID, path)] + [
            (FIRST_CITY_ID + i, f"{path}{FIRST_CITY_ID + i}.") for i in range(CITIES)
        ]
        rows = [
            (bureau_id, period, dimension, value, m.name, bureau_path, "month",
             Decimal(rng.randrange(0, 5000)), now)
            for bureau_id, bureau_path in bureaus
            for period in months(24)
            for m in MEASURES
            for dimension, value in (("all", ""), ("system", "quality_supervision"), ("system", "entry_exit"))
        ]  # fmt: skip
        await conn.copy_records_to_table("aggregate", records=rows, columns=COLUMNS)
        await conn.execute("ANALYZE aggregate")
    finally:
        await conn.close()


def seed(bench) -> dict[str, Any]:
    """Seed what the mix reads and writes (reusing what earlier sections left) and build the senders."""
    from tools import bench_reports
    from tools.bench_cases import load_cases, prepare_transitions
    from tools.bench_data import load_certificates

    args, running, urls = bench.args, bench.running, bench.urls
    started = time.perf_counter()
    if asyncio.run(_count(urls["registry"], "certificate")) < args.load_certificates // 2:
        asyncio.run(load_certificates(urls["registry"], args.load_certificates))
    admin = {"Authorization": f"Bearer {bench.token}"}
    registry = running.service_url("registry")
    province = httpx.get(f"{registry}{API}/registry/bureaus/{PROVINCE_ID}", headers=admin).json()
    path = province["path"]
    if asyncio.run(_count(urls["enforcement"], "case")) < args.load_cases // 2:
        provinces = httpx.get(
            f"{registry}{API}/registry/bureaus", params={"level": "provincial", "limit": 100}, headers=admin
        ).json()["items"]
        asyncio.run(
            load_cases(urls["enforcement"], args.load_cases, [(p["id"], p["path"]) for p in provinces])
        )
    legal = token("load-legal-0", (Role.LEGAL,), bureau=(PROVINCE_ID, path))
    report_path = f"{API}/statistics/reports/{PROVINCE_ID}/{bench_reports.PERIOD}"
    if (
        httpx.get(running.gateway_url + report_path, headers={"Authorization": f"Bearer {legal}"}).status_code
        != 200
    ):
        asyncio.run(bench_reports.load(urls["statistics"], path))
        bench_reports.submit_province(running.gateway_url, legal)
    asyncio.run(_aggregates(urls["statistics"], path))
    # Investigating cases for the transitions, and the head officer whose post lists the steps.
    transitions = prepare_transitions(bench, args.load_transition_cases)
    rows = asyncio.run(_province_rows(urls, path))
    for kind in ("certificates", "enterprises", "cases"):
        if not rows[kind]:
            raise SystemExit(f"the province's subtree holds no {kind}: nothing for the mix to read")
    return {
        "province": province,
        "rows": rows,
        "certificates": asyncio.run(_count(urls["registry"], "certificate")),
        "cases": asyncio.run(_count(urls["enforcement"], "case")),
        "transitions": transitions,
        "report_path": report_path,
        "seconds": time.perf_counter() - started,
    }


class Senders:
    """One sender per operation of ``MIX``, with the accounts a province would use for it."""

    def __init__(self, seeded: dict[str, Any], accounts: int, seed: int = 20261130) -> None:
        path = seeded["province"]["path"]
        bureau = (PROVINCE_ID, path)
        self.rng = random.Random(seed)  # noqa: S311 - picks of rows, not secrets
        self.rows = seeded["rows"]
        self.report_path = seeded["report_path"]
        self.report_etag: str | None = None
        self.supervision = Accounts("load-supervision", accounts, (Role.SUPERVISION,), bureau=bureau)
        self.enforcement = Accounts("load-enforcement", accounts, (Role.ENFORCEMENT,), bureau=bureau)
        self.legal = Accounts("load-legal", accounts, (Role.LEGAL,), bureau=bureau)
        self.systems = Accounts("load-system", 12, (Role.SYSTEM,), kind=PrincipalKind.SYSTEM, bureau=bureau)
        self.transition_auth = seeded["transitions"]["token"]
        self.free_cases: asyncio.Queue | None = None
        self.case_ids: list[int] = seeded["transitions"]["case_ids"]
        self.batch = itertools.count(1)
        self.received_on = (date.today() - timedelta(days=1)).isoformat()
        soon, later = date.today(), date.today() + timedelta(days=90)
        self.certificate_queries = [
            f"{API}/registry/certificates?status=valid&scheme=ccc&limit=50",
            f"{API}/registry/certificates?status=valid&expires_from={soon}&expires_to={later}&limit=50",
            f"{API}/registry/certificates?scheme=qms&limit=50",
        ]
        year_ago = (date.today() - timedelta(days=365)).isoformat()
        self.case_queries = [
            f"{API}/enforcement/cases?overdue=true&limit=50",
            f"{API}/enforcement/cases?overdue=true&state=investigating&limit=50",
            f"{API}/enforcement/cases?overdue=true&opened_from={year_ago}&limit=50",
        ]

    def expected(self) -> dict[str, frozenset[int]]:
        return {
            "bulk_sync": frozenset({201}),
            "lead_registration": frozenset({201}),
            "report_revalidate": frozenset({304}),
        }

    def all(self) -> dict[str, Sender]:
        return {op.name: getattr(self, op.name) for op in MIX}

    async def _get(self, http, path: str, headers: dict[str, str]) -> int:
        async with http.get(path, headers=headers) as r:
            await r.read()
            return r.status

    async def prepare(self, http: aiohttp.ClientSession) -> None:
        """The transition cases' versions and states, and the report's ETag (once per run)."""
        self.free_cases = asyncio.Queue()
        for case_id in self.case_ids:
            async with http.get(
                f"{API}/enforcement/cases/{case_id}", headers={"Authorization": self.transition_auth}
            ) as r:
                body = await r.json()
                if r.status != 200:
                    raise SystemExit(f"the transition case {case_id} answered {r.status}: {body}")
                self.free_cases.put_nowait((case_id, r.headers["ETag"], body["state"]))
        async with http.get(self.report_path, headers=self.legal.next()) as r:
            await r.read()
            if r.status != 200:
                raise SystemExit(f"the report pull answered {r.status}")
            self.report_etag = r.headers["ETag"]

    async def certificate_list(self, http) -> int:
        return await self._get(http, self.rng.choice(self.certificate_queries), self.supervision.next())

    async def certificate_read(self, http) -> int:
        path = f"{API}/registry/certificates/{self.rng.choice(self.rows['certificates'])}"
        return await self._get(http, path, self.supervision.next())

    async def enterprise_read(self, http) -> int:
        path = f"{API}/registry/enterprises/{self.rng.choice(self.rows['enterprises'])['id']}"
        return await self._get(http, path, self.supervision.next())

    async def dossier_read(self, http) -> int:
        path = f"{API}/registry/certificates/{self.rng.choice(self.rows['certificates'])}/dossier"
        return await self._get(http, path, self.supervision.next())

    async def bulk_sync(self, http) -> int:
        """100 of the province's enterprises, their address changed (an update of each)."""
        batch = next(self.batch)
        rows = self.rng.sample(self.rows["enterprises"], min(100, len(self.rows["enterprises"])))
        body = b"".join(
            orjson.dumps(
                {
                    "credit_code": e["credit_code"],
                    "name": e["name"],
                    "division_code": e["division_code"],
                    "address": f"基准路{batch}号",
                }
            )
            + b"\n"
            for e in rows
        )
        headers = {**self.systems.next(), "Content-Type": "application/x-ndjson"}
        async with http.post(f"{API}/registry/imports?kind=enterprises", data=body, headers=headers) as r:
            await r.read()
            return r.status

    async def case_list(self, http) -> int:
        return await self._get(http, self.rng.choice(self.case_queries), self.enforcement.next())

    async def case_read(self, http) -> int:
        path = f"{API}/enforcement/cases/{self.rng.choice(self.rows['cases'])}"
        return await self._get(http, path, self.enforcement.next())

    async def case_transition(self, http) -> int:
        """A free case of the pool taken one step (suspended, or resumed), then put back."""
        from tools.bench_cases import RESUME, SUSPEND

        case_id, version, state = await self.free_cases.get()
        try:
            body = SUSPEND if state == "investigating" else RESUME
            headers = {"Authorization": self.transition_auth, "If-Match": version}
            async with http.post(
                f"{API}/enforcement/cases/{case_id}/transitions", json=body, headers=headers
            ) as r:
                answer = await r.read()
                if r.status == 200:
                    version, state = r.headers["ETag"], orjson.loads(answer)["state"]
                return r.status
        finally:
            if version == headers["If-Match"]:  # not taken: read it again before its next step
                async with http.get(
                    f"{API}/enforcement/cases/{case_id}", headers={"Authorization": self.transition_auth}
                ) as r:
                    if r.status == 200:
                        version, state = r.headers["ETag"], (await r.json())["state"]
            self.free_cases.put_nowait((case_id, version, state))

    async def lead_registration(self, http) -> int:
        enterprise = self.rng.choice(self.rows["enterprises"])
        body = {
            "source": "complaint",
            "subject_type": "enterprise",
            "subject_id": enterprise["id"],
            "summary": "举报：未经认证出厂销售",
            "received_on": self.received_on,
        }
        async with http.post(f"{API}/enforcement/leads", json=body, headers=self.enforcement.next()) as r:
            await r.read()
            return r.status

    async def report_pull(self, http) -> int:
        return await self._get(http, self.report_path, self.legal.next())

    async def report_revalidate(self, http) -> int:
        headers = {**self.systems.next(), "If-None-Match": self.report_etag or ""}
        return await self._get(http, self.report_path, headers)

    async def aggregate_read(self, http) -> int:
        """A dashboard's year: one measure of the province, month by month."""
        from services.statistics.aggregates.measures import MEASURES

        year = months(12)
        path = (
            f"{API}/statistics/aggregates?bureau_id={PROVINCE_ID}&period_kind=month&from={year[0]}"
            f"&to={year[-1]}&dimension=all&measure={self.rng.choice(MEASURES).name}&limit=50"
        )
        return await self._get(http, path, self.legal.next())


async def probe(base: str, senders: Senders) -> dict[str, int]:
    """One request of each operation, before the run: each must answer what it is expected to."""
    expected = senders.expected()
    async with aiohttp.ClientSession(base) as http:
        await senders.prepare(http)
        answers = {name: await send(http) for name, send in senders.all().items()}
    wrong = {n: s for n, s in answers.items() if s not in expected.get(n, frozenset({200}))}
    if wrong:
        raise SystemExit(f"operations answer what the mix does not expect: {wrong}")
    return answers


async def run_round(
    base: str, senders: Senders, rates: dict[str, float], seconds: float, seed: int
) -> RunResult:
    async with aiohttp.ClientSession(base) as http:
        await senders.prepare(http)
    return await drive(base, senders.all(), rates, seconds, seed=seed, expected=senders.expected())


# --- the section --------------------------------------------------------------------------


def postgres_cpu(urls: dict[str, str]) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the bench's databases (by pid)."""
    from tools.bench import cpu_seconds

    names = [url.rsplit("/", 1)[1] for url in urls.values()]

    async def backends() -> list[int]:
        conn = await asyncpg.connect(raw_url(next(iter(urls.values()))))
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = ANY($1)", names)
            return [r["pid"] for r in rows if r["pid"] != conn.get_server_pid()]
        finally:
            await conn.close()

    spent = {}
    for pid in asyncio.run(backends()):
        try:
            spent[pid] = cpu_seconds(pid)
        except OSError:  # gone meanwhile
            continue
    return spent


def postgres_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the backends spent between two readings (a backend born meanwhile: all of its CPU)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def gateway_refusals(log: Path, offset: int) -> Counter:
    """The gateway's "upstream unavailable" log lines since ``offset``, by upstream and error."""
    found: Counter = Counter()
    if not log.exists():
        return found
    with log.open("rb") as f:
        f.seek(offset)
        for line in f:
            if b"upstream unavailable" not in line:
                continue
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            found[f"{entry.get('upstream')} {entry.get('error')}"] += 1
    return found


def run(bench) -> str:
    """The section's markdown (``bench`` is tools.bench.Bench)."""
    from tools.bench import MachineLoad, cpu_seconds

    args, running = bench.args, bench.running
    seeded = seed(bench)
    senders = Senders(seeded, args.load_accounts)
    gateway = running.gateway_url
    asyncio.run(probe(gateway, senders))
    rates = scaled(MIX, args.load_factor)
    left_out = [n.strip() for n in args.load_compare.split(",") if n.strip()]
    unknown = set(left_out) - set(rates)
    if unknown:
        raise SystemExit(f"--load-compare names no operation of the mix: {', '.join(sorted(unknown))}")
    asyncio.run(run_round(gateway, senders, {n: r / 2 for n, r in rates.items()}, 5, seed=1))  # warm
    pids = {name: proc.pid for name, proc in running.processes.items()}  # services, gateway, workers
    rounds: list[RunResult] = []
    without: list[RunResult] = []
    platform_cpu: list[dict[str, float]] = []
    gateway_log = running.log_dir / "gateway.log" if running.log_dir else Path("/nonexistent")
    log_offset = gateway_log.stat().st_size if gateway_log.exists() else 0
    with MachineLoad(pids) as load:
        for i in range(args.load_rounds):
            before = {n: cpu_seconds(p) for n, p in pids.items()}
            database_before = postgres_cpu(bench.urls)
            result = asyncio.run(run_round(gateway, senders, rates, args.load_seconds, seed=20261130 + i))
            platform_cpu.append({n: cpu_seconds(p) - before[n] for n, p in pids.items()})
            platform_cpu[-1]["PostgreSQL"] = postgres_spent(database_before, postgres_cpu(bench.urls))
            rounds.append(result)
            t = totals(result.tallies)
            print(f"load round {i + 1}: {t['requests'] / result.seconds:.0f} req/s, "
                  f"5xx {t['server_errors']}, other {t['other_errors']}, generator "
                  f"{result.cpu_seconds / result.seconds:.0%} of a core, late {result.late}",
                  flush=True)  # fmt: skip
            if left_out:
                rest = {n: r for n, r in rates.items() if n not in left_out}
                without.append(
                    asyncio.run(run_round(gateway, senders, rest, args.load_seconds, seed=20261130 + i))
                )
    comparison = compared(rounds, without, left_out) if left_out else ""
    refusals = gateway_refusals(gateway_log, log_offset)
    if refusals:
        comparison += (
            '\nThe gateway\'s 503s over the section (its log, "upstream unavailable", all rounds): '
            + ", ".join(f"{what} {n}" for what, n in refusals.most_common())
            + ". On the gateway's aiohttp transport a connect timeout (`GATEWAY_UPSTREAM_CONNECT_TIMEOUT`"
            ", 2 s) includes the wait for a free connection of its pool to that service (200): the "
            "service's answers had fallen so far behind that 200 requests were waiting on it.\n"
        )
    return markdown(args, seeded, rates, rounds, platform_cpu, load.describe(), comparison)


def compared(rounds: list[RunResult], without: list[RunResult], left_out: list[str]) -> str:
    """The p99 of the other operations with and without ``left_out``, rounds alternating."""
    kept = [op.name for op in MIX if op.name not in left_out]
    lines = []
    for name in kept:
        p99 = statistics.median(r.tallies[name].summary(r.seconds)["p99"] for r in rounds)
        p99_without = statistics.median(r.tallies[name].summary(r.seconds)["p99"] for r in without)
        lines.append(f"| `{name}` | {p99:.1f} | {p99_without:.1f} |")
    named = ", ".join(f"`{n}`" for n in left_out)
    return f"""
The same run without {named} (rounds alternating with the whole mix's, same seeds), to see what
{named} costs the rest:

| operation | p99 with the whole mix (ms) | p99 without {named} (ms) |
| --- | ---: | ---: |
{chr(10).join(lines)}
"""


def round_figures(rounds: list[RunResult]) -> dict[str, dict[str, float]]:
    """Per operation, the medians over the rounds of each figure."""
    figures = {}
    for op in MIX:
        per_round = [r.tallies[op.name].summary(r.seconds) for r in rounds]
        figures[op.name] = {
            key: statistics.median(s[key] for s in per_round)
            for key in ("rate", "p50", "p99", "server_errors", "other_errors", "requests")
        }
        figures[op.name]["worst_p99"] = max(s["p99"] for s in per_round)
    return figures


def markdown(
    args, seeded, rates, rounds: list[RunResult], platform_cpu, machine: str, comparison: str
) -> str:
    figures = round_figures(rounds)
    all_totals = [totals(r.tallies) for r in rounds]
    throughput = statistics.median(t["requests"] / r.seconds for t, r in zip(all_totals, rounds, strict=True))
    offered = sum(rates.values())
    server_share = statistics.median(t["server_share"] for t in all_totals)
    other_share = statistics.median(t["other_share"] for t in all_totals)
    server_sum = sum(t["server_errors"] for t in all_totals)
    other_sum = sum(t["other_errors"] for t in all_totals)
    requests_sum = sum(t["requests"] for t in all_totals)
    gen_share = statistics.median(r.cpu_seconds / r.seconds for r in rounds)
    gen_per_request = statistics.median(
        r.cpu_seconds * 1000 / max(t["requests"], 1) for r, t in zip(rounds, all_totals, strict=True)
    )
    late = statistics.median(r.late / max(r.planned, 1) for r in rounds)
    cpu_per_request = statistics.median(
        sum(c.values()) * 1000 / max(t["requests"], 1) for c, t in zip(platform_cpu, all_totals, strict=True)
    )
    cpu_lines = ", ".join(
        f"{name} {statistics.median(c[name] for c in platform_cpu) / args.load_seconds:.0%}"
        for name in platform_cpu[0]
    )
    mix_rows = "\n".join(
        f"| `{op.name}` | {op.peak_per_second:g} | {rates[op.name]:g} | {op.why} |" for op in MIX
    )
    met, missed = [], []
    rows = []
    for op in MIX:
        f = figures[op.name]
        goal = f"< {op.goal_p99_ms:g} ms" if op.goal_p99_ms else "—"
        verdict = ""
        if op.goal_p99_ms:
            verdict = "met" if f["p99"] < op.goal_p99_ms else "**not met**"
            (met if f["p99"] < op.goal_p99_ms else missed).append(op.name)
        rows.append(
            f"| `{op.name}` | {f['rate']:.1f} | {f['p50']:.1f} | {f['p99']:.1f} | {f['worst_p99']:.1f} | "
            f"{f['server_errors']:.0f} | {f['other_errors']:.0f} | {goal} {verdict} |"
        )
    flags = (
        f"--only load --load-seconds {args.load_seconds} --load-rounds {args.load_rounds} "
        f"--load-factor {args.load_factor:g} --load-accounts {args.load_accounts}"
        + (f" --load-compare {args.load_compare}" if args.load_compare else "")
    )
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    five = "met" if server_share < 0.001 else "**not met**"
    run_line = (
        f"Run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores ({cpu}), "
        f"Python {host.python_version()};"
    )
    callers = (
        f"{args.load_accounts} supervision, {args.load_accounts} enforcement and {args.load_accounts} "
        "legal-affairs officer accounts and 12 provincial system accounts"
    )
    data = (
        f"{len(seeded['rows']['certificates']):,} certificates, {len(seeded['rows']['enterprises']):,} "
        f"enterprises and {len(seeded['rows']['cases']):,} cases of the province's subtree read at random "
        f"(of {seeded['certificates']:,} certificates and {seeded['cases']:,} cases of all provinces)"
    )
    header = (
        "| operation | done (req/s) | p50 (ms) | p99 (ms) | worst p99 (ms) | 5xx, none | other | p99 goal |"
    )
    goals = f"p99 goals met by {len(met)} of {len(met) + len(missed)} operations"
    goals += f"; not by {', '.join(missed)}" if missed else ""
    return f"""## Load: a provincial day at {args.load_factor:g}× peak

Command: `make bench BENCH_ARGS="{flags}"`
{run_line}
the platform's real processes as `make run` starts them (gateway, three services, their arq workers
with the outbox relay), PostgreSQL and Redis, and the load generator, all on this one machine.
{machine}

The mix: one province's busiest hour (tools/bench_load.py `MIX`, with the reasoning for each rate),
scaled ×{args.load_factor:g}, offered **open loop** (Poisson arrivals, seeded; every request sent at its
planned moment whatever the earlier ones are doing; latency from the planned moment) through the
gateway for {args.load_seconds} s a round, {args.load_rounds} rounds after a 5 s warm-up at half the rate;
figures are medians of the rounds (worst p99: the highest round's). Callers: {callers} of the
province, in turn; the gateway's per-client limits raised for the run.

| operation | peak (req/s) | ×{args.load_factor:g} (req/s) | where the peak comes from |
| --- | ---: | ---: | --- |
{mix_rows}

Data: {data}; the province's monthly report with its 11 cities' (tools/bench_reports.py) and two
years of the real measures' aggregates; {args.load_transition_cases} investigating cases each taken to
suspended and back (a step takes a free case of the pool, If-Match); bulk sync: NDJSON imports of
100 of the province's enterprises (an address changed) by the provincial systems; leads registered
against the province's enterprises. Seeding took {seeded["seconds"]:.0f} s.

{header}
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(rows)}

Throughput: **{throughput:.0f} req/s** done of {offered:.0f} req/s offered. Errors:
**{server_share:.3%} 5xx** (goal < 0.1 %: {five}; {server_sum:.0f} of {requests_sum:.0f} requests
over all rounds), {other_share:.3%} other non-2xx ({other_sum:.0f}; a 304 is expected for the
revalidating pull only). {goals}.

The generator: {gen_share:.0%} of one core ({gen_per_request:.2f} ms CPU a request, aiohttp, one
process); {late:.2%} of the requests left more than 10 ms after their planned moment. The
platform's CPU over a round (share of one core; PostgreSQL: the backends serving the bench's
databases): {cpu_lines}; in all **{cpu_per_request:.1f} ms of CPU a request** of the mix (the workers' steady
background work included, so it is higher at low rates); two cores given to the platform alone
would carry at most about {2000 / cpu_per_request:.0f} req/s of it.
{comparison}"""
