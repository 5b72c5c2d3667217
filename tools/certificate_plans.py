"""The plans behind the certificate list filters, at a million certificates.

    .venv/bin/python -m tools.certificate_plans [--rows 1000000] [--keep]

Builds a scratch registry database (``cert_plans_registry``), migrated with Alembic,
writes bodies, enterprises and ``--rows`` certificates with COPY (schemes, states,
divisions and surveillance dates spread as in a province's registry: most
management-system certificates surveilled within the year, a few overdue), then runs
each filter of ``GET /api/v1/registry/certificates`` — the statement the list sends —
under EXPLAIN ANALYZE, for the first page and for a page deep in the list, and prints
the index read and the execution time. The database is dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
from datetime import UTC, date, datetime, timedelta

import asyncpg
import gb2260.data
from sqlalchemy.dialects import postgresql

from services.common.migrations import upgrade
from services.registry.certification.certificates import rules
from services.registry.certification.certificates.repository import CertificateFilters as F
from services.registry.certification.certificates.repository import list_query
from tools.platform import create_databases, drop_databases

URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/cert_plans_registry"
DSN = URL.replace("+asyncpg", "")
WORDS = list("华兴盛达通泰昌隆鑫源恒利丰嘉宏伟新光明远东方海天正大金阳长城永安美")
CITIES = ["杭州", "宁波", "温州", "济南", "青岛", "南京", "苏州", "广州", "深圳", "成都", "武汉", "沈阳"]
INDUSTRY = ["电器", "电子", "机械", "化工", "食品", "纺织", "汽车配件", "建材", "医疗器械", "塑料"]
SCHEMES = ["ccc"] * 50 + ["qms"] * 25 + ["ems"] * 10 + ["ohsms"] * 8 + ["fsms"] * 4 + ["voluntary"] * 3
STATUSES = ["valid"] * 85 + ["suspended"] * 5 + ["revoked"] * 3 + ["cancelled"] * 7
BODIES, ENTERPRISES, BUREAUS = 60, 100_000, 400

CASES = {
    "no filter": F(),
    "status=valid": F(status="valid"),
    "status=revoked": F(status="revoked"),
    "scheme=ccc": F(scheme="ccc"),
    "scheme=fsms": F(scheme="fsms"),
    "body_id (large body)": F(body_id=1),
    "body_id (small body)": F(body_id=55),
    "holder_id": F(holder_id=4242),
    "bureau_id": F(bureau_id=77),
    "division_code=33 (province)": F(division_code="33"),
    "division_code=3301 (city)": F(division_code="3301"),
    "division_code=330106 (county)": F(division_code="330106"),
    "expires in a quarter": F(expires_from=date(2027, 1, 1), expires_to=date(2027, 3, 31)),
    "expires on one day": F(expires_from=date(2027, 1, 15), expires_to=date(2027, 1, 15)),
    "expires_from (wide)": F(expires_from=date(2015, 1, 1)),
    "q (rare part of a name)": F(q="杭州华兴电"),
    "q (common part)": F(q="华兴电器"),
    "q (in every name)": F(q="有限公司"),
    "q (in no name)": F(q="不存在的名字"),
    "number": F(number="2016010901123456"),
    "surveillance_overdue=true": F(surveillance_overdue=True),
    "surveillance_overdue=false": F(surveillance_overdue=False),
    "overdue + qms": F(surveillance_overdue=True, scheme="qms"),
    "valid + ccc": F(status="valid", scheme="ccc"),
    "revoked + province": F(status="revoked", division_code="33"),
    "suspended + body": F(status="suspended", body_id=3),
    "valid + expiry quarter": F(status="valid", expires_from=date(2027, 1, 1), expires_to=date(2027, 3, 31)),
    "city + q": F(division_code="3301", q="华兴电器"),
    "fsms + city": F(scheme="fsms", division_code="3301"),
    "holder + valid": F(holder_id=4242, status="valid"),
    "cancelled + bureau + ccc": F(status="cancelled", bureau_id=77, scheme="ccc"),
}


def holder_name(rnd: random.Random) -> str:
    return rnd.choice(CITIES) + "".join(rnd.choices(WORDS, k=2)) + rnd.choice(INDUSTRY) + "有限公司"


async def fill(rows: int) -> None:
    rnd = random.Random(7)  # noqa: S311 - reproducible test data, not secrets
    now = datetime.now(UTC)
    today = rules.today()
    counties = sorted(f"{c:06d}" for c in gb2260.data.data[2008] if f"{c:06d}"[4:] != "00")
    conn = await asyncpg.connect(DSN)
    try:
        await conn.copy_records_to_table(
            "bureau",
            records=[
                (
                    i,
                    None if i == 1 else 1,
                    "1." if i == 1 else f"1.{i}.",
                    f"局{i}",
                    "provincial",
                    "quality_supervision",
                    "none",
                    1,
                    now,
                    now,
                )
                for i in range(1, BUREAUS + 1)
            ],
            columns=[
                "id",
                "parent_id",
                "path",
                "name",
                "level",
                "system",
                "pilot",
                "version",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "certification_body",
            records=[
                (
                    i,
                    f"CNCA-R-2002-{i:03d}",
                    f"认证中心{i}",
                    date(2002, 1, 1),
                    date(2030, 1, 1),
                    "[]",
                    "[]",
                    "approved",
                    1,
                    "1.",
                    1,
                    now,
                    now,
                )
                for i in range(1, BODIES + 1)
            ],
            columns=[
                "id",
                "approval_number",
                "name",
                "approved_on",
                "approval_expires_on",
                "approved_schemes",
                "ccc_designations",
                "status",
                "bureau_id",
                "bureau_path",
                "version",
                "created_at",
                "updated_at",
            ],
        )
        holders = [(i, holder_name(rnd), rnd.choice(counties)) for i in range(1, ENTERPRISES + 1)]
        await conn.copy_records_to_table(
            "enterprise",
            records=[(i, name, div, "", "active", 1, "1.", 1, now, now) for i, name, div in holders],
            columns=[
                "id",
                "name",
                "division_code",
                "address",
                "status",
                "bureau_id",
                "bureau_path",
                "version",
                "created_at",
                "updated_at",
            ],
        )
        records = []
        for i in range(1, rows + 1):
            scheme = rnd.choice(SCHEMES)
            status = rnd.choice(STATUSES)
            hid, name, division = rnd.choice(holders)
            issued = date(2003, 1, 1) + timedelta(days=rnd.randrange(0, (today - date(2003, 1, 1)).days))
            expires = issued + timedelta(days=(1826 if scheme == "ccc" else 1095) - 1)
            last = None
            if scheme in ("qms", "ems", "ohsms", "fsms"):
                # Most surveilled within the year; one in two hundred overdue.
                overdue = rnd.random() < 0.005
                last = today - timedelta(days=rnd.randrange(380, 900) if overdue else rnd.randrange(0, 350))
                issued = min(issued, last)
            number = (
                f"{issued.year}{rnd.randrange(1, 60):02d}{rnd.randrange(1, 2000):04d}{i % 10**6:06d}"
                if scheme == "ccc"
                else f"{rnd.randrange(1, 999):05d}{issued.year % 100:02d}Q{i:07d}R0M"
            )
            body = int(rnd.paretovariate(1.2)) % BODIES + 1
            records.append(
                (
                    number,
                    scheme,
                    body,
                    hid,
                    name,
                    division,
                    "",
                    issued,
                    expires,
                    status,
                    now,
                    last,
                    rnd.randrange(2, BUREAUS + 1),
                    "1.",
                    1,
                    now,
                    now,
                )
            )
        await conn.copy_records_to_table(
            "certificate",
            records=records,
            columns=[
                "number",
                "scheme",
                "body_id",
                "holder_id",
                "holder_name",
                "division_code",
                "scope",
                "issued_on",
                "expires_on",
                "status",
                "status_changed_at",
                "last_surveillance_on",
                "bureau_id",
                "bureau_path",
                "version",
                "created_at",
                "updated_at",
            ],
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def statement(filters: F, before_id: int | None) -> str:
    query = list_query(filters, rules.today(), before_id=before_id, limit=51)
    return str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def indexes(node: dict) -> list[str]:
    found = [node["Index Name"]] if node.get("Index Name") else []
    for child in node.get("Plans", []):
        found += indexes(child)
    return found


async def explain(rows: int) -> None:
    conn = await asyncpg.connect(DSN)
    try:
        deep = rows // 2
        print(f"| filter ({rows:,} certificates) | index | first page ms | page at id {deep:,} ms |")
        print("| --- | --- | ---: | ---: |")
        for name, filters in CASES.items():
            cells = []
            used: list[str] = []
            for before_id in (None, deep):
                sql = statement(filters, before_id)
                times = []
                for _ in range(3):
                    plan = json.loads(await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql))[0]
                    times.append(plan["Execution Time"])
                used += indexes(plan["Plan"])
                cells.append(f"{statistics.median(times):.2f}")
            print(f"| {name} | {', '.join(dict.fromkeys(used)) or 'none'} | {cells[0]} | {cells[1]} |")
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    urls = {"plans": URL}
    await drop_databases(urls)
    await create_databases(urls)
    try:
        await asyncio.to_thread(upgrade, "registry", URL)
        await fill(args.rows)
        await explain(args.rows)
    finally:
        if not args.keep:
            await drop_databases(urls)


if __name__ == "__main__":
    asyncio.run(main())
