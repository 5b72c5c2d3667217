"""Inspection tasks (抽查任务) of drawn plans: lists, reads, results recorded as inspections."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from services.common.dates import today
from services.registry.models import OUTBOX, Inspection, InspectionPlan, InspectionTask
from tests.conftest import assert_problem, auth
from tests.factories import audit_entries, chain_of, fetch_row
from tests.registry.plan_tasks_factory import drawn_plan, drawn_task, plan_network

TASKS = "/api/v1/registry/inspection-tasks"
REFERRED = "registry.inspection.referred"


@pytest.fixture(scope="module")
async def network(registry, token_for):
    return await plan_network(registry, token_for())


@pytest.fixture
async def case(registry, network):
    """A plan of the provincial unit with one open task for a fresh enterprise, drawn for the
    county officer and the city officer."""
    plan = await drawn_plan(registry, network["unit"])
    subject = (await chain_of(registry, network["unit"]))["enterprise"]
    officers = [network["officers"]["county"], network["officers"]["city"]]
    task = await drawn_task(registry, plan, subject, officers)
    return {"plan": plan, "subject": subject, "task": task, "officers": officers}


def officer_token(token_for, network, key: str) -> str:
    """The token of one of the network's supervision officers, in his own bureau."""
    bureau = {"left_out": "city"}.get(key, key)
    return token_for(network[bureau], roles=("supervision",), officer_id=network["officers"][key]["id"])


def result(**changes) -> dict:
    return {
        "inspected_on": "2026-03-10",
        "findings": "现场检查获证产品与型式试验样品一致，标志使用规范",
        "result": "compliant",
        **changes,
    }


async def post_result(registry, token: str, task_id: int, body: dict, if_match: str | None = '"1"'):
    headers = auth(token)
    if if_match is not None:
        headers["If-Match"] = if_match
    return await registry.post(f"{TASKS}/{task_id}/result", json=body, headers=headers)


async def inspections_of(registry, subject) -> list[Inspection]:
    async with registry.app.state.sessionmaker() as session:
        query = select(Inspection).where(
            Inspection.target_type == "enterprise", Inspection.target_id == subject.id
        )
        return list((await session.exec(query)).scalars().all())


async def referrals_about(registry, subject) -> list[dict]:
    async with registry.app.state.sessionmaker() as session:
        table = OUTBOX.table
        query = select(table).where(
            table.c.type == REFERRED, table.c.payload["target_id"].as_integer() == subject.id
        )
        return [dict(r) for r in (await session.exec(query)).mappings().all()]


