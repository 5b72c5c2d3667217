"""The legal-affairs review queue (法制审核 / 案件审核): fed by enforcement's review requests,
answered by a reviewer who is never an officer of the case, the answer taking the case's review
step in enforcement through ``statistics.review.answered``."""

from __future__ import annotations

import uuid
from datetime import date

from services.common.auth import Role
from services.enforcement.models import OutboxEvent as EnforcementOutbox
from services.statistics.legal.service import review_alerts
from services.statistics.oversight.models import Alert
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import fine, ok, read_case, review_answer, step, subjects
from tests.events_flow import outbox_events
from tests.statistics.legal_flow import (
    STATS,
    opinion,
    queued,
    review_answers,
    review_requests,
    to_enforcement,
    to_statistics,
    under_review,
)


def major(chain: dict) -> list[dict]:
    """A fine of 150,000 and a revocation: a legal review (法制审核) of a major case."""
    return [fine("150000.00"), {"kind": "revoke_certificate", "certificate_id": chain["certificate"]["id"]}]


class TestQueue:
    async def test_request_queued_once_and_answered_agree_opens_the_gate(
        self, statistics, enforcement, registry, world
    ):
        case, _ = await under_review(enforcement, registry, world)
        (requested,) = await review_requests(enforcement, case)
        assert requested["version"] == 2 and requested["payload"]["review_kind"] == "case"
        assert await to_statistics(statistics, requested) == "applied"
        assert await to_statistics(statistics, requested) == "duplicate"
        # The same request under another event id (a replay by hand) makes nothing new either.
        assert await to_statistics(statistics, {**requested, "id": str(uuid.uuid4())}) == "applied"
        legal = world.headers(world.legal)  # the city's legal-affairs body: its county's case
        page = (
            await statistics.get(f"{STATS}/reviews", params={"case_id": case["id"]}, headers=legal)
        ).json()
        (review,) = page["items"]
        assert (review["state"], review["round"], review["review_kind"]) == ("pending", 1, "case")
        assert (review["requested_on"], review["due"]) == ("2026-06-21", "2026-07-03")  # 10 working days
        assert (review["bureau_id"], review["number"]) == (world.county["id"], case["number"])
        assert set(review["officer_ids"]) == {p.id for p in world.officers[:2]}

        read = await statistics.get(f"{STATS}/reviews/{review['id']}", headers=legal)
        assert read.status_code == 200 and read.headers["etag"] == f'"{review["version"]}"'

        answered = await opinion(
            statistics, legal, review, opinion="agree", reason="事实清楚，证据确凿", answered_on="2026-06-24"
        )
        assert answered.status_code == 200, answered.text
        body = answered.json()
        assert (body["state"], body["opinion"], body["answered_on"]) == ("answered", "agree", "2026-06-24")
        assert body["reviewer_officer_id"] == world.legal.id
        assert (body["reviewer_name"], body["reviewer_post_id"]) == (
            world.legal.officer["name"],
            world.legal.officer["post_id"],
        )
        assert answered.headers["etag"] == f'"{body["version"]}"'

        (answer,) = await review_answers(statistics, review)
        assert answer["version"] == 2
        assert answer["payload"]["outcome"] == "approved" and answer["payload"]["opinion"] == "agree"
        assert (answer["bureau_id"], answer["bureau_path"]) == (world.county["id"], world.county["path"])
        assert await to_enforcement(enforcement, answer) == "applied"
        after = await read_case(enforcement, world.head, case)
        assert (after["state"], after["review_state"]) == ("reviewed", "agreed")
        timeline = (
            await enforcement.get(
                f"/api/v1/enforcement/cases/{case['id']}/timeline", headers=auth(world.head.token)
            )
        ).json()
        last = timeline[-1]
        assert (last["step"], last["occurred_on"]) == ("review_agree", "2026-06-24")
        # Taken by the legal-affairs service, recorded as the reviewer under the reviewer's post.
        assert (last["officer_id"], last["post_id"]) == (world.legal.id, world.legal.officer["post_id"])
        # The gate is open: the case goes on.
        await ok(enforcement, world.officers[0], after, "serve_prior_notice", occurred_on="2026-06-26")

    async def test_investigate_further_returns_the_case_and_a_new_request_opens_round_two(
        self, statistics, enforcement, registry, world
    ):
        case, _ = await under_review(enforcement, registry, world)
        legal = world.headers(world.legal)
        review = await queued(statistics, enforcement, case, legal)
        response = await opinion(
            statistics, legal, review, opinion="investigate_further", reason="证据不足，补充调查"
        )
        assert response.status_code == 200, response.text
        (answer,) = await review_answers(statistics, review)
        assert answer["payload"]["outcome"] == "returned"
        assert await to_enforcement(enforcement, answer) == "applied"
        case = await read_case(enforcement, world.head, case)
        assert (case["state"], case["review_state"]) == ("investigating", "returned")

        case = await ok(
            enforcement,
            world.officers[0],
            case,
            "close_investigation",
            facts="补充调查后的事实",
            legal_basis="《认证认可条例》第六十六条",
            violation_code="uncertified-ccc-product",
            penalties=[fine("60000.00")],
        )
        case = await ok(enforcement, world.officers[0], case, "request_review")
        second = await queued(statistics, enforcement, case, legal)
        assert second["round"] == 2 and second["id"] != review["id"]
        answered = (
            await statistics.get(
                f"{STATS}/reviews", params={"case_id": case["id"], "state": "answered"}, headers=legal
            )
        ).json()["items"]
        assert [r["id"] for r in answered] == [review["id"]]

    async def test_correct_sets_the_corrected_sanctions(self, statistics, enforcement, registry, world):
        case, chain = await under_review(enforcement, registry, world)
        legal = world.headers(world.legal)
        review = await queued(statistics, enforcement, case, legal)
        corrected = major(chain)
        response = await opinion(
            statistics,
            legal,
            review,
            opinion="correct",
            reason="情节严重，应撤销证书",
            answered_on="2026-06-23",
            penalties=corrected,
        )
        assert response.status_code == 200, response.text
        assert response.json()["correction"] == {
            "penalties": [
                {"kind": "fine", "amount": "150000.00"},
                {"kind": "revoke_certificate", "certificate_id": chain["certificate"]["id"]},
            ]
        }
        (answer,) = await review_answers(statistics, review)
        assert await to_enforcement(enforcement, answer) == "applied"
        after = await read_case(enforcement, world.head, case)
        assert (after["state"], after["review_state"]) == ("reviewed", "corrected")
        proposed = sorted(
            (p["kind"], p["amount_initial"]) for p in after["penalties"] if p["stage"] == "proposed"
        )
        assert proposed == [("fine", "150000.00"), ("revoke_certificate", None)]
        assert after["needs_legal_review"] is True  # the corrected sanctions make it major

    async def test_a_correction_the_case_cannot_take_is_refused_before_it_is_sent(
        self, statistics, enforcement, registry, world
    ):
        case, _ = await under_review(enforcement, registry, world)
        other_certificate = (await subjects(registry, world))["certificate"]  # not the case's
        legal = world.headers(world.legal)
        review = await queued(statistics, enforcement, case, legal)
        low = await opinion(
            statistics, legal, review, opinion="correct", reason="r", penalties=[fine("500.00")]
        )
        problem = assert_problem(low, 409, "/problems/fine-outside-range")
        assert (problem["fine_min"], problem["fine_max"]) == ("50000.00", "200000.00")
        stranger = await opinion(
            statistics,
            legal,
            review,
            opinion="correct",
            reason="r",
            penalties=[{"kind": "suspend_certificate", "certificate_id": other_certificate["id"]}],
        )
        problem = assert_problem(stranger, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.penalties.0.certificate_id"
        unknown = await opinion(
            statistics,
            legal,
            review,
            opinion="correct",
            reason="r",
            penalties=[fine("60000.00")],
            violation_code="no-such-violation",
        )
        problem = assert_problem(unknown, 422, "/problems/unknown-violation")
        assert problem["errors"][0]["loc"] == "body.violation_code"
        still = (await statistics.get(f"{STATS}/reviews/{review['id']}", headers=legal)).json()
        assert (still["state"], still["version"]) == ("pending", review["version"])
        assert await review_answers(statistics, review) == []

    async def test_enforcement_still_refuses_a_correction_it_cannot_take(self, enforcement, registry, world):
        """Its own guard: an answer it cannot take is rejected, the case left under review."""
        case, _ = await under_review(enforcement, registry, world)
        after = await review_answer(
            enforcement,
            world.head,
            case,
            "correct",
            expect="rejected",
            reason="r",
            penalties=[fine("500.00")],
        )
        assert (after["state"], after["version"]) == ("under_review", case["version"])

    async def test_legal_review_of_a_major_case(self, statistics, enforcement, registry, world):
        case, _ = await under_review(enforcement, registry, world, penalties=major)
        (requested,) = await review_requests(enforcement, case)
        assert requested["payload"]["review_kind"] == "legal"
        review = await queued(statistics, enforcement, case, world.headers(world.legal))
        assert review["review_kind"] == "legal"
        overdue = await statistics.get(
            f"{STATS}/reviews",
            params={"case_id": case["id"], "overdue": "true"},
            headers=world.headers(world.legal),
        )
        assert [r["id"] for r in overdue.json()["items"]] == [review["id"]]  # due 3 July, today later
        assert review["overdue"] is True


class TestList:
    async def test_keyset_pages_filters_and_bad_cursor(self, statistics, enforcement, registry, world):
        legal = world.headers(world.legal)
        mine = []
        for _ in range(2):
            case, _ = await under_review(enforcement, registry, world)
            mine.append((await queued(statistics, enforcement, case, legal))["id"])
        seen, cursor = [], None
        while True:
            params = {"bureau_id": world.county["id"], "state": "pending", "limit": 1}
            page = await statistics.get(
                f"{STATS}/reviews", params={**params, **({"cursor": cursor} if cursor else {})}, headers=legal
            )
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["items"]) <= 1
            seen += [r["id"] for r in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) and set(mine) <= set(seen)
        assert seen == sorted(seen)
        other = await statistics.get(
            f"{STATS}/reviews", params={"bureau_id": world.other_county["id"]}, headers=legal
        )
        assert not set(mine) & {r["id"] for r in other.json()["items"]}
        bad = await statistics.get(f"{STATS}/reviews", params={"cursor": "AAAA"}, headers=legal)
        assert_problem(bad, 422, "/problems/validation-error")
        too_many = await statistics.get(f"{STATS}/reviews", params={"limit": 501}, headers=legal)
        assert_problem(too_many, 422, "/problems/validation-error")
        wrong_state = await statistics.get(f"{STATS}/reviews", params={"state": "open"}, headers=legal)
        assert_problem(wrong_state, 422, "/problems/validation-error")


