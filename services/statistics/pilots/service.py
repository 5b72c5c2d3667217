"""Pilot work (试点工作): submissions against the milestones, problems and their answers, the
roll-out per bureau, acceptance spot checks, and the progress board. Functions never commit.

The units, their grassroots designations and their subtrees are the registry's (registry.py);
the routes load the unit in the principal's scope before calling here.
"""

from __future__ import annotations

import random
import secrets
from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, Role
from services.common.client import ServiceClient
from services.common.concurrency import check_if_match
from services.common.dates import today
from services.common.db import utcnow
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, Forbidden, NotFound
from services.statistics.pilots import milestones as ms
from services.statistics.pilots import registry
from services.statistics.pilots import repository as repo
from services.statistics.pilots.models import (
    PilotAcceptanceResult,
    PilotAcceptanceSample,
    PilotProblem,
    PilotRollout,
    PilotSubmission,
)
from services.statistics.pilots.schemas import (
    AcceptanceStatus,
    Grassroots,
    MilestoneStatus,
    PilotBoard,
    ProblemAnswer,
    ProblemCreate,
    ProblemRead,
    ResultCreate,
    ResultRead,
    RolloutBureau,
    RolloutCounts,
    RolloutProgress,
    RolloutUpdate,
    SampleCreate,
    SampleRead,
    SubmissionRead,
)

UNIT_WRITER_ROLES = (Role.ADMIN, Role.LEGAL)


def require_unit_writer(principal: Principal, unit: dict[str, Any]) -> None:
    """Only the pilot unit's own bureau (its administrator or legal-affairs officer) writes its
    submissions, problems and roll-out; a bureau above it reads them."""
    if principal.bureau_id != unit["id"] or not principal.has_role(*UNIT_WRITER_ROLES):
        raise Forbidden(
            f"Only an administrator or legal-affairs officer of pilot unit {unit['id']} itself "
            "writes its pilot work.",
            slug="pilot-unit-writer-required",
        )


