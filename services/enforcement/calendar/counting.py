"""Counting days (DOMAIN.md "Counting days"): pure functions over a calendar object.

Nothing here reads the database: ``WorkingCalendar`` answers from chinese-calendar for
the years it knows and from the years handed to it (loaded by an administrator), and
raises ``CalendarNotCovered`` for any other year instead of guessing. The service
(``service.py``) catches that, loads the year if the database holds it, and counts again.

Rules of counting:

* the starting day is not counted;
* a working-day rule counts working days (holidays and weekends are skipped, adjusted
  working weekends (调休) count); a calendar-day rule counts every day; a
  ``working_before`` rule counts working days back from an event;
* if the last day of a calendar-day rule is not a working day, the deadline moves to the
  next working day;
* a day inside an excluded period (suspension, hearing, public notice, testing…) does
  not count; overlapping periods count once; an open period runs up to ``as_of``, and
  the deadline is then paused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

import chinese_calendar
from chinese_calendar import constants as cc

from services.common.problems import Conflict

ONE_DAY = timedelta(days=1)
SATURDAY = 5  # date.weekday(): Monday is 0, so Saturday and Sunday are 5 and 6
LOAD_PATH = "/api/v1/enforcement/calendar/{year}"


class DayKind(StrEnum):
    WORKING = "working"  # N working days after the start (工作日)
    CALENDAR = "calendar"  # N days after the start (自然日)
    WORKING_BEFORE = "working_before"  # at least N working days before an event


class CalendarNotCovered(Conflict):
    """A date whose year neither chinese-calendar nor a loaded year covers: never guessed."""

    slug = "calendar-not-covered"
    title = "The holiday calendar does not cover that year"

    def __init__(self, year: int) -> None:
        super().__init__(
            f"The holiday calendar does not cover {year}, so working days in it are unknown. "
            f"A national administrator loads the State Council's holiday notice for {year} "
            f"with PUT {LOAD_PATH.format(year=year)}.",
            year=year,
            load_with=f"PUT {LOAD_PATH.format(year=year)}",
        )
        self.year = year


def builtin_years() -> range:
    """The years the installed chinese-calendar covers (1.11: 2004–2026)."""
    return range(min(cc.holidays).year, max(cc.holidays).year + 1)


def _name(value: Any) -> str:
    # chinese-calendar keeps a Holiday enum member per day; its value is (english, chinese, days).
    raw = getattr(value, "value", value)
    if isinstance(raw, tuple):
        return str(raw[0])
    return str(raw)


def builtin_year_days(year: int) -> tuple[dict[date, str], dict[date, str]]:
    """chinese-calendar's holidays (date → name) and adjusted working days of ``year``."""
    holidays = {d: _name(v) for d, v in cc.holidays.items() if d.year == year}
    working = {d: _name(v) for d, v in cc.workdays.items() if d.year == year}
    return dict(sorted(holidays.items())), dict(sorted(working.items()))


def is_weekend(day: date) -> bool:
    return day.weekday() >= SATURDAY


@dataclass(frozen=True)
class LoadedYear:
    """A year an administrator loaded: its holidays (with names) and adjusted working days."""

    year: int
    holidays: Mapping[date, str]
    working_days: frozenset[date]


class WorkingCalendar:
    """Which days are working days: chinese-calendar's years, then the loaded ones."""

    def __init__(self, loaded: Iterable[LoadedYear] = ()) -> None:
        self._builtin = builtin_years()
        self._loaded: dict[int, LoadedYear] = {y.year: y for y in loaded}

    def add(self, year: LoadedYear) -> None:
        self._loaded[year.year] = year

    def covers(self, year: int) -> bool:
        return year in self._builtin or year in self._loaded

    def is_working(self, day: date) -> bool:
        if day.year in self._builtin:
            return chinese_calendar.is_workday(day)
        loaded = self._loaded.get(day.year)
        if loaded is None:
            raise CalendarNotCovered(day.year)
        if day in loaded.working_days:
            return True
        if day in loaded.holidays:
            return False
        return not is_weekend(day)