class TestOrder:
    async def test_a_later_case_change_arriving_first_leaves_the_request_whole(
        self, statistics, enforcement, registry, world
    ):
        case, _ = await under_review(enforcement, registry, world)
        case = await ok(
            enforcement, world.head, case, "extend_decision_deadline", reason="案情复杂", extension_days=30
        )
        changes = await outbox_events(
            enforcement, EnforcementOutbox, type="enforcement.case.changed", aggregate_id=str(case["id"])
        )
        assert await to_statistics(statistics, changes[-1]) == "applied"  # version after the request's
        review = await queued(statistics, enforcement, case, world.headers(world.legal))
        assert review["state"] == "pending"

    async def test_a_case_terminated_under_review_withdraws_it(
        self, statistics, enforcement, registry, world
    ):
        case, _ = await under_review(enforcement, registry, world)
        legal = world.headers(world.legal)
        review = await queued(statistics, enforcement, case, legal)
        case = await ok(enforcement, world.head, case, "terminate", reason="当事人注销", legal_basis="b")
        changes = await outbox_events(
            enforcement, EnforcementOutbox, type="enforcement.case.changed", aggregate_id=str(case["id"])
        )
        for event in changes:  # the older ones first: none of them withdraws the review
            assert await to_statistics(statistics, event) == "applied"
        after = (await statistics.get(f"{STATS}/reviews/{review['id']}", headers=legal)).json()
        assert (after["state"], after["version"]) == ("withdrawn", review["version"] + 1)
        assert "terminated" in after["reason"]
        refused = await opinion(statistics, legal, after, opinion="agree", reason="同意")
        assert_problem(refused, 409, "/problems/review-withdrawn")
        assert await review_answers(statistics, review) == []


