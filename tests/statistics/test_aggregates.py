"""The aggregates: figures equal a direct count over enforcement's cases (cases moving between
periods and states, events delivered shuffled and twice), the rebuild equals the incremental
figures, concurrent events of one bureau lose no update, and the API's scope and input rules."""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from services.common.auth import Role
from services.common.dates import today
from services.common.event_schemas import CaseChanged
from services.statistics.aggregates.jobs import rebuild_all
from services.statistics.facts import service as facts
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import (
    API,
    fine,
    lead_step,
    new_lead,
    ok,
    open_case,
    read_case,
    review_answer,
    step,
    subjects,
)
from tests.enforcement.test_procedure import investigated
from tests.statistics.fact_flow import (
    AGGREGATES,
    case_event,
    deliver,
    enforcement_events,
    expected_figures,
    figures,
    new_case_id,
    only,
)
from tests.world import build_world


@pytest.fixture(scope="module")
async def own(registry, enforcement, token_for):
    """A province, city and county of this module's own: no other test's cases count in them."""
    return await build_world(registry, token_for)


@pytest.fixture(scope="module")
async def spare(registry, enforcement, token_for):
    """Another subtree, for the synthetic events (kept out of ``own``'s direct count)."""
    return await build_world(registry, token_for)


async def _leads_and_cases(enforcement, own, lead_ids, case_ids):
    leads = [
        (await enforcement.get(f"{API}/leads/{i}", headers=auth(own.head.token))).json() for i in lead_ids
    ]
    cases = [await read_case(enforcement, own.head, {"id": i}) for i in case_ids]
    return leads, cases


async def _compare(statistics, enforcement, own, token_for, lead_ids, case_ids):
    leads, cases = await _leads_and_cases(enforcement, own, lead_ids, case_ids)
    expected = expected_figures(cases, leads)
    assert expected  # the data set says something
    for bureau in (own.county, own.city, own.province):
        token = token_for(bureau, roles=(Role.HEAD,))
        found = only(await figures(statistics, token, bureau["id"], dimension="all"))
        assert found == expected, (bureau["id"], set(found.items()) ^ set(expected.items()))
    # The province's statistical report of each period (its scheduled pull) says the same.
    legal = auth(token_for(own.province, roles=(Role.LEGAL,)))
    for period in sorted({key[0] for key in expected}):
        pulled = await statistics.get(f"{REPORTS}/{own.province['id']}/{period}", headers=legal)
        assert pulled.status_code == 200, pulled.text
        in_report = {
            (period, f["dimension"], f["value"], f["measure"]): Decimal(f["amount"])
            for f in pulled.json()["figures"]
            if Decimal(f["amount"]) != 0
        }
        wanted = {k: Decimal(v) for k, v in expected.items() if k[0] == period}
        assert only(in_report) == wanted, (period, set(only(in_report).items()) ^ set(wanted.items()))


REPORTS = "/api/v1/statistics/reports"


