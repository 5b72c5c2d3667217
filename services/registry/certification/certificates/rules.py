"""Certificate rules kept as data: surveillance periods, validity and renewal windows,
the exchange vocabulary, and the conditions computed from dates ("expired",
"surveillance overdue", "renewal window open").

The numbers live in ``services/registry/data/*.csv`` (DOMAIN.md: every number is
data), loaded once. The same rule answers in Python for one row (the read model)
and as a SQL expression for a list filter, both comparing against the same cut-off
dates, so a certificate flagged in its read model is the one the filter finds.
"""

from __future__ import annotations

import calendar
import csv
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Date, and_, bindparam, false, literal_column, or_

from services.registry.certification import models
from services.registry.certification.models import CertificateStatus

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
LEGAL_TZ = ZoneInfo("Asia/Shanghai")  # legal dates are Asia/Shanghai dates (DOMAIN.md)

# DOMAIN.md "Vocabulary for exchange": stored status → the international certificate
# database's code. "expired" is not stored: it is a valid certificate past its expiry.
EXCHANGE_STATUS = {
    CertificateStatus.VALID: "active",
    CertificateStatus.SUSPENDED: "suspended",
    CertificateStatus.REVOKED: "withdrawn",
    CertificateStatus.CANCELLED: "cancelled",
}
EXCHANGE_EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class SurveillanceRule:
    """Surveillance audits (监督审核) of a scheme: the first within N months of issue,
    then at most M months apart."""

    scheme: str
    first_within_months: int
    interval_months: int


@dataclass(frozen=True, slots=True)
class ValidityRule:
    """How long a scheme's certificate is valid by default, and the renewal window before expiry."""

    scheme: str
    validity_months: int
    renewal_window_days: int


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@cache
def surveillance_rules() -> dict[str, SurveillanceRule]:
    return {
        r["scheme"]: SurveillanceRule(r["scheme"], int(r["first_within_months"]), int(r["interval_months"]))
        for r in _rows("surveillance-rules.csv")
    }


@cache
def validity_rules() -> dict[str, ValidityRule]:
    return {
        r["scheme"]: ValidityRule(r["scheme"], int(r["validity_months"]), int(r["renewal_window_days"]))
        for r in _rows("certificate-validity.csv")
    }


