"""Inspection plans: the pool frozen, the draw reproducible from the frozen pool and the seed,
drawn once, recusals held, inactive officers never drawn, scope held."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from services.common.auth import Role
from services.registry.certification.models import CertificateStatusChange
from services.registry.plans.models import OfficerConflict
from tests.conftest import assert_problem, auth
from tests.factories import chain_of, create_bureau, create_officer, create_provincial_unit, insert_row

API = "/api/v1/registry"


def md5(*parts) -> str:
    return hashlib.md5(":".join(str(p) for p in parts).encode()).hexdigest()


@pytest.fixture(scope="module")
async def province(registry, token_for):
    """A province with a county, eight certificates (two suspended last year) and officers."""
    national = token_for()
    unit = await create_provincial_unit(registry, national, "quality_supervision")
    county = await create_bureau(registry, national, unit, "county", "130102")
    certificates = []
    for i in range(8):
        certificate = (await chain_of(registry, county))["certificate"]
        certificates.append(certificate.id)
        if i < 2:
            await insert_row(
                registry,
                CertificateStatusChange,
                certificate_id=certificate.id,
                from_status="valid",
                to_status="suspended",
                reason="监督抽查不合格",
                actor_kind="officer",
                actor_id="t",
                changed_at=datetime(2025, 6, 1, tzinfo=UTC),
            )
    officers = [await create_officer(registry, national, county, body="supervision") for _ in range(6)]
    inactive = await create_officer(registry, national, county, body="supervision")
    await registry.patch(
        f"{API}/officers/{inactive['id']}",
        json={"active": False},
        headers={**auth(national), "If-Match": f'"{inactive["version"]}"'},
    )
    uncredentialed = await create_officer(registry, national, county, body="supervision", credential=False)
    return {
        "unit": unit,
        "county": county,
        "certificates": certificates,
        "officers": [o["id"] for o in officers],
        "inactive": inactive["id"],
        "uncredentialed": uncredentialed["id"],
        "token": token_for(unit, roles=(Role.SUPERVISION,)),
    }


async def new_plan(registry, province, **overrides) -> dict:
    body = {
        "year": 2026,
        "title": "2026年度认证证书双随机抽查",
        "subject_type": "certificate",
        "draw_count": 4,
        "strata": [{"code": "high", "rule": "recent_suspension", "weight": 3}],
        "due_working_days": 3,
        **overrides,
    }
    response = await registry.post(f"{API}/inspection-plans", json=body, headers=auth(province["token"]))
    assert response.status_code == 201, response.text
    return response.json()


async def drawn(registry, province, plan) -> dict:
    response = await registry.post(
        f"{API}/inspection-plans/{plan['id']}/draw", headers=auth(province["token"])
    )
    assert response.status_code == 200, response.text
    return response.json()


async def tasks_of(registry, plan_id: int) -> list[tuple[int, int, tuple[int, ...]]]:
    from sqlalchemy import text

    async with registry.app.state.sessionmaker() as session:
        rows = await session.execute(
            text(
                "SELECT t.draw_order, t.subject_id, array_agg(o.officer_id ORDER BY o.drawn_rank) "
                "FROM inspection_task t JOIN inspection_task_officer o ON o.task_id = t.id "
                "WHERE t.plan_id = :p GROUP BY t.id ORDER BY t.draw_order"
            ),
            {"p": plan_id},
        )
        return [(r[0], r[1], tuple(r[2])) for r in rows]


async def recusals(registry, plan_id: int) -> set[tuple[int, int]]:
    from sqlalchemy import text

    async with registry.app.state.sessionmaker() as session:
        rows = await session.execute(
            text("SELECT officer_id, subject_id FROM plan_recusal WHERE plan_id = :p"), {"p": plan_id}
        )
        return {(r[0], r[1]) for r in rows}


async def frozen_pool(registry, province, plan_id: int) -> list[dict]:
    response = await registry.get(
        f"{API}/inspection-plans/{plan_id}/pool", params={"limit": 100}, headers=auth(province["token"])
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


class TestTheDraw:
    async def test_the_pool_and_seed_give_the_same_subjects_and_officers(self, registry, province):
        plan = await drawn(registry, province, await new_plan(registry, province))
        pool = await frozen_pool(registry, province, plan["id"])
        assert [m["subject_id"] for m in pool] == sorted(province["certificates"])
        assert {m["stratum"] for m in pool if m["subject_id"] in province["certificates"][:2]} == {"high"}
        # n = 4 over high (2 × 3) and base (6 × 1): 4 × 6/12 = 2 each.
        assert {h: a["drawn"] for h, a in plan["allocation"].items()} == {"high": 2, "base": 2}
        seed = plan["seed"]
        expected = []
        for stratum in ("high", "base"):
            members = sorted(
                (m for m in pool if m["stratum"] == stratum), key=lambda m: md5(seed, m["subject_id"])
            )
            expected += [m["subject_id"] for m in members[: plan["allocation"][stratum]["drawn"]]]
        tasks = await tasks_of(registry, plan["id"])
        assert [t[1] for t in tasks] == expected
        officers = sorted(province["officers"])
        recused = await recusals(registry, plan["id"])  # from the bureau's earlier plans, if any
        for _, subject_id, chosen in tasks:
            eligible = [o for o in officers if (o, subject_id) not in recused]
            assert chosen == tuple(sorted(eligible, key=lambda o: md5(seed, subject_id, o))[:2])
        verified = await registry.post(
            f"{API}/inspection-plans/{plan['id']}/verification", headers=auth(province["token"])
        )
        assert verified.status_code == 200, verified.text
        assert verified.json()["matches"] is True

    async def test_a_plan_is_drawn_once(self, registry, province):
        plan = await drawn(registry, province, await new_plan(registry, province))
        again = await registry.post(
            f"{API}/inspection-plans/{plan['id']}/draw", headers=auth(province["token"])
        )
        assert_problem(again, 409, "/problems/plan-already-drawn")
        assert (await tasks_of(registry, plan["id"])) != []

    async def test_a_changed_member_does_not_change_the_frozen_pool(self, registry, province, token_for):
        # A province of its own, so the change is seen by no other test's pool.
        unit = await create_provincial_unit(
            registry, token_for(), "quality_supervision", division_code="150000"
        )
        mine = [(await chain_of(registry, unit))["certificate"].id for _ in range(3)]
        for _ in range(2):
            await create_officer(registry, token_for(), unit, body="supervision")
        own = {**province, "token": token_for(unit, roles=(Role.SUPERVISION,))}
        plan = await drawn(registry, own, await new_plan(registry, own, draw_count=2))
        before = await frozen_pool(registry, own, plan["id"])
        assert [m["subject_id"] for m in before] == mine and {m["stratum"] for m in before} == {"base"}
        await insert_row(
            registry,
            CertificateStatusChange,
            certificate_id=mine[0],
            from_status="valid",
            to_status="suspended",
            reason="r",
            actor_kind="officer",
            actor_id="t",
            changed_at=datetime(2025, 7, 1, tzinfo=UTC),
        )
        assert await frozen_pool(registry, own, plan["id"]) == before
        verified = await registry.post(
            f"{API}/inspection-plans/{plan['id']}/verification", headers=auth(own["token"])
        )
        assert verified.json()["matches"] is True

    async def test_inactive_and_uncredentialed_officers_never_drawn(self, registry, province):
        plan = await drawn(registry, province, await new_plan(registry, province, draw_count=8, strata=[]))
        drawn_officers = {o for t in await tasks_of(registry, plan["id"]) for o in t[2]}
        assert drawn_officers <= set(province["officers"])
        assert province["inactive"] not in drawn_officers and province["uncredentialed"] not in drawn_officers


class TestRecusal:
    async def test_previous_plan_and_declared_conflicts(self, registry, province):
        # The bureau's first plan of enterprises draws all eight; one officer then declares a
        # conflict with each of them; the next plan of enterprises draws them all again.
        first = await drawn(
            registry,
            province,
            await new_plan(registry, province, subject_type="enterprise", draw_count=8, strata=[]),
        )
        before = {(o, t[1]) for t in await tasks_of(registry, first["id"]) for o in t[2]}
        conflicted = province["officers"][0]
        for _, enterprise_id, _ in await tasks_of(registry, first["id"]):
            await insert_row(
                registry,
                OfficerConflict,
                officer_id=conflicted,
                subject_type="enterprise",
                subject_id=enterprise_id,
                reason="亲属任职",
                declared_on=datetime(2026, 1, 5).date(),
                recorded_by="t",
            )
        second = await drawn(
            registry,
            province,
            await new_plan(registry, province, subject_type="enterprise", draw_count=8, strata=[]),
        )
        after = {(o, t[1]) for t in await tasks_of(registry, second["id"]) for o in t[2]}
        assert len(after) == 16
        assert not (after & before)  # nobody inspects the same enterprise twice running
        assert all(o != conflicted for o, _ in after)


class TestScopeAndInput:
    async def test_another_province_sees_nothing(self, registry, province, token_for):
        plan = await new_plan(registry, province)
        other = await create_provincial_unit(
            registry, token_for(), "quality_supervision", division_code="140000"
        )
        stranger = auth(token_for(other, roles=(Role.SUPERVISION,)))
        assert_problem(
            await registry.get(f"{API}/inspection-plans/{plan['id']}", headers=stranger),
            404,
            "/problems/not-found",
        )
        assert_problem(
            await registry.post(f"{API}/inspection-plans/{plan['id']}/draw", headers=stranger),
            404,
            "/problems/not-found",
        )
        pool_elsewhere = await registry.post(
            f"{API}/inspection-plans",
            headers=stranger,
            json={
                "bureau_id": province["county"]["id"],
                "year": 2026,
                "title": "t",
                "subject_type": "certificate",
                "draw_count": 1,
            },
        )
        assert_problem(pool_elsewhere, 404, "/problems/not-found")

    @pytest.mark.parametrize(
        "overrides",
        [
            {"draw_count": None},
            {"draw_share": "0.5"},
            {"strata": [{"code": "high", "rule": "no_such_rule", "weight": 2}]},
            {"strata": [{"code": "base", "rule": "recent_suspension", "weight": 2}]},
            {"pool_filter": {"product_category": "0901"}, "subject_type": "auditor"},
            {"year": 1999},
        ],
    )
    async def test_bad_plans_refused(self, registry, province, overrides):
        body = {"year": 2026, "title": "t", "subject_type": "certificate", "draw_count": 2, **overrides}
        body = {k: v for k, v in body.items() if v is not None}
        response = await registry.post(f"{API}/inspection-plans", json=body, headers=auth(province["token"]))
        assert_problem(response, 422, "/problems/validation-error")

    async def test_enforcement_cannot_plan(self, registry, province, token_for):
        token = token_for(province["unit"], roles=(Role.ENFORCEMENT,))
        response = await registry.post(
            f"{API}/inspection-plans",
            headers=auth(token),
            json={"year": 2026, "title": "t", "subject_type": "certificate", "draw_count": 1},
        )
        assert_problem(response, 403, "/problems/role-required")


class TestFromDrawToLead:
    """A drawn task's non-compliant result is referred to enforcement like any inspection, and
    enforcement's worker makes it a lead (the closed loop)."""

    async def test_a_non_compliant_result_becomes_a_lead(self, registry, enforcement, province, token_for):
        from services.enforcement import models as enforcement_models
        from services.enforcement.cases.consumers import HANDLERS
        from services.registry.models import OutboxEvent
        from tests.events_flow import deliver, outbox_events, worker_ctx

        plan = await drawn(registry, province, await new_plan(registry, province, draw_count=1, strata=[]))
        [(_, subject_id, officers)] = await tasks_of(registry, plan["id"])
        tasks = await registry.get(
            f"{API}/inspection-tasks", params={"plan_id": plan["id"]}, headers=auth(province["token"])
        )
        [task] = tasks.json()["items"]
        officer = token_for(province["county"], roles=(Role.SUPERVISION,), officer_id=officers[0])
        response = await registry.post(
            f"{API}/inspection-tasks/{task['id']}/result",
            json={
                "inspected_on": plan["drawn_on"],
                "findings": "获证产品与型式试验样品不一致",
                "result": "non_compliant",
            },
            headers={**auth(officer), "If-Match": f'"{task["version"]}"'},
        )
        assert response.status_code == 201, response.text
        inspection_id = response.json()["inspection"]["id"]
        [referral] = [
            e
            for e in await outbox_events(registry, OutboxEvent, type="registry.inspection.referred")
            if e["payload"]["inspection_id"] == inspection_id
        ]
        assert (referral["payload"]["target_type"], referral["payload"]["target_id"]) == (
            "certificate",
            subject_id,
        )
        context = worker_ctx(enforcement, "enforcement", enforcement_models, HANDLERS)
        assert await deliver(context, referral) == ["applied"]
        leads = await enforcement.get(
            "/api/v1/enforcement/leads",
            params={"source": "inspection_referral", "subject_type": "certificate", "subject_id": subject_id},
            headers=auth(token_for(province["unit"], roles=(Role.ENFORCEMENT,))),
        )
        assert [lead["inspection_id"] for lead in leads.json()["items"]] == [inspection_id]
