"""A small world of the enforcement procedure: a province with a city and a county bureau, the
posts of the enforcement responsibility system with their steps, and officers holding them.

The enforcement tests take their leads and cases through it, and the registry's dossiers
read the cases it makes; the ``world`` fixture of tests/conftest.py builds it once a run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from services.common.auth import Role

# The demo posts' step lists: what a post of each kind lists in a bureau that runs the procedure.
from services.registry.demo import HEAD_STEPS, LEGAL_STEPS, OFFICER_STEPS
from tests.conftest import auth
from tests.factories import create_bureau, create_officer, create_provincial_unit, unique


@dataclass
class Person:
    """An officer and a way to sign its tokens: a token lives minutes, a test run longer."""

    officer: dict
    sign: Callable[[], str]

    @property
    def token(self) -> str:
        return self.sign()

    @property
    def id(self) -> int:
        return self.officer["id"]


@dataclass
class World:
    province: dict
    city: dict
    county: dict
    other_county: dict
    officers: list[Person] = field(default_factory=list)  # enforcement officers of the county
    head: Person | None = None
    legal: Person | None = None
    uncredentialed: Person | None = None
    no_post: Person | None = None
    stranger: Person | None = None  # an enforcement officer of a sibling county
    dual: Person | None = None  # an enforcement officer whose post also lists the review steps

    def headers(self, person: Person) -> dict[str, str]:
        return auth(person.token)


async def _post(registry, token: str, bureau: dict, body: str, steps: list[str]) -> dict:
    response = await registry.post(
        f"/api/v1/registry/bureaus/{bureau['id']}/posts",
        json={"body": body, "name": unique("岗位")[:30], "duties": "执法责任制", "steps": steps},
        headers=auth(token),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def build_world(registry, token_for) -> World:
    national = token_for()
    province = await create_provincial_unit(registry, national, "quality_supervision")
    city = await create_bureau(registry, national, province, "city", "130100")
    county = await create_bureau(registry, national, city, "county", "130102")
    other_county = await create_bureau(registry, national, city, "county", "130104")
    officer_post = await _post(registry, national, county, "enforcement", OFFICER_STEPS)
    head_post = await _post(registry, national, county, "enforcement", HEAD_STEPS)
    legal_post = await _post(registry, national, city, "legal", LEGAL_STEPS)
    other_post = await _post(registry, national, other_county, "enforcement", OFFICER_STEPS)

    async def person(bureau, body, post, roles, credential=True) -> Person:
        officer = await create_officer(
            registry,
            national,
            bureau,
            body=body,
            credential=credential,
            **({"post_id": post["id"]} if post else {}),
        )
        return Person(officer, lambda: token_for(bureau, roles=roles, officer_id=officer["id"], body=body))

    w = World(province, city, county, other_county)
    w.officers = [await person(county, "enforcement", officer_post, (Role.ENFORCEMENT,)) for _ in range(3)]
    w.head = await person(county, "enforcement", head_post, (Role.HEAD,))
    w.legal = await person(city, "legal", legal_post, (Role.LEGAL,))
    w.uncredentialed = await person(
        county, "enforcement", officer_post, (Role.ENFORCEMENT,), credential=False
    )
    w.no_post = await person(county, "enforcement", None, (Role.ENFORCEMENT, Role.HEAD))
    w.stranger = await person(other_county, "enforcement", other_post, (Role.ENFORCEMENT,))
    dual_post = await _post(registry, national, county, "enforcement", OFFICER_STEPS + LEGAL_STEPS)
    w.dual = await person(county, "enforcement", dual_post, (Role.ENFORCEMENT, Role.LEGAL))
    return w
