"""Helpers of the legal-affairs tests: events read from one service's outbox as the relay hands
them on, and delivered to another service's inbox handler."""

from __future__ import annotations

import uuid

from services.enforcement import models as enforcement_models
from services.enforcement.cases.consumers import HANDLERS as ENFORCEMENT_HANDLERS
from services.statistics import models as statistics_models
from services.statistics.consumers import HANDLERS as STATISTICS_HANDLERS
from tests.enforcement.flow import fine, new_lead, ok, open_case, subjects
from tests.events_flow import deliver, envelope, outbox_events, worker_ctx

VIOLATION = "uncertified-ccc-product"  # art. 66: fine 50,000–200,000 yuan

STATS = "/api/v1/statistics"


async def to_statistics(statistics, event: dict) -> str:
    """Deliver an event to the statistics service's inbox; its outcome."""
    ctx = worker_ctx(statistics, "statistics", statistics_models, STATISTICS_HANDLERS)
    (outcome,) = await deliver(ctx, event)
    return outcome


async def to_enforcement(enforcement, event: dict) -> str:
    ctx = worker_ctx(enforcement, "enforcement", enforcement_models, ENFORCEMENT_HANDLERS)
    (outcome,) = await deliver(ctx, event)
    return outcome


async def review_requests(enforcement, case: dict) -> list[dict]:
    return await outbox_events(
        enforcement,
        enforcement_models.OutboxEvent,
        type="enforcement.review.requested",
        aggregate_id=str(case["id"]),
    )


async def review_answers(statistics, review: dict) -> list[dict]:
    return await outbox_events(
        statistics,
        statistics_models.OutboxEvent,
        type="statistics.review.answered",
        aggregate_id=str(review["id"]),
    )


async def under_review(enforcement, registry, world, *, officers=None, penalties=None) -> tuple[dict, dict]:
    """A case investigated by ``officers`` (default: the county's first two) and handed to review
    (a 60,000 fine: case review; heavier: legal review); and the chain it concerns. ``penalties``
    may be a function of the chain (to name its certificate)."""
    chain = await subjects(registry, world)
    if callable(penalties):
        penalties = penalties(chain)
    lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
    case = await open_case(
        enforcement, world, lead, officers=officers, certificate_ids=[chain["certificate"]["id"]]
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
        penalties=penalties or [fine("60000.00")],
    )
    case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
    return case, chain


async def queued(statistics, enforcement, case: dict, reader_headers: dict) -> dict:
    """The case's review request delivered to statistics; the queue's pending round of the case."""
    (requested,) = (await review_requests(enforcement, case))[-1:]
    assert await to_statistics(statistics, requested) == "applied"
    page = await statistics.get(
        f"{STATS}/reviews", params={"case_id": case["id"], "state": "pending"}, headers=reader_headers
    )
    assert page.status_code == 200, page.text
    (review,) = page.json()["items"]
    return review


async def opinion(statistics, person_headers: dict, review: dict, **body):
    return await statistics.post(
        f"{STATS}/reviews/{review['id']}/opinion",
        json=body,
        headers={**person_headers, "If-Match": f'"{review["version"]}"'},
    )


def case_changed_event(bureau: dict, case_id: int, *, version: int = 20, **payload) -> dict:
    """An ``enforcement.case.changed`` event as enforcement sends it, for the filing hook."""
    body = {
        "case_id": case_id,
        "number": f"测试罚〔2026〕{case_id}号",
        "lead_id": None,
        "procedure": "ordinary",
        "state": "closed",
        "subject_type": "enterprise",
        "subject_id": 1,
        "party_kind": "organisation",
        "opened_on": "2026-06-03",
        "decided_on": "2026-07-10",
        "closed_on": "2026-07-21",
        "decision_kind": "penalty",
        "penalty_kinds": ["fine"],
        "fine_decided": "60000.00",
        "fine_current": "60000.00",
        "confiscation": "0",
        "paid_total": "60000.00",
        "needs_legal_review": False,
        "needs_filing": True,
        "officer_count": 2,
        **payload,
    }
    return envelope(
        "enforcement.case.changed",
        "case",
        case_id,
        version,
        body,
        bureau_id=bureau["id"],
        bureau_path=bureau["path"],
    )


def new_case_id() -> int:
    """A case id no enforcement case of this run has (the hook reads only the event)."""
    return 10**11 + uuid.uuid4().int % 10**10


def in_process_answerer(statistics, enforcement, legal: dict, reader: dict):
    """The demo's ``answer_review`` without workers: the request delivered to the statistics
    inbox, the opinion given in its queue as ``legal``, the answer delivered to enforcement."""

    async def answer(case: dict, opinion_: str, on: str, reason: str) -> dict:
        requested = (await review_requests(enforcement, case))[-1]
        assert await to_statistics(statistics, requested) == "applied"
        review = await queued_review(statistics, case, legal)
        response = await opinion(statistics, legal, review, opinion=opinion_, reason=reason, answered_on=on)
        assert response.status_code == 200, response.text
        (answered,) = await review_answers(statistics, review)
        assert await to_enforcement(enforcement, answered) == "applied"
        read = await enforcement.get(f"/api/v1/enforcement/cases/{case['id']}", headers=reader)
        assert read.status_code == 200, read.text
        return read.json()

    return answer


async def queued_review(statistics, case: dict, headers: dict) -> dict:
    page = await statistics.get(
        f"{STATS}/reviews", params={"case_id": case["id"], "state": "pending"}, headers=headers
    )
    assert page.status_code == 200, page.text
    (review,) = page.json()["items"]
    return review
