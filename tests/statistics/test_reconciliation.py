"""Reconciliation (对账): facts deleted, made older, altered, or left behind by a vanished case
are repaired from enforcement's case-facts feed, the figures follow, and the run says so."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.common.auth import PrincipalKind, Role
from services.common.event_schemas import CaseChanged
from services.statistics.aggregates.jobs import reconcile_facts
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import API, new_lead, open_case, read_case, subjects
from tests.statistics.fact_flow import (
    case_event,
    deliver,
    enforcement_events,
    expected_figures,
    figures,
    ids_of,
    new_case_id,
    only,
)
from tests.world import build_world

RUNS = "/api/v1/statistics/reconciliations"


@pytest.fixture(scope="module")
async def own(registry, enforcement, token_for):
    return await build_world(registry, token_for)


async def execute(statistics, sql: str, **params):
    async with statistics.app.state.sessionmaker() as session:
        await session.execute(text(sql), params)
        await session.commit()


async def fact_of(statistics, case_id: int):
    async with statistics.app.state.sessionmaker() as session:
        return (
            await session.execute(text("SELECT * FROM case_fact WHERE case_id = :id"), {"id": case_id})
        ).first()


class TestTheFeed:
    async def test_enforcement_answers_the_events_payload_to_services_only(
        self, enforcement, registry, own, token_for
    ):
        chain = await subjects(registry, own)
        lead = await new_lead(enforcement, own.officers[0], "enterprise", chain["enterprise"]["id"])
        case = await open_case(enforcement, own, lead)
        service = token_for(kind=PrincipalKind.SERVICE, roles=(Role.SERVICE,))
        page = await enforcement.get(
            f"{API}/case-facts", params={"after": case["id"] - 1, "limit": 1}, headers=auth(service)
        )
        assert page.status_code == 200, page.text
        (item,) = page.json()["items"]
        events = [
            e
            for e in await enforcement_events(enforcement, own.county["path"])
            if (e["aggregate_type"], e["aggregate_id"]) == ("case", str(case["id"]))
        ]
        newest = max(events, key=lambda e: e["aggregate_version"])
        assert (item["case_id"], item["version"], item["bureau_path"]) == (
            case["id"],
            newest["aggregate_version"],
            own.county["path"],
        )
        # The same payload (money compares as numbers: "0" from the new row, "0.00" once stored).
        assert CaseChanged.model_validate(item["payload"]) == CaseChanged.model_validate(newest["payload"])
        for roles in ((Role.ADMIN,), (Role.LEGAL,), (Role.HEAD,)):
            response = await enforcement.get(f"{API}/case-facts", headers=auth(token_for(roles=roles)))
            assert_problem(response, 403, "/problems/role-required")
        assert_problem(await enforcement.get(f"{API}/case-facts"), 401, "/problems/unauthorized")
        for bad in ({"after": -1}, {"limit": 0}, {"limit": 501}, {"after": "x"}):
            response = await enforcement.get(f"{API}/case-facts", params=bad, headers=auth(service))
            assert_problem(response, 422, "/problems/validation-error")


class TestRepairs:
    async def test_drift_is_repaired_reported_and_the_figures_follow(
        self, statistics, enforcement, registry, own, token_for
    ):
        chain = await subjects(registry, own)
        case_ids = []
        for on in ("2026-03-02", "2026-03-03", "2026-03-04"):
            lead = await new_lead(
                enforcement, own.officers[0], "enterprise", chain["enterprise"]["id"], received_on=on
            )
            case_ids.append((await open_case(enforcement, own, lead, on=on))["id"])
        assert "applied" in await deliver(
            statistics, await enforcement_events(enforcement, own.province["path"])
        )
        deleted, older, altered = case_ids
        # Drift: one fact deleted, one set back a version, one altered; one fact of no case.
        await execute(statistics, "DELETE FROM case_fact WHERE case_id = :id", id=deleted)
        await execute(
            statistics,
            "UPDATE case_fact SET version = version - 1, state = 'opened_x' WHERE case_id = :id",
            id=older,
        )
        await execute(
            statistics, "UPDATE case_fact SET opened_on = '2026-01-01' WHERE case_id = :id", id=altered
        )
        ghost = new_case_id()
        assert await deliver(statistics, [case_event(own.county, ghost, 1, opened_on="2026-03-05")]) == [
            "applied"
        ]

        admin = token_for(roles=(Role.ADMIN,))
        response = await statistics.post(RUNS, headers=auth(admin))
        assert response.status_code == 201, response.text
        run = response.json()
        assert response.headers["Location"] == f"{RUNS}/{run['id']}"
        assert run["status"] == "succeeded", run
        assert deleted in run["repaired_ids"]["missing"]
        assert older in run["repaired_ids"]["outdated"]
        assert altered in run["repaired_ids"]["altered"]
        assert ghost in run["repaired_ids"]["vanished"]
        assert run["missing"] >= 1 and run["outdated"] >= 2 and run["vanished"] >= 1
        assert await fact_of(statistics, ghost) is None
        for case_id in case_ids:
            row = await fact_of(statistics, case_id)
            case = await read_case(enforcement, own.head, {"id": case_id})
            assert (row.version, row.state, row.opened_on.isoformat()) == (
                case["version"],
                case["state"],
                case["opened_on"],
            )

        # The figures are a direct count over enforcement's cases again.
        # (every case and lead of the subtree: another test of this module may have made some)
        lead_ids, all_case_ids = ids_of(await enforcement_events(enforcement, own.province["path"]))
        cases = [await read_case(enforcement, own.head, {"id": i}) for i in all_case_ids]
        leads = [
            (await enforcement.get(f"{API}/leads/{i}", headers=auth(own.head.token))).json() for i in lead_ids
        ]
        token = token_for(own.province, roles=(Role.HEAD,))
        found = only(await figures(statistics, token, own.province["id"], dimension="all"))
        assert found == expected_figures(cases, leads)

        # A second run finds nothing of this subtree to repair; both runs are listed, newest first.
        second = (await statistics.post(RUNS, headers=auth(token_for(roles=(Role.LEGAL,))))).json()
        assert not {*case_ids, ghost} & {i for ids in second["repaired_ids"].values() for i in ids}
        listed = await statistics.get(RUNS, params={"limit": 2}, headers=auth(admin))
        assert [r["id"] for r in listed.json()["items"]] == [second["id"], run["id"]]
        one = await statistics.get(f"{RUNS}/{run['id']}", headers=auth(admin))
        assert one.json() == run

    async def test_the_cron_job_runs_one_too(self, statistics):
        result = await reconcile_facts(
            {"sessionmaker": statistics.app.state.sessionmaker, "services": statistics.app.state.services}
        )
        assert result["status"] == "succeeded"

    async def test_who_may_run_and_read(self, statistics, own, token_for):
        for token in (
            token_for(own.province, roles=(Role.ADMIN,)),  # not national
            token_for(own.city, roles=(Role.LEGAL,)),
            token_for(roles=(Role.HEAD,)),
            token_for(roles=(Role.ENFORCEMENT,)),
        ):
            assert_problem(await statistics.post(RUNS, headers=auth(token)), 403, "/problems/role-required")
            assert_problem(await statistics.get(RUNS, headers=auth(token)), 403, "/problems/role-required")
        assert_problem(await statistics.post(RUNS), 401, "/problems/unauthorized")
        admin = token_for(roles=(Role.ADMIN,))
        assert_problem(
            await statistics.get(f"{RUNS}/999999999", headers=auth(admin)), 404, "/problems/not-found"
        )
        assert_problem(
            await statistics.get(RUNS, params={"cursor": "WyJ4Il0"}, headers=auth(admin)),
            422,
            "/problems/validation-error",
        )
