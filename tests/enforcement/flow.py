"""Helpers that take a lead and a case through the procedure as the world's officers."""

from __future__ import annotations

import uuid
from typing import Any

from services.common.events import Event
from services.enforcement import models as enforcement_models
from services.enforcement.cases.consumers import HANDLERS as ENFORCEMENT_HANDLERS
from tests.conftest import auth
from tests.events_flow import deliver, envelope, outbox_events, worker_ctx
from tests.factories import chain_of

API = "/api/v1/enforcement"


async def subjects(registry, world) -> dict:
    """A certification chain kept by the world's county: body, auditor, enterprise, product, certificate."""
    rows = await chain_of(registry, world.county)
    return {kind: row.model_dump(warnings=False) for kind, row in rows.items()}


async def new_lead(
    enforcement, person, subject_type: str, subject_id: int, received_on: str = "2026-06-01", **extra
) -> dict:
    response = await enforcement.post(
        f"{API}/leads",
        json={
            "source": "complaint",
            "subject_type": subject_type,
            "subject_id": subject_id,
            "summary": "举报：未经认证出厂销售",
            "received_on": received_on,
            **extra,
        },
        headers=auth(person.token),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def lead_step(enforcement, person, lead: dict, step: str, **fields) -> Any:
    return await enforcement.post(
        f"{API}/leads/{lead['id']}/transitions",
        json={"step": step, **fields},
        headers={**auth(person.token), "If-Match": f'"{lead["version"]}"'},
    )


async def open_case(
    enforcement,
    world,
    lead: dict,
    on: str = "2026-06-03",
    officers=None,
    certificate_ids=(),
    party_kind: str = "organisation",
) -> dict:
    officers = world.officers[:2] if officers is None else officers
    response = await lead_step(
        enforcement,
        world.head,
        lead,
        "open_case",
        occurred_on=on,
        reason="初步查实，符合立案条件",
        case={
            "title": "未经认证销售强制性认证产品案",
            "party_name": lead["subject_name"],
            "party_kind": party_kind,
            "officer_ids": [p.id for p in officers],
            "certificate_ids": list(certificate_ids),
        },
    )
    assert response.status_code == 200, response.text
    case = await enforcement.get(response.headers["Location"], headers=auth(world.head.token))
    assert case.status_code == 200, case.text
    return case.json()


async def step(enforcement, person, case: dict, step: str, **fields) -> Any:
    """The step's raw response; ``case['version']`` names the version it is based on."""
    return await enforcement.post(
        f"{API}/cases/{case['id']}/transitions",
        json={"step": step, **fields},
        headers={**auth(person.token), "If-Match": f'"{case["version"]}"'},
    )


async def ok(enforcement, person, case: dict, name: str, **fields) -> dict:
    response = await step(enforcement, person, case, name, **fields)
    assert response.status_code == 200, response.text
    return response.json()


async def review_answer(
    enforcement, reader, case: dict, opinion: str = "agree", *, expect: str = "applied", **fields
) -> dict:
    """The legal-affairs body's opinion on the case's pending review, delivered to enforcement's
    inbox as the statistics service sends it (``statistics.review.answered``): the only way a
    review step is taken. ``fields``: reason, answered_on, penalties, violation_code… Returns the
    case as ``reader`` reads it afterwards."""
    *_, requested = await outbox_events(
        enforcement,
        enforcement_models.OutboxEvent,
        type="enforcement.review.requested",
        aggregate_id=str(case["id"]),
    )
    review_id = uuid.uuid4().int % 10**12
    payload = {
        "review_id": review_id,
        "case_id": case["id"],
        "outcome": "returned" if opinion == "investigate_further" else "approved",
        "opinion": opinion,
        "reason": fields.pop("reason", "同意"),
        **fields,
    }
    event = envelope(
        "statistics.review.answered",
        "review",
        review_id,
        2,
        payload,
        bureau_id=requested["bureau_id"],
        bureau_path=requested["bureau_path"],
        version=2,
    )
    context = worker_ctx(enforcement, "enforcement", enforcement_models, ENFORCEMENT_HANDLERS)
    Event.model_validate(event)
    assert await deliver(context, event) == [expect]
    return await read_case(enforcement, reader, case)


async def read_case(enforcement, person, case: dict) -> dict:
    response = await enforcement.get(f"{API}/cases/{case['id']}", headers=auth(person.token))
    assert response.status_code == 200, response.text
    return response.json()


def fine(amount: str) -> dict:
    return {"kind": "fine", "amount": amount}


# A hearing requested on 2026-06-29 (a Monday), held on Tuesday 14 July and reported the next day:
# the party's notice is due by 3 July, seven working days before.
HEARING = {
    "host": "听证主持人（法制机构）",
    "host_named_on": "2026-06-30",
    "files_handed_on": "2026-07-01",
    "date_fixed_on": "2026-07-02",
    "hearing_date": "2026-07-14",
    "notice_served_on": "2026-07-02",
    "held_on": "2026-07-14",
    "report_on": "2026-07-15",
}


async def put_hearing(enforcement, person, case: dict, **fields) -> Any:
    """The raw answer of recording the hearing; ``case['version']`` names the case's version."""
    return await enforcement.put(
        f"{API}/cases/{case['id']}/hearing",
        json=fields,
        headers={**auth(person.token), "If-Match": f'"{case["version"]}"'},
    )
