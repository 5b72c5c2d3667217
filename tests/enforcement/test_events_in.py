"""Events the enforcement service consumes and sends: referrals become leads once, a decision's
certificate action reaches the registry and its answer comes back to the case, and the
legal-affairs body's answer to a legal review opens the decision gate."""

from __future__ import annotations

import uuid

from services.enforcement import models as enforcement_models
from services.enforcement.cases.consumers import HANDLERS as ENFORCEMENT_HANDLERS
from services.registry import models as registry_models
from services.registry.tasks import HANDLERS as REGISTRY_HANDLERS
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import API, fine, ok, read_case, review_answer, step, subjects
from tests.enforcement.test_procedure import investigated
from tests.events_flow import deliver, envelope, outbox_events, worker_ctx


def referral(world, target: dict, inspection_id: int) -> dict:
    payload = {
        "inspection_id": inspection_id,
        "target_type": "enterprise",
        "target_id": target["id"],
        "target_name": target["name"],
        "result": "non_compliant",
        "findings": "未按规定标注认证标志",
        "inspected_on": "2026-05-20",
        "bureau_id": world.county["id"],
    }
    return envelope(
        "registry.inspection.referred",
        "inspection",
        inspection_id,
        1,
        payload,
        bureau_id=world.county["id"],
        bureau_path=world.county["path"],
    )


