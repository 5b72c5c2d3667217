"""Oversight detectors: ``async def detector(session, as_of) -> int`` (the alerts it raised).

Each is one ``INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING`` over the facts: the key
names the subject, the condition and the due date, so a run finding what an earlier run found
raises nothing, and a later deadline of the same subject raises a new alert. Detectors run in
the cron tick's transaction (services.statistics.tasks) and never commit.

``as_of`` is the tick's Asia/Shanghai date; the facts are read as they are now (a catch-up
run for a past day finds what is still open today).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.dates import CHINA
from services.statistics.config import get_settings
from services.statistics.legal import service as legal_service
from services.statistics.reports import service as reports_service

Detector = Callable[[AsyncSession, date], Awaitable[int]]

# A lead is open (its decide-to-open deadline runs) until a case is opened or it is declined.
LEAD_DONE_STATES = ("opened", "declined")
# A case's deadlines stop running once it has ended.
CASE_ENDED_STATES = ("closed", "archived", "published", "terminated", "transferred")
# From the investigation on, at least two officers (执法人员不得少于两人) must handle a case.
CASE_NEEDS_TWO_OFFICERS = (
    "investigating",
    "suspended",
    "investigation_closed",
    "under_review",
    "reviewed",
    "notified",
    "hearing",
    "heard",
    "decided",
    "served",
    "executing",
)
NOTICE_OPEN_STATES = ("sent", "objected")

_INSERT = (
    "INSERT INTO alert (key, kind, severity, subject_type, subject_id, bureau_id, bureau_path, due, "
    "message, details, raised_at, version) "
)
_ON_CONFLICT = " ON CONFLICT (key) DO NOTHING"


def _near(as_of: date) -> date:
    return as_of + timedelta(days=get_settings().oversight_near_days)


async def _raise(session: AsyncSession, select_sql: str, **params) -> int:
    result = await session.exec(text(_INSERT + select_sql + _ON_CONFLICT), params=params)
    return result.rowcount or 0


async def leads_near_or_past_due(session: AsyncSession, as_of: date) -> int:
    """Leads whose decide-to-open deadline (立案期限) is within the near window or past."""
    return await _raise(
        session,
        """
        SELECT 'lead_deadline:lead:' || lead_id || ':' || sev || ':' || next_due,
               'lead_deadline', sev, 'lead', lead_id, bureau_id, bureau_path, next_due,
               'Lead ' || lead_id || ': the decision to open a case is due ' || next_due
                 || CASE WHEN sev = 'past' THEN ' and is overdue' ELSE '' END,
               jsonb_build_object('state', state, 'received_on', received_on, 'as_of', CAST(:as_of AS date)),
               now(), 1
        FROM (SELECT *, CASE WHEN next_due < :as_of THEN 'past' ELSE 'near' END AS sev
              FROM lead_fact
              WHERE next_due IS NOT NULL AND next_due <= :near
                AND state <> ALL(CAST(:done AS text[]))) AS f
        """,
        as_of=as_of,
        near=_near(as_of),
        done=list(LEAD_DONE_STATES),
    )


async def cases_near_or_past_due(session: AsyncSession, as_of: date) -> int:
    """Cases whose next deadline (``next_due_rule``) is within the near window or past. The
    review's deadline is the legal-affairs body's own, alerted by its review detector."""
    return await _raise(
        session,
        """
        SELECT 'case_deadline:case:' || case_id || ':' || coalesce(next_due_rule, '') || ':' || sev
                 || ':' || next_due,
               'case_deadline', sev, 'case', case_id, bureau_id, bureau_path, next_due,
               'Case ' || number || ': ' || coalesce(next_due_rule, 'deadline') || ' due ' || next_due
                 || CASE WHEN sev = 'past' THEN ' is overdue' ELSE '' END,
               jsonb_build_object('number', number, 'state', state, 'rule', next_due_rule,
                                  'as_of', CAST(:as_of AS date)),
               now(), 1
        FROM (SELECT *, CASE WHEN next_due < :as_of THEN 'past' ELSE 'near' END AS sev
              FROM case_fact
              WHERE next_due IS NOT NULL AND next_due <= :near
                AND next_due_rule IS DISTINCT FROM :review_rule
                AND state <> ALL(CAST(:done AS text[]))) AS f
        """,
        as_of=as_of,
        near=_near(as_of),
        done=list(CASE_ENDED_STATES),
        review_rule="review",
    )


async def cases_without_two_officers(session: AsyncSession, as_of: date) -> int:
    """Cases under investigation or later handled by fewer than two officers (once per case)."""
    return await _raise(
        session,
        """
        SELECT 'case_officers:case:' || case_id, 'case_officers', 'missing', 'case', case_id,
               bureau_id, bureau_path, NULL,
               'Case ' || number || ' is handled by ' || officer_count
                 || ' officer(s): at least two are required',
               jsonb_build_object('number', number, 'state', state, 'officer_count', officer_count,
                                  'as_of', CAST(:as_of AS date)),
               now(), 1
        FROM case_fact
        WHERE officer_count < 2 AND state = ANY(CAST(:running AS text[]))
        """,
        as_of=as_of,
        running=list(CASE_NEEDS_TWO_OFFICERS),
    )


async def supervision_notices_unanswered(session: AsyncSession, as_of: date) -> int:
    """Supervision notices (执法监督通知书) not answered by their answer deadline, as alerts of
    the receiving bureau (which the sending bureau above it sees too)."""
    return await _raise(
        session,
        """
        SELECT 'notice_answer:supervision_notice:' || id || ':past:' || answer_due,
               'supervision_notice_answer', 'past', 'supervision_notice', id, bureau_id, bureau_path,
               answer_due,
               'Supervision notice ' || coalesce(number, CAST(id AS text)) || ' was due to be answered by '
                 || answer_due,
               jsonb_build_object('state', state, 'from_bureau_id', from_bureau_id,
                                  'received_on', received_on, 'as_of', CAST(:as_of AS date)),
               now(), 1
        FROM supervision_notice
        WHERE answer_due < :as_of AND state = ANY(CAST(:states AS text[]))
        """,
        as_of=as_of,
        states=list(NOTICE_OPEN_STATES),
    )


async def objections_unreplied(session: AsyncSession, as_of: date) -> int:
    """Objections to a supervision notice the sending bureau has not replied to by ``reply_due``,
    as alerts of the sending bureau."""
    return await _raise(
        session,
        """
        SELECT 'notice_reply:supervision_notice:' || id || ':past:' || reply_due,
               'supervision_notice_reply', 'past', 'supervision_notice', id, from_bureau_id,
               from_bureau_path, reply_due,
               'The objection to supervision notice ' || coalesce(number, CAST(id AS text))
                 || ' was due to be replied to by ' || reply_due,
               jsonb_build_object('state', state, 'to_bureau_id', bureau_id, 'objected_on', objected_on,
                                  'as_of', CAST(:as_of AS date)),
               now(), 1
        FROM supervision_notice
        WHERE state = 'objected' AND reply_due < :as_of
        """,
        as_of=as_of,
    )


# The oversight cron runs every one of these at each tick (the other domains' detectors —
# late filings, late reports, reviews — are added here).
DETECTORS: list[Detector] = [
    leads_near_or_past_due,
    cases_near_or_past_due,
    cases_without_two_officers,
    supervision_notices_unanswered,
    objections_unreplied,
    # The legal-affairs body's own deadlines: review answers and major-case filings.
    legal_service.review_alerts,
    legal_service.filing_alerts,
    # Periodic statistical reports not submitted by their period's deadline.
    reports_service.late_report_alerts,
]


def as_of_date(tick: datetime) -> date:
    """The Asia/Shanghai date a tick stands for."""
    return tick.astimezone(CHINA).date()


def detectors_body(detectors: list[Detector] | None = None):
    """A cron body running ``detectors`` (default: :data:`DETECTORS`, read at each tick) for
    the tick's date; the count each raised."""

    async def run_detectors(session: AsyncSession, tick: datetime) -> Mapping[str, int]:
        as_of = as_of_date(tick)
        counts: dict[str, int] = {}
        for detector in DETECTORS if detectors is None else detectors:
            counts[detector.__name__] = await detector(session, as_of)
        return counts

    return run_detectors