class TestReadTask:
    async def test_the_task_with_its_subject_officers_and_etag(self, registry, token_for, network, case):
        token = token_for(network["unit"], roles=("supervision",))
        response = await registry.get(f"{TASKS}/{case['task'].id}", headers=auth(token))
        assert response.status_code == 200, response.text
        task = response.json()
        assert response.headers["etag"] == '"1"'
        assert (task["plan_id"], task["plan_title"], task["year"]) == (
            case["plan"].id,
            case["plan"].title,
            2026,
        )
        assert (task["subject_type"], task["subject_id"], task["subject_name"]) == (
            "enterprise",
            case["subject"].id,
            case["subject"].name,
        )
        assert (task["stratum"], task["due_on"], task["state"]) == ("base", "2026-03-30", "open")
        assert task["overdue"] is True  # due in March 2026, still open
        assert task["officers"] == [
            {"officer_id": o["id"], "name": o["name"], "drawn_rank": rank}
            for rank, o in enumerate(case["officers"], 1)
        ]
        assert task["inspection"] is None
        assert task["bureau_id"] == network["unit"]["id"]

    async def test_a_drawn_officer_of_a_bureau_below_reads_his_task(self, registry, token_for, network, case):
        token = token_for(
            network["county"], roles=("supervision",), officer_id=network["officers"]["county"]["id"]
        )
        response = await registry.get(f"{TASKS}/{case['task'].id}", headers=auth(token))
        assert response.status_code == 200, response.text

    async def test_out_of_scope_reads_as_missing(self, registry, token_for, network, case):
        for token in (
            token_for(network["other"], roles=("supervision",)),
            # Below the plan's bureau, and not drawn: the task is not his.
            token_for(
                network["city"], roles=("supervision",), officer_id=network["officers"]["left_out"]["id"]
            ),
        ):
            response = await registry.get(f"{TASKS}/{case['task'].id}", headers=auth(token))
            assert_problem(response, 404, "/problems/not-found")

    @pytest.mark.parametrize("bad", ["0", "x", str(2**53)])
    async def test_bad_id(self, registry, token_for, bad):
        response = await registry.get(f"{TASKS}/{bad}", headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "path.task_id"

    async def test_without_a_token(self, registry, case):
        assert_problem(await registry.get(f"{TASKS}/{case['task'].id}"), 401, "/problems/unauthorized")


class TestListTasks:
    async def ids(self, registry, token: str, **params) -> list[int]:
        seen, cursor = [], None
        while True:
            query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
            response = await registry.get(TASKS, params=query, headers=auth(token))
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    async def test_filters_scope_and_pages(self, registry, token_for, network):
        plan = await drawn_plan(registry, network["unit"])
        chain = await chain_of(registry, network["unit"])
        county, city, unit = (network["officers"][k] for k in ("county", "city", "unit"))
        future = today() + timedelta(days=30)
        overdue = await drawn_task(
            registry, plan, chain["enterprise"], [county, city], due_on=date(2026, 3, 30)
        )
        others = [
            await drawn_task(
                registry,
                plan,
                (await chain_of(registry, network["unit"]))["enterprise"],
                [unit, city],
                due_on=future,
            )
            for _ in range(3)
        ]
        done = await drawn_task(
            registry,
            plan,
            (await chain_of(registry, network["unit"]))["enterprise"],
            [unit, county],
            due_on=date(2026, 3, 30),
        )
        async with registry.app.state.sessionmaker() as session:
            row = await session.get(InspectionTask, done.id)
            row.state = "done"
            await session.commit()
        everything = [overdue.id, *(t.id for t in others), done.id]

        supervisor = token_for(network["unit"], roles=("supervision",))
        assert await self.ids(registry, supervisor, plan_id=plan.id) == everything
        assert await self.ids(registry, supervisor, plan_id=plan.id, overdue="true") == [overdue.id]
        assert await self.ids(registry, supervisor, plan_id=plan.id, overdue="false") == everything[1:]
        assert await self.ids(registry, supervisor, plan_id=plan.id, state="done") == [done.id]
        assert await self.ids(registry, supervisor, plan_id=plan.id, subject_type="certificate") == []
        county_officer = token_for(network["county"], roles=("supervision",), officer_id=county["id"])
        assert await self.ids(registry, county_officer, plan_id=plan.id, mine="true") == [overdue.id, done.id]
        # His bureau holds none of the plan's tasks: he sees the ones he is drawn for.
        assert await self.ids(registry, county_officer, plan_id=plan.id) == [overdue.id, done.id]
        city_officer = token_for(network["city"], roles=("supervision",), officer_id=city["id"])
        assert await self.ids(registry, city_officer, plan_id=plan.id, mine="true") == [
            overdue.id,
            *(t.id for t in others),
        ]
        assert await self.ids(registry, token_for(network["other"]), plan_id=plan.id) == []
        assert await self.ids(registry, token_for(network["city"]), plan_id=plan.id) == []

    async def test_mine_needs_an_officer(self, registry, token_for, network):
        response = await registry.get(
            TASKS, params={"mine": "true"}, headers=auth(token_for(network["unit"]))
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "query.mine"

    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"state": "closed"}, "query.state"),
            ({"overdue": "maybe"}, "query.overdue"),
            ({"subject_type": "product"}, "query.subject_type"),
            ({"plan_id": "0"}, "query.plan_id"),
            ({"limit": "501"}, "query.limit"),
            ({"cursor": "!!"}, "query.cursor"),
        ],
    )
    async def test_bad_query(self, registry, token_for, params, loc):
        response = await registry.get(TASKS, params=params, headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == loc

    async def test_without_a_token(self, registry):
        assert_problem(await registry.get(TASKS), 401, "/problems/unauthorized")


class TestRecordResult:
    async def test_a_drawn_officer_records_a_compliant_result(self, registry, token_for, network, case):
        token = officer_token(token_for, network, "county")
        response = await post_result(registry, token, case["task"].id, result())
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["state"] == "done" and task["version"] == 2
        assert response.headers["etag"] == '"2"'
        inspection = task["inspection"]
        assert response.headers["location"] == f"/api/v1/registry/inspections/{inspection['id']}"
        assert (inspection["inspected_on"], inspection["result"]) == ("2026-03-10", "compliant")
        (stored,) = await inspections_of(registry, case["subject"])
        assert stored.id == inspection["id"] and stored.bureau_id == network["unit"]["id"]
        assert stored.referral_event_id is None
        # The inspection is the plan's bureau's, by the task's drawn officers.
        supervisor = token_for(network["unit"], roles=("supervision",))
        read = (
            await registry.get(f"/api/v1/registry/inspections/{stored.id}", headers=auth(supervisor))
        ).json()
        assert read["officer_ids"] == sorted(o["id"] for o in case["officers"])
        assert read["target_type"] == "enterprise" and read["target_id"] == case["subject"].id
        assert [e["action"] for e in await audit_entries(registry, "inspection_task", case["task"].id)] == [
            "inspection_task.result_recorded"
        ]
        assert await referrals_about(registry, case["subject"]) == []

    async def test_a_non_compliant_result_is_referred_to_enforcement(
        self, registry, token_for, network, case
    ):
        token = officer_token(token_for, network, "city")
        body = result(result="non_compliant", findings="获证产品与型式试验样品不一致")
        response = await post_result(registry, token, case["task"].id, body)
        assert response.status_code == 201, response.text
        inspection_id = response.json()["inspection"]["id"]
        (event,) = await referrals_about(registry, case["subject"])
        assert event["aggregate_type"] == "inspection" and event["aggregate_id"] == str(inspection_id)
        assert (event["bureau_id"], event["bureau_path"]) == (network["unit"]["id"], network["unit"]["path"])
        assert event["payload"] == {
            "inspection_id": inspection_id,
            "target_type": "enterprise",
            "target_id": case["subject"].id,
            "target_name": case["subject"].name,
            "result": "non_compliant",
            "findings": "获证产品与型式试验样品不一致",
            "inspected_on": "2026-03-10",
            "bureau_id": network["unit"]["id"],
        }
        (stored,) = await inspections_of(registry, case["subject"])
        assert stored.referral_event_id == str(event["id"])

    async def test_a_supervisor_of_the_subtree_records_for_the_drawn_officers(
        self, registry, token_for, network, case
    ):
        for role in ("supervision", "admin"):
            plan_case = await drawn_task(
                registry,
                case["plan"],
                (await chain_of(registry, network["unit"]))["enterprise"],
                case["officers"],
            )
            response = await post_result(
                registry, token_for(network["unit"], roles=(role,)), plan_case.id, result()
            )
            assert response.status_code == 201, response.text

    async def test_a_second_result_is_refused(self, registry, token_for, network, case):
        token = officer_token(token_for, network, "county")
        assert (await post_result(registry, token, case["task"].id, result())).status_code == 201
        for if_match in ('"1"', '"2"'):
            again = await post_result(
                registry, token, case["task"].id, result(result="non_compliant"), if_match
            )
            problem = assert_problem(again, 409, "/problems/task-done")
            assert problem["inspection_id"] is not None
        assert len(await inspections_of(registry, case["subject"])) == 1
        assert await referrals_about(registry, case["subject"]) == []

    async def test_an_officer_not_drawn_is_refused(self, registry, token_for, network, case):
        # A supervision officer of the plan's own bureau sees the task, but the draw left him out.
        token = officer_token(token_for, network, "unit")
        response = await post_result(registry, token, case["task"].id, result())
        problem = assert_problem(response, 403, "/problems/not-drawn")
        assert problem["officer_ids"] == [o["id"] for o in case["officers"]]
        # One of a bureau below, not drawn, does not even see it.
        below = officer_token(token_for, network, "left_out")
        assert_problem(
            await post_result(registry, below, case["task"].id, result()), 404, "/problems/not-found"
        )
        assert await inspections_of(registry, case["subject"]) == []
        assert (await fetch_row(registry, InspectionTask, case["task"].id))["state"] == "open"

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head", "system"])
    async def test_roles_that_do_not_inspect(self, registry, token_for, network, case, role):
        response = await post_result(
            registry, token_for(network["unit"], roles=(role,)), case["task"].id, result()
        )
        assert_problem(response, 403, "/problems/role-required")
        assert await inspections_of(registry, case["subject"]) == []

    async def test_out_of_scope_reads_as_missing(self, registry, token_for, network, case):
        outsider = token_for(network["other"], roles=("supervision",))
        assert_problem(
            await post_result(registry, outsider, case["task"].id, result()), 404, "/problems/not-found"
        )
        assert_problem(await post_result(registry, outsider, 2**53 - 1, result()), 404, "/problems/not-found")
        below = token_for(network["city"], roles=("supervision",))  # a bureau under the plan's
        assert_problem(
            await post_result(registry, below, case["task"].id, result()), 404, "/problems/not-found"
        )
        assert await inspections_of(registry, case["subject"]) == []

    async def test_if_match_is_required_and_checked(self, registry, token_for, network, case):
        token = officer_token(token_for, network, "county")
        assert_problem(
            await post_result(registry, token, case["task"].id, result(), if_match=None),
            428,
            "/problems/precondition-required",
        )
        assert_problem(
            await post_result(registry, token, case["task"].id, result(), if_match='"7"'),
            412,
            "/problems/precondition-failed",
        )
        assert await inspections_of(registry, case["subject"]) == []

    async def test_an_inspection_before_the_draw_is_refused(self, registry, token_for, network, case):
        token = officer_token(token_for, network, "county")
        response = await post_result(registry, token, case["task"].id, result(inspected_on="2026-03-01"))
        assert_problem(response, 409, "/problems/inspected-before-draw")
        assert await inspections_of(registry, case["subject"]) == []

    async def test_a_closed_plan_takes_no_result(self, registry, token_for, network):
        plan = await drawn_plan(registry, network["unit"])
        subject = (await chain_of(registry, network["unit"]))["enterprise"]
        task = await drawn_task(
            registry, plan, subject, [network["officers"]["county"], network["officers"]["city"]]
        )
        async with registry.app.state.sessionmaker() as session:
            row = await session.get(InspectionPlan, plan.id)
            row.state = "closed"
            await session.commit()
        response = await post_result(registry, officer_token(token_for, network, "county"), task.id, result())
        assert_problem(response, 409, "/problems/plan-closed")

    @pytest.mark.parametrize(
        ("changes", "loc", "kind"),
        [
            ({"inspected_on": "tomorrow"}, "body.inspected_on", "date_in_future"),
            ({"inspected_on": "10/03/2026"}, "body.inspected_on", "date_type"),
            ({"findings": " x "}, "body.findings", "string_too_short"),
            ({"result": "passed"}, "body.result", "enum"),
            ({"officer_ids": [1, 2]}, "body.officer_ids", "extra_forbidden"),
        ],
    )
    async def test_malformed_results(self, registry, token_for, network, case, changes, loc, kind):
        if changes.get("inspected_on") == "tomorrow":
            changes = {"inspected_on": str(today() + timedelta(days=1))}
        token = officer_token(token_for, network, "county")
        response = await post_result(registry, token, case["task"].id, result(**changes))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert {(e["loc"], e["type"]) for e in problem["errors"]} == {(loc, kind)}
        assert await inspections_of(registry, case["subject"]) == []

    async def test_missing_fields(self, registry, token_for, network, case):
        token = officer_token(token_for, network, "county")
        response = await post_result(registry, token, case["task"].id, {})
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert {e["loc"] for e in problem["errors"]} == {"body.inspected_on", "body.findings", "body.result"}

    async def test_without_a_token(self, registry, case):
        response = await registry.post(f"{TASKS}/{case['task'].id}/result", json=result())
        assert_problem(response, 401, "/problems/unauthorized")
