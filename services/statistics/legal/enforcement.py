"""What the legal-affairs domain asks enforcement before a correction (纠正) is sent: that the
corrected sanctions are ones the case can take — certificates the case concerns, a fine inside the
range of the violation's article — so the answer's event is not refused when it arrives."""

from __future__ import annotations

from typing import Any

from services.common.client import ServiceClient
from services.common.problems import UnprocessableEntity
from services.statistics.legal.schemas import ReviewOpinionIn

ENFORCEMENT = "/api/v1/enforcement"


async def check_correction(services: ServiceClient, case_id: int, data: ReviewOpinionIn) -> None:
    """Refuse a correction the case cannot take: 422 naming the certificate it does not concern;
    enforcement's own problem (409 ``fine-outside-range``, ``unknown-violation``…) for the fine."""
    case: dict[str, Any] = await services.get(f"{ENFORCEMENT}/cases/{case_id}")
    concerned = {s["subject_id"] for s in case.get("subjects", []) if s["subject_type"] == "certificate"}
    penalties = data.penalties or []
    for index, item in enumerate(penalties):
        if item.certificate_id is not None and item.certificate_id not in concerned:
            raise UnprocessableEntity(
                f"Certificate {item.certificate_id} is not one case {case['number']} concerns.",
                errors=[
                    {
                        "loc": f"body.penalties.{index}.certificate_id",
                        "message": "not a certificate of the case",
                        "type": "certificate_not_concerned",
                    }
                ],
            )
    violation = data.violation_code or case.get("violation_code")
    if violation is None or not any(p.kind == "fine" for p in penalties):
        return
    try:
        await _penalty_check(services, case, data, violation)
    except UnprocessableEntity as exc:
        # Enforcement names its own fields: name ours.
        for error in exc.extra.get("errors") or []:
            for theirs, ours in LOCS.items():
                if error.get("loc", "").startswith(theirs):
                    error["loc"] = ours + error["loc"].removeprefix(theirs)
        raise


# The fields of enforcement's penalty check, and those of the opinion they come from.
LOCS = {
    "body.violation": "body.violation_code",
    "body.items": "body.penalties",
    "body.regulation": "body.violation_regulation",
}


async def _penalty_check(
    services: ServiceClient, case: dict[str, Any], data: ReviewOpinionIn, violation: str
) -> None:
    penalties = data.penalties or []
    await services.post(
        f"{ENFORCEMENT}/penalty-checks",
        json={
            "violation": violation,
            "regulation": data.violation_regulation
            if data.violation_code
            else case.get("violation_regulation"),
            "party_kind": case["party_kind"],
            "items": [
                {"kind": p.kind, **({"amount": str(p.amount)} if p.amount is not None else {})}
                for p in penalties
            ],
            **({"goods_value": str(case["goods_value"])} if case.get("goods_value") is not None else {}),
        },
    )
