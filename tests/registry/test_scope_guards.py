"""Scope is a subtree of the bureau tree, compared path segment by path segment.

Bureau paths are strings of ids ending in a dot ("1.42."), so a comparison that
drops the dot would put bureau 427 inside bureau 42's subtree. The tests here
build two provincial units whose ids share a decimal prefix (P and P7) and show
that each is a stranger to the other on every read, list and write.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.common.auth import Principal, PrincipalKind
from services.registry.network.models import Bureau, BureauLevel, BureauSystem, Officer, Post
from services.registry.network.repository import get_bureau
from services.registry.network.service import insert_bureau
from tests.conftest import auth
from tests.factories import create_bureau, create_officer, unique

BUREAUS = "/api/v1/registry/bureaus"
OFFICERS = "/api/v1/registry/officers"
NOT_FOUND = "/problems/not-found"


def principal(path: str) -> Principal:
    return Principal(
        account_id="scope-test",
        kind=PrincipalKind.OFFICER,
        bureau_id=int(path.rstrip(".").rsplit(".", 1)[-1]),
        bureau_path=path,
    )


class TestInScope:
    @pytest.mark.parametrize(
        ("own", "other", "expected"),
        [
            ("1.2.", "1.2.", True),
            ("1.2.", "1.2.5.", True),
            ("1.2.", "1.2.5.77.", True),
            ("1.", "1.20.3.", True),
            ("1.2.", "1.20.", False),
            ("1.2.", "1.2", False),
            ("1.2.", "1.21.5.", False),
            ("1.2.", "1.", False),
            ("1.2.5.", "1.2.", False),
            ("1.2.", "11.2.", False),
        ],
    )
    def test_subtree_is_by_whole_segments(self, own, other, expected):
        assert principal(own).in_scope(other) is expected

    @pytest.mark.parametrize(("path", "national"), [("1.", True), ("1.2.", False), ("1.2.3.", False)])
    def test_only_the_root_is_national(self, path, national):
        assert principal(path).is_national is national


@pytest.fixture(scope="module")
async def siblings(registry, token_for) -> dict:
    """Provincial units P and P000000007 (ids sharing a decimal prefix), each with a city
    and an officer; a post in the second. Its id lies far beyond any the bureau sequence
    will hand out, so runs that share a database never collide on it."""
    async with registry.app.state.sessionmaker() as session:
        prefix_id = (
            await session.exec(text("SELECT nextval(pg_get_serial_sequence('bureau', 'id'))"))
        ).scalar_one()
        sibling_id = prefix_id * 10**9 + 7
        national = await get_bureau(session, 1)
        for bureau_id in (prefix_id, sibling_id):
            await insert_bureau(
                session,
                national,
                name=unique("质量技术监督局"),
                level=BureauLevel.PROVINCIAL,
                system=BureauSystem.QUALITY_SUPERVISION,
                division_code=None,
                pilot="none",
                bureau_id=bureau_id,
            )
        await session.commit()
    token = token_for()
    units = {}
    for key, bureau_id in (("p", prefix_id), ("p7", sibling_id)):
        response = await registry.get(f"{BUREAUS}/{bureau_id}", headers=auth(token))
        assert response.status_code == 200, response.text
        units[key] = response.json()
    assert units["p7"]["path"].startswith(units["p"]["path"].rstrip("."))
    result = {**units}
    for key in ("p", "p7"):
        result[f"{key}_city"] = await create_bureau(registry, token, units[key], "city", "330100")
        result[f"{key}_officer"] = await create_officer(registry, token, units[key])
        result[f"{key}_city_officer"] = await create_officer(registry, token, result[f"{key}_city"])
    posts = []
    for body in ("enforcement", "legal", "supervision"):
        response = await registry.post(
            f"{BUREAUS}/{units['p7']['id']}/posts",
            json={"body": body, "name": unique("岗位")},
            headers=auth(token),
        )
        assert response.status_code == 201, response.text
        posts.append(response.json())
    result["p7_post"], result["p7_posts"] = posts[0], posts
    return result


def assert_not_found(response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == NOT_FOUND


async def all_items(registry, token: str, url: str, limit: int = 1, **params) -> list[dict]:
    """Every item, walked one keyset page at a time so the cursor takes part."""
    items, cursor = [], None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await registry.get(url, params=query, headers=auth(token))
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if not cursor:
            return items


class TestReads:
    @pytest.mark.parametrize("hidden", ["p7", "p7_city"])
    async def test_bureau_of_the_prefix_sibling_is_not_found(self, registry, token_for, siblings, hidden):
        token = token_for(siblings["p"], roles=("enforcement",))
        assert_not_found(await registry.get(f"{BUREAUS}/{siblings[hidden]['id']}", headers=auth(token)))

    async def test_own_bureaus_are_found(self, registry, token_for, siblings):
        token = token_for(siblings["p"], roles=("enforcement",))
        for key in ("p", "p_city"):
            response = await registry.get(f"{BUREAUS}/{siblings[key]['id']}", headers=auth(token))
            assert response.status_code == 200, key

    @pytest.mark.parametrize("hidden", ["p7_officer", "p7_city_officer"])
    async def test_officer_of_the_prefix_sibling_is_not_found(self, registry, token_for, siblings, hidden):
        token = token_for(siblings["p"], roles=("enforcement",))
        assert_not_found(await registry.get(f"{OFFICERS}/{siblings[hidden]['id']}", headers=auth(token)))

    @pytest.mark.parametrize("hidden", ["p7", "p7_city"])
    async def test_bodies_of_a_bureau_out_of_scope_are_not_found(self, registry, token_for, siblings, hidden):
        token = token_for(siblings["p"], roles=("enforcement",))
        response = await registry.get(f"{BUREAUS}/{siblings[hidden]['id']}/bodies", headers=auth(token))
        assert_not_found(response)

    async def test_bodies_of_a_bureau_of_another_province_are_not_found(self, registry, token_for, siblings):
        token = token_for(siblings["p7"], roles=("enforcement",))
        response = await registry.get(f"{BUREAUS}/{siblings['p_city']['id']}/bodies", headers=auth(token))
        assert_not_found(response)

    async def test_bodies_of_an_own_bureau_are_listed(self, registry, token_for, siblings):
        token = token_for(siblings["p"], roles=("enforcement",))
        response = await registry.get(f"{BUREAUS}/{siblings['p_city']['id']}/bodies", headers=auth(token))
        assert response.status_code == 200
        assert sorted(b["kind"] for b in response.json()) == ["enforcement", "legal", "supervision"]

    async def test_posts_of_an_own_bureau_are_listed_in_pages(self, registry, token_for, siblings):
        token = token_for(siblings["p7"], roles=("enforcement",))
        url = f"{BUREAUS}/{siblings['p7']['id']}/posts"
        walked = [p["id"] for p in await all_items(registry, token, url)]
        whole = await registry.get(url, params={"limit": 100}, headers=auth(token))
        assert walked == [p["id"] for p in whole.json()["items"]]
        assert walked == sorted(set(walked))
        assert {p["id"] for p in siblings["p7_posts"]} <= set(walked)
        assert all(p["bureau_id"] == siblings["p7"]["id"] for p in whole.json()["items"])

    async def test_posts_of_the_prefix_sibling_are_not_found(self, registry, token_for, siblings):
        token = token_for(siblings["p"], roles=("enforcement",))
        response = await registry.get(f"{BUREAUS}/{siblings['p7']['id']}/posts", headers=auth(token))
        assert_not_found(response)


class TestLists:
    async def test_bureau_list_holds_no_bureau_of_the_prefix_sibling(self, registry, token_for, siblings):
        token = token_for(siblings["p"], roles=("enforcement",))
        ids = {b["id"] for b in await all_items(registry, token, BUREAUS)}
        assert ids == {siblings["p"]["id"], siblings["p_city"]["id"]}

    async def test_officer_list_holds_no_officer_of_the_prefix_sibling(self, registry, token_for, siblings):
        token = token_for(siblings["p"], roles=("enforcement",))
        ids = {o["id"] for o in await all_items(registry, token, OFFICERS)}
        assert ids == {siblings["p_officer"]["id"], siblings["p_city_officer"]["id"]}

    @pytest.mark.parametrize(
        ("viewer", "parent"),
        [("p", "p7"), ("p", "p7_city"), ("p7", "p"), ("p7_city", "p")],
    )
    async def test_parent_filter_into_another_subtree_gives_nothing(
        self, registry, token_for, siblings, viewer, parent
    ):
        token = token_for(siblings[viewer], roles=("enforcement",))
        assert await all_items(registry, token, BUREAUS, parent_id=siblings[parent]["id"]) == []

    async def test_parent_filter_inside_the_subtree_finds_the_children(self, registry, token_for, siblings):
        token = token_for(siblings["p"], roles=("enforcement",))
        items = await all_items(registry, token, BUREAUS, parent_id=siblings["p"]["id"])
        assert [b["id"] for b in items] == [siblings["p_city"]["id"]]

    @pytest.mark.parametrize("bureau", ["p7", "p7_city"])
    async def test_bureau_filter_on_officers_into_another_subtree_gives_nothing(
        self, registry, token_for, siblings, bureau
    ):
        token = token_for(siblings["p"], roles=("enforcement",))
        assert await all_items(registry, token, OFFICERS, bureau_id=siblings[bureau]["id"]) == []

    async def test_bureau_filter_on_officers_inside_the_subtree(self, registry, token_for, siblings):
        token = token_for(siblings["p"], roles=("enforcement",))
        items = await all_items(registry, token, OFFICERS, bureau_id=siblings["p_city"]["id"])
        assert [o["id"] for o in items] == [siblings["p_city_officer"]["id"]]


async def bureau_version(registry, bureau_id: int) -> tuple[str, int]:
    async with registry.app.state.sessionmaker() as session:
        bureau = await session.get(Bureau, bureau_id)
        return bureau.name, bureau.version


class TestWrites:
    async def test_cannot_create_a_bureau_under_the_prefix_sibling(self, registry, token_for, siblings):
        name = unique("市局")
        response = await registry.post(
            BUREAUS,
            headers=auth(token_for(siblings["p"])),
            json={
                "parent_id": siblings["p7"]["id"],
                "name": name,
                "level": "city",
                "division_code": "330200",
            },
        )
        assert_not_found(response)
        async with registry.app.state.sessionmaker() as session:
            found = await session.exec(
                text("SELECT count(*) FROM bureau WHERE name = :n"), params={"n": name}
            )
            assert found.scalar_one() == 0

    @pytest.mark.parametrize("hidden", ["p7", "p7_city"])
    async def test_cannot_rename_a_bureau_of_the_prefix_sibling(self, registry, token_for, siblings, hidden):
        bureau_id = siblings[hidden]["id"]
        before = await bureau_version(registry, bureau_id)
        response = await registry.patch(
            f"{BUREAUS}/{bureau_id}",
            json={"name": unique("改名")},
            headers={**auth(token_for(siblings["p"])), "If-Match": "*"},
        )
        assert_not_found(response)
        assert await bureau_version(registry, bureau_id) == before

    async def test_cannot_register_an_officer_in_the_prefix_sibling(self, registry, token_for, siblings):
        name = unique("员")[:20]
        response = await registry.post(
            OFFICERS,
            headers=auth(token_for(siblings["p"])),
            json={"bureau_id": siblings["p7"]["id"], "body": "enforcement", "name": name},
        )
        assert_not_found(response)
        async with registry.app.state.sessionmaker() as session:
            found = await session.exec(
                text("SELECT count(*) FROM officer WHERE name = :n"), params={"n": name}
            )
            assert found.scalar_one() == 0

    @pytest.mark.parametrize("hidden", ["p7_officer", "p7_city_officer"])
    async def test_cannot_change_an_officer_of_the_prefix_sibling(
        self, registry, token_for, siblings, hidden
    ):
        officer_id = siblings[hidden]["id"]
        response = await registry.patch(
            f"{OFFICERS}/{officer_id}",
            json={"active": False},
            headers={**auth(token_for(siblings["p"])), "If-Match": "*"},
        )
        assert_not_found(response)
        async with registry.app.state.sessionmaker() as session:
            officer = await session.get(Officer, officer_id)
            assert (officer.active, officer.version) == (True, 1)

    async def test_cannot_create_a_post_in_the_prefix_sibling(self, registry, token_for, siblings):
        name = unique("岗位")
        response = await registry.post(
            f"{BUREAUS}/{siblings['p7']['id']}/posts",
            json={"body": "enforcement", "name": name},
            headers=auth(token_for(siblings["p"])),
        )
        assert_not_found(response)
        async with registry.app.state.sessionmaker() as session:
            found = await session.exec(text("SELECT count(*) FROM post WHERE name = :n"), params={"n": name})
            assert found.scalar_one() == 0

    async def test_the_prefix_sibling_still_writes_its_own(self, registry, token_for, siblings):
        # The refusals above are about scope: P7's own administrator may do the same.
        response = await registry.post(
            f"{BUREAUS}/{siblings['p7']['id']}/posts",
            json={"body": "legal", "name": unique("岗位")},
            headers=auth(token_for(siblings["p7"])),
        )
        assert response.status_code == 201, response.text
        async with registry.app.state.sessionmaker() as session:
            assert (await session.get(Post, response.json()["id"])).bureau_id == siblings["p7"]["id"]