class TestFiguresEqualEnforcement:
    async def test_a_seeded_data_set_through_moves_duplicates_and_disorder(
        self, statistics, enforcement, registry, own, token_for
    ):
        o1, head = own.officers[0], own.head
        chain = await subjects(registry, own)
        enterprise = chain["enterprise"]["id"]
        lead_ids, case_ids = [], []
        # Phase 1: leads in May and June, one declined; cases opened; one decided on the spot.
        declined = await new_lead(enforcement, o1, "enterprise", enterprise, received_on="2026-05-06")
        response = await lead_step(
            enforcement, head, declined, "decline_lead", occurred_on="2026-05-08", reason="不属实"
        )
        assert response.status_code == 200, response.text
        lead_ids.append(declined["id"])
        pending_lead = await new_lead(enforcement, o1, "enterprise", enterprise, received_on="2026-05-20")
        pending = await open_case(enforcement, own, pending_lead, on="2026-05-25")
        lead_ids.append(pending_lead["id"])
        case_ids.append(pending["id"])
        decided, _, decided_lead = await investigated(enforcement, registry, own)  # opened 2026-06-03
        lead_ids.append(decided_lead["id"])
        case_ids.append(decided["id"])
        ended = []
        for _ in range(2):
            lead = await new_lead(enforcement, o1, "enterprise", enterprise, received_on="2026-06-01")
            ended.append(await open_case(enforcement, own, lead, on="2026-06-03"))
            lead_ids.append(lead["id"])
            case_ids.append(ended[-1]["id"])
        spot = await enforcement.post(
            f"{API}/cases",
            json={
                "procedure": "simple",
                "title": "当场处罚",
                "party_name": "张三",
                "party_kind": "natural_person",
                "subject_type": "enterprise",
                "subject_id": enterprise,
                "facts": "f",
                "legal_basis": "b",
                "violation_code": "misused-marks",
                "penalties": [fine("200.00")],
                "decided_on": "2026-06-15",
                "officer_ids": [p.id for p in own.officers[:2]],
            },
            headers=auth(o1.token),
        )
        assert spot.status_code == 201, spot.text
        case_ids.append(spot.json()["id"])
        first = await enforcement_events(enforcement, own.province["path"])
        assert set(await deliver(statistics, first)) == {"applied"}
        await _compare(statistics, enforcement, own, token_for, lead_ids, case_ids)

        # Phase 2: the cases move — decided and paid in July and closed; terminated in August;
        # transferred to the police in September — across months, quarters and states.
        case = await ok(enforcement, o1, decided, "request_review", occurred_on="2026-06-21")
        case = await review_answer(enforcement, o1, case, answered_on="2026-06-24")
        case = await ok(enforcement, o1, case, "serve_prior_notice", occurred_on="2026-06-26")
        case = await ok(
            enforcement,
            head,
            case,
            "decide",
            occurred_on="2026-07-10",
            legal_basis="b",
            penalties=[fine("60000.00")],
        )
        case = await ok(
            enforcement, o1, case, "serve_decision", occurred_on="2026-07-11", service_method="in_person"
        )
        paid = await enforcement.post(
            f"{API}/cases/{case['id']}/payments",
            headers=auth(o1.token),
            json={"amount": "60000.00", "paid_on": "2026-07-20"},
        )
        assert paid.status_code == 201, paid.text
        case = await read_case(enforcement, o1, case)
        await ok(enforcement, head, case, "close_case", occurred_on="2026-10-09")
        await ok(
            enforcement, head, ended[0], "terminate", occurred_on="2026-08-05", reason="r", legal_basis="b"
        )
        response = await step(
            enforcement,
            head,
            ended[1],
            "transfer",
            occurred_on="2026-09-01",
            reason="涉嫌犯罪",
            transferred_to="某市公安局",
        )
        assert response.status_code == 200, response.text

        # Every event of the subtree, old ones again and new ones, shuffled and doubled.
        every = await enforcement_events(enforcement, own.province["path"])
        batch = every + every
        random.Random(8).shuffle(batch)
        outcomes = await deliver(statistics, batch)
        assert "applied" in outcomes and "duplicate" in outcomes
        await _compare(statistics, enforcement, own, token_for, lead_ids, case_ids)

        # The dimensions of one case: the decided fine under its penalty type and violation.
        token = token_for(own.city, roles=(Role.HEAD,))
        found = await figures(statistics, token, own.city["id"], period="2026-07", measure="fines_decided")
        assert found[("2026-07", "penalty_type", "fine", "fines_decided")] == "60000.00"
        assert found[("2026-07", "violation", "uncertified-ccc-product", "fines_decided")] == "60000.00"
        assert found[("2026-07", "subject_type", "enterprise", "fines_decided")] == "60000.00"

        # The rebuild from the facts gives the very figures the events gave.
        token = token_for(own.province, roles=(Role.HEAD,))
        before = await figures(statistics, token, own.province["id"])
        async with statistics.app.state.sessionmaker() as session:
            result = await rebuild_all(session)
            await session.commit()
        # The figures the events gave are the figures the facts give. (Other tests' rows may be
        # rewritten: some write facts or figures directly, without the other half.)
        assert set(result) == {"written", "zeroed"}
        assert (
            await figures(statistics, token_for(own.province, roles=(Role.HEAD,)), own.province["id"])
            == before
        )
        async with statistics.app.state.sessionmaker() as session:
            again = await rebuild_all(session)
            await session.commit()
        assert (again["written"], again["zeroed"]) == (0, 0)  # idempotent


