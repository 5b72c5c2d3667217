"""The hearing (听证) of a case: its own timetable and the deadlines it runs.

Once the party asks for a hearing (``request_hearing``), the hearing rules set a deadline
for each of its stages, all of them rules of the case's rule set (never literals here):
the host named (``hearing_host_named``), the files handed to the host
(``hearing_files_handed``), the date fixed (``hearing_date_fixed``), the notice served on
the party at least so many working days before the hearing (``hearing_notice_to_party``,
counted back from the hearing's date), the public notice of a public hearing
(``hearing_public_notice``, likewise), and the report after it is held (``hearing_report``).

The record is kept while the case is in the state ``hearing``: each date in order, and a
notice served later than the rule allows is refused. ``conclude_hearing`` waits for the
hearing held and its report (``require_held``).

Functions here never commit: the route commits once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, Role
from services.common.concurrency import check_if_match
from services.common.dates import today
from services.common.db import utcnow
from services.common.problems import Conflict, Forbidden, NotFound, UnprocessableEntity
from services.enforcement.calendar.service import compute_deadline
from services.enforcement.cases import events, service
from services.enforcement.cases import repository as repo
from services.enforcement.cases.models import Case, CaseHearing, CaseState
from services.enforcement.cases.schemas import HearingDeadlineRead, HearingRead, HearingWrite
from services.enforcement.registry import RegistryClient

RECORD_STEP = "record_hearing"
FIELDS = (
    "host",
    "host_named_on",
    "files_handed_on",
    "date_fixed_on",
    "hearing_date",
    "public",
    "notice_served_on",
    "public_notice_on",
    "held_on",
    "report_on",
)
# Dates of things done (not the hearing's own date, which may lie ahead): the timeline's entry
# for a change of the record is dated by the latest of them it records.
DONE_DATES = (
    "host_named_on",
    "files_handed_on",
    "date_fixed_on",
    "notice_served_on",
    "public_notice_on",
    "held_on",
    "report_on",
)


@dataclass(frozen=True, slots=True)
class Stage:
    """One deadline of the hearing: its rule, the day it runs from (for a rule counted before
    the hearing, the hearing's date), and whether (and when) it was met."""

    rule: str
    start: date
    met: bool
    met_on: date | None


def stages(case: Case, record: CaseHearing | None) -> list[Stage]:
    """The hearing's deadlines whose start is known, in the order of the procedure."""
    if case.hearing_requested_on is None:
        return []
    r = record or CaseHearing(case_id=case.id or 0, updated_by="")
    found = [
        Stage("hearing_host_named", case.hearing_requested_on, r.host_named_on is not None, r.host_named_on)
    ]
    if r.host_named_on:
        found.append(
            Stage("hearing_files_handed", r.host_named_on, r.files_handed_on is not None, r.files_handed_on)
        )
    if r.files_handed_on:
        fixed_on = r.date_fixed_on if r.hearing_date else None
        found.append(Stage("hearing_date_fixed", r.files_handed_on, r.hearing_date is not None, fixed_on))
    if r.hearing_date:
        found.append(
            Stage(
                "hearing_notice_to_party",
                r.hearing_date,
                r.notice_served_on is not None,
                r.notice_served_on,
            )
        )
        if r.public:
            found.append(
                Stage(
                    "hearing_public_notice",
                    r.hearing_date,
                    r.public_notice_on is not None,
                    r.public_notice_on,
                )
            )
    if r.held_on:
        found.append(Stage("hearing_report", r.held_on, r.report_on is not None, r.report_on))
    return found


async def next_deadline(session: AsyncSession, case: Case) -> tuple[str, date] | None:
    """The hearing's next deadline not met yet, as (rule, start): the case's deadlines show it."""
    record = await repo.hearing(session, case.id)  # type: ignore[arg-type]
    pending = [s for s in stages(case, record) if not s.met]
    return (pending[0].rule, pending[0].start) if pending else None


async def hearing_read(session: AsyncSession, case: Case) -> HearingRead:
    if case.hearing_requested_on is None:
        raise NotFound(f"Case {case.id} has no hearing.")
    record = await repo.hearing(session, case.id)  # type: ignore[arg-type]
    deadlines = []
    now = today()
    for stage in stages(case, record):
        deadline = await compute_deadline(session, stage.rule, stage.start, rule_set=case.rule_set)
        late = stage.met_on > deadline.due if stage.met_on else (not stage.met and deadline.due < now)
        deadlines.append(
            HearingDeadlineRead(
                rule=stage.rule,
                due=deadline.due,
                met=stage.met,
                met_on=stage.met_on,
                late=late,
                explanation=deadline.explain(),
            )
        )
    values = {f: getattr(record, f) for f in FIELDS} if record else {}
    return HearingRead(
        case_id=case.id,  # type: ignore[arg-type]
        requested_on=case.hearing_requested_on,
        deadlines=deadlines,
        **values,
    )


async def require_held(session: AsyncSession, case: Case) -> CaseHearing:
    """The hearing's record, once the hearing was held and reported (for ``conclude_hearing``)."""
    record = await repo.hearing(session, case.id)  # type: ignore[arg-type]
    missing = [f for f in ("held_on", "report_on") if record is None or getattr(record, f) is None]
    if missing or record is None:
        raise Conflict(
            "A hearing is concluded once it was held and its report handed in: record "
            f"{' and '.join(missing)} on the hearing (PUT …/cases/{case.id}/hearing).",
            slug="hearing-not-held",
            missing=missing,
        )
    return record


# --- the record ----------------------------------------------------------------------


def _error(field: str, message: str, kind: str) -> dict[str, str]:
    return {"loc": f"body.{field}", "message": message, "type": kind}


# Each date: the dates recorded before it, and the dates it is not before.
ORDER: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "files_handed_on": (("host_named_on",), ("host_named_on",)),
    "hearing_date": (("files_handed_on",), ("files_handed_on", "date_fixed_on")),
    "date_fixed_on": (("hearing_date",), ("files_handed_on",)),
    "notice_served_on": (("hearing_date",), ("files_handed_on", "date_fixed_on")),
    "public_notice_on": (("hearing_date",), ("files_handed_on", "date_fixed_on")),
    "held_on": (("notice_served_on",), ("hearing_date", "notice_served_on", "public_notice_on")),
    "report_on": (("held_on",), ("held_on",)),
}


