"""Administrative divisions (行政区划, GB/T 2260, revision 2008) as the registry serves them."""

from __future__ import annotations

import gb2260.data
import pytest

from tests.conftest import assert_problem, auth

DIVISIONS = "/api/v1/registry/divisions"
REVISION_2008 = {f"{code:06d}": name for code, name in gb2260.data.data[2008].items()}


async def walk(registry, token: str, limit: int = 500, **params) -> tuple[list[dict], int]:
    """Every item of a listing, and the number of pages it took."""
    items, cursor, pages = [], None, 0
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await registry.get(DIVISIONS, params=query, headers=auth(token))
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            return items, pages


class TestListDivisions:
    async def test_revision_2008_has_3525_codes(self, registry, token_for):
        items, pages = await walk(registry, token_for(roles=("enforcement",)))
        codes = [d["code"] for d in items]
        assert len(codes) == 3525 == len(REVISION_2008)
        assert pages == 8
        assert codes == sorted(codes) and len(set(codes)) == len(codes)
        assert {d["code"]: d["name"] for d in items} == REVISION_2008
        assert {d["revision"] for d in items} == {2008}

    async def test_cities_of_zhejiang_by_parent_code(self, registry, token_for):
        items, _ = await walk(registry, token_for(), parent_code="330000")
        expected = sorted(
            c for c in REVISION_2008 if c.startswith("33") and c.endswith("00") and c != "330000"
        )
        assert [d["code"] for d in items] == expected
        assert len(items) == 11  # Zhejiang's eleven prefecture-level cities
        assert all(d["level"] == "city" and d["parent_code"] == "330000" for d in items)

    async def test_counties_of_ningbo_in_small_pages(self, registry, token_for):
        items, pages = await walk(registry, token_for(), limit=3, parent_code="330200")
        expected = sorted(c for c in REVISION_2008 if c.startswith("3302") and c != "330200")
        assert [d["code"] for d in items] == expected
        assert pages == -(-len(expected) // 3)  # a full last page has no empty page after it
        assert all(d["level"] == "county" for d in items)

    async def test_provinces_by_level(self, registry, token_for):
        items, _ = await walk(registry, token_for(), level="province")
        assert [d["code"] for d in items] == sorted(c for c in REVISION_2008 if c.endswith("0000"))
        assert all(d["parent_code"] is None for d in items)

    async def test_unknown_parent_gives_an_empty_page(self, registry, token_for):
        response = await registry.get(DIVISIONS, params={"parent_code": "999900"}, headers=auth(token_for()))
        assert response.json() == {"items": [], "next_cursor": None}

    @pytest.mark.parametrize(
        "params",
        [
            {"parent_code": "33000"},
            {"parent_code": "abcdef"},
            {"level": "village"},
            {"limit": 501},
            {"cursor": "%%%"},
        ],
    )
    async def test_bad_query(self, registry, token_for, params):
        response = await registry.get(DIVISIONS, params=params, headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == [f"query.{next(iter(params))}"]

    async def test_needs_a_token(self, registry):
        assert_problem(await registry.get(DIVISIONS), 401, "/problems/unauthorized")


class TestReadDivision:
    async def test_ningbo_is_a_city_of_zhejiang(self, registry, token_for):
        response = await registry.get(f"{DIVISIONS}/330200", headers=auth(token_for(roles=("legal",))))
        assert response.status_code == 200
        assert response.json() == {
            "code": "330200",
            "name": "宁波市",
            "level": "city",
            "parent_code": "330000",
            "revision": 2008,
        }

    async def test_a_county_hangs_under_its_city(self, registry, token_for):
        body = (await registry.get(f"{DIVISIONS}/330203", headers=auth(token_for()))).json()
        assert (body["name"], body["level"], body["parent_code"]) == (
            REVISION_2008["330203"],
            "county",
            "330200",
        )

    async def test_unknown_code(self, registry, token_for):
        response = await registry.get(f"{DIVISIONS}/339999", headers=auth(token_for()))
        assert_problem(response, 404, "/problems/not-found")

    @pytest.mark.parametrize("bad", ["33020", "3302000", "abcdef", "33020x"])
    async def test_malformed_code(self, registry, token_for, bad):
        response = await registry.get(f"{DIVISIONS}/{bad}", headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "path.code"