@dataclass(frozen=True)
class ExcludedPeriod:
    """A period excluded from a deadline (inclusive dates); ``end`` None while it still runs."""

    kind: str
    start: date
    end: date | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise ValueError(
                f"excluded period {self.kind!r} ends ({self.end}) before it starts ({self.start})"
            )

    def explain(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
        }


@dataclass(frozen=True)
class Deadline:
    """A computed deadline and everything that explains it."""

    rule: str
    rule_set: str
    start: date
    day_kind: DayKind
    days: int
    extension_days: int
    excluded: list[ExcludedPeriod]
    excluded_days: int  # days the excluded periods added (those that would have counted)
    skipped: list[date]  # non-working days passed over (working rules) or the roll-over (calendar)
    rolled_over_from: date | None  # the last day, when it was not a working day
    paused: bool  # an excluded period still runs: the due date holds if it ended on ``as_of``
    due: date
    as_of: date | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def explain(self) -> dict[str, Any]:
        """JSON-ready: dates as YYYY-MM-DD."""
        return {
            "rule": self.rule,
            "rule_set": self.rule_set,
            "start": self.start.isoformat(),
            "day_kind": str(self.day_kind),
            "days": self.days,
            "extension_days": self.extension_days,
            "excluded": [p.explain() for p in self.excluded],
            "excluded_days": self.excluded_days,
            "skipped": [d.isoformat() for d in self.skipped],
            "rolled_over_from": self.rolled_over_from.isoformat() if self.rolled_over_from else None,
            "paused": self.paused,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "due": self.due.isoformat(),
            **self.notes,
        }


def excluded_dates(periods: Sequence[ExcludedPeriod], as_of: date | None) -> tuple[frozenset[date], bool]:
    """Every excluded day (overlaps once), and whether a period still runs as of ``as_of``.

    An open period runs through ``as_of``; one that has not begun by then excludes nothing yet.
    """
    days: set[date] = set()
    paused = False
    for period in periods:
        end = period.end
        if end is None:
            if as_of is None:
                raise ValueError(f"excluded period {period.kind!r} is still running: give as_of")
            if as_of < period.start:
                continue
            end, paused = as_of, True
        day = period.start
        while day <= end:
            days.add(day)
            day += ONE_DAY
    return frozenset(days), paused


def count_deadline(
    calendar: WorkingCalendar,
    *,
    rule: str,
    rule_set: str,
    start: date,
    day_kind: DayKind | str,
    days: int,
    extension_days: int = 0,
    excluded: Sequence[ExcludedPeriod] = (),
    as_of: date | None = None,
) -> Deadline:
    """The due date of a rule of ``days`` (+ ``extension_days``) ``day_kind`` days from ``start``.

    For ``working_before``, ``start`` is the event, and the due date is the latest day
    that leaves the days before it. Raises ``CalendarNotCovered`` for the first day whose
    working status is needed and whose year the calendar does not cover.
    """
    kind = DayKind(day_kind)
    if days < 0 or extension_days < 0:
        raise ValueError("days and extension_days are not negative")
    off, paused = excluded_dates(excluded, as_of)
    step = -ONE_DAY if kind is DayKind.WORKING_BEFORE else ONE_DAY
    counts_working = kind is not DayKind.CALENDAR
    total = days + extension_days
    skipped: list[date] = []
    added = 0
    counted = 0
    day = start
    while counted < total:
        day += step
        if counts_working and not calendar.is_working(day):
            skipped.append(day)
        elif day in off:
            added += 1
        else:
            counted += 1
    rolled_over_from = None
    if kind is DayKind.CALENDAR:
        last = day
        while not calendar.is_working(day) or day in off:
            if day in off and day != last:
                added += 1
            elif day != last:
                skipped.append(day)
            day += ONE_DAY
        if day != last:
            rolled_over_from = last
            skipped.insert(0, last)
    return Deadline(
        rule=rule,
        rule_set=rule_set,
        start=start,
        day_kind=kind,
        days=days,
        extension_days=extension_days,
        excluded=list(excluded),
        excluded_days=added,
        skipped=skipped,
        rolled_over_from=rolled_over_from,
        paused=paused,
        due=day,
        as_of=as_of if paused else None,
    )
