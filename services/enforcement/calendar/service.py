"""The working-day calendar, the deadline rules and deadline computation.

Public API other packages call: ``compute_deadline``, ``deadline_rule``,
``is_working_day``, ``shanghai_today``, ``CURRENT_RULE_SET`` (the newest rule set's
code, for a case being opened), ``ExcludedPeriod``, ``Deadline``, ``CalendarNotCovered``.

The counting itself is pure (``counting.py``); this module feeds it the years an
administrator loaded, read afresh from the database for each computation, one year
at a time as the counting reaches it (the due year is not known in advance). Nothing is
cached across requests, so a year loaded a moment ago counts at once.

Functions here never commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

import chinese_calendar
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.problems import Conflict, NotFound, UnprocessableEntity
from services.enforcement.calendar import repository as repo
from services.enforcement.calendar.counting import (
    LOAD_PATH,
    CalendarNotCovered,
    DayKind,
    Deadline,
    ExcludedPeriod,
    WorkingCalendar,
    builtin_year_days,
    builtin_years,
    count_deadline,
    is_weekend,
)
from services.enforcement.calendar.models import DeadlineRule, DeadlineRuleSet
from services.enforcement.calendar.schemas import (
    CalendarCoverage,
    CalendarYearLoad,
    CalendarYearRead,
    CoveredYear,
    DeadlineRuleSetCreate,
    DeadlineRuleSetRead,
)

__all__ = [
    "CURRENT_RULE_SET",
    "CalendarNotCovered",
    "Deadline",
    "DeadlineRule",
    "DeadlineRuleNotFound",
    "ExcludedPeriod",
    "compute_deadline",
    "current_rule_set",
    "deadline_rule",
    "is_working_day",
    "shanghai_today",
]

T = TypeVar("T")
# China has kept UTC+8 all year since 1991: a fixed offset needs no tz database in the image.
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
BUILT_IN = "chinese-calendar"
LOADED = "loaded"


def shanghai_today() -> date:
    """Today's legal date (Asia/Shanghai), whatever the server's clock zone."""
    return datetime.now(CHINA).date()


class DeadlineRuleNotFound(NotFound):
    """No rule of that code in the rule set (or no such rule set)."""


class CalendarYearBuiltIn(Conflict):
    slug = "calendar-year-built-in"
    title = "The installed chinese-calendar covers that year"


class RuleSetExists(Conflict):
    slug = "rule-set-exists"
    title = "A rule set of that code exists already"


def _field_error(loc: str, message: str, kind: str) -> dict[str, str]:
    return {"loc": loc, "message": message, "type": kind}


# ---------------------------------------------------------------------------------------
# Deadline rules


async def current_rule_set(session: AsyncSession, on: date | None = None) -> str:
    """The code of the newest rule set in force on ``on`` (today, Asia/Shanghai, if None):
    a case opened then keeps it for all its deadlines."""
    code = await repo.rule_set_in_force(session, on or shanghai_today())
    if code is None:  # the migration seeds one in force from the start: a broken database
        raise DeadlineRuleNotFound("No deadline rule set is in force.")
    return code


# The newest rule set, as a query: ``await CURRENT_RULE_SET(session)``.
CURRENT_RULE_SET = current_rule_set


# A rule set is written whole and never changed (a change is a new set): its rules are kept
# once read, as detached copies, so a step's deadlines cost no query for their rules.
_RULES: dict[tuple[str, str], DeadlineRule] = {}


async def deadline_rule(session: AsyncSession, rule: str, rule_set: str | None = None) -> DeadlineRule:
    """The rule ``rule`` of ``rule_set`` (the newest set if None); ``DeadlineRuleNotFound`` otherwise."""
    code = rule_set or await current_rule_set(session)
    cached = _RULES.get((code, rule))
    if cached is not None:
        return cached
    found = await repo.rule(session, code, rule)
    if found is None:
        raise DeadlineRuleNotFound(
            f"The deadline rule set {code!r} has no rule {rule!r}.", rule=rule, rule_set=code
        )
    _RULES[(code, rule)] = DeadlineRule.model_validate(found.model_dump())
    return _RULES[(code, rule)]


async def rule_set_read(session: AsyncSession, code: str | None) -> DeadlineRuleSetRead:
    current = await current_rule_set(session)
    found = await repo.rule_set(session, code or current)
    if found is None:
        raise DeadlineRuleNotFound(f"No deadline rule set {code!r}.", rule_set=code)
    rules = await repo.rules_of(session, found.code)
    codes = await repo.rule_set_codes(session)
    return DeadlineRuleSetRead.model_validate(
        {
            **found.model_dump(),
            "current": found.code == current,
            "rule_sets": codes,
            "rules": [r.model_dump() for r in rules],
        }
    )


async def create_rule_set(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: DeadlineRuleSetCreate
) -> DeadlineRuleSetRead:
    """Adds a rule set, in force from its ``effective_from`` (from now if None): from then on new
    cases are opened under it. It must keep every rule code of the current set (the procedure
    asks for each of them by code), and name each rule once."""
    errors = []
    if data.effective_from is not None and data.effective_from < shanghai_today():
        # Which set was in force on a past day stays what it was.
        errors.append(
            _field_error(
                "body.effective_from",
                f"A rule set comes into force today ({shanghai_today()}, Asia/Shanghai) or later.",
                "date_in_past",
            )
        )
    seen: set[str] = set()
    for i, r in enumerate(data.rules):
        if r.code in seen:
            errors.append(
                _field_error(f"body.rules.{i}.code", f"Rule {r.code!r} is named twice.", "duplicate_rule")
            )
        seen.add(r.code)
    current = await current_rule_set(session)
    if current:
        missing = sorted({r.code for r in await repo.rules_of(session, current)} - seen)
        if missing:
            errors.append(
                _field_error(
                    "body.rules",
                    f"The set lacks rules of the current set {current!r}: {', '.join(missing)}.",
                    "rule_missing",
                )
            )
    if errors:
        raise UnprocessableEntity("; ".join(e["message"] for e in errors), errors=errors)
    if await repo.rule_set(session, data.code) is not None:
        raise RuleSetExists(
            f"The deadline rule set {data.code!r} exists already; name the new one otherwise."
        )
    await repo.add_rule_set(
        session,
        DeadlineRuleSet(
            code=data.code,
            title=data.title,
            effective_from=data.effective_from or shanghai_today(),
            created_by=principal.account_id,
        ),
        [DeadlineRule(rule_set=data.code, **r.model_dump(mode="json")) for r in data.rules],
    )
    await audit.record(
        session,
        principal,
        "deadline_rule_set.created",
        "deadline_rule_set",
        data.code,
        {
            "title": data.title,
            "effective_from": (data.effective_from or shanghai_today()).isoformat(),
            "rules": [r.model_dump(mode="json") for r in data.rules],
        },
    )
    return await rule_set_read(session, data.code)


# ---------------------------------------------------------------------------------------
# Counting with the loaded years


async def _counted(session: AsyncSession, count: Callable[[WorkingCalendar], T]) -> T:
    """``count(calendar)``, loading each year the counting reaches that chinese-calendar lacks."""
    calendar = WorkingCalendar()
    while True:
        try:
            return count(calendar)
        except CalendarNotCovered as missing:
            if calendar.covers(missing.year):
                raise
            loaded = await repo.loaded_year(session, missing.year)
            if loaded is None:
                raise
            calendar.add(loaded)


async def is_working_day(session: AsyncSession, day: date) -> bool:
    """Whether ``day`` is a working day; ``CalendarNotCovered`` for a year nobody covers."""
    return await _counted(session, lambda calendar: calendar.is_working(day))


async def compute_deadline(
    session: AsyncSession,
    rule: str,
    start: date,
    *,
    extension_days: int = 0,
    excluded: Sequence[ExcludedPeriod] = (),
    rule_set: str | None = None,
    as_of: date | None = None,
) -> Deadline:
    """The due date of ``rule`` (of ``rule_set``, the newest if None) from ``start``, with its
    explanation. An excluded period still running counts up to ``as_of`` (today, Asia/Shanghai,
    if None) and the deadline is then paused.

    Raises ``DeadlineRuleNotFound``, ``CalendarNotCovered`` (a year the count reaches that no
    calendar covers) or ``UnprocessableEntity`` (a negative extension).
    """
    if extension_days < 0:
        message = "An extension adds days: it is not negative."
        raise UnprocessableEntity(
            message, errors=[_field_error("extension_days", message, "greater_than_equal")]
        )
    found = await deadline_rule(session, rule, rule_set)
    if as_of is None and any(p.end is None for p in excluded):
        as_of = shanghai_today()
    deadline = await _counted(
        session,
        lambda calendar: count_deadline(
            calendar,
            rule=found.code,
            rule_set=found.rule_set,
            start=start,
            day_kind=DayKind(found.day_kind),
            days=found.days,
            extension_days=extension_days,
            excluded=excluded,
            as_of=as_of,
        ),
    )
    return replace(
        deadline, notes={"extension_allowed": found.extension_days, "extension_needs": found.extension_needs}
    )


# ---------------------------------------------------------------------------------------
# The calendar's years


async def coverage(session: AsyncSession) -> CalendarCoverage:
    years = {y: CoveredYear(year=y, source=BUILT_IN) for y in builtin_years()}
    for row in await repo.loaded_years(session):
        # A year a newer chinese-calendar took over answers from the package.
        years.setdefault(
            row["year"],
            CoveredYear(
                year=row["year"],
                source=LOADED,
                notice=row["source"],
                loaded_by=row["loaded_by"],
                loaded_at=row["loaded_at"],
            ),
        )
    return CalendarCoverage(
        years=[years[y] for y in sorted(years)], chinese_calendar_version=chinese_calendar.__version__
    )


def _days(days: dict[date, str]) -> list[dict[str, Any]]:
    return [{"date": d, "name": n} for d, n in sorted(days.items())]


async def calendar_year(session: AsyncSession, year: int) -> CalendarYearRead:
    """A covered year's holidays and adjusted working days; 404 ``not-found`` (with ``year``
    and how to load it) for a year no calendar covers."""
    if year in builtin_years():
        holidays, working = builtin_year_days(year)
        return CalendarYearRead(
            year=year,
            source=BUILT_IN,
            notice=None,
            holidays=_days(holidays),  # type: ignore[arg-type]
            working_days=_days(working),  # type: ignore[arg-type]
        )
    row = await repo.loaded_year_row(session, year)
    if row is None:
        raise NotFound(
            f"The holiday calendar does not cover {year}: a national administrator loads it "
            f"with PUT {LOAD_PATH.format(year=year)}.",
            year=year,
        )
    days = await repo.year_days(session, year)
    return CalendarYearRead(
        year=year,
        source=LOADED,
        notice=row["source"],
        loaded_by=row["loaded_by"],
        loaded_at=row["loaded_at"],
        holidays=[{"date": d["day"], "name": d["name"]} for d in days if d["kind"] == "holiday"],  # type: ignore[misc]
        working_days=[{"date": d["day"], "name": d["name"]} for d in days if d["kind"] == "working"],  # type: ignore[misc]
    )


def _check_year(year: int, data: CalendarYearLoad) -> list[dict[str, str]]:
    """Field errors of a year's days: inside the year, each once, no day both off and worked,
    adjusted working days on a Saturday or Sunday."""
    errors = []
    holiday_dates = {d.date for d in data.holidays}
    for field, entries in (("holidays", data.holidays), ("working_days", data.working_days)):
        seen: set[date] = set()
        for i, entry in enumerate(entries):
            loc = f"body.{field}.{i}.date"
            if entry.date.year != year:
                errors.append(_field_error(loc, f"{entry.date} is not in {year}.", "date_outside_year"))
            if entry.date in seen:
                errors.append(_field_error(loc, f"{entry.date} is listed twice.", "duplicate_date"))
            seen.add(entry.date)
            if field == "working_days":
                if entry.date in holiday_dates:
                    errors.append(
                        _field_error(
                            loc, f"{entry.date} is also listed as a holiday.", "holiday_and_working_day"
                        )
                    )
                if not is_weekend(entry.date):
                    errors.append(
                        _field_error(
                            loc,
                            f"{entry.date} is a weekday, a working day anyway: an adjusted working day "
                            "(调休上班) is a Saturday or Sunday.",
                            "not_a_weekend",
                        )
                    )
    return errors


async def load_year(
    session: AsyncSession, audit: AuditLog, principal: Principal, year: int, data: CalendarYearLoad
) -> CalendarYearRead:
    """Stores (or replaces) a year the installed chinese-calendar does not cover."""
    if year in builtin_years():
        raise CalendarYearBuiltIn(
            f"The installed chinese-calendar covers {year} ({builtin_years()[0]}–{builtin_years()[-1]}); "
            "only other years are loaded.",
            year=year,
        )
    errors = _check_year(year, data)
    if errors:
        raise UnprocessableEntity("; ".join(e["message"] for e in errors[:5]), errors=errors)
    holidays = [(d.date, d.name) for d in data.holidays]
    working = [(d.date, d.name) for d in data.working_days]
    await repo.replace_year(
        session,
        year,
        source=data.source,
        loaded_by=principal.account_id,
        holidays=holidays,
        working_days=working,
    )
    await audit.record(
        session,
        principal,
        "calendar.year.loaded",
        "calendar_year",
        year,
        {
            "source": data.source,
            "holidays": [{"date": d.isoformat(), "name": n} for d, n in holidays],
            "working_days": [{"date": d.isoformat(), "name": n} for d, n in working],
        },
    )
    return await calendar_year(session, year)