def _page(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    return make_page(rows, limit, lambda r: [r.id])


def after_id(cursor: str | None) -> int | None:
    key = decode_cursor(cursor, int)
    return key[0] if key else None


# --- submissions ------------------------------------------------------------------------


def submission_read(row: PilotSubmission) -> SubmissionRead:
    return SubmissionRead.model_validate(row, from_attributes=True)


async def create_submission(
    session: AsyncSession,
    audit: AuditLog,
    services: ServiceClient,
    principal: Principal,
    unit: dict[str, Any],
    data: Any,
    if_match: str | None,
) -> SubmissionRead:
    require_unit_writer(principal, unit)
    key = data.milestone
    content = data.model_dump(mode="json", exclude={"milestone", "submitted_on"})
    if key == "grassroots_pilot_done":
        current = [d for d in await registry.designations(services, unit["id"]) if d["current"]]
        if not current:
            raise Conflict(
                f"Pilot unit {unit['id']} names no grassroots pilot unit in the registry: name it first.",
                slug="no-grassroots-unit",
            )
        content["grassroots_bureau_id"] = current[0]["grassroots_bureau_id"]
        content["grassroots_bureau_name"] = current[0]["grassroots_bureau_name"]
    latest = await repo.latest_submission(session, unit["id"], key, for_update=True)
    if latest is not None:
        # A resubmission names the revision it corrects (its ETag); the earlier ones are kept.
        check_if_match(if_match, latest.revision)
    milestone = ms.milestones()[key]
    # A concurrent first submission fails on uq_pilot_submission_revision (409).
    row = await repo.add(
        session,
        PilotSubmission(
            unit_id=unit["id"],
            unit_path=unit["path"],
            milestone=key,
            revision=(latest.revision + 1) if latest else 1,
            content=content,
            submitted_on=data.submitted_on,
            due=milestone.due,
            late=ms.is_late(key, data.submitted_on),
            submitted_by=principal.account_id,
        ),
    )
    await audit.record(
        session,
        principal,
        "pilot_submission.created",
        "pilot_submission",
        row.id,
        {
            "unit_id": unit["id"],
            "milestone": key,
            "revision": row.revision,
            "submitted_on": data.submitted_on,
        },
    )
    return submission_read(row)


async def read_submission(session: AsyncSession, unit: dict[str, Any], submission_id: int) -> SubmissionRead:
    row = await repo.get_submission(session, submission_id)
    if row is None or row.unit_id != unit["id"]:
        raise NotFound(f"Submission {submission_id} of pilot unit {unit['id']} not found.")
    return submission_read(row)


async def list_submissions(
    session: AsyncSession, unit: dict[str, Any], milestone: str | None, cursor: str | None, limit: int
) -> tuple[list[SubmissionRead], str | None]:
    rows = await repo.list_submissions(session, unit["id"], milestone, after_id(cursor), limit + 1)
    page, next_cursor = _page(rows, limit)
    return [submission_read(r) for r in page], next_cursor


# --- problems ---------------------------------------------------------------------------


def problem_read(row: PilotProblem) -> ProblemRead:
    return ProblemRead.model_validate(
        {**row.model_dump(), "state": "open" if row.answered_on is None else "answered"}
    )


async def create_problem(
    session: AsyncSession, audit: AuditLog, principal: Principal, unit: dict[str, Any], data: ProblemCreate
) -> ProblemRead:
    require_unit_writer(principal, unit)
    row = await repo.add(
        session,
        PilotProblem(
            unit_id=unit["id"], unit_path=unit["path"], reported_by=principal.account_id, **data.model_dump()
        ),
    )
    await audit.record(
        session,
        principal,
        "pilot_problem.reported",
        "pilot_problem",
        row.id,
        {"unit_id": unit["id"], **data.model_dump()},
    )
    return problem_read(row)


async def answer_problem(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    problem: PilotProblem,
    data: ProblemAnswer,
    if_match: str | None,
) -> ProblemRead:
    check_if_match(if_match, problem.version)
    if problem.answered_on is not None:
        raise Conflict(
            f"Problem {problem.id} was answered on {problem.answered_on}.", slug="problem-already-answered"
        )
    if data.answered_on < problem.reported_on:
        raise Conflict(
            f"Problem {problem.id} was reported on {problem.reported_on}; it cannot be answered "
            f"before that ({data.answered_on}).",
            slug="answer-before-report",
        )
    problem.answer = data.answer
    problem.answered_on = data.answered_on
    problem.answered_by = principal.account_id
    problem.version += 1
    problem.updated_at = utcnow()
    session.add(problem)
    await session.flush()
    await audit.record(
        session, principal, "pilot_problem.answered", "pilot_problem", problem.id, data.model_dump()
    )
    return problem_read(problem)


async def list_problems(
    session: AsyncSession,
    principal: Principal,
    unit_id: int | None,
    state: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ProblemRead], str | None]:
    rows = await repo.list_problems(
        session, principal.bureau_path, unit_id, state, after_id(cursor), limit + 1
    )
    page, next_cursor = _page(rows, limit)
    return [problem_read(r) for r in page], next_cursor


# --- roll-out ---------------------------------------------------------------------------


def _rollout_bureau(bureau: dict[str, Any], row: PilotRollout | None) -> RolloutBureau:
    if row is None:
        return RolloutBureau(
            bureau_id=bureau["id"], name=bureau["name"], level=bureau["level"], state="not_started"
        )
    return RolloutBureau(
        bureau_id=bureau["id"],
        name=bureau["name"],
        level=bureau["level"],
        state=row.state,  # type: ignore[arg-type]
        started_on=row.started_on,
        done_on=row.done_on,
        late=row.done_on is not None and row.done_on > ms.ROLLOUT_TO,
        note=row.note,
        version=row.version,
    )


async def rollout_progress(
    session: AsyncSession, services: ServiceClient, unit: dict[str, Any]
) -> RolloutProgress:
    """Every bureau under the unit now (the registry's subtree), with its roll-out state."""
    bureaus = await registry.subtree(services, unit)
    rows = {r.bureau_id: r for r in await repo.rollouts_of(session, unit["id"])}
    items = [_rollout_bureau(b, rows.get(b["id"])) for b in bureaus]
    counts = RolloutCounts(
        total=len(items),
        not_started=sum(i.state == "not_started" for i in items),
        in_progress=sum(i.state == "in_progress" for i in items),
        done=sum(i.state == "done" for i in items),
        done_late=sum(i.late for i in items),
    )
    return RolloutProgress(
        unit_id=unit["id"], window_from=ms.ROLLOUT_FROM, window_to=ms.ROLLOUT_TO, counts=counts, bureaus=items
    )


