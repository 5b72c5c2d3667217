"""The deadlines the legal-affairs body watches, as data (data/deadline-rules.csv, the rows of the
platform's deadline rules that concern it): legal review, major-case filing and the answer and
objection windows of a supervision notice."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from services.common.dates import add_working_days

RULES_FILE = Path(__file__).parent / "data" / "deadline-rules.csv"


@dataclass(frozen=True)
class DeadlineRule:
    rule: str
    days: int
    day_kind: str  # working / calendar
    starts_at: str
    note: str

    def due(self, start: date) -> date:
        """The last day of the period that starts on ``start`` (the day after it is day one)."""
        if self.day_kind == "working":
            return add_working_days(start, self.days)
        return start + timedelta(days=self.days)


@cache
def rules() -> dict[str, DeadlineRule]:
    with RULES_FILE.open(encoding="utf-8") as f:
        return {
            row["rule"]: DeadlineRule(
                row["rule"], int(row["days"]), row["day_kind"], row["starts_at"], row["note"]
            )
            for row in csv.DictReader(f)
        }


def due(rule: str, start: date) -> date:
    return rules()[rule].due(start)