class TestConcurrency:
    async def test_two_workers_on_cases_of_one_bureau_lose_no_update(self, statistics, spare, token_for):
        """Each applies a different case of the same county at the same time: both count."""
        bureau = spare.other_county
        ids = [new_case_id() for _ in range(6)]
        events = [case_event(bureau, i, 1, opened_on="2025-03-02") for i in ids]  # a year no other test uses
        outcomes = await asyncio.gather(*(deliver(statistics, [e]) for e in events))
        assert [o for (o,) in outcomes] == ["applied"] * 6
        token = token_for(spare.province, roles=(Role.HEAD,))
        found = await figures(statistics, token, bureau["id"], period="2025-03", dimension="all")
        assert found[("2025-03", "all", "", "cases_opened")] == "6"
        province = await figures(
            statistics, token, spare.province["id"], period="2025-Q1", measure="cases_opened"
        )
        assert province[("2025-Q1", "all", "", "cases_opened")] == "6"

    async def test_a_rebuild_while_events_arrive_loses_none(self, statistics, spare, token_for):
        bureau = spare.other_county
        ids = [new_case_id() for _ in range(4)]
        events = [case_event(bureau, i, 1, opened_on="2025-08-02") for i in ids]

        async def rebuild() -> None:
            async with statistics.app.state.sessionmaker() as session:
                await rebuild_all(session)
                await session.commit()

        await asyncio.gather(deliver(statistics, events[:2]), rebuild(), deliver(statistics, events[2:]))
        token = token_for(spare.province, roles=(Role.HEAD,))
        found = await figures(statistics, token, bureau["id"], period="2025-08", measure="cases_opened")
        assert found[("2025-08", "all", "", "cases_opened")] == "4"


class TestAFactMovesOnlyForward:
    async def test_an_older_version_applied_directly_changes_nothing(self, statistics, spare, token_for):
        bureau = spare.other_county
        case_id = new_case_id()
        closed = case_event(
            bureau, case_id, 5, opened_on="2026-01-05", closed_on="2026-01-20", state="terminated"
        )
        assert await deliver(statistics, [closed]) == ["applied"]
        older = CaseChanged.model_validate(case_event(bureau, case_id, 3, opened_on="2026-01-05")["payload"])
        async with statistics.app.state.sessionmaker() as session:
            changed = await facts.apply_case(
                session,
                older,
                version=3,
                event_id=uuid.uuid4(),
                bureau_id=bureau["id"],
                bureau_path=bureau["path"],
            )
            await session.commit()
        assert changed is False
        async with statistics.app.state.sessionmaker() as session:
            state = (
                await session.execute(
                    text("SELECT state, version FROM case_fact WHERE case_id = :id"), {"id": case_id}
                )
            ).one()
        assert tuple(state) == ("terminated", 5)


