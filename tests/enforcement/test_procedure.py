"""The administrative penalty procedure from lead to closing, and the rules each step holds."""

from __future__ import annotations

import pytest

from services.enforcement.models import OutboxEvent
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import (
    API,
    HEARING,
    fine,
    new_lead,
    ok,
    open_case,
    put_hearing,
    read_case,
    review_answer,
    step,
    subjects,
)
from tests.factories import rows_where

VIOLATION = "uncertified-ccc-product"  # art. 66: fine 50,000–200,000 yuan


async def investigated(
    enforcement, registry, world, *, amount="60000.00", penalties=None, party_kind="organisation"
):
    chain = await subjects(registry, world)
    lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
    case = await open_case(
        enforcement, world, lead, certificate_ids=[chain["certificate"]["id"]], party_kind=party_kind
    )
    case = await ok(enforcement, world.officers[0], case, "start_investigation", occurred_on="2026-06-05")
    case = await ok(
        enforcement,
        world.officers[0],
        case,
        "close_investigation",
        occurred_on="2026-06-20",
        facts="当事人生产销售未获强制性产品认证的电器",
        legal_basis="《认证认可条例》第六十六条",
        violation_code=VIOLATION,
        penalties=penalties or [fine(amount)],
    )
    return case, chain, lead


class TestOrdinaryCase:
    async def test_from_lead_to_publication(self, enforcement, registry, world):
        o1 = world.officers[0]
        case, _, _ = await investigated(enforcement, registry, world)
        assert case["state"] == "investigation_closed"
        assert case["needs_legal_review"] is False
        assert case["needs_filing"] is True  # a county bureau's organisation fine of 50,000 or more
        case = await ok(enforcement, o1, case, "request_review", occurred_on="2026-06-21")
        assert case["review_state"] == "requested"
        case = await review_answer(
            enforcement, world.head, case, "agree", answered_on="2026-06-24", reason="事实清楚"
        )
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
        assert (case["state"], case["fine_decided"], case["decision_kind"]) == (
            "decided",
            "60000.00",
            "penalty",
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
        assert (case["state"], case["paid_total"]) == ("executing", "60000.00")
        case = await ok(enforcement, world.head, case, "close_case", occurred_on="2026-07-21")
        case = await ok(enforcement, o1, case, "publish", occurred_on="2026-07-22")
        assert case["state"] == "published"

        timeline = (
            await enforcement.get(f"{API}/cases/{case['id']}/timeline", headers=auth(o1.token))
        ).json()
        steps = [e["step"] for e in timeline]
        assert steps == [
            "register_lead",
            "open_case",
            "start_investigation",
            "close_investigation",
            "request_review",
            "review_agree",
            "serve_prior_notice",
            "decide",
            "serve_decision",
            "record_payment",
            "close_case",
            "publish",
        ]
        decide = timeline[steps.index("decide")]
        assert (decide["officer_id"], decide["post_id"]) == (world.head.id, world.head.officer["post_id"])
        assert (decide["from_state"], decide["to_state"]) == ("notified", "decided")
        assert decide["legal_basis"] == "《认证认可条例》第六十六条"
        assert [e["id"] for e in timeline] == sorted(e["id"] for e in timeline)
        assert (
            await rows_where(
                enforcement, OutboxEvent, type="enforcement.case.changed", aggregate_id=str(case["id"])
            )
            == 11  # one per change of the case, its opening included
        )

    async def test_case_number_per_bureau_and_year(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        assert case["number"].startswith("执法罚字〔2026〕") and case["number"].endswith("号")

    async def test_every_step_named_who_and_under_which_post(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        timeline = (
            await enforcement.get(f"{API}/cases/{case['id']}/timeline", headers=auth(world.head.token))
        ).json()
        officer_steps = [e for e in timeline if e["step"] != "register_lead"]
        assert all(e["officer_id"] and e["post_id"] and e["post_name"] for e in officer_steps)


class TestRefusals:
    async def test_illegal_step_names_the_allowed_ones_and_changes_nothing(
        self, enforcement, registry, world
    ):
        case, _, _ = await investigated(enforcement, registry, world)
        response = await step(
            enforcement, world.head, case, "decide", legal_basis="x", penalties=[fine("60000.00")]
        )
        problem = assert_problem(response, 409, "/problems/invalid-transition")
        assert problem["state"] == "investigation_closed"
        assert {"step": "decide_no_penalty", "target": "decided"} in problem["allowed"]
        assert (await read_case(enforcement, world.head, case))["version"] == case["version"]

    async def test_wrong_role(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        response = await step(enforcement, world.officers[0], case, "terminate", reason="r", legal_basis="b")
        assert_problem(response, 403, "/problems/role-required")

    async def test_post_without_the_step(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        response = await step(enforcement, world.no_post, case, "request_review")
        problem = assert_problem(response, 403, "/problems/post-not-authorized")
        assert problem["step"] == "request_review"

    async def test_officer_not_of_the_case(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        response = await step(enforcement, world.officers[2], case, "request_review")
        assert_problem(response, 403, "/problems/not-case-officer")

    async def test_out_of_scope_is_not_found(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        response = await step(enforcement, world.stranger, case, "request_review")
        assert_problem(response, 404, "/problems/not-found")
        read = await enforcement.get(f"{API}/cases/{case['id']}", headers=auth(world.stranger.token))
        assert_problem(read, 404, "/problems/not-found")
        missing = await enforcement.get(f"{API}/cases/999999999", headers=auth(world.stranger.token))
        assert read.json()["detail"].replace(str(case["id"]), "N") == missing.json()["detail"].replace(
            "999999999", "N"
        )

    async def test_stale_and_missing_if_match(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        stale = await step(
            enforcement, world.officers[0], {**case, "version": case["version"] - 1}, "request_review"
        )
        assert_problem(stale, 412, "/problems/precondition-failed")
        bare = await enforcement.post(
            f"{API}/cases/{case['id']}/transitions",
            json={"step": "request_review"},
            headers=auth(world.officers[0].token),
        )
        assert_problem(bare, 428, "/problems/precondition-required")

    async def test_one_officer_cannot_investigate(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
        case = await open_case(enforcement, world, lead, officers=[world.officers[0]])
        response = await step(
            enforcement, world.officers[0], case, "start_investigation", occurred_on="2026-06-05"
        )
        assert_problem(response, 409, "/problems/too-few-officers")
        assert (await read_case(enforcement, world.head, case))["state"] == "opened"

    async def test_officer_without_credential_cannot_be_assigned(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
        response = await enforcement.post(
            f"{API}/leads/{lead['id']}/transitions",
            json={
                "step": "open_case",
                "occurred_on": "2026-06-03",
                "reason": "r",
                "case": {
                    "title": "t",
                    "party_name": "p",
                    "party_kind": "organisation",
                    "officer_ids": [world.officers[0].id, world.uncredentialed.id],
                },
            },
            headers={**auth(world.head.token), "If-Match": f'"{lead["version"]}"'},
        )
        assert_problem(response, 409, "/problems/officer-without-credential")
        lead_now = (await enforcement.get(f"{API}/leads/{lead['id']}", headers=auth(world.head.token))).json()
        assert (lead_now["state"], lead_now["case_id"]) == ("verifying", None)

    async def test_fine_outside_its_range(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
        case = await open_case(enforcement, world, lead)
        case = await ok(enforcement, world.officers[0], case, "start_investigation", occurred_on="2026-06-05")
        response = await step(
            enforcement,
            world.officers[0],
            case,
            "close_investigation",
            facts="f",
            legal_basis="b",
            violation_code=VIOLATION,
            penalties=[fine("500.00")],
        )
        problem = assert_problem(response, 409, "/problems/fine-outside-range")
        assert (problem["fine_min"], problem["fine_max"]) == ("50000.00", "200000.00")
        assert (await read_case(enforcement, world.head, case))["state"] == "investigating"

    async def test_no_person_takes_a_review_step(self, enforcement, registry, world):
        """The review's answer is given in the legal-affairs queue (tests/statistics/test_reviews.py
        refuses a case officer there); here nobody, the case's own officer or the legal-affairs
        reviewer, takes the step by hand."""
        chain = await subjects(registry, world)
        lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
        case = await open_case(enforcement, world, lead, officers=[world.officers[0], world.dual])
        case = await ok(enforcement, world.dual, case, "start_investigation", occurred_on="2026-06-05")
        case = await ok(
            enforcement,
            world.dual,
            case,
            "close_investigation",
            occurred_on="2026-06-20",
            facts="f",
            legal_basis="b",
            violation_code=VIOLATION,
            penalties=[fine("60000.00")],
        )
        case = await ok(enforcement, world.dual, case, "request_review", occurred_on="2026-06-21")
        for person, name, extra in (
            (world.dual, "review_agree", {}),
            (world.legal, "review_agree", {}),
            (world.legal, "review_return", {}),
            (world.legal, "review_correct", {"penalties": [fine("50000.00")]}),
        ):
            response = await step(
                enforcement, person, case, name, reason="ok", occurred_on="2026-06-22", **extra
            )
            problem = assert_problem(response, 409, "/problems/review-in-legal-affairs")
            assert problem["reviews"] == "/api/v1/statistics/reviews"
        after = await read_case(enforcement, world.head, case)
        assert (after["state"], after["review_state"], after["version"]) == (
            "under_review",
            "requested",
            case["version"],
        )

    async def test_decision_waits_for_the_answer_window(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
        case = await review_answer(
            enforcement, world.head, case, "agree", answered_on="2026-06-22", reason="ok"
        )
        case = await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")
        early = await step(
            enforcement,
            world.head,
            case,
            "decide",
            occurred_on="2026-06-29",
            legal_basis="b",
            penalties=[fine("60000.00")],
        )
        problem = assert_problem(early, 409, "/problems/answer-window-open")
        assert problem["window_ends_on"] > "2026-06-29"
        waived = await step(
            enforcement,
            world.head,
            case,
            "decide",
            occurred_on="2026-06-29",
            legal_basis="b",
            penalties=[fine("60000.00")],
            statement_waived=True,
        )
        assert waived.status_code == 200, waived.text

    async def test_step_dated_before_the_previous_one(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        response = await step(
            enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-01"
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.occurred_on"


class TestMajorCase:
    """A revocation and a fine of 150,000 yuan: legal review (法制审核), collective decision, filing."""

    PENALTIES = None

    async def test_whole_procedure(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        certificate = chain["certificate"]
        penalties = [fine("150000.00"), {"kind": "revoke_certificate", "certificate_id": certificate["id"]}]
        case, _, _ = await investigated(enforcement, registry, world, penalties=penalties)
        assert case["needs_legal_review"] is True and case["needs_filing"] is True
        assert case["flag_reasons"]["hearing_allowed"] is True
        case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
        assert (
            await rows_where(
                enforcement, OutboxEvent, type="enforcement.review.requested", aggregate_id=str(case["id"])
            )
            == 1
        )
        case = await review_answer(
            enforcement, world.head, case, "agree", answered_on="2026-06-24", reason="同意"
        )
        case = await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")
        case = await ok(enforcement, world.officers[0], case, "request_hearing", occurred_on="2026-06-29")
        heard = await put_hearing(enforcement, world.officers[0], case, **HEARING)
        assert heard.status_code == 200, heard.text
        case = await ok(
            enforcement,
            world.officers[0],
            await read_case(enforcement, world.officers[0], case),
            "conclude_hearing",
            occurred_on="2026-07-15",
            reason="听证报告",
        )
        individual = await step(
            enforcement,
            world.head,
            case,
            "decide",
            occurred_on="2026-07-20",
            legal_basis="b",
            penalties=penalties,
        )
        assert_problem(individual, 409, "/problems/collective-decision-required")
        case = await ok(
            enforcement,
            world.head,
            case,
            "decide",
            occurred_on="2026-07-20",
            legal_basis="b",
            penalties=penalties,
            collective_decision=True,
        )
        revocation = next(
            p for p in case["penalties"] if p["stage"] == "decided" and p["kind"] == "revoke_certificate"
        )
        assert (revocation["certificate_number"], revocation["registry_state"]) == (
            certificate["number"],
            "pending",
        )
        assert (
            await rows_where(
                enforcement,
                OutboxEvent,
                type="enforcement.certificate_action.decided",
                aggregate_id=str(case["id"]),
            )
            == 1
        )

    async def test_a_case_about_a_certificate_keeps_its_number(self, enforcement, registry, world):
        """Opened from a lead about the certificate: the number a revocation names later is known
        to the case, so the decision does not need the registry (see tests/e2e/test_enforcement.py)."""
        certificate = (await subjects(registry, world))["certificate"]
        lead = await new_lead(enforcement, world.officers[0], "certificate", certificate["id"])
        case = await open_case(enforcement, world, lead, certificate_ids=[certificate["id"]])
        assert [(s["subject_type"], s["subject_id"], s["number"]) for s in case["subjects"]] == [
            ("certificate", certificate["id"], certificate["number"])
        ]

    async def test_decision_before_legal_review_refused(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        case, _, _ = await investigated(enforcement, registry, world)  # 60,000: a case review only
        case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
        case = await review_answer(
            enforcement, world.head, case, "agree", answered_on="2026-06-22", reason="ok"
        )
        case = await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")
        heavier = [
            fine("150000.00"),
            {"kind": "revoke_certificate", "certificate_id": chain["certificate"]["id"]},
        ]
        response = await step(
            enforcement,
            world.head,
            case,
            "decide",
            occurred_on="2026-07-10",
            legal_basis="b",
            penalties=heavier,
            collective_decision=True,
        )
        assert_problem(response, 409, "/problems/legal-review-required")
        after = await read_case(enforcement, world.head, case)
        assert (after["state"], after["version"]) == ("notified", case["version"])
        assert [p for p in after["penalties"] if p["stage"] == "decided"] == []

    async def test_hearing_not_allowed_below_the_thresholds(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
        case = await review_answer(
            enforcement, world.head, case, "agree", answered_on="2026-06-22", reason="ok"
        )
        case = await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")
        response = await step(
            enforcement, world.officers[0], case, "request_hearing", occurred_on="2026-06-29"
        )
        assert_problem(response, 409, "/problems/hearing-not-allowed")


@pytest.mark.parametrize("path", ["/leads", "/cases"])
async def test_lists_need_a_token(enforcement, path):
    assert_problem(await enforcement.get(f"{API}{path}"), 401, "/problems/unauthorized")
