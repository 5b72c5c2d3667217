"""Execution beyond payment: a seizure extended once, a preservation decided in time, and a
party that neither pays nor appeals reminded, then enforced by the court."""

from __future__ import annotations

from tests.conftest import assert_problem, auth
from tests.enforcement.flow import API, new_lead, ok, open_case, read_case, step, subjects
from tests.enforcement.test_case_records import decided_and_served, pay


async def deadlines(enforcement, person, case) -> dict[str, dict]:
    response = await enforcement.get(f"{API}/cases/{case['id']}/deadlines", headers=auth(person.token))
    assert response.status_code == 200, response.text
    return {d["rule"]: d for d in response.json()}


async def timeline(enforcement, person, case) -> list[dict]:
    response = await enforcement.get(f"{API}/cases/{case['id']}/timeline", headers=auth(person.token))
    assert response.status_code == 200, response.text
    return response.json()


class TestCourtEnforcement:
    """Served on Saturday 11 July 2026 with a fine of 60,000 yuan, due by Monday 27 July."""

    async def test_reminder_then_court_then_closing(self, enforcement, registry, world):
        o1, head = world.officers[0], world.head
        case = await decided_and_served(enforcement, registry, world)
        early = await step(enforcement, o1, case, "remind_payment", occurred_on="2026-07-20")
        assert assert_problem(early, 409, "/problems/payment-not-due")["payment_due"] == "2026-07-27"
        unreminded = await step(
            enforcement, head, case, "apply_court_enforcement", occurred_on="2026-08-03", reason="逾期未缴"
        )
        assert_problem(unreminded, 409, "/problems/payment-not-reminded")

        case = await ok(enforcement, o1, case, "remind_payment", occurred_on="2026-08-03")
        assert (case["state"], case["payment_reminded_on"]) == ("served", "2026-08-03")
        running = await deadlines(enforcement, o1, case)
        reminder = running["court_enforcement_reminder"]
        assert (reminder["due"], reminder["explanation"]["start"]) == ("2026-08-17", "2026-08-03")
        assert "payment" in running

        too_soon = await step(
            enforcement, head, case, "apply_court_enforcement", occurred_on="2026-08-17", reason="逾期未缴"
        )
        problem = assert_problem(too_soon, 409, "/problems/reminder-period-running")
        assert problem["reminder_ends_on"] == "2026-08-17"
        assert "2026-08-17" in problem["detail"]
        owed = await step(enforcement, head, case, "close_case", occurred_on="2026-08-17")
        assert_problem(owed, 409, "/problems/execution-incomplete")

        case = await ok(
            enforcement, head, case, "apply_court_enforcement", occurred_on="2026-08-18", reason="逾期未缴"
        )
        assert (case["state"], case["court_enforcement_applied_on"]) == ("served", "2026-08-18")
        running = await deadlines(enforcement, o1, case)
        assert set(running) >= {"closing"} and "court_enforcement_reminder" not in running
        assert running["closing"]["due"] == "2026-09-08"  # 15 working days from the application
        again = await step(
            enforcement, head, case, "apply_court_enforcement", occurred_on="2026-08-19", reason="r"
        )
        assert_problem(again, 409, "/problems/court-enforcement-applied")
        reminded = await step(enforcement, o1, case, "remind_payment", occurred_on="2026-08-19")
        assert_problem(reminded, 409, "/problems/court-enforcement-applied")

        case = await ok(enforcement, head, case, "close_case", occurred_on="2026-08-20")
        assert case["state"] == "closed" and case["paid_total"] == "0.00"
        entries = {e["step"]: e for e in await timeline(enforcement, o1, case)}
        assert entries["remind_payment"]["details"]["reminder_ends_on"] == "2026-08-17"
        assert entries["apply_court_enforcement"]["reason"] == "逾期未缴"
        assert entries["close_case"]["details"]["passed_to_court"] is True
        assert entries["close_case"]["details"]["fine_owed"] == "60000.00"

    async def test_nothing_owed_nothing_to_enforce(self, enforcement, registry, world):
        case = await decided_and_served(enforcement, registry, world)
        assert (await pay(enforcement, world.officers[0], case, "60000.00", "2026-07-20")).status_code == 201
        case = await read_case(enforcement, world.officers[0], case)
        response = await step(
            enforcement, world.officers[0], case, "remind_payment", occurred_on="2026-08-03"
        )
        assert_problem(response, 409, "/problems/nothing-owed")

    async def test_roles_and_scope(self, enforcement, registry, world):
        case = await decided_and_served(enforcement, registry, world)
        by_head = await step(enforcement, world.head, case, "remind_payment", occurred_on="2026-08-03")
        assert_problem(by_head, 403, "/problems/role-required")
        not_of_case = await step(
            enforcement, world.officers[2], case, "remind_payment", occurred_on="2026-08-03"
        )
        assert_problem(not_of_case, 403, "/problems/not-case-officer")
        stranger = await step(enforcement, world.stranger, case, "remind_payment", occurred_on="2026-08-03")
        assert_problem(stranger, 404, "/problems/not-found")
        case = await ok(enforcement, world.officers[0], case, "remind_payment", occurred_on="2026-08-03")
        by_officer = await step(
            enforcement,
            world.officers[0],
            case,
            "apply_court_enforcement",
            occurred_on="2026-08-18",
            reason="r",
        )
        assert_problem(by_officer, 403, "/problems/role-required")
        no_post = await step(
            enforcement, world.no_post, case, "apply_court_enforcement", occurred_on="2026-08-18", reason="r"
        )
        assert (
            assert_problem(no_post, 403, "/problems/post-not-authorized")["step"] == "apply_court_enforcement"
        )
        assert (await read_case(enforcement, world.head, case))["court_enforcement_applied_on"] is None

    async def test_not_before_the_decision_is_served(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
        case = await open_case(enforcement, world, lead)
        response = await step(
            enforcement, world.officers[0], case, "remind_payment", occurred_on="2026-06-05"
        )
        problem = assert_problem(response, 409, "/problems/invalid-transition")
        assert problem["state"] == "opened"


async def opened_with_evidence(enforcement, registry, world, measure: str, started_on: str = "2026-06-04"):
    """A case opened on 3 June 2026 and one item of evidence under ``measure`` from ``started_on``."""
    chain = await subjects(registry, world)
    lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
    case = await open_case(enforcement, world, lead)
    added = await enforcement.post(
        f"{API}/cases/{case['id']}/evidence",
        headers=auth(world.officers[0].token),
        json={
            "kind": "physical",
            "description": "电器 20 台",
            "collected_on": started_on,
            "measure": measure,
            "measure_started_on": started_on,
        },
    )
    assert added.status_code == 201, added.text
    return case, added.json()


async def extend(enforcement, person, case, evidence, occurred_on="2026-06-20"):
    return await enforcement.post(
        f"{API}/cases/{case['id']}/evidence/{evidence['id']}/extension",
        headers=auth(person.token),
        json={"reason": "案情复杂，需延长查封期限", "occurred_on": occurred_on},
    )


async def decide(enforcement, person, case, evidence, decision="seize", occurred_on="2026-06-10"):
    return await enforcement.post(
        f"{API}/cases/{case['id']}/evidence/{evidence['id']}/decision",
        headers=auth(person.token),
        json={"decision": decision, "reason": "经负责人批准", "occurred_on": occurred_on},
    )


class TestSeizureExtension:
    async def test_extended_once_by_thirty_days(self, enforcement, registry, world):
        case, seized = await opened_with_evidence(enforcement, registry, world, "seizure")
        assert seized["measure_due"] == "2026-07-06"
        extended = await extend(enforcement, world.head, case, seized)
        assert extended.status_code == 200, extended.text
        body = extended.json()
        assert (body["measure_due"], body["measure_extended"], body["measure_extended_on"]) == (
            "2026-08-03",
            True,
            "2026-06-20",
        )
        listed = await enforcement.get(f"{API}/cases/{case['id']}/evidence", headers=auth(world.head.token))
        assert [e["measure_due"] for e in listed.json()] == ["2026-08-03"]
        twice = await extend(enforcement, world.head, case, seized, occurred_on="2026-07-01")
        problem = assert_problem(twice, 409, "/problems/extension-exceeded")
        assert (problem["allowed_days"], problem["extended_on"]) == (30, "2026-06-20")
        entry = next(
            e for e in await timeline(enforcement, world.head, case) if e["step"] == "extend_seizure"
        )
        assert entry["details"] == {
            "evidence_id": seized["id"],
            "extension_days": 30,
            "due_before": "2026-07-06",
            "due": "2026-08-03",
        }
        assert entry["officer_id"] == world.head.id

    async def test_an_ended_seizure_or_other_measure_is_not_extended(self, enforcement, registry, world):
        case, seized = await opened_with_evidence(enforcement, registry, world, "seizure")
        ended = await extend(enforcement, world.head, case, seized, occurred_on="2026-07-07")
        assert assert_problem(ended, 409, "/problems/seizure-ended")["ended_on"] == "2026-07-06"
        case, preserved = await opened_with_evidence(enforcement, registry, world, "preservation")
        assert_problem(await extend(enforcement, world.head, case, preserved), 409, "/problems/not-a-seizure")

    async def test_roles_and_scope(self, enforcement, registry, world):
        case, seized = await opened_with_evidence(enforcement, registry, world, "seizure")
        assert_problem(
            await extend(enforcement, world.officers[0], case, seized), 403, "/problems/role-required"
        )
        no_post = await extend(enforcement, world.no_post, case, seized)
        assert assert_problem(no_post, 403, "/problems/post-not-authorized")["step"] == "extend_seizure"
        assert_problem(await extend(enforcement, world.stranger, case, seized), 404, "/problems/not-found")
        other_case, _ = await opened_with_evidence(enforcement, registry, world, "seizure")
        assert_problem(await extend(enforcement, world.head, other_case, seized), 404, "/problems/not-found")
        listed = await enforcement.get(f"{API}/cases/{case['id']}/evidence", headers=auth(world.head.token))
        assert listed.json()[0]["measure_extended"] is False


class TestPreservationDecision:
    """Preserved on Thursday 4 June 2026: decided by Monday 15 June (7 working days)."""

    async def test_seized_on_decision(self, enforcement, registry, world):
        case, preserved = await opened_with_evidence(enforcement, registry, world, "preservation")
        assert preserved["measure_due"] == "2026-06-15"
        decided = await decide(enforcement, world.head, case, preserved, "seize", "2026-06-10")
        assert decided.status_code == 200, decided.text
        body = decided.json()
        assert (body["measure"], body["measure_decision"], body["measure_decided_on"]) == (
            "seizure",
            "seize",
            "2026-06-10",
        )
        assert (body["measure_started_on"], body["measure_due"]) == ("2026-06-10", "2026-07-10")
        again = await decide(enforcement, world.head, case, preserved, "return", "2026-06-11")
        assert assert_problem(again, 409, "/problems/measure-decided")["decided_on"] == "2026-06-10"
        entry = next(
            e for e in await timeline(enforcement, world.head, case) if e["step"] == "decide_preservation"
        )
        assert entry["details"]["preserved_from"] == "2026-06-04"
        assert entry["details"]["decide_by"] == "2026-06-15"

    async def test_returned_ends_the_measure(self, enforcement, registry, world):
        case, preserved = await opened_with_evidence(enforcement, registry, world, "preservation")
        decided = await decide(enforcement, world.head, case, preserved, "return", "2026-06-15")
        assert decided.status_code == 200, decided.text
        assert (decided.json()["measure_decided_on"], decided.json()["measure_due"]) == ("2026-06-15", None)

    async def test_lapsed_or_not_a_preservation(self, enforcement, registry, world):
        case, preserved = await opened_with_evidence(enforcement, registry, world, "preservation")
        late = await decide(enforcement, world.head, case, preserved, "seize", "2026-06-16")
        assert assert_problem(late, 409, "/problems/preservation-lapsed")["decide_by"] == "2026-06-15"
        case, seized = await opened_with_evidence(enforcement, registry, world, "seizure")
        assert_problem(
            await decide(enforcement, world.head, case, seized), 409, "/problems/not-a-preservation"
        )
        bad = await decide(enforcement, world.head, case, seized, "burn")
        assert_problem(bad, 422, "/problems/validation-error")

    async def test_roles_and_scope(self, enforcement, registry, world):
        case, preserved = await opened_with_evidence(enforcement, registry, world, "preservation")
        assert_problem(
            await decide(enforcement, world.officers[0], case, preserved), 403, "/problems/role-required"
        )
        no_post = await decide(enforcement, world.no_post, case, preserved)
        assert assert_problem(no_post, 403, "/problems/post-not-authorized")["step"] == "decide_preservation"
        assert_problem(await decide(enforcement, world.stranger, case, preserved), 404, "/problems/not-found")
        missing = {**preserved, "id": 999999999}
        assert_problem(await decide(enforcement, world.head, case, missing), 404, "/problems/not-found")
