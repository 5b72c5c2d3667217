"""The demo cases `make run` seeds: the registry's demo posts and officers, then each stage of
the procedure taken through the API by those officers; a second run changes nothing."""

from __future__ import annotations

from datetime import date

import pytest

from services.common.auth import Role
from services.enforcement.demo import DemoPerson, find_demo_officers, seed_demo_cases
from services.registry.demo import seed_demo_chain, seed_demo_officers
from services.registry.models import AUDIT
from services.registry.network.models import Bureau
from tests.conftest import auth
from tests.enforcement.flow import API
from tests.factories import pilot_unit
from tests.statistics.legal_flow import in_process_answerer

pytestmark = pytest.mark.asyncio(loop_scope="session")

STAGES = ["closed", "decided", "investigating", "under_review", "verifying"]
ROLES = {
    "officer1": (Role.ENFORCEMENT,),
    "officer2": (Role.ENFORCEMENT,),
    "head": (Role.HEAD,),
    "legal": (Role.LEGAL,),
}


async def _seed_registry(registry, unit: dict) -> dict[str, int]:
    async with registry.app.state.sessionmaker() as session:
        national = await session.get(Bureau, 1)
        bureau = await session.get(Bureau, unit["id"])
        await seed_demo_chain(session, AUDIT, national, [bureau], date(2026, 11, 29))
        summary = await seed_demo_officers(session, AUDIT, [bureau])
        await session.commit()
    return summary


async def test_demo_cases_at_each_stage_seeded_once(registry, enforcement, statistics, token_for):
    unit = await pilot_unit(registry, token_for(), "quality_supervision", "330000")
    await _seed_registry(registry, unit)
    assert await _seed_registry(registry, unit) == {"demo_posts_created": 0, "demo_officers_created": 0}

    officers = await find_demo_officers(registry, auth(token_for(unit)))
    assert [o["credential_number"] is not None for o in officers.values()] == [True, True, True, False]
    people = {
        key: DemoPerson(
            officer["id"],
            auth(token_for(unit, roles=ROLES[key], officer_id=officer["id"], body=officer["body"])),
        )
        for key, officer in officers.items()
    }

    # The reviews are answered in the legal-affairs queue; here the events are delivered in process.
    answerer = in_process_answerer(statistics, enforcement, people["legal"].headers, people["head"].headers)
    first = await seed_demo_cases(enforcement, registry, people, unit["id"], answerer)
    assert first == {"demo_cases_made": {s: s for s in STAGES}, "demo_cases_kept": []}
    again = await seed_demo_cases(enforcement, registry, people, unit["id"], answerer)
    assert again == {"demo_cases_made": {}, "demo_cases_kept": STAGES}

    head = people["head"].headers
    leads = []
    for state in ("verifying", "opened"):
        page = (await enforcement.get(f"{API}/leads", params={"state": state}, headers=head)).json()
        leads += [lead for lead in page["items"] if (lead["source_ref"] or "").startswith("DEMO-CASE")]
    assert sorted(lead["source_ref"].rsplit("-", 1)[1] for lead in leads) == sorted(STAGES)
    cases = {}
    for lead in leads:
        if lead["case_id"] is None:
            assert lead["state"] == "verifying" and lead["next_due"] <= "2026-12-31"
            continue
        case = (await enforcement.get(f"{API}/cases/{lead['case_id']}", headers=head)).json()
        cases[case["state"]] = case
        deadlines = await enforcement.get(f"{API}/cases/{case['id']}/deadlines", headers=head)
        assert deadlines.status_code == 200, deadlines.text
        assert all(d["due"] <= "2026-12-31" for d in deadlines.json()), deadlines.json()
    assert sorted(cases) == ["closed", "decided", "investigating", "under_review"]
    assert cases["closed"]["paid_total"] == "60000.00"
    decided = cases["decided"]
    assert decided["needs_legal_review"] is True
    revocation = next(
        p for p in decided["penalties"] if p["stage"] == "decided" and p["kind"] == "revoke_certificate"
    )
    assert revocation["registry_state"] == "pending" and revocation["certificate_number"]