async def record_rollout(
    session: AsyncSession,
    audit: AuditLog,
    services: ServiceClient,
    principal: Principal,
    unit: dict[str, Any],
    bureau_id: int,
    data: RolloutUpdate,
    if_match: str | None,
) -> tuple[RolloutBureau, bool]:
    """Record (or correct, with If-Match) one bureau's roll-out; True when it was created."""
    require_unit_writer(principal, unit)
    bureau = await registry.bureau_in_unit(services, unit, bureau_id)
    row = await repo.get_rollout(session, bureau_id, for_update=True)
    created = row is None
    values = {**data.model_dump(), "bureau_path": bureau["path"], "bureau_name": bureau["name"]}
    if row is None:
        # A concurrent first record of the same bureau fails on the primary key (409).
        row = await repo.add(
            session,
            PilotRollout(bureau_id=bureau_id, unit_id=unit["id"], recorded_by=principal.account_id, **values),
        )
    else:
        check_if_match(if_match, row.version)
        for name, value in values.items():
            setattr(row, name, value)
        row.unit_id = unit["id"]
        row.recorded_by = principal.account_id
        row.version += 1
        row.updated_at = utcnow()
        session.add(row)
        await session.flush()
    await audit.record(
        session,
        principal,
        "pilot_rollout.recorded",
        "pilot_rollout",
        bureau_id,
        {"unit_id": unit["id"], **data.model_dump(mode="json")},
    )
    return _rollout_bureau(bureau, row), created


# --- acceptance -------------------------------------------------------------------------


def draw(seed: int, population: list[int], size: int) -> list[int]:
    """The units drawn: ``random.Random(seed)`` over the sorted population; the same seed and
    population always draw the same units. Returned sorted."""
    return sorted(random.Random(seed).sample(sorted(population), min(size, len(population))))  # noqa: S311 - a recorded, reproducible draw


async def draw_sample(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: SampleCreate
) -> SampleRead:
    population = [unit_id for unit_id, _ in await repo.self_checked_units(session)]
    if not population:
        raise Conflict(
            "No pilot unit has submitted its self-check yet: nothing to draw from.", slug="no-self-checks"
        )
    seed = data.seed if data.seed is not None else secrets.randbelow(2**63)
    sample = await repo.add(
        session,
        PilotAcceptanceSample(
            seed=seed,
            size=data.size,
            population=population,
            sampled=draw(seed, population, data.size),
            drawn_on=data.drawn_on,
            drawn_by=principal.account_id,
        ),
    )
    await audit.record(
        session,
        principal,
        "pilot_acceptance_sample.drawn",
        "pilot_acceptance_sample",
        sample.id,
        {"seed": seed, "size": data.size, "population": population, "sampled": sample.sampled},
    )
    return await read_sample(session, sample)


async def read_sample(session: AsyncSession, sample: PilotAcceptanceSample) -> SampleRead:
    results = [
        ResultRead.model_validate(r, from_attributes=True) for r in await repo.results_of(session, sample.id)
    ]  # type: ignore[arg-type]
    return SampleRead.model_validate({**sample.model_dump(), "results": results})


async def list_samples(
    session: AsyncSession, cursor: str | None, limit: int
) -> tuple[list[SampleRead], str | None]:
    rows = await repo.list_samples(session, after_id(cursor), limit + 1)
    page, next_cursor = _page(rows, limit)
    return [await read_sample(session, r) for r in page], next_cursor


async def record_result(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    sample: PilotAcceptanceSample,
    data: ResultCreate,
) -> ResultRead:
    if data.unit_id not in sample.sampled:
        raise Conflict(
            f"Unit {data.unit_id} was not drawn in sample {sample.id}: only sampled units are spot-checked.",
            slug="unit-not-sampled",
        )
    if data.checked_on < sample.drawn_on:
        raise Conflict(
            f"Sample {sample.id} was drawn on {sample.drawn_on}; a spot check cannot precede it "
            f"({data.checked_on}).",
            slug="check-before-draw",
        )
    if await repo.get_result(session, sample.id, data.unit_id) is not None:  # type: ignore[arg-type]
        raise Conflict(
            f"The spot check of unit {data.unit_id} in sample {sample.id} is already recorded.",
            slug="acceptance-result-recorded",
        )
    paths = dict(await repo.self_checked_units(session))
    row = await repo.add(
        session,
        PilotAcceptanceResult(
            sample_id=sample.id,  # type: ignore[arg-type]
            unit_id=data.unit_id,
            unit_path=paths.get(data.unit_id, ""),
            outcome=data.outcome,
            findings=data.findings,
            checked_on=data.checked_on,
            recorded_by=principal.account_id,
        ),
    )
    await audit.record(
        session,
        principal,
        "pilot_acceptance_result.recorded",
        "pilot_acceptance_sample",
        sample.id,
        data.model_dump(mode="json"),
    )
    return ResultRead.model_validate(row, from_attributes=True)


