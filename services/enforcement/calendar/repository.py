"""Every SQL statement of the calendar and of the deadline rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import select as model_select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.enforcement.calendar.counting import LoadedYear
from services.enforcement.calendar.models import (
    CalendarDay,
    CalendarDayKind,
    CalendarYear,
    DeadlineRule,
    DeadlineRuleSet,
)

_year = CalendarYear.__table__  # type: ignore[attr-defined]
_day = CalendarDay.__table__  # type: ignore[attr-defined]
_rule_set = DeadlineRuleSet.__table__  # type: ignore[attr-defined]
_rule = DeadlineRule.__table__  # type: ignore[attr-defined]


async def loaded_years(session: AsyncSession) -> list[dict[str, Any]]:
    return [dict(r) for r in (await session.exec(select(_year).order_by(_year.c.year))).mappings().all()]


async def loaded_year_row(session: AsyncSession, year: int) -> dict[str, Any] | None:
    row = (await session.exec(select(_year).where(_year.c.year == year))).mappings().first()
    return dict(row) if row else None


async def year_days(session: AsyncSession, year: int) -> list[dict[str, Any]]:
    query = select(_day.c.day, _day.c.kind, _day.c.name).where(_day.c.year == year).order_by(_day.c.day)
    return [dict(r) for r in (await session.exec(query)).mappings().all()]


async def loaded_year(session: AsyncSession, year: int) -> LoadedYear | None:
    """A loaded year as the counting needs it, or None if no administrator loaded it."""
    if await loaded_year_row(session, year) is None:
        return None
    days = await year_days(session, year)
    return LoadedYear(
        year=year,
        holidays={d["day"]: d["name"] for d in days if d["kind"] == CalendarDayKind.HOLIDAY},
        working_days=frozenset(d["day"] for d in days if d["kind"] == CalendarDayKind.WORKING),
    )


async def replace_year(
    session: AsyncSession,
    year: int,
    *,
    source: str,
    loaded_by: str,
    holidays: Sequence[tuple[date, str]],
    working_days: Sequence[tuple[date, str]],
) -> None:
    """Store a year's days in place of what it held (the upsert locks the year's row,
    so two loads of one year follow each other)."""
    upsert = pg_insert(_year).values(year=year, source=source, loaded_by=loaded_by, loaded_at=func.now())
    await session.exec(
        upsert.on_conflict_do_update(
            index_elements=[_year.c.year],
            set_={"source": source, "loaded_by": loaded_by, "loaded_at": func.now()},
        )
    )
    await session.exec(delete(_day).where(_day.c.year == year))
    rows = [{"day": d, "year": year, "kind": CalendarDayKind.HOLIDAY, "name": n} for d, n in holidays]
    rows += [{"day": d, "year": year, "kind": CalendarDayKind.WORKING, "name": n} for d, n in working_days]
    if rows:
        await session.exec(insert(_day).values(rows))


# Newest first: the latest day in force, then the latest added (a set without a day came first).
_NEWEST_FIRST = (_rule_set.c.effective_from.desc().nulls_last(), _rule_set.c.id.desc())


async def rule_set_codes(session: AsyncSession) -> list[str]:
    """Every rule set, newest first."""
    return list((await session.exec(select(_rule_set.c.code).order_by(*_NEWEST_FIRST))).scalars())


async def rule_set_in_force(session: AsyncSession, on: date) -> str | None:
    """The newest rule set in force on ``on``."""
    query = (
        select(_rule_set.c.code)
        .where(or_(_rule_set.c.effective_from.is_(None), _rule_set.c.effective_from <= on))
        .order_by(*_NEWEST_FIRST)
        .limit(1)
    )
    return (await session.exec(query)).scalar()


async def rule_set(session: AsyncSession, code: str) -> DeadlineRuleSet | None:
    return (await session.exec(model_select(DeadlineRuleSet).where(DeadlineRuleSet.code == code))).first()


async def rules_of(session: AsyncSession, rule_set_code: str) -> list[DeadlineRule]:
    rows = await session.exec(
        model_select(DeadlineRule).where(DeadlineRule.rule_set == rule_set_code).order_by(_rule.c.id)
    )
    return list(rows.all())


async def rule(session: AsyncSession, rule_set_code: str, code: str) -> DeadlineRule | None:
    return (
        await session.exec(
            model_select(DeadlineRule).where(
                DeadlineRule.rule_set == rule_set_code, DeadlineRule.code == code
            )
        )
    ).first()


async def add_rule_set(
    session: AsyncSession, rule_set_row: DeadlineRuleSet, rules: Sequence[DeadlineRule]
) -> None:
    session.add(rule_set_row)
    await session.flush()
    session.add_all(list(rules))
    await session.flush()
