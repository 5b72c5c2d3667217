"""Drawn plans and their tasks written straight to the registry's tables, for the tests of
tasks, results and the published results (the draw itself has tests of its own)."""

from __future__ import annotations

import uuid
from datetime import date

from services.registry.plans.models import InspectionPlan, InspectionTask, TaskOfficer
from tests.factories import create_bureau, create_officer, create_provincial_unit, store

DRAWN_ON = date(2026, 3, 2)


async def plan_network(registry, national_token: str) -> dict:
    """A province of the test module's own (city and county under it) and another province,
    with supervision officers holding credentials in each."""
    unit = await create_provincial_unit(registry, national_token, "quality_supervision", pilot="none")
    city = await create_bureau(registry, national_token, unit, "city", "130100")
    county = await create_bureau(registry, national_token, city, "county", "130102")
    other = await create_provincial_unit(
        registry, national_token, "quality_supervision", "150000", pilot="none"
    )

    async def officer(bureau: dict) -> dict:
        return await create_officer(registry, national_token, bureau, body="supervision")

    return {
        "unit": unit,
        "city": city,
        "county": county,
        "other": other,
        "officers": {
            "unit": await officer(unit),
            "city": await officer(city),
            "county": await officer(county),
            "left_out": await officer(city),
            "other": await officer(other),
        },
    }


async def drawn_plan(registry, bureau: dict, *, subject_type: str = "enterprise", year: int = 2026, **extra):
    (plan,) = await store(
        registry,
        InspectionPlan(
            bureau_id=bureau["id"],
            bureau_path=bureau["path"],
            year=year,
            title=f"{year}年度双随机抽查-{uuid.uuid4().hex[:6]}",
            subject_type=subject_type,
            seed=uuid.uuid4().hex,
            **{"state": "drawn", "drawn_on": DRAWN_ON, "drawn_by": "test", "created_by": "test", **extra},
        ),
    )
    return plan


async def drawn_task(
    registry,
    plan: InspectionPlan,
    subject,
    officers: list[dict],
    *,
    due_on: date = date(2026, 3, 30),
    stratum: str = "base",
    draw_order: int = 1,
) -> InspectionTask:
    """A task of ``plan`` for ``subject`` (a stored row), drawn for ``officers`` in that order."""
    (task,) = await store(
        registry,
        InspectionTask(
            plan_id=plan.id,
            draw_order=draw_order,
            subject_type=plan.subject_type,
            subject_id=subject.id,
            stratum=stratum,
            bureau_id=plan.bureau_id,
            bureau_path=plan.bureau_path,
            due_on=due_on,
        ),
    )
    await store(
        registry,
        *(
            TaskOfficer(task_id=task.id, officer_id=o["id"], drawn_rank=rank)
            for rank, o in enumerate(officers, 1)
        ),
    )
    return task
