"""Inspection plans (抽查计划) of "double random, one public" (双随机、一公开): created as a
filter and strata, drawn once (the pool frozen, subjects and officers drawn, tasks made),
and verifiable by anyone holding the frozen pool and the seed (see ``draw.py``).

Plans are the supervision body's: readable and writable within the principal's subtree,
404 outside. Functions here never commit.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.dates import add_working_days, today
from services.common.db import utcnow
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, NotFound
from services.registry.network import repository as network_repo
from services.registry.plans import draw
from services.registry.plans.models import InspectionPlan, PlanState
from services.registry.plans.schemas import DrawVerification, PlanCreate


async def create_plan(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: PlanCreate
) -> InspectionPlan:
    bureau = await network_repo.get_bureau(session, data.bureau_id or principal.bureau_id)
    if bureau is None or not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {data.bureau_id} not found.")
    plan = InspectionPlan(
        bureau_id=bureau.id,  # type: ignore[arg-type]
        bureau_path=bureau.path,
        year=data.year,
        title=data.title,
        subject_type=data.subject_type,
        pool_filter=data.pool_filter.model_dump(exclude_none=True),
        draw_count=data.draw_count,
        draw_share=float(data.draw_share) if data.draw_share is not None else None,
        strata=[s.model_dump() for s in data.strata],
        officers_per_task=data.officers_per_task,
        same_division=data.same_division,
        due_working_days=data.due_working_days,
        created_by=principal.account_id,
    )
    session.add(plan)
    await session.flush()
    await audit.record(
        session,
        principal,
        "inspection_plan.created",
        "inspection_plan",
        plan.id,
        data.model_dump(mode="json"),
    )
    return plan


async def get_plan(session: AsyncSession, plan_id: int, *, for_update: bool = False) -> InspectionPlan | None:
    query = select(InspectionPlan).where(InspectionPlan.id == plan_id)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def lock_plan(session: AsyncSession, plan_id: int) -> InspectionPlan | None:
    return await get_plan(session, plan_id, for_update=True)


async def list_plans(
    session: AsyncSession, principal: Principal, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[InspectionPlan], str | None]:
    after = decode_cursor(cursor, int)
    query = select(InspectionPlan).where(col(InspectionPlan.bureau_path).startswith(principal.bureau_path))
    for name in ("year", "subject_type", "state", "bureau_id"):
        if filters.get(name) is not None:
            query = query.where(getattr(InspectionPlan, name) == filters[name])
    if after:
        query = query.where(col(InspectionPlan.id) > after[0])
    rows = list((await session.exec(query.order_by(col(InspectionPlan.id)).limit(limit + 1))).all())
    return make_page(rows, limit, lambda r: [r.id])


async def draw_plan(
    session: AsyncSession, audit: AuditLog, principal: Principal, plan: InspectionPlan, on: date | None = None
) -> InspectionPlan:
    """Freeze the pools, draw the subjects and their officers, make the tasks: once."""
    if plan.state != PlanState.DRAFT:
        raise Conflict(
            f"Plan {plan.id} was drawn on {plan.drawn_on}: a plan is drawn once.",
            slug="plan-already-drawn",
            drawn_on=plan.drawn_on.isoformat() if plan.drawn_on else None,
        )
    on = on or today()
    due_on = add_working_days(on, plan.due_working_days)  # refused before anything is written
    conn = await session.connection()
    seed = draw.new_seed()
    pool_size, pool_digest = await draw.freeze_pool(conn, plan)
    officer_size, officer_digest = await draw.freeze_officers(conn, plan)
    sizes = await draw.stratum_sizes(conn, plan)
    weights = {s["code"]: float(s["weight"]) for s in draw.plan_strata(plan)}
    allocation = draw.allocate(draw.wanted(plan, pool_size), sizes, weights)
    subjects = await draw.draw_subjects(conn, plan, allocation, seed)
    await draw.freeze_recusals(conn, plan, [s[0] for s in subjects])
    drawn = draw.draw_officers(
        plan,
        seed,
        subjects,
        await draw.frozen_officers(conn, plan.id),  # type: ignore[arg-type]
        await draw.frozen_recusals(conn, plan.id),  # type: ignore[arg-type]
    )
    await _make_tasks(conn, plan, drawn, due_on)
    plan.seed = seed
    plan.state = PlanState.DRAWN
    plan.pool_size, plan.pool_digest = pool_size, pool_digest
    plan.officer_pool_size, plan.officer_pool_digest = officer_size, officer_digest
    plan.allocation = {h: {"pool": sizes[h], "weight": weights[h], "drawn": allocation[h]} for h in sizes}
    plan.drawn_on = on
    plan.drawn_by = principal.account_id
    plan.version += 1
    plan.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        principal,
        "inspection_plan.drawn",
        "inspection_plan",
        plan.id,
        {
            "seed": seed,
            "pool_size": pool_size,
            "pool_digest": pool_digest,
            "officer_pool_digest": officer_digest,
            "allocation": allocation,
            "drawn": [[d.subject_id, list(d.officer_ids)] for d in drawn],
        },
    )
    return plan


async def _make_tasks(conn, plan: InspectionPlan, drawn: list[draw.Drawn], due_on: date) -> None:
    """One task per drawn subject and its officers, written in two statements."""
    if not drawn:
        return
    rows = await conn.execute(
        text(
            "INSERT INTO inspection_task (plan_id, draw_order, subject_type, subject_id, stratum, bureau_id, "
            "bureau_path, due_on, state, version, created_at, updated_at) "
            "SELECT CAST(:plan_id AS bigint), d.draw_order, :subject_type, d.subject_id, d.stratum, "
            "CAST(:bureau_id AS bigint), :bureau_path, CAST(:due_on AS date), 'open', 1, now(), now() "
            "FROM unnest(CAST(:orders AS int[]), CAST(:subjects AS bigint[]), CAST(:strata AS text[])) "
            "AS d(draw_order, subject_id, stratum) RETURNING id, draw_order"
        ),
        {
            "plan_id": plan.id,
            "subject_type": str(plan.subject_type),
            "bureau_id": plan.bureau_id,
            "bureau_path": plan.bureau_path,
            "due_on": due_on,
            "orders": [d.draw_order for d in drawn],
            "subjects": [d.subject_id for d in drawn],
            "strata": [d.stratum for d in drawn],
        },
    )
    task_of = {int(r[1]): int(r[0]) for r in rows}
    links = [
        (task_of[d.draw_order], officer, rank) for d in drawn for rank, officer in enumerate(d.officer_ids, 1)
    ]
    await conn.execute(
        text(
            "INSERT INTO inspection_task_officer (task_id, officer_id, drawn_rank) "
            "SELECT * FROM unnest(CAST(:tasks AS bigint[]), CAST(:officers AS bigint[]), "
            "CAST(:ranks AS int[]))"
        ),
        {
            "tasks": [t for t, _, _ in links],
            "officers": [o for _, o, _ in links],
            "ranks": [r for _, _, r in links],
        },
    )


async def verify_draw(session: AsyncSession, plan: InspectionPlan) -> DrawVerification:
    """Re-run the draw from the frozen pools, recusals and the recorded seed; compare."""
    if plan.state == PlanState.DRAFT or plan.seed is None:
        raise Conflict(f"Plan {plan.id} is not drawn yet: there is nothing to verify.", slug="plan-not-drawn")
    conn = await session.connection()
    digests = (
        await conn.execute(
            text(
                "SELECT (SELECT encode(sha256(convert_to(coalesce(string_agg(position || ',' || subject_id "
                "|| ',' || stratum || E'\\n', '' ORDER BY position), ''), 'UTF8')), 'hex') "
                "FROM plan_pool_member WHERE plan_id = :p), "
                "(SELECT encode(sha256(convert_to(coalesce(string_agg(position || ',' || officer_id || ',' "
                "|| coalesce(division_code, '') || E'\\n', '' ORDER BY position), ''), 'UTF8')), 'hex') "
                "FROM plan_officer WHERE plan_id = :p)"
            ),
            {"p": plan.id},
        )
    ).one()
    sizes = await draw.stratum_sizes(conn, plan)
    weights = {s["code"]: float(s["weight"]) for s in draw.plan_strata(plan)}
    allocation = draw.allocate(draw.wanted(plan, sum(sizes.values())), sizes, weights)
    subjects = await draw.draw_subjects(conn, plan, allocation, plan.seed)
    rerun = draw.draw_officers(
        plan,
        plan.seed,
        subjects,
        await draw.frozen_officers(conn, plan.id),  # type: ignore[arg-type]
        await draw.frozen_recusals(conn, plan.id),  # type: ignore[arg-type]
    )
    stored = await _stored_draw(conn, plan.id)  # type: ignore[arg-type]
    expected = [(d.draw_order, d.subject_id, d.officer_ids) for d in rerun]
    subjects_match = [e[:2] for e in expected] == [s[:2] for s in stored]
    officers_match = expected == stored
    differences = [
        {
            "draw_order": e[0],
            "rerun": {"subject_id": e[1], "officer_ids": list(e[2])},
            "stored": {"subject_id": s[1], "officer_ids": list(s[2])},
        }
        for e, s in zip(expected, stored, strict=False)
        if e != s
    ][:20]
    pool_ok, officers_ok = digests[0] == plan.pool_digest, digests[1] == plan.officer_pool_digest
    return DrawVerification(
        matches=pool_ok
        and officers_ok
        and subjects_match
        and officers_match
        and len(expected) == len(stored),
        pool_digest_matches=pool_ok,
        officer_pool_digest_matches=officers_ok,
        subjects_match=subjects_match,
        officers_match=officers_match,
        seed=plan.seed,
        allocation=allocation,
        drawn=len(stored),
        differences=differences,
    )


async def _stored_draw(conn, plan_id: int) -> list[tuple[int, int, tuple[int, ...]]]:
    rows = await conn.execute(
        text(
            "SELECT t.draw_order, t.subject_id, array_agg(o.officer_id ORDER BY o.drawn_rank) "
            "FROM inspection_task t JOIN inspection_task_officer o ON o.task_id = t.id "
            "WHERE t.plan_id = :p GROUP BY t.id ORDER BY t.draw_order"
        ),
        {"p": plan_id},
    )
    return [(int(r[0]), int(r[1]), tuple(int(x) for x in r[2])) for r in rows]


async def pool_page(session: AsyncSession, plan: InspectionPlan, cursor: str | None, limit: int):
    after = decode_cursor(cursor, int)
    conn = await session.connection()
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT position, subject_id, stratum, division_code FROM plan_pool_member "
                    "WHERE plan_id = :p AND position > :after ORDER BY position LIMIT :n"
                ),
                {"p": plan.id, "after": after[0] if after else 0, "n": limit + 1},
            )
        )
        .mappings()
        .all()
    )
    return make_page([dict(r) for r in rows], limit, lambda r: [r["position"]])