def _order_errors(case: Case, data: HearingWrite) -> list[dict[str, str]]:
    """Each date recorded after the ones it follows, and not before them."""
    errors = []
    values = data.model_dump()
    if (data.host is None) != (data.host_named_on is None):
        field = "host" if data.host is None else "host_named_on"
        errors.append(_error(field, "the host and the day it was named are recorded together", "missing"))
    if data.public_notice_on is not None and not data.public:
        errors.append(_error("public_notice_on", "only a public hearing is announced publicly", "not_public"))
    if data.public and data.held_on is not None and data.public_notice_on is None:
        errors.append(_error("held_on", "recorded after public_notice_on", "missing_earlier_date"))
    requested = case.hearing_requested_on
    if data.host_named_on and requested and data.host_named_on < requested:
        errors.append(
            _error(
                "host_named_on", f"must not be before the hearing was requested ({requested})", "date_order"
            )
        )
    for field, (needs, not_before) in ORDER.items():
        value = values[field]
        if value is None:
            continue
        missing = [f for f in needs if values[f] is None]
        if missing:
            errors.append(_error(field, f"recorded after {missing[0]}", "missing_earlier_date"))
            continue
        for earlier in not_before:
            if values[earlier] is not None and value < values[earlier]:
                errors.append(
                    _error(field, f"must not be before {earlier} ({values[earlier]})", "date_order")
                )
                break
    return errors


async def _check_notices(session: AsyncSession, case: Case, data: HearingWrite) -> None:
    """A notice served at least the rule's working days before the hearing (counted back)."""
    if data.hearing_date is None:
        return
    for field, rule in (
        ("notice_served_on", "hearing_notice_to_party"),
        ("public_notice_on", "hearing_public_notice"),
    ):
        served = getattr(data, field)
        if served is None:
            continue
        latest = (await compute_deadline(session, rule, data.hearing_date, rule_set=case.rule_set)).due
        if served > latest:
            what = "the party's notice" if field == "notice_served_on" else "the public notice"
            raise Conflict(
                f"For a hearing on {data.hearing_date}, {what} is served by {latest} at the latest "
                f"(rule {rule}); {served} is too late: fix a later date and serve the notice again.",
                slug="hearing-notice-late" if field == "notice_served_on" else "hearing-public-notice-late",
                rule=rule,
                latest_on=latest.isoformat(),
                hearing_date=data.hearing_date.isoformat(),
                loc=f"body.{field}",
            )


async def record_hearing(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    case: Case,
    data: HearingWrite,
    if_match: str | None,
) -> Case:
    """Records the hearing's timetable (the whole record) while the case is in ``hearing``."""
    check_if_match(if_match, case.version)
    if case.state != CaseState.HEARING:
        raise Conflict(
            f"The hearing's record is kept while the case is in the state hearing; it is {case.state}.",
            slug="case-not-in-hearing",
            state=case.state,
        )
    if not principal.has_role(Role.ENFORCEMENT):
        raise Forbidden(
            "The hearing is recorded by an enforcement officer of the case.", slug="role-required"
        )
    actor = await service.actor_for(registry, principal, RECORD_STEP)
    officers = await repo.all_officers(session, case.id)  # type: ignore[arg-type]
    if actor.officer_id is not None and actor.officer_id not in {
        o.officer_id for o in officers if o.released_on is None
    }:
        raise Forbidden("The hearing is recorded by an officer of the case.", slug="not-case-officer")
    if data.host is not None and data.host in {o.name for o in officers}:
        raise Conflict(
            f"{data.host} investigated the case: the host of its hearing is someone else (非本案调查人员).",
            slug="host-is-case-officer",
            loc="body.host",
        )
    errors = _order_errors(case, data)
    if errors:
        raise UnprocessableEntity("; ".join(f"{e['loc']}: {e['message']}" for e in errors), errors=errors)
    await _check_notices(session, case, data)
    record = await repo.hearing(session, case.id, for_update=True)  # type: ignore[arg-type]
    stored = record or CaseHearing(case_id=case.id, updated_by=principal.account_id)  # type: ignore[arg-type]
    wanted = data.model_dump()
    changes = {
        f: [_json(getattr(stored, f)), _json(wanted[f])] for f in FIELDS if getattr(stored, f) != wanted[f]
    }
    if not changes:
        return case  # the record as it was: nothing to note
    if record is None:
        record = stored
        session.add(record)
    for field in changes:
        setattr(record, field, wanted[field])
    record.updated_by = principal.account_id
    record.updated_at = utcnow()
    await session.flush()
    done = [wanted[f] for f in DONE_DATES if f in changes and wanted[f] is not None]
    on = max(done, default=case.last_step_on or case.hearing_requested_on or today())
    service._bump(case)
    await service._refresh_case_due(session, case)
    await service._record(
        session,
        actor,
        RECORD_STEP,
        on,
        case=case,
        from_state=case.state,
        to_state=case.state,
        details={"changes": changes},
    )
    await events.case_changed(session, case)
    # Last: the audit chain's lock is held from here to the commit, which follows at once.
    await audit.record(session, principal, "case.hearing_recorded", "case", case.id, {"changes": changes})
    return case


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value
