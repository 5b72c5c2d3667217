"""Bench data: a million valid-looking certificates loaded with COPY into the bench registry.

Certification bodies and enterprises are made first (valid approval numbers and
unified social credit codes), then certificates spread over them, over the seeded
bureaus (their paths keep the scope rules meaningful), schemes, statuses, divisions
and expiry dates. Deterministic (a fixed seed), so runs compare.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from services.registry.certification.identifiers import make_credit_code

BODIES = 60
ENTERPRISES = 100_000
CHUNK = 100_000
# Management-system marks per scheme (the form varies by body; these pass the lenient rule).
_MS_MARK = {"qms": "Q", "ems": "E", "ohsms": "S", "fsms": "F"}
# CCC product categories (4 digits).
_CCC_CATEGORIES = ("0201", "0701", "0801", "0901", "1101", "1201", "1601", "2101", "0911", "0807")
_SCHEMES = (("ccc", 0.6), ("qms", 0.2), ("ems", 0.08), ("ohsms", 0.06), ("fsms", 0.03), ("voluntary", 0.03))
_STATUSES = (("valid", 0.8), ("suspended", 0.06), ("revoked", 0.04), ("cancelled", 0.1))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, weight in weighted:
        x -= weight
        if x < 0:
            return value
    return weighted[-1][0]


async def load_certificates(url: str, count: int) -> dict[str, Any]:
    """Load ``count`` certificates (and the bodies and enterprises they refer to); return a summary
    with values the list queries can filter on."""
    started = time.perf_counter()
    rng = random.Random(20261129)  # noqa: S311 - bench data, not secrets
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        bureaus = await conn.fetch(
            "SELECT id, path, division_code FROM bureau WHERE division_code IS NOT NULL ORDER BY id"
        )
        counties = [
            r["code"] for r in await conn.fetch("SELECT code FROM division WHERE level = 'county' LIMIT 3000")
        ]
        now = datetime.now(UTC)
        today = now.date()
        national = await conn.fetchrow("SELECT id, path FROM bureau WHERE parent_id IS NULL")
        # The demo seed has made a few bodies already: take approval numbers and CCC codes it left free.
        taken = {r["ccc_body_code"] for r in await conn.fetch("SELECT ccc_body_code FROM certification_body")}
        approvals = {
            r["approval_number"] for r in await conn.fetch("SELECT approval_number FROM certification_body")
        }
        codes = [f"{c:02d}" for c in range(10, 100) if f"{c:02d}" not in taken][:BODIES]
        numbers = [
            n for n in (f"CNCA-R-{2002 + i % 20}-{900 - i:03d}" for i in range(200)) if n not in approvals
        ]
        body_rows = [
            (
                numbers[i],
                f"基准认证机构{i:03d}",
                code,
                date(2002 + i % 20, 1, 1),
                date(today.year + 3, 1, 1),
                json.dumps(["ccc", "qms", "ems", "ohsms", "fsms", "voluntary"]),
                json.dumps(list(_CCC_CATEGORIES)),
                "approved",
                national["id"],
                national["path"],
                1,
                now,
                now,
            )
            for i, code in enumerate(codes)
        ]
        await conn.copy_records_to_table(
            "certification_body",
            records=body_rows,
            columns=[
                "approval_number", "name", "ccc_body_code", "approved_on", "approval_expires_on",
                "approved_schemes", "ccc_designations", "status", "bureau_id", "bureau_path", "version",
                "created_at", "updated_at",
            ],
        )  # fmt: skip
        bodies = await conn.fetch(
            "SELECT id, ccc_body_code FROM certification_body WHERE name LIKE '基准认证机构%' ORDER BY id"
        )
        enterprises = min(ENTERPRISES, max(count // 10, 1))
        enterprise_rows = []
        enterprise_info = []
        serial_base = 50_000_000
        for i in range(enterprises):
            bureau = bureaus[i % len(bureaus)]
            division = counties[i % len(counties)] if counties else bureau["division_code"]
            name = f"基准企业{i:06d}有限公司"
            enterprise_rows.append(
                (
                    make_credit_code(division, serial_base + i),
                    name,
                    division,
                    "",
                    "active",
                    bureau["id"],
                    bureau["path"],
                    1,
                    now,
                    now,
                )
            )
            enterprise_info.append((name, division, bureau["id"], bureau["path"]))
        await conn.copy_records_to_table(
            "enterprise",
            records=enterprise_rows,
            columns=[
                "credit_code", "name", "division_code", "address", "status", "bureau_id", "bureau_path",
                "version", "created_at", "updated_at",
            ],
        )  # fmt: skip
        first_enterprise = await conn.fetchval(
            "SELECT min(id) FROM enterprise WHERE name LIKE '基准企业%'"
        )  # ids are consecutive: one COPY into an identity column
        columns = [
            "number", "scheme", "body_id", "holder_id", "holder_name", "division_code", "scope", "issued_on",
            "expires_on", "status", "status_changed_at", "bureau_id", "bureau_path", "version", "created_at",
            "updated_at",
        ]  # fmt: skip
        counts = {"valid": 0, "ccc": 0}
        serial = 0
        for start in range(0, count, CHUNK):
            rows = []
            for _ in range(min(CHUNK, count - start)):
                serial += 1
                e = rng.randrange(enterprises)
                name, division, bureau_id, bureau_path = enterprise_info[e]
                body = bodies[rng.randrange(len(bodies))]
                scheme = _pick(rng, _SCHEMES)
                status = _pick(rng, _STATUSES)
                issued = today - timedelta(days=rng.randrange(5 * 365))
                expires = issued + timedelta(days=5 * 365)
                if scheme == "ccc":
                    category = _CCC_CATEGORIES[serial % len(_CCC_CATEGORIES)]
                    # Year + body code + category + a 6-digit serial (unique up to a million rows).
                    number = f"{issued.year}{body['ccc_body_code']}{category}{serial % 1_000_000:06d}"
                    counts["ccc"] += 1
                elif scheme == "voluntary":
                    number = f"CQC{issued.year}{serial:08d}"
                else:
                    number = (
                        f"{body['ccc_body_code']}{issued.year % 100:02d}{_MS_MARK[scheme]}{serial:08d}R0M"
                    )
                counts["valid"] += status == "valid"
                rows.append(
                    (
                        number, scheme, body["id"], first_enterprise + e, name, division, "", issued, expires,
                        status, now, bureau_id, bureau_path, 1, now, now,
                    )
                )  # fmt: skip
            await conn.copy_records_to_table("certificate", records=rows, columns=columns)
        await conn.execute("ANALYZE certification_body; ANALYZE enterprise; ANALYZE certificate")
        return {
            "certificates": count,
            "enterprises": enterprises,
            "bodies": len(bodies),
            "seconds": time.perf_counter() - started,
            **counts,
            "query_values": {
                "division": counties[0] if counties else bureaus[0]["division_code"],
                "soon": (today + timedelta(days=30)).isoformat(),
                "later": (today + timedelta(days=120)).isoformat(),
            },
        }
    finally:
        await conn.close()
