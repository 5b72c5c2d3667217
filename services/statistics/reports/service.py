"""The rules of statistical reports (认证执法统计报表).

* A bureau's legal-affairs officers (法制工作机构; or its administrator) generate a draft for a
  period from the aggregates of the bureau's subtree: every measure, dimension `all` and the
  breakdowns, copied into the draft's own rows.
* Submitting a draft (naming the ETag read) freezes it for good; a later change of the
  aggregates never reaches it, and any write to it is refused (``/problems/report-submitted``).
* A correction is a new revision (a draft, then submitted) that ``supersedes`` the newest
  submitted one, which is kept as it was.
* A bureau with subordinate bureaus sees, beside its own figures, the sum of its direct
  subordinates' newest submitted revisions and which of them have not submitted; a submitted
  report counts the submissions made up to its own, so its whole document stays as it was.
* A report is due on its period's deadline (``periods.py``); ``late_report_alerts`` raises one
  alert per bureau and period not submitted on time.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.conditional import strong_etag
from services.common.dates import CHINA, today
from services.common.db import utcnow
from services.common.problems import Conflict, Forbidden, PreconditionFailed, PreconditionRequired
from services.statistics.oversight.alerts import raise_alert
from services.statistics.reports import repository as repo
from services.statistics.reports.models import ReportState
from services.statistics.reports.periods import Period, overdue_periods, parse_period
from services.statistics.reports.render import json_body

ALERT_KIND = "late_report"

# The problem types of this domain (DESIGN §6: one documented list per service part).
PROBLEM_TYPES = {
    "report-of-another-bureau": "A bureau generates, submits and corrects only its own reports",
    "report-draft-exists": "The bureau already has a draft for the period: submit it first",
    "report-already-submitted": "The period's report was submitted: correct it instead",
    "report-submitted": "A submitted report is frozen: no write reaches it",
    "report-not-submitted": "Only a submitted revision can be corrected",
    "report-superseded": "A newer revision exists: correct the newest",
    "period-not-started": "A report cannot be generated for a period that has not begun",
    "period-not-closed": "A report cannot be submitted before its period has ended",
}


def amount_text(amount: Decimal) -> str:
    """A figure as a decimal string without trailing zeros (``12``, ``35000.5``)."""
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _figures(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [
        {
            "measure": r["measure"],
            "dimension": r["dimension"],
            "value": r["value"],
            "amount": amount_text(r["amount"]),
        }
        for r in rows
    ]


async def _rollup(
    conn: asyncpg.Connection, bureau_id: int, period: str, own: list[dict[str, Any]], cutoff: datetime | None
) -> dict[str, Any] | None:
    kids = await repo.children(conn, bureau_id, period, cutoff)
    if not kids:
        return None
    submitted = [k for k in kids if k["report_id"] is not None]
    sums = await repo.summed_figures(conn, [k["report_id"] for k in submitted]) if submitted else []
    key = lambda r: (r["measure"], r["dimension"], r["value"])  # noqa: E731
    theirs = {key(r): amount_text(r["amount"]) for r in sums}
    mine = {key(f): f["amount"] for f in own}
    figures = [
        {
            "measure": k[0],
            "dimension": k[1],
            "value": k[2],
            "own": mine.get(k, "0"),
            "children": theirs.get(k, "0"),
        }
        for k in sorted(mine.keys() | theirs.keys())
    ]
    return {
        "as_of": cutoff,
        "children_submitted": [
            {
                "bureau_id": k["bureau_id"],
                "bureau_name": k["bureau_name"],
                "report_id": k["report_id"],
                "revision": k["revision"],
                "submitted_at": k["submitted_at"],
            }
            for k in submitted
        ],
        "children_missing": [
            {"bureau_id": k["bureau_id"], "bureau_name": k["bureau_name"]}
            for k in kids
            if k["report_id"] is None
        ],
        "figures": figures,
    }


def _late(due_on: date, submitted_on: date | None) -> bool:
    return submitted_on > due_on if submitted_on is not None else today() > due_on


async def report_body(conn: asyncpg.Connection, report: Any) -> tuple[bytes, str]:
    """The JSON of a revision and its ETag: a submitted one as stored at its submission."""
    if report["document"] is not None:
        return report["document"], report["etag"]
    body = json_body(await report_document(conn, report))
    return body, strong_etag(body)


async def report_document(conn: asyncpg.Connection, report: Any) -> dict[str, Any]:
    """The whole document of a revision (``ReportRead``), its figures and its rollup."""
    figures = _figures(await repo.report_figures(conn, report["id"]))
    submitted = report["state"] == ReportState.SUBMITTED
    return {
        "id": report["id"],
        "bureau_id": report["bureau_id"],
        "bureau_path": report["bureau_path"],
        "bureau_name": report["bureau_name"],
        "period": report["period"],
        "period_kind": report["period_kind"],
        "revision": report["revision"],
        "state": report["state"],
        "supersedes_id": report["supersedes_id"],
        "correction_reason": report["correction_reason"],
        "due_on": report["due_on"],
        "late": _late(report["due_on"], report["submitted_on"]),
        "created_at": report["created_at"],
        "figures_taken_at": report["figures_taken_at"],
        "submitted_at": report["submitted_at"],
        "submitted_by": report["submitted_by"],
        "figures": figures,
        "rollup": await _rollup(
            conn,
            report["bureau_id"],
            report["period"],
            figures,
            report["submitted_at"] if submitted else None,
        ),
    }


async def provisional_document(
    conn: asyncpg.Connection, bureau_id: int, bureau_path: str, bureau_name: str | None, period: Period
) -> dict[str, Any]:
    """The live aggregates of a period no revision of which was submitted (a pull's fallback)."""
    figures = _figures(await repo.live_figures(conn, bureau_id, period.key))
    return {
        "bureau_id": bureau_id,
        "bureau_path": bureau_path,
        "bureau_name": bureau_name,
        "period": period.key,
        "period_kind": period.kind,
        "revision": None,
        "state": "provisional",
        "supersedes_id": None,
        "correction_reason": None,
        "due_on": period.due,
        "late": _late(period.due, None),
        "created_at": None,
        "figures_taken_at": None,
        "submitted_at": None,
        "submitted_by": None,
        "figures": figures,
        "rollup": await _rollup(conn, bureau_id, period.key, figures, None),
    }


def _own_bureau(principal: Principal, bureau_id: int) -> None:
    if principal.bureau_id != bureau_id:
        raise Forbidden(
            "A bureau generates, submits and corrects its own statistical reports only.",
            slug="report-of-another-bureau",
        )


async def _new_revision(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    period: Period,
    revision: int,
    supersedes: int | None = None,
    reason: str | None = None,
) -> int:
    now = utcnow()
    report_id = await repo.insert_report(
        session,
        {
            "bureau_id": principal.bureau_id,
            "bureau_path": principal.bureau_path,
            "bureau_name": await repo.bureau_name(session, principal.bureau_id),
            "period": period.key,
            "period_kind": period.kind,
            "revision": revision,
            "state": ReportState.DRAFT.value,
            "supersedes_id": supersedes,
            "correction_reason": reason,
            "due_on": period.due,
            "created_at": now,
            "created_by": principal.account_id,
            "figures_taken_at": now,
        },
    )
    await repo.copy_figures(session, report_id, principal.bureau_id, period.key)
    await audit.record(
        session,
        principal,
        "correct" if supersedes else "generate",
        "statistical_report",
        report_id,
        {
            "bureau_id": principal.bureau_id,
            "period": period.key,
            "revision": revision,
            "supersedes_id": supersedes,
            "reason": reason,
        },
    )
    return report_id


async def generate_report(
    session: AsyncSession, audit: AuditLog, principal: Principal, bureau_id: int, period_key: str
) -> int:
    _own_bureau(principal, bureau_id)
    period = parse_period(period_key)
    if period.start > today():
        raise Conflict(f"The period {period} has not begun.", slug="period-not-started")
    await repo.lock_bureau_period(session, bureau_id, period.key)
    existing = await repo.revisions(session, bureau_id, period.key)
    if any(r["state"] == ReportState.DRAFT for r in existing):
        draft = next(r for r in existing if r["state"] == ReportState.DRAFT)
        raise Conflict(
            f"Revision {draft['revision']} of this report is a draft: submit it.",
            slug="report-draft-exists",
            report_id=draft["id"],
        )
    if existing:
        raise Conflict(
            f"The report for {period} was submitted: correct revision {existing[-1]['revision']} instead.",
            slug="report-already-submitted",
            report_id=existing[-1]["id"],
        )
    return await _new_revision(session, audit, principal, period, 1)


async def correct_report(
    session: AsyncSession, audit: AuditLog, principal: Principal, report: Any, reason: str
) -> int:
    _own_bureau(principal, report.bureau_id)
    await repo.lock_bureau_period(session, report.bureau_id, report.period)
    if report.state != ReportState.SUBMITTED:
        raise Conflict(
            "Only a submitted revision is corrected; submit this draft.", slug="report-not-submitted"
        )
    existing = await repo.revisions(session, report.bureau_id, report.period)
    newest = existing[-1]
    if newest["id"] != report.id:
        slug = "report-draft-exists" if newest["state"] == ReportState.DRAFT else "report-superseded"
        raise Conflict(
            f"Revision {newest['revision']} is newer than this one; work on it.",
            slug=slug,
            report_id=newest["id"],
        )
    return await _new_revision(
        session, audit, principal, parse_period(report.period), newest["revision"] + 1, report.id, reason
    )


async def submit_report(
    session: AsyncSession, audit: AuditLog, principal: Principal, report: Any, if_match: str | None
) -> None:
    """Submit the draft the caller read (If-Match: the ETag of its document)."""
    _own_bureau(principal, report.bureau_id)
    if report.state == ReportState.SUBMITTED:
        raise Conflict(
            f"Revision {report.revision} was submitted and is frozen; correct it instead.",
            slug="report-submitted",
        )
    period = parse_period(report.period)
    if not period.closed(today()):
        raise Conflict(f"The period {period} has not ended (it ends {period.end}).", slug="period-not-closed")
    conn = await repo.driver(session)
    draft = dict(await repo.report(conn, report.id))
    current = strong_etag(json_body(await report_document(conn, draft)))
    if not if_match or if_match.strip() == "*":
        raise PreconditionRequired("Send the ETag of the report you read in an If-Match header (not *).")
    if current not in {tag.strip() for tag in if_match.split(",")}:
        raise PreconditionFailed(
            "The report changed since it was read; read it again and check its figures.", current_etag=current
        )
    at = utcnow()
    on = at.astimezone(CHINA).date()
    # The document as it stands at submission, kept byte for byte: its figures and the rollup of
    # the subordinate bureaus' submissions up to this instant.
    submitted = {**draft, "state": ReportState.SUBMITTED.value, "submitted_at": at, "submitted_on": on}
    body = json_body(await report_document(conn, {**submitted, "submitted_by": principal.account_id}))
    await repo.mark_submitted(session, report.id, at, on, principal.account_id, body, strong_etag(body))
    await audit.record(
        session,
        principal,
        "submit",
        "statistical_report",
        report.id,
        {
            "bureau_id": report.bureau_id,
            "period": report.period,
            "revision": report.revision,
            "etag": current,
        },
    )


async def late_report_alerts(session: AsyncSession, as_of: date) -> int:
    """Raise one alert per bureau and closed period whose report was not submitted by its due
    day (``report-late:<bureau>:<period>``); returns how many this call raised.

    Expected to report: every bureau of the bureau dimension (the registry's tree as statistics
    keeps it) below the national regulator, whether or not it holds aggregates (a quiet bureau
    reports zeros), for each period from the first reporting period of ``report-deadlines.csv``
    whose due day is before ``as_of``. Severity ``missing`` when nothing was submitted by
    ``as_of``, ``past`` when it was submitted after its due day. Idempotent: a key is raised
    once, so overlapping runs and catch-ups raise nothing twice."""
    periods = overdue_periods(as_of)
    if not periods:
        return 0
    rows = await repo.late_reports(session, [p.key for p in periods], [p.due for p in periods])
    raised = 0
    for row in rows:
        submitted_on = row["submitted_on"]
        late = f"submitted on {submitted_on}" if submitted_on else "not submitted"
        raised += await raise_alert(
            session,
            key=f"report-late:{row['bureau_id']}:{row['period']}",
            kind=ALERT_KIND,
            severity="past" if submitted_on else "missing",
            subject_type="bureau",
            subject_id=row["bureau_id"],
            bureau_id=row["bureau_id"],
            bureau_path=row["bureau_path"],
            due=row["due"],
            message=f"The {row['period']} statistical report (统计报表) was due on {row['due']}: {late}.",
            details={"period": row["period"], "submitted_on": submitted_on and submitted_on.isoformat()},
        )
    return raised
