"""Major-case filing (重大案件备案): a closed case that must be filed owes a filing with the
legal-affairs body of the level above within 15 days of closing; the filing is submitted by the
case's bureau, accepted or returned by the level above, and late or missing filings are alerted."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from services.common.auth import Role
from services.enforcement.models import OutboxEvent as EnforcementOutbox
from services.statistics.facts.models import CaseFact
from services.statistics.legal.service import filing_alerts
from services.statistics.models import OutboxEvent as StatisticsOutbox
from services.statistics.oversight.models import Alert
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import API, fine, ok, read_case, review_answer
from tests.events_flow import outbox_events
from tests.statistics.legal_flow import (
    STATS,
    case_changed_event,
    new_case_id,
    to_enforcement,
    to_statistics,
    under_review,
)

DOCUMENTS = [{"title": "行政处罚决定书", "reference": "测质罚〔2026〕1号", "issued_on": "2026-07-10"}]


async def filing_of(statistics, headers: dict, case_id: int) -> dict:
    page = await statistics.get(f"{STATS}/filings", params={"case_id": case_id}, headers=headers)
    assert page.status_code == 200, page.text
    (filing,) = page.json()["items"]
    return filing


async def expected(statistics, world, **payload) -> dict:
    """A filing expected of a county case closed on 2026-07-21 (due 2026-08-05)."""
    case_id = new_case_id()
    assert await to_statistics(statistics, case_changed_event(world.county, case_id, **payload)) == "applied"
    return await filing_of(statistics, world.headers(world.legal), case_id)


async def submit(statistics, headers: dict, filing: dict, **body):
    body = {"summary": "罚款六万元", "documents": DOCUMENTS, **body}
    return await statistics.post(
        f"{STATS}/filings/{filing['id']}/submission",
        json=body,
        headers={**headers, "If-Match": f'"{filing["version"]}"'},
    )


async def answer(statistics, headers: dict, filing: dict, **body):
    return await statistics.post(
        f"{STATS}/filings/{filing['id']}/answer",
        json=body,
        headers={**headers, "If-Match": f'"{filing["version"]}"'},
    )


class TestExpected:
    async def test_a_closed_case_owes_its_filing_and_the_answer_reaches_the_case(
        self, statistics, enforcement, registry, world
    ):
        o1 = world.officers[0]
        case, _ = await under_review(enforcement, registry, world)
        assert case["needs_filing"] is True  # a county's organisation fine of 50,000 or more
        case = await review_answer(enforcement, world.head, case, "agree", answered_on="2026-06-24")
        case = await ok(enforcement, o1, case, "serve_prior_notice", occurred_on="2026-06-26")
        case = await ok(
            enforcement,
            world.head,
            case,
            "decide",
            occurred_on="2026-07-10",
            legal_basis="《认证认可条例》第六十六条",
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
        case = await ok(
            enforcement,
            world.head,
            await read_case(enforcement, o1, case),
            "close_case",
            occurred_on="2026-07-21",
        )
        legal = world.headers(world.legal)
        changes = await outbox_events(
            enforcement,
            EnforcementOutbox,
            type="enforcement.case.changed",
            aggregate_id=str(case["id"]),
        )
        for event in changes:  # every change of the case, in order: only closing makes the filing
            assert await to_statistics(statistics, event) == "applied"
        filing = await filing_of(statistics, legal, case["id"])
        assert (filing["state"], filing["closed_on"], filing["due"]) == (
            "expected",
            "2026-07-21",
            "2026-08-05",
        )
        assert (filing["bureau_id"], filing["receiving_bureau_id"]) == (world.county["id"], world.city["id"])
        assert filing["late"] is True  # today is past 5 August and nothing was filed
        # Replayed under new ids, the closing makes nothing new.
        assert await to_statistics(statistics, {**changes[-1], "id": str(uuid.uuid4())}) == "applied"
        assert (await filing_of(statistics, legal, case["id"]))["id"] == filing["id"]

        submitted = await submit(statistics, world.headers(world.head), filing, filed_on="2026-08-01")
        assert submitted.status_code == 200, submitted.text
        filing = submitted.json()
        assert (filing["state"], filing["filed_on"], filing["on_time"], filing["late"]) == (
            "submitted",
            "2026-08-01",
            True,
            False,
        )
        assert submitted.headers["etag"] == f'"{filing["version"]}"'
        accepted = await answer(statistics, legal, filing, outcome="accepted", answered_on="2026-08-03")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["state"] == "accepted"
        (answered,) = await outbox_events(
            statistics,
            StatisticsOutbox,
            type="statistics.filing.answered",
            aggregate_id=str(filing["id"]),
        )
        assert answered["payload"] == {
            "filing_id": filing["id"],
            "case_id": case["id"],
            "outcome": "accepted",
            "reason": None,
        }
        assert await to_enforcement(enforcement, answered) == "applied"
        timeline = (
            await enforcement.get(f"{API}/cases/{case['id']}/timeline", headers=auth(o1.token))
        ).json()
        assert timeline[-1]["step"] == "filing_accepted"

    async def test_only_a_closed_case_that_must_be_filed(self, statistics, world):
        legal = world.headers(world.legal)
        for payload in (
            {"needs_filing": False},
            {"state": "served", "closed_on": None},
            {"state": "terminated", "needs_filing": True, "closed_on": "2026-07-21"},
        ):
            case_id = new_case_id()
            assert (
                await to_statistics(statistics, case_changed_event(world.county, case_id, **payload))
                == "applied"
            )
            page = await statistics.get(f"{STATS}/filings", params={"case_id": case_id}, headers=legal)
            assert page.json()["items"] == [], payload

    async def test_the_case_fact_keeps_the_filing_due_and_day(self, statistics, world):
        case_id = new_case_id()
        async with statistics.app.state.sessionmaker() as session:
            session.add(
                CaseFact(
                    case_id=case_id,
                    version=1,
                    event_id=uuid.uuid4(),
                    bureau_id=world.county["id"],
                    bureau_path=world.county["path"],
                    number="测试",
                    procedure="ordinary",
                    state="served",
                    subject_type="enterprise",
                    subject_id=1,
                    party_kind="organisation",
                    opened_on=date(2026, 6, 3),
                    fine_decided=Decimal("60000"),
                )
            )
            await session.commit()
        assert await to_statistics(statistics, case_changed_event(world.county, case_id)) == "applied"
        filing = await filing_of(statistics, world.headers(world.legal), case_id)
        assert (
            await submit(statistics, world.headers(world.head), filing, filed_on="2026-08-07")
        ).status_code == 200
        async with statistics.app.state.sessionmaker() as session:
            fact = await session.get(CaseFact, case_id)
            assert (str(fact.filing_due), str(fact.filed_on)) == ("2026-08-05", "2026-08-07")


class TestSubmissionAndAnswer:
    async def test_late_submission_returned_and_filed_again(self, statistics, world, token_for):
        legal, head = world.headers(world.legal), world.headers(world.head)
        filing = await expected(statistics, world)
        response = await submit(statistics, head, filing, filed_on="2026-08-10")
        filing = response.json()
        assert (filing["on_time"], filing["late"], filing["submissions"]) == (False, True, 1)
        late = await statistics.get(
            f"{STATS}/filings", params={"late": "true", "case_id": filing["case_id"]}, headers=legal
        )
        assert [f["id"] for f in late.json()["items"]] == [filing["id"]]
        on_time = await statistics.get(
            f"{STATS}/filings", params={"late": "false", "case_id": filing["case_id"]}, headers=legal
        )
        assert on_time.json()["items"] == []

        no_reason = await answer(statistics, legal, filing, outcome="returned")
        problem = assert_problem(no_reason, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.reason"
        returned = await answer(statistics, legal, filing, outcome="returned", reason="缺少听证笔录")
        assert returned.status_code == 200, returned.text
        filing = returned.json()
        assert (filing["state"], filing["answer_reason"]) == ("returned", "缺少听证笔录")
        assert_problem(
            await answer(statistics, legal, filing, outcome="accepted"), 409, "/problems/filing-state"
        )
        again = await submit(statistics, head, filing, filed_on="2026-08-12", summary="补正后重新报备")
        assert again.status_code == 200, again.text
        filing = again.json()
        assert (filing["state"], filing["submissions"], filing["filed_on"]) == ("submitted", 2, "2026-08-12")
        assert_problem(await submit(statistics, head, filing), 409, "/problems/filing-state")
        # The province's legal-affairs body is above the receiving city: it may answer too.
        province_legal = auth(token_for(world.province, roles=(Role.LEGAL,)))
        accepted = await answer(statistics, province_legal, filing, outcome="accepted")
        assert accepted.status_code == 200, accepted.text

    async def test_wrong_bureaus_and_roles(self, statistics, world, token_for):
        filing = await expected(statistics, world)
        legal = world.headers(world.legal)
        # The city receives; it does not file.
        assert_problem(await submit(statistics, legal, filing), 403, "/problems/not-filing-bureau")
        filed = (await submit(statistics, world.headers(world.head), filing)).json()
        # The county's own legal-affairs officer never answers its own bureau's filing.
        county_legal = world.headers(world.dual)
        assert_problem(
            await answer(statistics, county_legal, filed, outcome="accepted"),
            403,
            "/problems/not-receiving-bureau",
        )
        # An enforcement officer of the city is in scope but not of the legal-affairs body.
        city_officer = auth(token_for(world.city, roles=(Role.ENFORCEMENT,)))
        assert_problem(
            await answer(statistics, city_officer, filed, outcome="accepted"), 403, "/problems/role-required"
        )
        others = (
            auth(token_for(world.other_county, roles=(Role.LEGAL, Role.HEAD))),
            auth(token_for({"id": 10**9, "path": f"1.{10**9}."}, roles=(Role.LEGAL, Role.HEAD))),
        )
        for headers in others:
            assert_problem(
                await statistics.get(f"{STATS}/filings/{filed['id']}", headers=headers),
                404,
                "/problems/not-found",
            )
            assert_problem(
                await answer(statistics, headers, filed, outcome="accepted"), 404, "/problems/not-found"
            )
            assert_problem(await submit(statistics, headers, filed), 404, "/problems/not-found")
        assert (await statistics.get(f"{STATS}/filings/{filed['id']}")).status_code == 401
        stale = await statistics.post(
            f"{STATS}/filings/{filed['id']}/answer",
            json={"outcome": "accepted"},
            headers={**legal, "If-Match": f'"{filing["version"]}"'},
        )
        assert_problem(stale, 412, "/problems/precondition-failed")
        bare = await statistics.post(
            f"{STATS}/filings/{filed['id']}/answer", json={"outcome": "accepted"}, headers=legal
        )
        assert_problem(bare, 428, "/problems/precondition-required")
        still = (await statistics.get(f"{STATS}/filings/{filed['id']}", headers=legal)).json()
        assert (still["state"], still["version"]) == ("submitted", filed["version"])

    async def test_bad_submissions(self, statistics, world):
        filing = await expected(statistics, world)
        head = world.headers(world.head)
        for body, loc in (
            ({"documents": []}, "body.documents"),
            ({"summary": " "}, "body.summary"),
            ({"filed_on": "2026-07-20"}, "body.filed_on"),  # before the case closed
            ({"filed_on": "2999-01-01"}, "body.filed_on"),
            ({"documents": [{"reference": "x"}]}, "body.documents.0.title"),
            ({"extra": 1}, "body.extra"),
        ):
            problem = assert_problem(
                await submit(statistics, head, filing, **body), 422, "/problems/validation-error"
            )
            assert problem["errors"][0]["loc"] == loc, (body, problem)
        unchanged = (await statistics.get(f"{STATS}/filings/{filing['id']}", headers=head)).json()
        assert (unchanged["state"], unchanged["version"]) == ("expected", filing["version"])


class TestAlerts:
    async def test_near_missing_and_late_each_raised_once(self, statistics, world):
        filing = await expected(statistics, world)  # due 2026-08-05
        sessionmaker = statistics.app.state.sessionmaker

        async def run(as_of: date) -> int:
            async with sessionmaker() as session:
                raised = await filing_alerts(session, as_of)
                await session.commit()
            return raised

        async def alerts() -> dict[str, str]:
            async with sessionmaker() as session:
                rows = await (await session.connection()).execute(
                    Alert.__table__.select().where(
                        Alert.__table__.c.subject_type == "filing",
                        Alert.__table__.c.subject_id == filing["id"],
                    )
                )
                return {r.key: r.severity for r in rows}

        await run(date(2026, 7, 30))
        assert await alerts() == {}
        assert await run(date(2026, 8, 3)) >= 1
        assert await run(date(2026, 8, 3)) == 0
        near = f"filing_deadline:filing:{filing['id']}:near:2026-08-05"
        missing = f"filing_deadline:filing:{filing['id']}:missing:2026-08-05"
        late = f"filing_late:filing:{filing['id']}:late:2026-08-05"
        assert await alerts() == {near: "near"}
        await run(date(2026, 8, 6))
        await run(date(2026, 8, 6))
        assert await alerts() == {near: "near", missing: "missing"}
        filed = await submit(statistics, world.headers(world.head), filing, filed_on="2026-08-09")
        assert filed.json()["on_time"] is False
        assert await run(date(2026, 8, 10)) >= 1
        assert await run(date(2026, 8, 10)) == 0
        assert await alerts() == {near: "near", missing: "missing", late: "past"}

    async def test_a_filing_on_time_raises_nothing_past(self, statistics, world):
        filing = await expected(statistics, world)
        await submit(statistics, world.headers(world.head), filing, filed_on="2026-08-01")
        async with statistics.app.state.sessionmaker() as session:
            await filing_alerts(session, date(2026, 8, 20))
            await session.commit()
            rows = await (await session.connection()).execute(
                Alert.__table__.select().where(
                    Alert.__table__.c.subject_type == "filing", Alert.__table__.c.subject_id == filing["id"]
                )
            )
            assert rows.all() == []
