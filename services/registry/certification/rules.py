"""Time rules of the certification chain, read from ``data/certification-rules.csv``.

Periods are data, not code: a changed regulation is a changed row. Legal dates
are China's calendar dates (UTC+8, no daylight saving).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "certification-rules.csv"
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class Period:
    value: int
    unit: str  # "years" or "days"
    basis: str

    def after(self, start: date) -> date:
        """The day ``value`` units after ``start`` (29 February falls back to the 28th)."""
        return self._shift(start, self.value)

    def before(self, end: date) -> date:
        """The day ``value`` units before ``end``."""
        return self._shift(end, -self.value)

    def _shift(self, day: date, amount: int) -> date:
        try:
            if self.unit == "days":
                return day + timedelta(days=amount)
            try:
                return day.replace(year=day.year + amount)
            except ValueError:
                if not date.min.year <= day.year + amount <= date.max.year:
                    raise OverflowError from None
                return day.replace(year=day.year + amount, day=28)  # 29 February in a common year
        except OverflowError:  # beyond the calendar: the calendar's own end
            return date.max if amount > 0 else date.min


def load_rules(path: Path = RULES_FILE) -> dict[str, Period]:
    with path.open(encoding="utf-8") as f:
        rules = {}
        for row in csv.DictReader(f):
            if row["unit"] not in ("years", "days"):
                raise ValueError(f"{path.name}: {row['key']} has unit {row['unit']!r}, not years or days")
            rules[row["key"]] = Period(int(row["value"]), row["unit"], row["basis"])
    return rules


RULES = load_rules()
BODY_APPROVAL_VALIDITY = RULES["body_approval_validity"]
BODY_RENEWAL_NOTICE = RULES["body_renewal_notice"]
AUDITOR_REVOCATION_BAR = RULES["auditor_revocation_bar"]


def today() -> date:
    """Today's date in China, the calendar legal dates are kept in."""
    return datetime.now(UTC).astimezone(CHINA).date()


def approval_expiry(approved_on: date) -> date:
    """The last day of an approval granted on ``approved_on``: six years, the last day included."""
    return BODY_APPROVAL_VALIDITY.after(approved_on) - timedelta(days=1)


def approval_expired(expires_on: date, on: date) -> bool:
    return on > expires_on


def renewal_due(expires_on: date, on: date) -> bool:
    """Within the notice period before expiry (and not yet expired): time to ask for renewal."""
    return BODY_RENEWAL_NOTICE.before(expires_on) <= on <= expires_on


def barred_until(revoked_on: date) -> date:
    """The first day a revoked auditor may be registered again."""
    return AUDITOR_REVOCATION_BAR.after(revoked_on)