class TestTheApi:
    async def test_scope_and_input(self, statistics, spare, world, token_for):
        # Figures in the sibling county, so its city and province have rows too.
        await deliver(statistics, [case_event(spare.other_county, new_case_id(), 1, opened_on="2026-05-05")])
        await deliver(statistics, [case_event(spare.county, new_case_id(), 1, opened_on="2026-05-05")])
        province_head = token_for(spare.province, roles=(Role.HEAD,))
        for below in (spare.city, spare.county, spare.other_county):
            response = await statistics.get(
                AGGREGATES, params={"bureau_id": below["id"]}, headers=auth(province_head)
            )
            assert response.status_code == 200 and response.json()["items"], response.text
        county_head = token_for(spare.county, roles=(Role.HEAD,))
        # Default: the caller's own bureau.
        response = await statistics.get(AGGREGATES, headers=auth(county_head))
        assert response.status_code == 200, response.text
        assert all(item["bureau_id"] == spare.county["id"] for item in response.json()["items"])
        # Above the caller, a sibling, another province, a bureau that does not exist: the same 404.
        for other in (spare.city["id"], spare.other_county["id"], world.county["id"], 9_000_000_000):
            response = await statistics.get(
                AGGREGATES, params={"bureau_id": other}, headers=auth(county_head)
            )
            assert_problem(response, 404, "/problems/not-found")
        assert_problem(await statistics.get(AGGREGATES), 401, "/problems/unauthorized")
        for bad in (
            {"period": "2026-13"},
            {"period": "2026-Q5"},
            {"period_kind": "week"},
            {"measure": "cases_invented"},
            {"dimension": "colour"},
            {"from": "2026-01"},  # needs period_kind
            {"period_kind": "quarter", "from": "2026-01"},  # a month where a quarter is due
            {"limit": 501},
            {"cursor": "!!"},
            {"cursor": "WzFd"},  # a cursor of another list
            {"bureau_id": 0},
        ):
            response = await statistics.get(AGGREGATES, params=bad, headers=auth(county_head))
            assert_problem(response, 422, "/problems/validation-error")

    async def test_a_bureau_without_figures_answers_an_empty_list_in_scope_only(
        self, statistics, registry, spare, token_for
    ):
        from tests.factories import create_bureau

        fresh = await create_bureau(registry, token_for(), spare.city, "county", "130108")
        city_head = token_for(spare.city, roles=(Role.HEAD,))
        response = await statistics.get(
            AGGREGATES, params={"bureau_id": fresh["id"]}, headers=auth(city_head)
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next_cursor": None}
        sibling = token_for(spare.other_county, roles=(Role.HEAD,))
        response = await statistics.get(AGGREGATES, params={"bureau_id": fresh["id"]}, headers=auth(sibling))
        assert_problem(response, 404, "/problems/not-found")

    async def test_pages_and_ranges(self, statistics, spare, token_for):
        bureau = spare.other_county
        for month in ("2026-01-10", "2026-02-10", "2026-04-10"):
            await deliver(statistics, [case_event(bureau, new_case_id(), 1, opened_on=month)])
        token = token_for(spare.province, roles=(Role.HEAD,))
        ranged = await figures(
            statistics,
            token,
            bureau["id"],
            period_kind="month",
            **{"from": "2026-02", "to": "2026-04"},
            measure="cases_opened",
            dimension="all",
        )
        assert set(ranged) >= {("2026-02", "all", "", "cases_opened"), ("2026-04", "all", "", "cases_opened")}
        assert all("2026-02" <= k[0] <= "2026-04" and len(k[0]) == 7 for k in ranged)
        # Page by page (2 a page) reads what one page reads, in order, without repeats.
        seen, cursor = [], None
        while True:
            params = {"bureau_id": bureau["id"], "limit": 2, "measure": "cases_opened"}
            response = await statistics.get(
                AGGREGATES, params={**params, **({"cursor": cursor} if cursor else {})}, headers=auth(token)
            )
            assert response.status_code == 200
            page = response.json()
            assert len(page["items"]) <= 2
            seen += [(i["period"], i["dimension"], i["value"], i["measure"]) for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(seen) and len(seen) == len(set(seen))
        whole = await statistics.get(
            AGGREGATES,
            params={"bureau_id": bureau["id"], "limit": 500, "measure": "cases_opened"},
            headers=auth(token),
        )
        assert [
            (i["period"], i["dimension"], i["value"], i["measure"]) for i in whole.json()["items"]
        ] == seen
        item = whole.json()["items"][0]
        assert item["unit"] == "count" and item["amount"].isdigit()

    async def test_the_running_periods_refresh_is_idempotent(self, statistics):
        from services.statistics.aggregates.jobs import refresh_current_periods

        ctx = {"sessionmaker": statistics.app.state.sessionmaker}
        # The first refresh may write figures of facts other tests put in directly (without the
        # figures events would have given); once refreshed, a second refresh has nothing to write.
        first = await refresh_current_periods(ctx)
        assert set(first) == {"written", "zeroed"}
        assert await refresh_current_periods(ctx) == {"written": 0, "zeroed": 0}
        assert today().year == 2026  # the data sets here are of 2026
