"""Helpers of the facts and aggregates tests: a world of their own (so no other test's cases
reach its figures), enforcement's events handed to statistics' inbox, figures read over HTTP,
and the expected figures counted straight from enforcement's cases."""

from __future__ import annotations

import calendar
import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from services.common.dates import today
from services.enforcement.models import OutboxEvent
from services.statistics import models as statistics_models
from services.statistics.consumers import HANDLERS
from tests.conftest import auth
from tests.events_flow import deliver as deliver_events
from tests.events_flow import envelope, outbox_events, worker_ctx

AGGREGATES = "/api/v1/statistics/aggregates"
FACT_EVENTS = ("enforcement.lead.changed", "enforcement.case.changed")


def stats_ctx(statistics, handlers=None) -> dict:
    return worker_ctx(statistics, "statistics", statistics_models, HANDLERS if handlers is None else handlers)


async def enforcement_events(enforcement, path_prefix: str) -> list[dict]:
    """The lead and case events of a subtree in enforcement's outbox, as the relay sends them."""
    t = OutboxEvent
    return await outbox_events(
        enforcement, t, t.c.bureau_path.startswith(path_prefix), t.c.type.in_(FACT_EVENTS)
    )


async def deliver(statistics, events: list[dict], handlers=None) -> list[str]:
    return await deliver_events(stats_ctx(statistics, handlers), *events)


async def figures(statistics, token: str, bureau_id: int, **params) -> dict[tuple, str]:
    """Every non-zero figure of a bureau: (period, dimension, value, measure) → amount."""
    out: dict[tuple, str] = {}
    cursor = None
    while True:
        query = {"bureau_id": bureau_id, "limit": 500, **params, **({"cursor": cursor} if cursor else {})}
        response = await statistics.get(AGGREGATES, params=query, headers=auth(token))
        assert response.status_code == 200, response.text
        body = response.json()
        for item in body["items"]:
            if Decimal(item["amount"]) != 0:
                out[(item["period"], item["dimension"], item["value"], item["measure"])] = item["amount"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out


def case_event(
    bureau: dict, case_id: int, version: int, *, event_id: str | None = None, **payload: Any
) -> dict:
    """A synthetic `enforcement.case.changed` event of a case of ``bureau``."""
    body = {
        "case_id": case_id,
        "number": f"T-{case_id}",
        "procedure": "ordinary",
        "state": "investigating",
        "subject_type": "enterprise",
        "subject_id": 1,
        "party_kind": "organisation",
        "violation_code": "uncertified-ccc-product",
        "opened_on": "2026-06-03",
        "penalty_kinds": [],
        "fine_decided": "0",
        "fine_current": "0",
        "confiscation": "0",
        "paid_total": "0",
        "needs_legal_review": False,
        "needs_filing": False,
        "officer_count": 2,
        **payload,
    }
    return envelope(
        "enforcement.case.changed",
        "case",
        case_id,
        version,
        body,
        bureau_id=bureau["id"],
        bureau_path=bureau["path"],
        event_id=event_id,
    )


def new_case_id() -> int:
    return 10**12 + uuid.uuid4().int % 10**11


# --- expected figures, counted from enforcement's cases and leads ---------------------------


def _periods(first: date, last: date) -> list[tuple[str, str, date]]:
    """(kind, key, end) of every month, quarter and year from ``first`` to ``last``."""
    out = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        end = date(year, month, calendar.monthrange(year, month)[1])
        out.append(("month", f"{year}-{month:02d}", end))
        if month % 3 == 0 or (year, month) == (last.year, last.month):
            q = (month - 1) // 3 + 1
            qend = date(year, q * 3, calendar.monthrange(year, q * 3)[1])
            out.append(("quarter", f"{year}-Q{q}", qend))
        if month == 12 or (year, month) == (last.year, last.month):
            out.append(("year", f"{year}", date(year, 12, 31)))
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return list(dict.fromkeys(out))


def _key(kind: str, day: date) -> str:
    return {
        "month": f"{day:%Y-%m}",
        "quarter": f"{day.year}-Q{(day.month - 1) // 3 + 1}",
        "year": f"{day.year}",
    }[kind]


def expected_figures(cases: list[dict], leads: list[dict]) -> dict[tuple, str]:
    """The `all` figures a direct count over enforcement's cases and leads gives."""
    now = today()
    counts: dict[tuple, Decimal] = defaultdict(Decimal)

    def add(kind_day: date | None, measure: str, amount: Decimal = Decimal(1)) -> None:
        if kind_day is None or amount == 0:
            return
        for kind in ("month", "quarter", "year"):
            counts[(_key(kind, kind_day), "all", "", measure)] += amount

    for lead in leads:
        add(date.fromisoformat(lead["received_on"]), "leads_received")
    for case in cases:
        opened = date.fromisoformat(case["opened_on"])
        closed = date.fromisoformat(case["closed_on"]) if case["closed_on"] else None
        decided = date.fromisoformat(case["decided_on"]) if case["decided_on"] else None
        due = date.fromisoformat(case["next_due"]) if case["next_due"] else None
        add(opened, "cases_opened")
        add(closed, "cases_closed")
        add(decided, "fines_decided", Decimal(case["fine_current"]))
        add(decided, "fines_collected", Decimal(case["paid_total"]))
        if "transferred_to_judicial_organ" in case["circumstances"]:
            add(closed, "transfers_judicial")
        if case["needs_filing"]:
            add(decided or closed, "major_cases")
        for _kind, key, end in _periods(opened, now):
            at = min(end, now)
            if opened <= at and (closed is None or closed > at):
                counts[(key, "all", "", "cases_pending")] += 1
                if due is not None and due < at:
                    counts[(key, "all", "", "cases_overdue")] += 1
    return {k: _text(k[3], v) for k, v in counts.items() if v != 0}


def _text(measure: str, amount: Decimal) -> str:
    if measure.startswith(("fines_", "confiscations")):
        return str(amount.quantize(Decimal("0.01")))
    return str(int(amount))


COMPARED = frozenset(
    {
        "leads_received",
        "cases_opened",
        "cases_closed",
        "cases_pending",
        "cases_overdue",
        "fines_decided",
        "fines_collected",
        "transfers_judicial",
        "major_cases",
    }
)


def only(found: dict[tuple, str], measures=COMPARED) -> dict[tuple, str]:
    return {k: v for k, v in found.items() if k[1] == "all" and k[3] in measures}


def ids_of(events: list[dict]) -> tuple[list[int], list[int]]:
    """(lead ids, case ids) the events speak of."""
    leads = sorted({int(e["aggregate_id"]) for e in events if e["aggregate_type"] == "lead"})
    cases = sorted({int(e["aggregate_id"]) for e in events if e["aggregate_type"] == "case"})
    return leads, cases
