"""The supervision coverage aggregates: snapshot_coverage asks the registry for each bureau the
statistics know and the current and previous month, quarter and year, and upserts the rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from services.statistics.aggregates.models import Aggregate
from services.statistics.coverage import coverage_measures, known_bureaus, periods, snapshot_coverage
from services.statistics.facts.models import BureauDimension
from tests.registry.test_supervision_coverage import coverage_world, inspect


def ctx(statistics) -> dict:
    return {"sessionmaker": statistics.app.state.sessionmaker, "services": statistics.app.state.services}


async def rows_of(statistics, bureau_id: int) -> dict[tuple[str, str], Decimal]:
    async with statistics.app.state.sessionmaker() as session:
        found = (
            (await session.exec(select(Aggregate).where(Aggregate.bureau_id == bureau_id))).scalars().all()
        )
    assert all(r.dimension == "all" and r.value == "" for r in found)
    return {(r.period, r.measure): r.amount for r in found}


def test_the_periods_are_the_current_and_previous_month_quarter_and_year():
    assert [(k, key, str(a), str(b)) for k, key, a, b in periods(date(2026, 1, 15))] == [
        ("month", "2026-01", "2026-01-01", "2026-01-31"),
        ("month", "2025-12", "2025-12-01", "2025-12-31"),
        ("quarter", "2026-Q1", "2026-01-01", "2026-03-31"),
        ("quarter", "2025-Q4", "2025-10-01", "2025-12-31"),
        ("year", "2026", "2026-01-01", "2026-12-31"),
        ("year", "2025", "2025-01-01", "2025-12-31"),
    ]
    assert periods(date(2024, 3, 31))[1][1:] == ("2024-02", date(2024, 2, 1), date(2024, 2, 29))


async def test_snapshot_writes_the_coverage_of_known_bureaus_and_is_idempotent(
    statistics, registry, token_for
):
    w = await coverage_world(registry, token_for)
    province, county = w["province"], w["county"]
    chain = w["chains"]["county"]
    await inspect(registry, county, "certificate", chain["certificate"], "2026-05-03")
    await inspect(registry, county, "certificate", chain["certificate"], "2026-05-04")
    await inspect(registry, county, "auditor", chain["auditor"], "2026-03-20")
    await inspect(registry, county, "enterprise", chain["enterprise"], "2025-11-02")

    async with statistics.app.state.sessionmaker() as session:
        session.add(
            BureauDimension(
                bureau_id=province["id"],
                bureau_path=province["path"],
                level="province",
                name=province["name"],
            )
        )
        await session.commit()
        assert province["id"] in await known_bureaus(session)

    unknown = 10**12
    report = await snapshot_coverage(ctx(statistics), on="2026-05-15", bureau_ids=[province["id"], unknown])
    assert report == {"bureaus": 1, "skipped": 1, "rows": 6 * len(coverage_measures())}
    first = await rows_of(statistics, province["id"])
    assert len(first) == 6 * 8
    assert first[("2026-05", "coverage_certificate_inspected")] == 1
    assert first[("2026-05", "coverage_certificate_total")] == 2
    assert first[("2026-04", "coverage_certificate_inspected")] == 0
    assert first[("2026-Q2", "coverage_auditor_inspected")] == 0
    assert first[("2026-Q1", "coverage_auditor_inspected")] == 1
    assert first[("2026", "coverage_auditor_inspected")] == 1
    assert first[("2025", "coverage_enterprise_inspected")] == 1
    assert first[("2026", "coverage_enterprise_inspected")] == 0
    assert first[("2026", "coverage_body_total")] == 2
    assert await rows_of(statistics, unknown) == {}

    # Again: the same rows, the same figures.
    await snapshot_coverage(ctx(statistics), on="2026-05-15", bureau_ids=[province["id"]])
    assert await rows_of(statistics, province["id"]) == first

    # An inspection recorded later moves the figures of its periods on the next run.
    await inspect(registry, county, "body", w["chains"]["city"]["body"], "2026-05-10")
    await snapshot_coverage(ctx(statistics), on="2026-05-15", bureau_ids=[province["id"]])
    after = await rows_of(statistics, province["id"])
    assert after[("2026-05", "coverage_body_inspected")] == 1
    assert after[("2026", "coverage_body_inspected")] == 1
    assert {k: v for k, v in after.items() if "body_inspected" not in k[1]} == {
        k: v for k, v in first.items() if "body_inspected" not in k[1]
    }

    async with statistics.app.state.sessionmaker() as session:
        kinds = (
            await session.exec(
                select(Aggregate.period, Aggregate.period_kind)
                .where(Aggregate.bureau_id == province["id"])
                .distinct()
            )
        ).all()
    assert dict(kinds) == {
        "2026-05": "month",
        "2026-04": "month",
        "2026-Q2": "quarter",
        "2026-Q1": "quarter",
        "2026": "year",
        "2025": "year",
    }