# --- the board --------------------------------------------------------------------------


def _status(due: date | None, met_on: date | None, on: date) -> str:
    if met_on is not None:
        return "late" if due is not None and met_on > due else "on_time"
    return "overdue" if due is not None and on > due else "pending"


def _board(
    unit: dict[str, Any],
    designations: list[dict[str, Any]],
    subtree_size: int,
    figures: dict[str, dict],
    on: date,
) -> PilotBoard:
    submitted = {m["milestone"]: m for m in figures["milestones"]}
    rollout = figures["rollout"] or {"in_progress": 0, "done": 0, "done_late": 0, "last_done_on": None}
    acceptance = figures["acceptance"]
    current = next((d for d in designations if d["current"]), None)
    rows: list[MilestoneStatus] = []
    for key, m in ms.milestones().items():
        revision = None
        if key == ms.NAMED_IN_REGISTRY:
            source, met_on = (
                "registry_designation",
                min((d["reported_on"] for d in designations), default=None),
            )
            met_on = date.fromisoformat(met_on) if met_on else None
        elif key == ms.ROLLOUT:
            done_all = subtree_size > 0 and rollout["done"] >= subtree_size
            source, met_on = "rollout", rollout["last_done_on"] if done_all else None
        elif key == ms.FORMAL_ACCEPTANCE:
            source, met_on = "acceptance", acceptance["checked_on"] if acceptance else None
        else:
            found = submitted.get(key)
            source, met_on = "submission", found["met_on"] if found else None
            revision = found["revision"] if found else None
        rows.append(
            MilestoneStatus(
                key=key,
                applies_to=m.applies_to,
                what=m.what,
                due=m.due,
                status=_status(m.due, met_on, on),  # type: ignore[arg-type]
                met_on=met_on,
                revision=revision,
                source=source,  # type: ignore[arg-type]
            )
        )
    in_progress, done = rollout["in_progress"], rollout["done"]
    return PilotBoard(
        unit_id=unit["id"],
        name=unit["name"],
        system=unit["system"],
        division_code=unit.get("division_code"),
        grassroots=Grassroots(
            bureau_id=current["grassroots_bureau_id"],
            name=current["grassroots_bureau_name"],
            level=current["grassroots_bureau_level"],
            reported_on=current["reported_on"],
        )
        if current
        else None,
        milestones=rows,
        milestones_met=sum(r.met_on is not None for r in rows),
        milestones_overdue=sum(r.status == "overdue" for r in rows),
        open_problems=(figures["problems"] or {}).get("open", 0),
        answered_problems=(figures["problems"] or {}).get("answered", 0),
        rollout=RolloutCounts(
            total=subtree_size,
            not_started=max(subtree_size - in_progress - done, 0),
            in_progress=in_progress,
            done=done,
            done_late=rollout["done_late"],
        ),
        acceptance=AcceptanceStatus(
            **{k: acceptance[k] for k in ("sample_id", "outcome", "findings", "checked_on")}
        )
        if acceptance
        else None,
    )


async def boards(
    session: AsyncSession, services: ServiceClient, units: list[dict[str, Any]]
) -> list[PilotBoard]:
    """The progress boards of the units: the registry's designations and subtrees read
    concurrently, the stored figures counted by one statement each for all the units."""
    if not units:
        return []
    designations, subtrees = await registry.registry_views(services, units)
    ids = [u["id"] for u in units]
    bureaus = [b["id"] for tree in subtrees for b in tree]
    figures = await repo.board_figures(session, ids, bureaus, ms.ROLLOUT_TO)
    by_unit: dict[str, dict[int, Any]] = {name: {} for name in ("problems", "rollout", "acceptance")}
    milestones: dict[int, list[dict]] = {}
    for row in figures["milestones"]:
        milestones.setdefault(row["unit_id"], []).append(row)
    for name in by_unit:
        by_unit[name] = {r["unit_id"]: r for r in figures[name]}
    on = today()
    return [
        _board(
            unit,
            designations[i],
            len(subtrees[i]),
            {
                "milestones": milestones.get(unit["id"], []),
                "problems": by_unit["problems"].get(unit["id"]),
                "rollout": by_unit["rollout"].get(unit["id"]),
                "acceptance": by_unit["acceptance"].get(unit["id"]),
            },
            on,
        )
        for i, unit in enumerate(units)
    ]
