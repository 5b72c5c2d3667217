"""The bureau network: reading, creating and changing bureaus, and scope."""

from __future__ import annotations

import base64
import json

import pytest

from services.registry.models import Bureau
from services.registry.seed import pilot_units
from tests.conftest import assert_problem, auth
from tests.factories import audit_entries, create_bureau, pilot_unit, rows_where, unique

BUREAUS = "/api/v1/registry/bureaus"


@pytest.fixture(scope="module")
async def network(registry, token_for):
    """Zhejiang: the quality-supervision unit with a city and two counties, and the
    entry-exit unit with a branch; Shandong's quality-supervision unit."""
    national = token_for()
    zj_qs = await pilot_unit(registry, national, "quality_supervision", "330000")
    zj_ee = await pilot_unit(registry, national, "entry_exit", "330000")
    sd_qs = await pilot_unit(registry, national, "quality_supervision", "370000")
    ningbo_ee = await pilot_unit(registry, national, "entry_exit", "330200")
    hangzhou = await create_bureau(registry, national, zj_qs, "city", "330100")
    county_a = await create_bureau(registry, national, hangzhou, "county", "330102")
    county_b = await create_bureau(registry, national, hangzhou, "county", "330103")
    branch = await create_bureau(registry, national, zj_ee, "branch", "330100")
    return {
        "zj_qs": zj_qs,
        "zj_ee": zj_ee,
        "sd_qs": sd_qs,
        "ningbo_ee": ningbo_ee,
        "hangzhou": hangzhou,
        "county_a": county_a,
        "county_b": county_b,
        "branch": branch,
    }


async def assert_no_bureau(registry, **fields) -> None:
    """No bureau with these values (the test's own unique name, or a parent made for it)
    was written, nor audited."""
    assert await rows_where(registry, Bureau, **fields) == 0
    assert await audit_entries(registry, "bureau", **fields) == []


class TestSeededNetwork:
    async def test_national_regulator_and_sixteen_pilot_units(self, registry, token_for):
        response = await registry.get(
            BUREAUS, params={"pilot": "provincial", "limit": 100}, headers=auth(token_for())
        )
        # Other tests add pilot units of their own (under other names): the seeded ones are the notice's.
        names = {u["name"] for u in pilot_units()}
        units = [u for u in response.json()["items"] if u["name"] in names]
        assert len(units) == 16
        assert sum(u["system"] == "entry_exit" for u in units) == 6
        assert sum(u["system"] == "quality_supervision" for u in units) == 10
        assert all(u["parent_id"] == 1 and u["level"] == "provincial" for u in units)

    async def test_ningbo_is_a_provincial_unit_with_a_city_jurisdiction(self, network):
        ningbo = network["ningbo_ee"]
        assert ningbo["level"] == "provincial"
        assert ningbo["division_code"] == "330200"
        assert ningbo["division_name"] == "宁波市"

    async def test_every_bureau_has_three_bodies(self, registry, token_for, network):
        response = await registry.get(
            f"{BUREAUS}/{network['county_a']['id']}/bodies", headers=auth(token_for())
        )
        assert sorted(b["kind"] for b in response.json()) == ["enforcement", "legal", "supervision"]