class TestReferrals:
    async def test_a_referral_becomes_one_lead(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        inspection_id = uuid.uuid4().int % 10**12
        event = referral(world, chain["enterprise"], inspection_id)
        context = worker_ctx(enforcement, "enforcement", enforcement_models, ENFORCEMENT_HANDLERS)
        assert await deliver(context, event) == ["applied"]
        assert await deliver(context, event) == ["duplicate"]
        # The same inspection referred again under another event id still makes one lead.
        assert await deliver(context, {**event, "id": str(uuid.uuid4())}) == ["applied"]
        leads = await enforcement.get(
            f"{API}/leads",
            params={
                "source": "inspection_referral",
                "subject_type": "enterprise",
                "subject_id": chain["enterprise"]["id"],
            },
            headers=auth(world.head.token),
        )
        found = [lead for lead in leads.json()["items"] if lead["inspection_id"] == inspection_id]
        assert len(found) == 1
        assert (found[0]["bureau_id"], found[0]["received_on"], found[0]["state"]) == (
            world.county["id"],
            "2026-05-20",
            "verifying",
        )
        hidden = await enforcement.get(f"{API}/leads/{found[0]['id']}", headers=auth(world.stranger.token))
        assert hidden.status_code == 404


class TestClosedLoop:
    async def test_a_revocation_reaches_the_registry_and_its_answer_the_case(
        self, enforcement, registry, world
    ):
        chain = await subjects(registry, world)
        certificate = chain["certificate"]
        penalties = [fine("150000.00"), {"kind": "revoke_certificate", "certificate_id": certificate["id"]}]
        case, _, _ = await investigated(enforcement, registry, world, penalties=penalties)
        case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
        case = await review_answer(
            enforcement, world.head, case, "agree", answered_on="2026-06-24", reason="同意"
        )
        case = await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")
        case = await ok(
            enforcement,
            world.head,
            case,
            "decide",
            occurred_on="2026-07-10",
            legal_basis="b",
            penalties=penalties,
            collective_decision=True,
            statement_waived=True,
        )
        (decided,) = await outbox_events(
            enforcement,
            enforcement_models.OutboxEvent,
            type="enforcement.certificate_action.decided",
            aggregate_id=str(case["id"]),
        )
        assert decided["payload"]["certificate_number"] == certificate["number"]
        assert decided["payload"]["case_ref"] == case["number"]

        registry_ctx = worker_ctx(registry, "registry", registry_models, REGISTRY_HANDLERS)
        assert await deliver(registry_ctx, decided) == ["applied"]
        status = await registry.get(
            f"/api/v1/registry/certificates/{certificate['id']}", headers=auth(world.head.token)
        )
        assert status.json()["status"] == "revoked"

        answers = [
            e
            for e in await outbox_events(
                registry, registry_models.OutboxEvent, type="registry.certificate_action.applied"
            )
            if e["payload"]["decision_event_id"] == decided["id"]
        ]
        assert len(answers) == 1
        enforcement_ctx = worker_ctx(enforcement, "enforcement", enforcement_models, ENFORCEMENT_HANDLERS)
        assert await deliver(enforcement_ctx, answers[0]) == ["applied"]
        after = await read_case(enforcement, world.head, case)
        item = next(
            p for p in after["penalties"] if p["kind"] == "revoke_certificate" and p["stage"] == "decided"
        )
        assert item["registry_state"] == "applied"
        timeline = (
            await enforcement.get(f"{API}/cases/{case['id']}/timeline", headers=auth(world.head.token))
        ).json()
        assert timeline[-1]["step"] == "registry_answered"

    async def test_a_refusal_comes_back_as_a_visible_problem(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        # A revoked certificate cannot be revoked again: the registry refuses.
        from tests.factories import chain_of

        revoked = (await chain_of(registry, world.county, status="revoked"))["certificate"]
        penalties = [fine("150000.00"), {"kind": "revoke_certificate", "certificate_id": revoked.id}]
        case, _, _ = await investigated(enforcement, registry, world, penalties=penalties)
        case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
        case = await review_answer(
            enforcement, world.head, case, "agree", answered_on="2026-06-24", reason="同意"
        )
        case = await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")
        case = await ok(
            enforcement,
            world.head,
            case,
            "decide",
            occurred_on="2026-07-10",
            legal_basis="b",
            penalties=penalties,
            collective_decision=True,
            statement_waived=True,
        )
        (decided,) = await outbox_events(
            enforcement,
            enforcement_models.OutboxEvent,
            type="enforcement.certificate_action.decided",
            aggregate_id=str(case["id"]),
        )
        registry_ctx = worker_ctx(registry, "registry", registry_models, REGISTRY_HANDLERS)
        assert await deliver(registry_ctx, decided) == ["rejected"]
        (answer,) = [
            e
            for e in await outbox_events(
                registry, registry_models.OutboxEvent, type="registry.certificate_action.rejected"
            )
            if e["payload"]["decision_event_id"] == decided["id"]
        ]
        enforcement_ctx = worker_ctx(enforcement, "enforcement", enforcement_models, ENFORCEMENT_HANDLERS)
        await deliver(enforcement_ctx, answer)
        item = next(
            p
            for p in (await read_case(enforcement, world.head, case))["penalties"]
            if p["kind"] == "revoke_certificate" and p["stage"] == "decided"
        )
        assert item["registry_state"] == "rejected" and item["registry_reason"]
        assert chain  # the world's own chain is untouched


class TestLegalReviewAnswer:
    async def test_the_answer_event_opens_the_gate(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        penalties = [
            fine("150000.00"),
            {"kind": "revoke_certificate", "certificate_id": chain["certificate"]["id"]},
        ]
        case, _, _ = await investigated(enforcement, registry, world, penalties=penalties)
        case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
        (requested,) = await outbox_events(
            enforcement,
            enforcement_models.OutboxEvent,
            type="enforcement.review.requested",
            aggregate_id=str(case["id"]),
        )
        assert set(requested["payload"]["officer_ids"]) == {p.id for p in world.officers[:2]}
        # A version-1 answer, naming only its outcome, still takes the step (agree). Its own
        # review id: the inbox keeps the newest version applied per review.
        review_id = uuid.uuid4().int % 10**12
        answer = envelope(
            "statistics.review.answered",
            "review",
            review_id,
            1,
            {"review_id": review_id, "case_id": case["id"], "outcome": "approved", "reason": "同意"},
            bureau_id=world.county["id"],
            bureau_path=world.county["path"],
        )
        context = worker_ctx(enforcement, "enforcement", enforcement_models, ENFORCEMENT_HANDLERS)
        assert await deliver(context, answer) == ["applied"]
        after = await read_case(enforcement, world.head, case)
        assert (after["state"], after["review_state"]) == ("reviewed", "agreed")
        # A second answer to a case no longer under review changes nothing.
        late = {**answer, "id": str(uuid.uuid4()), "payload": {**answer["payload"], "outcome": "returned"}}
        assert await deliver(context, late) == ["rejected"]
        assert (await read_case(enforcement, world.head, case))["version"] == after["version"]


async def test_no_referral_without_the_bureau(enforcement, registry, world):
    chain = await subjects(registry, world)
    event = referral(world, chain["enterprise"], uuid.uuid4().int % 10**12)
    event["bureau_path"] = None
    context = worker_ctx(enforcement, "enforcement", enforcement_models, ENFORCEMENT_HANDLERS)
    assert await deliver(context, event) == ["rejected"]


class TestRevisedDecision:
    """A reconsideration (复议) lowers the fine and sets a suspension aside: the current amounts
    change, the decided ones stay, and the certificate is restored in the registry."""

    async def test_restore_reaches_the_registry(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        certificate = chain["certificate"]
        penalties = [fine("60000.00"), {"kind": "suspend_certificate", "certificate_id": certificate["id"]}]
        case, _, _ = await investigated(enforcement, registry, world, penalties=penalties)
        case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
        case = await review_answer(
            enforcement, world.head, case, "agree", answered_on="2026-06-24", reason="同意"
        )
        case = await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")
        case = await ok(
            enforcement,
            world.head,
            case,
            "decide",
            occurred_on="2026-07-10",
            legal_basis="b",
            penalties=penalties,
            collective_decision=True,
            statement_waived=True,
        )
        registry_ctx = worker_ctx(registry, "registry", registry_models, REGISTRY_HANDLERS)
        (suspension,) = await outbox_events(
            enforcement,
            enforcement_models.OutboxEvent,
            type="enforcement.certificate_action.decided",
            aggregate_id=str(case["id"]),
        )
        assert await deliver(registry_ctx, suspension) == ["applied"]

        heavier = await step(
            enforcement,
            world.head,
            case,
            "revise_decision",
            reason="复议",
            legal_basis="复议决定书",
            penalties=[fine("60000.01")],
        )
        assert_problem(heavier, 409, "/problems/revision-heavier-than-decided")
        revised = await ok(
            enforcement,
            world.head,
            case,
            "revise_decision",
            occurred_on="2026-08-01",
            reason="行政复议决定变更",
            legal_basis="复议决定书",
            penalties=[fine("30000.00")],
        )
        assert (revised["fine_decided"], revised["fine_current"]) == ("60000.00", "30000.00")
        assert revised["needs_filing"] is True and "reconsideration_or_litigation" in revised["circumstances"]
        items = {p["kind"]: p for p in revised["penalties"] if p["stage"] == "decided"}
        assert (items["fine"]["amount_initial"], items["fine"]["amount_current"]) == ("60000.00", "30000.00")
        assert (items["suspend_certificate"]["in_force"], items["suspend_certificate"]["registry_state"]) == (
            False,
            "pending",
        )
        restore = [
            e
            for e in await outbox_events(
                enforcement,
                enforcement_models.OutboxEvent,
                type="enforcement.certificate_action.decided",
                aggregate_id=str(case["id"]),
            )
            if e["payload"]["action"] == "restore"
        ]
        assert len(restore) == 1
        assert await deliver(registry_ctx, restore[0]) == ["applied"]
        status = await registry.get(
            f"/api/v1/registry/certificates/{certificate['id']}", headers=auth(world.head.token)
        )
        assert status.json()["status"] == "valid"


async def test_a_revision_names_only_decided_sanctions(enforcement, registry, world):
    case, _, _ = await investigated(enforcement, registry, world)
    case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
    case = await review_answer(
        enforcement, world.head, case, "agree", answered_on="2026-06-24", reason="同意"
    )
    case = await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")
    case = await ok(
        enforcement,
        world.head,
        case,
        "decide",
        occurred_on="2026-07-10",
        legal_basis="b",
        penalties=[fine("60000.00")],
        statement_waived=True,
    )
    response = await step(
        enforcement,
        world.head,
        case,
        "revise_decision",
        reason="r",
        legal_basis="b",
        penalties=[fine("1000.00"), {"kind": "warning"}],
    )
    problem = assert_problem(response, 422, "/problems/validation-error")
    assert problem["errors"][0]["loc"] == "body.penalties.1"
    assert (await read_case(enforcement, world.head, case))["version"] == case["version"]
