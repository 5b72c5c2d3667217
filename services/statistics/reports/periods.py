"""Reporting periods and their deadlines.

A period key is ``2026-05`` (month), ``2026-Q2`` (quarter) or ``2026`` (year); its days are
Asia/Shanghai dates. When each period's statistical report (认证执法统计报表) is due is data:
``data/report-deadlines.csv`` gives, per kind, the month after the period's last month and the
day of that month (calendar days, clamped to the month's last day) — by default a monthly report
on the 10th of the next month, a quarterly one on the 15th of the month after the quarter, a
yearly one on 31 January — and the first period bureaus report for.
"""

from __future__ import annotations

import calendar
import csv
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

DEADLINES_FILE = Path(__file__).parent.parent / "data" / "report-deadlines.csv"
PERIOD_PATTERN = r"^(199[0-9]|20[0-9]{2})(-(0[1-9]|1[0-2])|-Q[1-4])?$"  # years 1990–2099
_PERIOD = re.compile(PERIOD_PATTERN)
KINDS = ("month", "quarter", "year")


@dataclass(frozen=True)
class DeadlineRule:
    period_kind: str
    months_after_end: int
    day: int
    first_period: str


@cache
def deadline_rules() -> dict[str, DeadlineRule]:
    with DEADLINES_FILE.open(encoding="utf-8") as f:
        rules = {
            row["period_kind"]: DeadlineRule(
                row["period_kind"], int(row["months_after_end"]), int(row["day"]), row["first_period"]
            )
            for row in csv.DictReader(f)
        }
    missing = set(KINDS) - set(rules)
    if missing:
        raise RuntimeError(f"{DEADLINES_FILE} has no deadline for {', '.join(sorted(missing))}")
    return rules


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


@dataclass(frozen=True, order=True)
class Period:
    year: int
    first_month: int
    months: int  # 1, 3 or 12

    @property
    def kind(self) -> str:
        return {1: "month", 3: "quarter", 12: "year"}[self.months]

    @property
    def key(self) -> str:
        if self.months == 1:
            return f"{self.year:04d}-{self.first_month:02d}"
        if self.months == 3:
            return f"{self.year:04d}-Q{(self.first_month - 1) // 3 + 1}"
        return f"{self.year:04d}"

    @property
    def start(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end(self) -> date:
        """The period's last day."""
        month = self.first_month + self.months - 1
        return date(self.year, month, calendar.monthrange(self.year, month)[1])

    @property
    def due(self) -> date:
        """The last day the period's report may be submitted on time."""
        rule = deadline_rules()[self.kind]
        year, month = _add_months(self.year, self.first_month + self.months - 1, rule.months_after_end)
        return date(year, month, min(rule.day, calendar.monthrange(year, month)[1]))

    def closed(self, on: date) -> bool:
        return on > self.end

    def following(self) -> Period:
        year, month = _add_months(self.year, self.first_month, self.months)
        return Period(year, month, self.months)

    def trend(self) -> list[Period]:
        """The periods a trend chart shows up to this one: the months (or quarters) of its year
        so far; for a year, the five years up to it."""
        if self.months == 12:
            return [Period(y, 1, 12) for y in range(self.year - 4, self.year + 1)]
        return [Period(self.year, m, self.months) for m in range(1, self.first_month + 1, self.months)]

    def __str__(self) -> str:
        return self.key


def parse_period(text: str) -> Period:
    """The period a key names; ``ValueError`` for anything else."""
    if not _PERIOD.fullmatch(text):
        raise ValueError(f"{text!r} is not a period (YYYY-MM, YYYY-Qn or YYYY)")
    year = int(text[:4])
    if len(text) == 4:
        return Period(year, 1, 12)
    if text[5] == "Q":
        return Period(year, (int(text[6]) - 1) * 3 + 1, 3)
    return Period(year, int(text[5:7]), 1)


def overdue_periods(as_of: date) -> list[Period]:
    """Every period, from each kind's first reporting period, whose report deadline has passed
    by ``as_of`` (the due day itself is still on time)."""
    out: list[Period] = []
    for kind in KINDS:
        period = parse_period(deadline_rules()[kind].first_period)
        while period.due < as_of:
            out.append(period)
            period = period.following()
    return out