class TestScope:
    async def test_county_cannot_see_another_county_of_its_province(self, registry, token_for, network):
        token = token_for(network["county_a"], roles=("enforcement",))
        assert (
            await registry.get(f"{BUREAUS}/{network['county_a']['id']}", headers=auth(token))
        ).status_code == 200
        response = await registry.get(f"{BUREAUS}/{network['county_b']['id']}", headers=auth(token))
        assert_problem(response, 404, "/problems/not-found")
        # Its own city (an ancestor) is outside its subtree too.
        response = await registry.get(f"{BUREAUS}/{network['hangzhou']['id']}", headers=auth(token))
        assert_problem(response, 404, "/problems/not-found")

    async def test_province_cannot_see_another_province(self, registry, token_for, network):
        token = token_for(network["zj_qs"])
        response = await registry.get(f"{BUREAUS}/{network['sd_qs']['id']}", headers=auth(token))
        assert_problem(response, 404, "/problems/not-found")
        assert (
            await registry.get(f"{BUREAUS}/{network['county_b']['id']}", headers=auth(token))
        ).status_code == 200

    async def test_two_systems_of_one_province_do_not_see_each_other(self, registry, token_for, network):
        qs, ee = token_for(network["zj_qs"]), token_for(network["zj_ee"])
        for token, hidden in (
            (qs, "zj_ee"),
            (qs, "branch"),
            (ee, "zj_qs"),
            (ee, "hangzhou"),
            (ee, "county_a"),
        ):
            response = await registry.get(f"{BUREAUS}/{network[hidden]['id']}", headers=auth(token))
            assert_problem(response, 404, "/problems/not-found")

    async def test_national_regulator_sees_all(self, registry, token_for, network):
        token = token_for()
        for bureau in network.values():
            assert (await registry.get(f"{BUREAUS}/{bureau['id']}", headers=auth(token))).status_code == 200

    async def test_list_holds_only_the_subtree(self, registry, token_for, network):
        token = token_for(network["zj_qs"])
        ids, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await registry.get(BUREAUS, params=params, headers=auth(token))).json()
            ids += [b["id"] for b in page["items"]]
            assert all(b["path"].startswith(network["zj_qs"]["path"]) for b in page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(ids) == len(set(ids)), "keyset pages overlap"
        assert {network[k]["id"] for k in ("zj_qs", "hangzhou", "county_a", "county_b")} <= set(ids)
        assert network["branch"]["id"] not in ids

    async def test_admin_cannot_create_under_a_bureau_out_of_scope(self, registry, token_for, network):
        token = token_for(network["zj_qs"])
        name = unique("市局")
        response = await registry.post(
            BUREAUS,
            headers=auth(token),
            json={
                "parent_id": network["sd_qs"]["id"],
                "name": name,
                "level": "city",
                "division_code": "370100",
            },
        )
        assert_problem(response, 404, "/problems/not-found")
        await assert_no_bureau(registry, name=name)


class TestCreateBureau:
    async def test_provincial_admin_creates_a_city_bureau(self, registry, token_for, network):
        token = token_for(network["zj_qs"])
        name = unique("宁波市质量技术监督局")
        response = await registry.post(
            BUREAUS,
            headers=auth(token),
            json={
                "parent_id": network["zj_qs"]["id"],
                "name": name,
                "level": "city",
                "division_code": "330200",
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["path"] == f"{network['zj_qs']['path']}{body['id']}."
        assert body["system"] == "quality_supervision"
        assert response.headers["location"] == f"{BUREAUS}/{body['id']}"
        assert response.headers["etag"] == '"1"'
        [entry] = await audit_entries(registry, "bureau", body["id"])
        assert entry["action"] == "bureau.created"
        assert (entry["data"]["name"], entry["data"]["parent_id"]) == (name, network["zj_qs"]["id"])

    async def test_non_admin_is_refused(self, registry, token_for, network):
        token = token_for(network["zj_qs"], roles=("enforcement",))
        response = await registry.post(
            BUREAUS,
            headers=auth(token),
            json={
                "parent_id": network["zj_qs"]["id"],
                "name": unique("市局"),
                "level": "city",
                "division_code": "330300",
            },
        )
        assert_problem(response, 403, "/problems/role-required")

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"name": "x"}, "body.name"),
            ({"division_code": "33010"}, "body.division_code"),
            ({"level": "village"}, "body.level"),
            ({"unexpected": 1}, "body.unexpected"),
            ({"parent_id": "abc"}, "body.parent_id"),
        ],
    )
    async def test_malformed_payload_gets_field_errors_and_writes_nothing(
        self, registry, token_for, network, payload, field
    ):
        token = token_for()
        # A city made for this test: any bureau under it was written by this request,
        # whatever the payload's name (a bad name cannot be a unique one).
        city = await create_bureau(registry, token, network["zj_qs"], "city", "330300")
        good = {"parent_id": city["id"], "name": unique("区局"), "level": "county", "division_code": "330302"}
        response = await registry.post(BUREAUS, headers=auth(token), json={**good, **payload})
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert field in [e["loc"] for e in problem["errors"]]
        await assert_no_bureau(registry, parent_id=city["id"])
        await assert_no_bureau(registry, name=good["name"])

    async def test_body_that_is_not_json(self, registry, token_for):
        response = await registry.post(
            BUREAUS, headers={**auth(token_for()), "content-type": "application/json"}, content=b"{not json"
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["body"]

    @pytest.mark.parametrize(
        ("parent", "level", "division", "rule"),
        [
            ("zj_qs", "city", "370100", "jurisdiction-outside-parent"),
            ("zj_qs", "branch", "330100", "bureau-level-not-allowed"),
            ("zj_ee", "city", "330100", "bureau-level-not-allowed"),
            ("hangzhou", "county", "330100", "jurisdiction-level-mismatch"),
            ("county_a", "county", "330102", "bureau-level-not-allowed"),
        ],
    )
    async def test_network_rules(self, registry, token_for, network, parent, level, division, rule):
        name = unique("局")
        response = await registry.post(
            BUREAUS,
            headers=auth(token_for()),
            json={
                "parent_id": network[parent]["id"],
                "name": name,
                "level": level,
                "division_code": division,
            },
        )
        assert_problem(response, 409, f"/problems/{rule}")
        await assert_no_bureau(registry, name=name)

    async def test_unknown_division_code(self, registry, token_for, network):
        response = await registry.post(
            BUREAUS,
            headers=auth(token_for()),
            json={
                "parent_id": network["zj_qs"]["id"],
                "name": unique("局"),
                "level": "city",
                "division_code": "339900",
            },
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.division_code"

    async def test_provincial_unit_under_national_must_name_its_system(self, registry, token_for):
        response = await registry.post(
            BUREAUS,
            headers=auth(token_for()),
            json={"parent_id": 1, "name": unique("省局"), "level": "provincial", "division_code": "350000"},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.system"

    async def test_sibling_names_are_unique(self, registry, token_for, network):
        token = token_for()
        response = await registry.post(
            BUREAUS,
            headers=auth(token),
            json={
                "parent_id": network["hangzhou"]["id"],
                "name": network["county_a"]["name"],
                "level": "county",
                "division_code": "330104",
            },
        )
        assert_problem(response, 409, "/problems/bureau-name-taken")


class TestUpdateBureau:
    async def test_rename_with_if_match(self, registry, token_for, network):
        token = token_for(network["zj_qs"])
        bureau = await create_bureau(registry, token, network["hangzhou"], "county", "330104")
        url = f"{BUREAUS}/{bureau['id']}"
        new_name = unique("江干区局")
        response = await registry.patch(
            url, json={"name": new_name}, headers={**auth(token), "If-Match": '"1"'}
        )
        assert response.status_code == 200, response.text
        assert response.json()["name"] == new_name and response.json()["version"] == 2
        assert response.headers["etag"] == '"2"'
        # A second writer still holding version 1 is refused, and nothing changes.
        stale = await registry.patch(
            url, json={"name": unique("x局")}, headers={**auth(token), "If-Match": '"1"'}
        )
        assert_problem(stale, 412, "/problems/precondition-failed")
        assert (await registry.get(url, headers=auth(token))).json()["name"] == new_name

    async def test_update_without_if_match_is_refused(self, registry, token_for, network):
        response = await registry.patch(
            f"{BUREAUS}/{network['county_a']['id']}", json={"name": unique("县局")}, headers=auth(token_for())
        )
        assert_problem(response, 428, "/problems/precondition-required")

    async def test_update_cannot_change_the_tree(self, registry, token_for, network):
        response = await registry.patch(
            f"{BUREAUS}/{network['county_a']['id']}",
            json={"parent_id": 1},
            headers={**auth(token_for()), "If-Match": "*"},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["body.parent_id"]


class TestReadBureau:
    async def test_unknown_bureau(self, registry, token_for):
        response = await registry.get(f"{BUREAUS}/999999999", headers=auth(token_for()))
        assert_problem(response, 404, "/problems/not-found")

    @pytest.mark.parametrize("bad", ["abc", "0", "-1", "99999999999999999999999"])
    async def test_bad_id(self, registry, token_for, bad):
        response = await registry.get(f"{BUREAUS}/{bad}", headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["path.bureau_id"]

    async def test_bad_cursor(self, registry, token_for):
        response = await registry.get(BUREAUS, params={"cursor": "not-a-cursor"}, headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "query.cursor"


class TestPilotDesignationAndOwnRecord:
    async def test_a_bureau_cannot_change_its_own_record(self, registry, token_for, network):
        token = token_for(network["county_a"])
        response = await registry.patch(
            f"{BUREAUS}/{network['county_a']['id']}",
            json={"name": unique("改名局")},
            headers={**auth(token), "If-Match": "*"},
        )
        assert_problem(response, 403, "/problems/own-bureau")

    async def test_grassroots_is_not_set_through_the_bureau_record(self, registry, token_for, network):
        # The provincial unit names its grassroots pilot through a designation
        # (tests/registry/test_pilot_designations.py); the bureau record only follows it.
        token = token_for(network["zj_qs"])
        bureau = await create_bureau(registry, token, network["hangzhou"], "county", "330105")
        response = await registry.patch(
            f"{BUREAUS}/{bureau['id']}",
            json={"pilot": "grassroots"},
            headers={**auth(token), "If-Match": '"1"'},
        )
        assert_problem(response, 409, "/problems/pilot-designation-required")
        unchanged = (await registry.get(f"{BUREAUS}/{bureau['id']}", headers=auth(token))).json()
        assert unchanged["pilot"] == "none" and unchanged["version"] == 1

    @pytest.mark.parametrize(
        ("level", "division", "pilot"), [("county", "330106", "provincial"), ("city", "330400", "provincial")]
    )
    async def test_pilot_designation_must_fit_the_level(
        self, registry, token_for, network, level, division, pilot
    ):
        parent = network["hangzhou"] if level == "county" else network["zj_qs"]
        name = unique("局")
        response = await registry.post(
            BUREAUS,
            headers=auth(token_for()),
            json={
                "parent_id": parent["id"],
                "name": name,
                "level": level,
                "division_code": division,
                "pilot": pilot,
            },
        )
        assert_problem(response, 409, "/problems/pilot-level-mismatch")
        await assert_no_bureau(registry, name=name)

    async def test_a_provincial_unit_cannot_become_grassroots(self, registry, token_for, network):
        response = await registry.patch(
            f"{BUREAUS}/{network['sd_qs']['id']}",
            json={"pilot": "grassroots"},
            headers={**auth(token_for()), "If-Match": f'"{network["sd_qs"]["version"]}"'},
        )
        assert_problem(response, 409, "/problems/pilot-level-mismatch")


class TestValuesTheDatabaseCannotHold:
    async def test_nul_character_in_a_body_is_a_field_error(self, registry, token_for, network):
        name = unique("杭州局")
        response = await registry.post(
            BUREAUS,
            headers=auth(token_for()),
            json={
                "parent_id": network["zj_qs"]["id"],
                "name": name.replace("州", "州\u0000"),
                "level": "city",
                "division_code": "330500",
            },
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [("body", "value_error")]
        assert "NUL" in problem["errors"][0]["message"]
        # Nor written with the character dropped.
        await assert_no_bureau(registry, name=name)

    async def test_nul_character_in_a_query_is_a_problem_not_a_500(self, registry, token_for):
        response = await registry.get(
            "/api/v1/registry/officers", params={"name": "a\u0000b"}, headers=auth(token_for())
        )
        assert_problem(response, 422, "/problems/invalid-value")

    @pytest.mark.parametrize("key", [[2**63], [2**64 - 1], [-(2**63) - 1]])
    async def test_cursor_key_beyond_bigint_is_refused(self, registry, token_for, key):
        cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).rstrip(b"=").decode()
        response = await registry.get(BUREAUS, params={"cursor": cursor}, headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "query.cursor"
