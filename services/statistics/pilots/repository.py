"""Every SQL statement of the pilot work. Counts are PostgreSQL's (GROUP BY), never Python's."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.statistics.pilots.models import (
    PilotAcceptanceResult,
    PilotAcceptanceSample,
    PilotProblem,
    PilotRollout,
    PilotSubmission,
)


async def add(session: AsyncSession, obj: Any) -> Any:
    session.add(obj)
    await session.flush()
    return obj


# --- submissions ------------------------------------------------------------------------


async def latest_submission(
    session: AsyncSession, unit_id: int, milestone: str, *, for_update: bool = False
) -> PilotSubmission | None:
    query = (
        select(PilotSubmission)
        .where(PilotSubmission.unit_id == unit_id, PilotSubmission.milestone == milestone)
        .order_by(PilotSubmission.revision.desc())  # type: ignore[attr-defined]
        .limit(1)
    )
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def get_submission(session: AsyncSession, submission_id: int) -> PilotSubmission | None:
    return await session.get(PilotSubmission, submission_id)


async def list_submissions(
    session: AsyncSession, unit_id: int, milestone: str | None, after_id: int | None, limit: int
) -> list[PilotSubmission]:
    query = (
        select(PilotSubmission)
        .where(PilotSubmission.unit_id == unit_id)
        .order_by(PilotSubmission.id)
        .limit(limit)
    )  # type: ignore[arg-type]
    if milestone is not None:
        query = query.where(PilotSubmission.milestone == milestone)
    if after_id is not None:
        query = query.where(PilotSubmission.id > after_id)  # type: ignore[operator]
    return list((await session.exec(query)).all())


# --- problems ---------------------------------------------------------------------------


async def get_problem(
    session: AsyncSession, problem_id: int, *, for_update: bool = False
) -> PilotProblem | None:
    return await session.get(PilotProblem, problem_id, with_for_update=for_update)


async def list_problems(
    session: AsyncSession,
    within_path: str,
    unit_id: int | None,
    state: str | None,
    after_id: int | None,
    limit: int,
) -> list[PilotProblem]:
    query = (
        select(PilotProblem)
        .where(PilotProblem.unit_path.startswith(within_path, autoescape=True))  # type: ignore[attr-defined]
        .order_by(PilotProblem.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    if unit_id is not None:
        query = query.where(PilotProblem.unit_id == unit_id)
    if state == "open":
        query = query.where(PilotProblem.answered_on.is_(None))  # type: ignore[union-attr]
    elif state == "answered":
        query = query.where(PilotProblem.answered_on.is_not(None))  # type: ignore[union-attr]
    if after_id is not None:
        query = query.where(PilotProblem.id > after_id)  # type: ignore[operator]
    return list((await session.exec(query)).all())


# --- roll-out ---------------------------------------------------------------------------


async def get_rollout(
    session: AsyncSession, bureau_id: int, *, for_update: bool = False
) -> PilotRollout | None:
    return await session.get(PilotRollout, bureau_id, with_for_update=for_update)


async def rollouts_of(session: AsyncSession, unit_id: int) -> list[PilotRollout]:
    query = select(PilotRollout).where(PilotRollout.unit_id == unit_id)
    return list((await session.exec(query)).all())


# --- acceptance -------------------------------------------------------------------------


async def self_checked_units(session: AsyncSession) -> list[tuple[int, str]]:
    """The units whose self-check was submitted, by id, with their paths."""
    query = text(
        "SELECT DISTINCT ON (unit_id) unit_id, unit_path FROM pilot_submission "
        "WHERE milestone = 'self_check' ORDER BY unit_id, revision DESC"
    )
    return [(r[0], r[1]) for r in (await session.exec(query)).all()]  # type: ignore[call-overload]


async def get_sample(
    session: AsyncSession, sample_id: int, *, for_update: bool = False
) -> PilotAcceptanceSample | None:
    return await session.get(PilotAcceptanceSample, sample_id, with_for_update=for_update)


async def list_samples(
    session: AsyncSession, after_id: int | None, limit: int
) -> list[PilotAcceptanceSample]:
    query = select(PilotAcceptanceSample).order_by(PilotAcceptanceSample.id).limit(limit)  # type: ignore[arg-type]
    if after_id is not None:
        query = query.where(PilotAcceptanceSample.id > after_id)  # type: ignore[operator]
    return list((await session.exec(query)).all())


async def results_of(session: AsyncSession, sample_id: int) -> list[PilotAcceptanceResult]:
    query = (
        select(PilotAcceptanceResult)
        .where(PilotAcceptanceResult.sample_id == sample_id)
        .order_by(PilotAcceptanceResult.unit_id)  # type: ignore[arg-type]
    )
    return list((await session.exec(query)).all())


async def get_result(session: AsyncSession, sample_id: int, unit_id: int) -> PilotAcceptanceResult | None:
    return await session.get(PilotAcceptanceResult, (sample_id, unit_id))


# --- the board: one statement per figure, for a page of units at once --------------------

_MILESTONES = text(
    """
SELECT unit_id, milestone,
       min(submitted_on) FILTER (WHERE revision = 1) AS met_on,
       bool_or(late) FILTER (WHERE revision = 1) AS late,
       max(revision) AS revision
FROM pilot_submission WHERE unit_id = ANY(:units)
GROUP BY unit_id, milestone
"""
)
_PROBLEMS = text(
    """
SELECT unit_id,
       count(*) FILTER (WHERE answered_on IS NULL) AS open,
       count(*) FILTER (WHERE answered_on IS NOT NULL) AS answered
FROM pilot_problem WHERE unit_id = ANY(:units)
GROUP BY unit_id
"""
)
_ROLLOUT = text(
    """
SELECT unit_id,
       count(*) FILTER (WHERE state = 'in_progress') AS in_progress,
       count(*) FILTER (WHERE state = 'done') AS done,
       count(*) FILTER (WHERE state = 'done' AND done_on > :window_to) AS done_late,
       max(done_on) AS last_done_on
FROM pilot_rollout WHERE unit_id = ANY(:units) AND bureau_id = ANY(:bureaus)
GROUP BY unit_id
"""
)
_ACCEPTANCE = text(
    """
SELECT DISTINCT ON (unit_id) unit_id, sample_id, outcome, findings, checked_on
FROM pilot_acceptance_result WHERE unit_id = ANY(:units)
ORDER BY unit_id, checked_on DESC, sample_id DESC
"""
)


async def board_figures(
    session: AsyncSession, units: list[int], bureaus: list[int], window_to
) -> dict[str, list[dict[str, Any]]]:
    """The stored figures of the units' boards: submissions per milestone, problems, roll-out
    counts over the given bureaus (the units' current subtrees) and the latest spot check."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, query, params in (
        ("milestones", _MILESTONES, {"units": units}),
        ("problems", _PROBLEMS, {"units": units}),
        ("rollout", _ROLLOUT, {"units": units, "bureaus": bureaus, "window_to": window_to}),
        ("acceptance", _ACCEPTANCE, {"units": units}),
    ):
        rows = (await session.exec(query, params=params)).mappings().all()  # type: ignore[call-overload]
        out[name] = [dict(r) for r in rows]
    return out