def today() -> date:
    """Today's legal date (Asia/Shanghai), whatever the server's clock zone."""
    return datetime.now(LEGAL_TZ).date()


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months, clamped to the month's last day
    (31 January + 1 month = 28 or 29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def default_expiry(scheme: str, issued_on: date) -> date | None:
    """The last day of validity when the scheme has a default validity (CCC: 5 years), else None."""
    rule = validity_rules().get(scheme)
    if rule is None:
        return None
    return add_months(issued_on, rule.validity_months) - timedelta(days=1)


# --- conditions of one certificate ------------------------------------------


def is_expired(status: str, expires_on: date, on: date) -> bool:
    """A valid certificate whose last day of validity has passed (it leads to cancellation)."""
    return status == CertificateStatus.VALID and expires_on < on


def exchange_status(status: str, expires_on: date, on: date) -> str:
    if is_expired(status, expires_on, on):
        return EXCHANGE_EXPIRED
    return EXCHANGE_STATUS[CertificateStatus(status)]


def surveillance_cutoffs(rule: SurveillanceRule, on: date) -> tuple[date, date]:
    """(first, next): a certificate never surveilled is overdue when issued before ``first``;
    one surveilled is overdue when its last surveillance is before ``next``."""
    return add_months(on, -rule.first_within_months), add_months(on, -rule.interval_months)


def surveillance_due_on(scheme: str, issued_on: date, last_surveillance_on: date | None) -> date | None:
    rule = surveillance_rules().get(scheme)
    if rule is None:
        return None
    if last_surveillance_on is None:
        return add_months(issued_on, rule.first_within_months)
    return add_months(last_surveillance_on, rule.interval_months)


def is_surveillance_overdue(
    scheme: str, status: str, issued_on: date, last_surveillance_on: date | None, on: date
) -> bool:
    rule = surveillance_rules().get(scheme)
    if rule is None or status != CertificateStatus.VALID:
        return False
    first, following = surveillance_cutoffs(rule, on)
    if last_surveillance_on is None:
        return issued_on < first
    return last_surveillance_on < following


def is_renewal_window_open(scheme: str, status: str, expires_on: date, on: date) -> bool:
    """Renewal may be applied for (CCC: in the last 90 days of validity)."""
    rule = validity_rules().get(scheme)
    if rule is None or status != CertificateStatus.VALID:
        return False
    return expires_on - timedelta(days=rule.renewal_window_days) < on <= expires_on


def conditions(row: Any, on: date) -> dict[str, Any]:
    """The computed part of a certificate's read model, from a row or mapping of its columns."""
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    status, scheme = get("status"), get("scheme")
    issued_on, expires_on, last = get("issued_on"), get("expires_on"), get("last_surveillance_on")
    return {
        "exchange_status": exchange_status(status, expires_on, on),
        "expired": is_expired(status, expires_on, on),
        "surveillance_due_on": surveillance_due_on(scheme, issued_on, last),
        "surveillance_overdue": is_surveillance_overdue(scheme, status, issued_on, last, on),
        "renewal_window_open": is_renewal_window_open(scheme, status, expires_on, on),
    }


# --- the same rules as SQL for list filters --------------------------------


def surveillance_reference_sql() -> str:
    """The date a valid certificate's surveillance period runs from (its last surveillance,
    else its issue), NULL for any certificate no surveillance rule applies to — as SQL."""
    return models.surveillance_reference_sql(surveillance_rules())


def surveillance_reference() -> ColumnElement[date]:
    """:func:`surveillance_reference_sql` as a column expression.

    Exactly the expression of the index ``ix_certificate_surveillance_due``: its
    statistics tell the planner how many certificates lie past a cut-off (few, usually),
    and its range reads them. Written out with its constants, not bound values, so the
    expression matches the index in every plan. Should the rules name other schemes than
    the index does, answers stay right and only that index goes unused (a test compares).
    """
    return literal_column(surveillance_reference_sql(), Date)


def surveillance_overdue_clause(table, on: date) -> ColumnElement[bool]:
    """``WHERE`` clause of the valid certificates whose surveillance is overdue on ``on``.

    One branch per scheme with its own cut-off dates, so no row is loaded into Python to
    decide. The range on :func:`surveillance_reference` is implied by the
    branches (it changes no answer) and is what an index can serve.
    """
    c = table.c
    rules_by_scheme = surveillance_rules()
    if not rules_by_scheme:
        return false()
    branches = []
    cutoffs = []
    for scheme, rule in rules_by_scheme.items():
        first, following = surveillance_cutoffs(rule, on)
        cutoffs += [first, following]
        branches.append(
            and_(
                c.scheme == scheme,
                or_(
                    and_(c.last_surveillance_on.is_(None), c.issued_on < _inline(first)),
                    # IS NOT NULL spelled out, so the clause is never NULL and negates cleanly.
                    and_(c.last_surveillance_on.is_not(None), c.last_surveillance_on < _inline(following)),
                ),
            )
        )
    return and_(
        c.status == CertificateStatus.VALID.value,
        surveillance_reference() < _inline(max(cutoffs)),
        or_(*branches),
    )


def _inline(day: date) -> ColumnElement[date]:
    # Written into the statement: a prepared statement's generic plan, blind to the value,
    # would guess a third of the rows past the cut-off and read the table by id instead.
    return bindparam(None, day, type_=Date, literal_execute=True)


def surveillance_current_clause(table, on: date) -> ColumnElement[bool]:
    """The negation: certificates whose surveillance is not overdue (or not due at all)."""
    overdue = surveillance_overdue_clause(table, on)
    return ~overdue
