"""Lists and filters, the simple procedure, evidence, payments with the late surcharge,
reassignment, termination and transfer, and idempotent creation by provincial systems."""

from __future__ import annotations

import uuid

from services.common.auth import PrincipalKind, Role
from services.enforcement.cases.models import Lead
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import (
    API,
    fine,
    new_lead,
    ok,
    open_case,
    read_case,
    review_answer,
    step,
    subjects,
)
from tests.enforcement.test_procedure import investigated
from tests.factories import rows_where


async def decided_and_served(enforcement, registry, world, served_on="2026-07-11"):
    case, _, _ = await investigated(enforcement, registry, world)
    case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
    case = await review_answer(enforcement, world.head, case, "agree", answered_on="2026-06-22", reason="ok")
    case = await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")
    case = await ok(
        enforcement,
        world.head,
        case,
        "decide",
        occurred_on="2026-07-10",
        legal_basis="b",
        penalties=[fine("60000.00")],
    )
    return await ok(
        enforcement,
        world.officers[0],
        case,
        "serve_decision",
        occurred_on=served_on,
        service_method="in_person",
    )


async def pay(enforcement, person, case, amount, paid_on, kind="fine"):
    return await enforcement.post(
        f"{API}/cases/{case['id']}/payments",
        headers=auth(person.token),
        json={"amount": amount, "paid_on": paid_on, "kind": kind},
    )


