"""Supervision coverage (监管覆盖面): the share of a subtree's certification bodies, auditors,
certified enterprises and certificates inspected at least once in a period, counted in SQL."""

from __future__ import annotations

from datetime import date

from services.common.auth import Role
from services.registry.inspections.models import Inspection
from tests.conftest import assert_problem, auth
from tests.factories import chain_of, create_bureau, create_provincial_unit, store

URL = "/api/v1/registry/supervision-coverage"
KINDS = ("body", "auditor", "enterprise", "certificate")


async def coverage_world(registry, token_for) -> dict:
    """A province with a city and a county, each keeping one chain; inspections of some of it."""
    national = token_for()
    province = await create_provincial_unit(registry, national, "quality_supervision", pilot="none")
    city = await create_bureau(registry, national, province, "city", "130100")
    county = await create_bureau(registry, national, city, "county", "130102")
    chains = {"city": await chain_of(registry, city), "county": await chain_of(registry, county)}
    return {"province": province, "city": city, "county": county, "chains": chains}


async def inspect(registry, bureau: dict, target_type: str, target, on: str) -> None:
    await store(
        registry,
        Inspection(
            bureau_id=bureau["id"],
            bureau_path=bureau["path"],
            target_type=target_type,
            target_id=target.id,
            inspected_on=date.fromisoformat(on),
            findings="抽查发现问题",
            result="compliant",
            recorded_by="test",
        ),
    )


def figures(body: dict) -> dict[str, tuple[int, int]]:
    return {k["kind"]: (k["total"], k["inspected"]) for k in body["kinds"]}


async def test_coverage_counts_the_subtree_and_the_inspections_of_the_period(registry, token_for):
    w = await coverage_world(registry, token_for)
    county_chain, city_chain = w["chains"]["county"], w["chains"]["city"]
    # The county's certificate twice in May (counted once), its enterprise in April, the city's
    # body in May by the county's bureau (who inspects does not matter, whose record it is does).
    await inspect(registry, w["city"], "certificate", county_chain["certificate"], "2026-05-03")
    await inspect(registry, w["county"], "certificate", county_chain["certificate"], "2026-05-20")
    await inspect(registry, w["county"], "enterprise", county_chain["enterprise"], "2026-04-30")
    await inspect(registry, w["county"], "body", city_chain["body"], "2026-05-31")
    await inspect(
        registry, w["county"], "product", county_chain["product"], "2026-05-10"
    )  # not a kind counted
    service = auth(token_for(roles=(Role.SERVICE,)))

    may = {"from": "2026-05-01", "to": "2026-05-31"}
    province = await registry.get(URL, params={"bureau_id": w["province"]["id"], **may}, headers=service)
    assert province.status_code == 200, province.text
    assert figures(province.json()) == {
        "body": (2, 1),
        "auditor": (2, 0),
        "enterprise": (2, 0),
        "certificate": (2, 1),
    }
    assert [k["share"] for k in province.json()["kinds"]] == [0.5, 0.0, 0.0, 0.5]
    county = await registry.get(URL, params={"bureau_id": w["county"]["id"], **may}, headers=service)
    assert figures(county.json()) == {
        "body": (1, 0),
        "auditor": (1, 0),
        "enterprise": (1, 0),
        "certificate": (1, 1),
    }
    spring = {"from": "2026-04-01", "to": "2026-06-30"}
    county = await registry.get(URL, params={"bureau_id": w["county"]["id"], **spring}, headers=service)
    assert figures(county.json())["enterprise"] == (1, 1)
    # The period's bounds are inclusive; nothing outside them counts.
    june = await registry.get(
        URL,
        params={"bureau_id": w["province"]["id"], "from": "2026-05-31", "to": "2026-06-30"},
        headers=service,
    )
    assert figures(june.json())["body"] == (2, 1)
    assert figures(june.json())["certificate"] == (2, 0)

    # The province's administrator reads its own subtree, the bureau left out meaning its own.
    admin = auth(token_for(w["province"], roles=(Role.ADMIN,)))
    own = await registry.get(URL, params=may, headers=admin)
    assert (own.json()["bureau_id"], figures(own.json())["body"]) == (w["province"]["id"], (2, 1))


async def test_coverage_is_scoped_and_checks_its_input(registry, token_for):
    w = await coverage_world(registry, token_for)
    may = {"from": "2026-05-01", "to": "2026-05-31"}
    county_admin = auth(token_for(w["county"], roles=(Role.ADMIN,)))
    for bureau_id in (w["city"]["id"], 10**12):
        response = await registry.get(URL, params={"bureau_id": bureau_id, **may}, headers=county_admin)
        assert_problem(response, 404, "/problems/not-found")
    for roles in ((Role.ENFORCEMENT,), (Role.LEGAL,), (Role.SUPERVISION,)):
        response = await registry.get(URL, params=may, headers=auth(token_for(w["county"], roles=roles)))
        assert_problem(response, 403, "/problems/role-required")
    assert (await registry.get(URL, params=may)).status_code == 401
    service = auth(token_for(roles=(Role.SERVICE,)))
    for bad in (
        {"from": "2026-05-31", "to": "2026-05-01"},
        {"from": "2026-05-01"},
        {"from": "2026-02-30", "to": "2026-03-01"},
        {**may, "bureau_id": 0},
    ):
        assert_problem(
            await registry.get(URL, params=bad, headers=service), 422, "/problems/validation-error"
        )


async def test_the_bureau_list_narrows_to_a_subtree(registry, token_for):
    w = await coverage_world(registry, token_for)
    national = auth(token_for())
    listed = await registry.get(
        "/api/v1/registry/bureaus", params={"under": w["city"]["id"]}, headers=national
    )
    assert [b["id"] for b in listed.json()["items"]] == [w["city"]["id"], w["county"]["id"]]
    county_admin = auth(token_for(w["county"], roles=(Role.ADMIN,)))
    outside = await registry.get(
        "/api/v1/registry/bureaus", params={"under": w["city"]["id"]}, headers=county_admin
    )
    assert_problem(outside, 404, "/problems/not-found")