class TestRefusals:
    async def test_an_officer_of_the_case_never_reviews_it(self, statistics, enforcement, registry, world):
        case, _ = await under_review(enforcement, registry, world, officers=[world.officers[0], world.dual])
        dual = world.headers(world.dual)  # the county's officer whose post also reviews
        review = await queued(statistics, enforcement, case, dual)
        response = await opinion(statistics, dual, review, opinion="agree", reason="同意")
        assert_problem(response, 403, "/problems/reviewer-is-case-officer")
        assert await review_answers(statistics, review) == []
        still = (await statistics.get(f"{STATS}/reviews/{review['id']}", headers=dual)).json()
        assert (still["state"], still["version"]) == ("pending", review["version"])

    async def test_out_of_scope_is_the_same_404_as_missing(
        self, statistics, enforcement, registry, world, token_for
    ):
        case, _ = await under_review(enforcement, registry, world)
        review = await queued(statistics, enforcement, case, world.headers(world.legal))
        other_county = auth(token_for(world.other_county, roles=(Role.LEGAL,), officer_id=world.legal.id))
        other_province = auth(
            token_for({"id": 10**9, "path": f"1.{10**9}."}, roles=(Role.LEGAL,), officer_id=world.legal.id)
        )
        for headers in (other_county, other_province):
            hidden = await statistics.get(f"{STATS}/reviews/{review['id']}", headers=headers)
            assert_problem(hidden, 404, "/problems/not-found")
            answer = await opinion(statistics, headers, review, opinion="agree", reason="同意")
            assert_problem(answer, 404, "/problems/not-found")
            page = await statistics.get(f"{STATS}/reviews", params={"case_id": case["id"]}, headers=headers)
            assert page.json()["items"] == []
        missing = await statistics.get(f"{STATS}/reviews/{10**12}", headers=world.headers(world.legal))
        assert_problem(missing, 404, "/problems/not-found")
        assert (await statistics.get(f"{STATS}/reviews")).status_code == 401
        assert (await statistics.get(f"{STATS}/reviews/{review['id']}")).status_code == 401

    async def test_roles_if_match_and_a_second_answer(self, statistics, enforcement, registry, world):
        case, _ = await under_review(enforcement, registry, world)
        legal = world.headers(world.legal)
        review = await queued(statistics, enforcement, case, legal)
        # The head of the county is in scope but not of the legal-affairs body.
        assert_problem(
            await opinion(statistics, world.headers(world.head), review, opinion="agree", reason="r"),
            403,
            "/problems/role-required",
        )
        stale = await statistics.post(
            f"{STATS}/reviews/{review['id']}/opinion",
            json={"opinion": "agree", "reason": "r"},
            headers={**legal, "If-Match": f'"{review["version"] + 7}"'},
        )
        assert_problem(stale, 412, "/problems/precondition-failed")
        bare = await statistics.post(
            f"{STATS}/reviews/{review['id']}/opinion", json={"opinion": "agree", "reason": "r"}, headers=legal
        )
        assert_problem(bare, 428, "/problems/precondition-required")
        first = await opinion(statistics, legal, review, opinion="agree", reason="同意")
        assert first.status_code == 200, first.text
        again = await opinion(
            statistics, legal, first.json(), opinion="investigate_further", reason="改变意见"
        )
        assert_problem(again, 409, "/problems/review-already-answered")
        assert len(await review_answers(statistics, review)) == 1

    async def test_a_reviewer_whose_post_lists_no_review_step(
        self, statistics, enforcement, registry, world, token_for
    ):
        case, _ = await under_review(enforcement, registry, world)
        review = await queued(statistics, enforcement, case, world.headers(world.legal))
        # The county head's officer, given the legal role: its post's duties name no review step.
        headers = auth(token_for(world.county, roles=(Role.LEGAL,), officer_id=world.head.id))
        response = await opinion(statistics, headers, review, opinion="agree", reason="同意")
        problem = assert_problem(response, 403, "/problems/post-not-authorized")
        assert problem["step"] == "review_agree"
        no_officer = auth(token_for(world.county, roles=(Role.LEGAL,)))
        assert_problem(
            await opinion(statistics, no_officer, review, opinion="agree", reason="同意"),
            403,
            "/problems/officer-required",
        )
        assert await review_answers(statistics, review) == []

    async def test_a_replayed_answer_answers_once(self, statistics, enforcement, registry, world):
        case, _ = await under_review(enforcement, registry, world)
        legal = world.headers(world.legal)
        review = await queued(statistics, enforcement, case, legal)
        headers = {
            **legal,
            "If-Match": f'"{review["version"]}"',
            "Idempotency-Key": f"opinion-{review['id']}",
        }
        body = {"opinion": "agree", "reason": "同意"}
        url = f"{STATS}/reviews/{review['id']}/opinion"
        first = await statistics.post(url, json=body, headers=headers)
        again = await statistics.post(url, json=body, headers=headers)
        assert (first.status_code, again.status_code) == (200, 200), again.text
        assert first.json() == again.json()
        assert len(await review_answers(statistics, review)) == 1

    async def test_bad_opinions(self, statistics, enforcement, registry, world):
        case, chain = await under_review(enforcement, registry, world)
        legal = world.headers(world.legal)
        review = await queued(statistics, enforcement, case, legal)
        cases = [
            ({"opinion": "correct", "reason": "r"}, "body.penalties"),
            ({"opinion": "agree", "reason": "r", "penalties": [fine("60000.00")]}, "body.penalties"),
            ({"opinion": "agree"}, "body.reason"),
            ({"opinion": "agree", "reason": "   "}, "body.reason"),
            ({"opinion": "approve", "reason": "r"}, "body.opinion"),
            ({"opinion": "agree", "reason": "r", "answered_on": "2026-06-20"}, "body.answered_on"),
            ({"opinion": "agree", "reason": "r", "answered_on": "2999-01-01"}, "body.answered_on"),
            ({"opinion": "agree", "reason": "r", "reviewer": 1}, "body.reviewer"),
            ({"opinion": "correct", "reason": "r", "penalties": [{"kind": "fine"}]}, "body.penalties.0"),
            (
                {"opinion": "correct", "reason": "r", "penalties": [{"kind": "revoke_certificate"}]},
                "body.penalties.0",
            ),
            (
                {"opinion": "correct", "reason": "r", "penalties": [{"kind": "warning", "amount": "1.00"}]},
                "body.penalties.0",
            ),
        ]
        for body, loc in cases:
            response = await opinion(statistics, legal, review, **body)
            problem = assert_problem(response, 422, "/problems/validation-error")
            assert problem["errors"][0]["loc"].startswith(loc), (body, problem)
        unchanged = (await statistics.get(f"{STATS}/reviews/{review['id']}", headers=legal)).json()
        assert (unchanged["state"], unchanged["version"]) == ("pending", review["version"])
        assert await review_answers(statistics, review) == []
        assert chain