class TestLists:
    async def test_filters_and_keyset_pages(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
        first = await open_case(enforcement, world, lead, certificate_ids=[chain["certificate"]["id"]])
        lead2 = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
        second = await open_case(enforcement, world, lead2, officers=[world.officers[1], world.officers[2]])
        by_subject = {"subject_type": "enterprise", "subject_id": chain["enterprise"]["id"]}
        page = await enforcement.get(
            f"{API}/cases", params={**by_subject, "limit": 1}, headers=auth(world.head.token)
        )
        assert page.status_code == 200, page.text
        assert [c["id"] for c in page.json()["items"]] == [first["id"]]
        rest = await enforcement.get(
            f"{API}/cases",
            params={**by_subject, "limit": 1, "cursor": page.json()["next_cursor"]},
            headers=auth(world.head.token),
        )
        assert [c["id"] for c in rest.json()["items"]] == [second["id"]]
        by_certificate = await enforcement.get(
            f"{API}/cases",
            params={"subject_type": "certificate", "subject_id": chain["certificate"]["id"]},
            headers=auth(world.head.token),
        )
        assert [c["id"] for c in by_certificate.json()["items"]] == [first["id"]]
        mine = await enforcement.get(
            f"{API}/cases", params={**by_subject, "mine": "true"}, headers=auth(world.officers[0].token)
        )
        assert [c["id"] for c in mine.json()["items"]] == [first["id"]]
        stranger = await enforcement.get(
            f"{API}/cases", params=by_subject, headers=auth(world.stranger.token)
        )
        assert stranger.json()["items"] == []

    async def test_overdue_and_major(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        lead = await new_lead(
            enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"], received_on="2026-01-05"
        )
        old = await open_case(enforcement, world, lead, on="2026-01-06")  # its decision deadline has passed
        by_subject = {"subject_type": "enterprise", "subject_id": chain["enterprise"]["id"]}
        overdue = await enforcement.get(
            f"{API}/cases", params={**by_subject, "overdue": "true"}, headers=auth(world.head.token)
        )
        assert [c["id"] for c in overdue.json()["items"]] == [old["id"]]
        assert overdue.json()["items"][0]["overdue"] is True
        major = await enforcement.get(
            f"{API}/cases", params={**by_subject, "major": "true"}, headers=auth(world.head.token)
        )
        assert major.json()["items"] == []

    async def test_bad_filters(self, enforcement, world):
        response = await enforcement.get(
            f"{API}/cases", params={"subject_id": 5}, headers=auth(world.head.token)
        )
        assert_problem(response, 422, "/problems/validation-error")
        response = await enforcement.get(
            f"{API}/cases", params={"state": "nonsense"}, headers=auth(world.head.token)
        )
        assert_problem(response, 422, "/problems/validation-error")


class TestSimpleProcedure:
    async def test_on_the_spot_warning_and_small_fine(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        body = {
            "procedure": "simple",
            "title": "当场处罚",
            "party_name": "张三",
            "party_kind": "natural_person",
            "subject_type": "enterprise",
            "subject_id": chain["enterprise"]["id"],
            "facts": "f",
            "legal_basis": "b",
            "violation_code": "misused-marks",
            "penalties": [fine("200.00")],
            "decided_on": "2026-06-01",
            "officer_ids": [p.id for p in world.officers[:2]],
        }
        created = await enforcement.post(f"{API}/cases", json=body, headers=auth(world.officers[0].token))
        assert created.status_code == 201, created.text
        assert (created.json()["procedure"], created.json()["state"]) == ("simple", "decided")
        over = await enforcement.post(
            f"{API}/cases",
            json={**body, "penalties": [fine("200.01")]},
            headers=auth(world.officers[0].token),
        )
        assert_problem(over, 409, "/problems/simple-procedure-limit")
        one = await enforcement.post(
            f"{API}/cases",
            json={**body, "officer_ids": [world.officers[0].id]},
            headers=auth(world.officers[0].token),
        )
        assert_problem(one, 422, "/problems/validation-error")
        head = await enforcement.post(f"{API}/cases", json=body, headers=auth(world.head.token))
        assert_problem(head, 403, "/problems/role-required")


class TestExecution:
    async def test_late_payment_owes_the_surcharge_before_closing(self, enforcement, registry, world):
        case = await decided_and_served(enforcement, registry, world)
        paid = await pay(
            enforcement, world.officers[0], case, "60000.00", "2026-07-30"
        )  # due 07-26: 4 days late
        assert paid.status_code == 201, paid.text
        case = await read_case(enforcement, world.head, case)
        refused = await step(enforcement, world.head, case, "close_case", occurred_on="2026-07-31")
        problem = assert_problem(refused, 409, "/problems/execution-incomplete")
        assert (problem["fine_owed"], problem["surcharge_owed"]) == ("0.00", "5400.00")  # 3 % × 3 days
        too_much = await pay(enforcement, world.officers[0], case, "5400.01", "2026-07-31", kind="surcharge")
        assert_problem(too_much, 409, "/problems/overpayment")
        surcharge = await pay(enforcement, world.officers[0], case, "5400.00", "2026-07-31", kind="surcharge")
        assert surcharge.status_code == 201, surcharge.text
        case = await read_case(enforcement, world.head, case)
        closed = await ok(enforcement, world.head, case, "close_case", occurred_on="2026-07-31")
        assert (closed["state"], closed["paid_total"]) == ("closed", "65400.00")

    async def test_payment_before_service_refused(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        assert_problem(
            await pay(enforcement, world.officers[0], case, "1.00", "2026-07-01"),
            409,
            "/problems/case-not-executing",
        )


class TestEvidence:
    async def test_register_with_a_seizure_and_its_period(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        refused = await enforcement.post(
            f"{API}/cases/{case['id']}/evidence",
            headers=auth(world.officers[0].token),
            json={"kind": "physical", "description": "样品", "collected_on": "2026-06-06"},
        )
        assert_problem(refused, 409, "/problems/case-not-investigating")
        chain = await subjects(registry, world)
        lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
        open_ = await open_case(enforcement, world, lead)
        added = await enforcement.post(
            f"{API}/cases/{open_['id']}/evidence",
            headers=auth(world.officers[0].token),
            json={
                "kind": "physical",
                "description": "查封的电器 20 台",
                "collected_on": "2026-06-04",
                "measure": "seizure",
                "measure_started_on": "2026-06-04",
            },
        )
        assert added.status_code == 201, added.text
        assert added.json()["measure_due"] == "2026-07-06"  # 30 days, 4 July a Saturday
        bad = await enforcement.post(
            f"{API}/cases/{open_['id']}/evidence",
            headers=auth(world.officers[0].token),
            json={"kind": "rumour", "description": "x", "collected_on": "2026-06-04"},
        )
        assert_problem(bad, 422, "/problems/validation-error")


class TestOfficersAndEndings:
    async def test_reassignment_is_recorded(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        reassign = await enforcement.put(
            f"{API}/cases/{case['id']}/officers",
            headers={**auth(world.head.token), "If-Match": f'"{case["version"]}"'},
            json={
                "officer_ids": [world.officers[0].id, world.officers[2].id],
                "reason": "调岗",
                "occurred_on": "2026-06-22",
            },
        )
        assert reassign.status_code == 200, reassign.text
        officers = {o["officer_id"]: o for o in reassign.json()["officers"]}
        assert officers[world.officers[1].id]["released_on"] == "2026-06-22"
        assert officers[world.officers[2].id]["released_on"] is None
        one = await enforcement.put(
            f"{API}/cases/{case['id']}/officers",
            headers={**auth(world.head.token), "If-Match": f'"{reassign.json()["version"]}"'},
            json={"officer_ids": [world.officers[0].id], "reason": "x", "occurred_on": "2026-06-22"},
        )
        assert_problem(one, 409, "/problems/too-few-officers")

    async def test_terminate_and_transfer(self, enforcement, registry, world):
        case, _, _ = await investigated(enforcement, registry, world)
        terminated = await ok(
            enforcement,
            world.head,
            case,
            "terminate",
            occurred_on="2026-06-22",
            reason="当事人死亡",
            legal_basis="《行政处罚法》",
        )
        assert terminated["state"] == "terminated"
        assert_problem(
            await step(enforcement, world.head, terminated, "resume_investigation", reason="r"),
            409,
            "/problems/invalid-transition",
        )
        other, _, _ = await investigated(enforcement, registry, world)
        moved = await ok(
            enforcement,
            world.head,
            other,
            "transfer",
            occurred_on="2026-06-22",
            reason="涉嫌犯罪",
            transferred_to="公安机关",
        )
        assert moved["state"] == "transferred"
        assert "transferred_to_judicial_organ" in moved["circumstances"]


class TestIdempotentCreation:
    async def test_a_provincial_system_replays_a_lead(self, enforcement, registry, world, token_for):
        chain = await subjects(registry, world)
        system = token_for(world.province, roles=(Role.SYSTEM,), kind=PrincipalKind.SYSTEM)
        key = str(uuid.uuid4())
        body = {
            "source": "transfer_in",
            "source_ref": key[:20],
            "subject_type": "enterprise",
            "subject_id": chain["enterprise"]["id"],
            "summary": "移送",
            "received_on": "2026-06-01",
            "bureau_id": world.county["id"],
        }
        first = await enforcement.post(
            f"{API}/leads", json=body, headers={**auth(system), "Idempotency-Key": key}
        )
        again = await enforcement.post(
            f"{API}/leads", json=body, headers={**auth(system), "Idempotency-Key": key}
        )
        assert first.status_code == again.status_code == 201, first.text
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert first.json()["id"] == again.json()["id"]
        assert first.json()["bureau_id"] == world.county["id"]
        assert await rows_where(enforcement, Lead, source_ref=key[:20]) == 1

    async def test_unknown_subject_and_foreign_bureau(self, enforcement, registry, world):
        missing = await enforcement.post(
            f"{API}/leads",
            headers=auth(world.officers[0].token),
            json={
                "source": "complaint",
                "subject_type": "certificate",
                "subject_id": 2**40,
                "summary": "s",
                "received_on": "2026-06-01",
            },
        )
        problem = assert_problem(missing, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.subject_id"
        chain = await subjects(registry, world)
        foreign = await enforcement.post(
            f"{API}/leads",
            headers=auth(world.officers[0].token),
            json={
                "source": "complaint",
                "subject_type": "enterprise",
                "subject_id": chain["enterprise"]["id"],
                "summary": "s",
                "received_on": "2026-06-01",
                "bureau_id": world.other_county["id"],
            },
        )
        assert_problem(foreign, 404, "/problems/not-found")
        missing = await enforcement.post(
            f"{API}/leads",
            headers=auth(world.officers[0].token),
            json={
                "source": "complaint",
                "subject_type": "enterprise",
                "subject_id": chain["enterprise"]["id"],
                "summary": "s",
                "received_on": "2026-06-01",
                "bureau_id": 2**40,
            },
        )
        assert_problem(missing, 404, "/problems/not-found")  # missing and out of scope look the same
        assert foreign.json()["detail"].replace(str(world.other_county["id"]), "N") == missing.json()[
            "detail"
        ].replace(str(2**40), "N")
        future = await enforcement.post(
            f"{API}/leads",
            headers=auth(world.officers[0].token),
            json={
                "source": "complaint",
                "subject_type": "enterprise",
                "subject_id": chain["enterprise"]["id"],
                "summary": "s",
                "received_on": "2999-01-01",
            },
        )
        assert_problem(future, 422, "/problems/validation-error")
