"""Permission dependencies and loaders: a route declares the roles it needs and loads its
object through a loader that answers the same 404 for missing and out of scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, Path

from services.common.app import create_service_app
from services.common.auth import Principal, Role
from services.common.deps import Authorize, SessionDep, scoped_loader
from services.registry.app import AUDIT
from services.registry.config import RegistrySettings
from tests.common.test_problems import assert_problem
from tests.conftest import auth

PREFIX = "/api/v1/loaders"
PROVINCE = {"id": 8, "path": "1.8."}
CITY = {"id": 80, "path": "1.8.80."}
OTHER_PROVINCE = {"id": 9, "path": "1.9."}


@dataclass
class Thing:
    id: int
    bureau_path: str


@dataclass
class Case:
    number: str
    home: str


THINGS = {1: Thing(1, "1.8."), 2: Thing(2, "1.8.80."), 3: Thing(3, "1.9.")}
CASES = {"ZJ-2026-001": Case("ZJ-2026-001", "1.8.")}
sessions_seen: list[object] = []


async def fetch_thing(session, thing_id: int) -> Thing | None:
    sessions_seen.append(session)
    return THINGS.get(thing_id)


async def fetch_case(session, number: str) -> Case | None:
    return CASES.get(number)


ThingDep = Annotated[Thing, Depends(scoped_loader(fetch_thing, noun="thing"))]
AdminThingDep = Annotated[Thing, Depends(scoped_loader(fetch_thing, noun="thing", roles=(Role.ADMIN,)))]
ReadThingDep = Annotated[Thing, Depends(scoped_loader(fetch_thing, noun="thing", read_only=True))]
CaseDep = Annotated[
    Case,
    Depends(
        scoped_loader(
            fetch_case,
            noun="case",
            param="case_number",
            id_type=Annotated[str, Path(pattern=r"^[A-Z]{2}-\d{4}-\d{3}$")],
            bureau_path=lambda case: case.home,
        )
    ),
]
AdminDep = Authorize(Role.ADMIN)


def loader_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    @router.get("/things/{thing_id}")
    async def get_thing(thing: ThingDep, session: SessionDep) -> dict:
        return {"id": thing.id, "same_session": sessions_seen[-1] is session}

    @router.get("/read-things/{thing_id}")
    async def read_thing(thing: ReadThingDep) -> dict:
        return {"id": thing.id}

    @router.get("/admin-things/{thing_id}")
    async def get_admin_thing(thing: AdminThingDep) -> dict:
        return {"id": thing.id}

    @router.get("/cases/{case_number}")
    async def get_case(case: CaseDep) -> dict:
        return {"number": case.number}

    @router.get("/administration")
    async def administration(principal: AdminDep) -> dict:
        assert isinstance(principal, Principal)
        return {"account_id": principal.account_id}

    return router


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(
        name="loaders",
        title="t",
        description="t",
        settings=RegistrySettings(),
        routers=[loader_router()],
        audit=AUDIT,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://loaders") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


class TestScopedLoader:
    @pytest.mark.parametrize(("bureau", "thing_id"), [(PROVINCE, 1), (PROVINCE, 2), (CITY, 2)])
    async def test_an_object_in_scope_is_loaded(self, client, token_for, bureau, thing_id):
        response = await client.get(f"{PREFIX}/things/{thing_id}", headers=auth(token_for(bureau)))
        assert response.status_code == 200, response.text
        assert response.json() == {"id": thing_id, "same_session": True}

    async def test_out_of_scope_and_missing_answer_the_same_404(self, client, token_for):
        token = token_for(CITY)
        outside = await client.get(f"{PREFIX}/things/1", headers=auth(token))  # the province's
        foreign = await client.get(f"{PREFIX}/things/3", headers=auth(token_for(PROVINCE)))
        missing = await client.get(f"{PREFIX}/things/99", headers=auth(token))
        for response, thing_id in ((outside, 1), (foreign, 3), (missing, 99)):
            problem = assert_problem(response, 404, "/problems/not-found")
            assert problem["detail"] == f"Thing {thing_id} not found."

    async def test_the_read_session_serves_too(self, client, token_for):
        response = await client.get(f"{PREFIX}/read-things/2", headers=auth(token_for(CITY)))
        assert response.json() == {"id": 2}

    async def test_the_path_parameter_is_validated(self, client, token_for):
        response = await client.get(f"{PREFIX}/things/0", headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "path.thing_id"

    async def test_a_named_parameter_of_its_own_type(self, client, token_for):
        found = await client.get(f"{PREFIX}/cases/ZJ-2026-001", headers=auth(token_for(PROVINCE)))
        hidden = await client.get(f"{PREFIX}/cases/ZJ-2026-001", headers=auth(token_for(OTHER_PROVINCE)))
        malformed = await client.get(f"{PREFIX}/cases/zj-1", headers=auth(token_for()))
        assert found.json() == {"number": "ZJ-2026-001"}
        assert assert_problem(hidden, 404, "/problems/not-found")["detail"] == "Case ZJ-2026-001 not found."
        assert_problem(malformed, 422, "/problems/validation-error")

    async def test_roles_are_checked_before_anything_is_read(self, client, token_for):
        refused = await client.get(f"{PREFIX}/admin-things/99", headers=auth(token_for(roles=("legal",))))
        assert_problem(refused, 403, "/problems/role-required")
        allowed = await client.get(f"{PREFIX}/admin-things/1", headers=auth(token_for(PROVINCE)))
        assert allowed.json() == {"id": 1}

    async def test_no_token_is_401(self, client):
        assert_problem(await client.get(f"{PREFIX}/things/1"), 401, "/problems/unauthorized")

    def test_the_document_shows_the_path_parameter_once(self, client):
        operation = client.app.openapi()["paths"][f"{PREFIX}/things/{{thing_id}}"]["get"]
        parameters = [p for p in operation["parameters"] if p["in"] == "path"]
        assert [p["name"] for p in parameters] == ["thing_id"]
        assert parameters[0]["schema"]["type"] == "integer" and parameters[0]["schema"]["minimum"] == 1


class TestAuthorize:
    async def test_a_principal_with_the_role_passes(self, client, token_for):
        response = await client.get(f"{PREFIX}/administration", headers=auth(token_for(account_id="adm-1")))
        assert response.json() == {"account_id": "adm-1"}

    async def test_a_principal_without_it_is_403(self, client, token_for):
        response = await client.get(
            f"{PREFIX}/administration", headers=auth(token_for(roles=("enforcement",)))
        )
        assert_problem(response, 403, "/problems/role-required")