class TestNoStandIn:
    async def test_a_person_is_sent_to_the_queue(self, enforcement, registry, world):
        case, _ = await under_review(enforcement, registry, world)
        response = await step(enforcement, world.legal, case, "review_agree", reason="同意")
        problem = assert_problem(response, 409, "/problems/review-in-legal-affairs")
        assert problem["reviews"] == "/api/v1/statistics/reviews"


class TestAlerts:
    async def test_near_and_past_raised_once_per_review(self, statistics, enforcement, registry, world):
        case, _ = await under_review(enforcement, registry, world)
        review = await queued(statistics, enforcement, case, world.headers(world.legal))
        sessionmaker = statistics.app.state.sessionmaker

        async def run(as_of: date) -> int:
            async with sessionmaker() as session:
                raised = await review_alerts(session, as_of)
                await session.commit()
            return raised

        async def keys() -> list[str]:
            async with sessionmaker() as session:
                rows = await (await session.connection()).execute(
                    Alert.__table__.select().where(Alert.__table__.c.subject_id == review["id"])
                )
                return sorted(r.key for r in rows if r.subject_type == "review")

        await run(date(2026, 6, 25))
        assert await keys() == []  # due 3 July: not near yet
        assert await run(date(2026, 7, 1)) >= 1
        assert await run(date(2026, 7, 1)) == 0  # the same tick again raises nothing
        near = f"review_deadline:review:{review['id']}:near:2026-07-03"
        past = f"review_deadline:review:{review['id']}:past:2026-07-03"
        assert await keys() == [near]
        await run(date(2026, 7, 6))
        await run(date(2026, 7, 6))
        assert await keys() == [near, past]
        async with sessionmaker() as session:
            (past,) = (
                await (await session.connection()).execute(
                    Alert.__table__.select().where(Alert.__table__.c.key == past)
                )
            ).all()
        assert (past.severity, past.bureau_id, str(past.due)) == ("past", world.county["id"], "2026-07-03")
