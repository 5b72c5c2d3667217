"""Officers (执法人员) and posts (岗位) of the bureau network: rules, scope, roles and bad input."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from services.common.pagination import encode_cursor
from services.registry.models import Officer
from tests.conftest import assert_problem, auth
from tests.factories import (
    audit_entries,
    create_bureau,
    create_officer,
    pilot_unit,
    rows_where,
    unique,
)

OFFICERS = "/api/v1/registry/officers"
BUREAUS = "/api/v1/registry/bureaus"


def credential() -> str:
    return "ZJ" + uuid.uuid4().hex[:12].upper()


async def create_post(client, token: str, bureau: dict, body: str = "enforcement", **extra) -> dict:
    response = await client.post(
        f"{BUREAUS}/{bureau['id']}/posts",
        headers=auth(token),
        json={"body": body, "name": unique("岗位"), **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
async def network(registry, token_for):
    """Zhejiang's quality-supervision unit, a city under it with two counties, and Shandong's unit;
    an enforcement and a legal post in county A."""
    national = token_for()
    zj_qs = await pilot_unit(registry, national, "quality_supervision", "330000")
    sd_qs = await pilot_unit(registry, national, "quality_supervision", "370000")
    city = await create_bureau(registry, national, zj_qs, "city", "330700")
    county_a = await create_bureau(registry, national, city, "county", "330702")
    county_b = await create_bureau(registry, national, city, "county", "330703")
    enforcement_post = await create_post(registry, national, county_a, "enforcement")
    legal_post = await create_post(registry, national, county_a, "legal")
    other_post = await create_post(registry, national, county_b, "enforcement")
    return {
        "zj_qs": zj_qs,
        "sd_qs": sd_qs,
        "city": city,
        "county_a": county_a,
        "county_b": county_b,
        "enforcement_post": enforcement_post,
        "legal_post": legal_post,
        "other_post": other_post,
    }


async def assert_no_officer(registry, **fields) -> None:
    """No officer with these values (the test's own unique name or credential) was written,
    nor audited."""
    assert await rows_where(registry, Officer, **fields) == 0
    assert await audit_entries(registry, "officer", **fields) == []


def same_problem(problem: dict, asked_id: int) -> dict:
    """A problem with the id that was asked for masked, and without its request id."""
    masked = {k: v for k, v in problem.items() if k != "request_id"}
    if "detail" in masked:
        masked["detail"] = masked["detail"].replace(str(asked_id), "<id>")
    return masked


def walk(pages: list[dict]) -> list[int]:
    return [o["id"] for page in pages for o in page["items"]]


async def all_pages(registry, token: str, url: str, limit: int = 2, **params) -> list[dict]:
    pages, cursor = [], None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = await registry.get(url, params=query, headers=auth(token))
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if not cursor:
            return pages


class TestCreateOfficer:
    async def test_admin_registers_an_officer_on_a_post(self, registry, token_for, network):
        token = token_for(network["city"])
        number = credential()
        response = await registry.post(
            OFFICERS,
            headers=auth(token),
            json={
                "bureau_id": network["county_a"]["id"],
                "body": "enforcement",
                "name": "  张三丰  ",
                "post_id": network["enforcement_post"]["id"],
                "credential_number": number,
            },
        )
        assert response.status_code == 201, response.text
        officer = response.json()
        assert officer["name"] == "张三丰" and officer["credential_number"] == number
        assert officer["bureau_path"] == network["county_a"]["path"]
        assert officer["post_id"] == network["enforcement_post"]["id"]
        assert officer["active"] is True and officer["version"] == 1
        assert response.headers["location"] == f"{OFFICERS}/{officer['id']}"
        assert response.headers["etag"] == '"1"'
        [entry] = await audit_entries(registry, "officer", officer["id"])
        assert entry["action"] == "officer.created"
        assert (entry["data"]["credential_number"], entry["data"]["bureau_id"]) == (
            number,
            network["county_a"]["id"],
        )

    async def test_officer_without_post_or_credential(self, registry, token_for, network):
        officer = await create_officer(
            registry, token_for(), network["county_a"], body="legal", credential=False
        )
        assert officer["post_id"] is None and officer["credential_number"] is None

    async def test_duplicate_credential_is_refused(self, registry, token_for, network):
        token = token_for()
        holder = await create_officer(registry, token, network["county_a"])
        name = unique("李四")
        response = await registry.post(
            OFFICERS,
            headers=auth(token),
            json={
                "bureau_id": network["county_b"]["id"],
                "body": "enforcement",
                "name": name,
                "credential_number": holder["credential_number"],
            },
        )
        assert_problem(response, 409, "/problems/credential-taken")
        assert await rows_where(registry, Officer, credential_number=holder["credential_number"]) == 1
        await assert_no_officer(registry, name=name)

    async def test_concurrent_duplicate_credentials_get_one_201_and_409s(self, registry, token_for, network):
        token = token_for()
        transport = httpx.ASGITransport(app=registry.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            for _ in range(2):  # two rounds, so the race is all but certain to be hit
                number = credential()
                responses = await asyncio.gather(
                    *(
                        client.post(
                            OFFICERS,
                            headers=auth(token),
                            json={
                                "bureau_id": network["county_a"]["id"],
                                "body": "enforcement",
                                "name": unique("王五"),
                                "credential_number": number,
                            },
                        )
                        for _ in range(8)
                    )
                )
                statuses = [r.status_code for r in responses]
                assert statuses.count(201) == 1 and set(statuses) == {201, 409}, statuses
                for refused in (r for r in responses if r.status_code == 409):
                    assert_problem(refused, 409, "/problems/credential-taken")
                assert await rows_where(registry, Officer, credential_number=number) == 1

    async def test_post_of_another_bureau_is_refused(self, registry, token_for, network):
        response = await registry.post(
            OFFICERS,
            headers=auth(token_for()),
            json={
                "bureau_id": network["county_a"]["id"],
                "body": "enforcement",
                "name": unique("赵六"),
                "post_id": network["other_post"]["id"],
            },
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.post_id"

    async def test_unknown_post_is_refused(self, registry, token_for, network):
        response = await registry.post(
            OFFICERS,
            headers=auth(token_for()),
            json={
                "bureau_id": network["county_a"]["id"],
                "body": "enforcement",
                "name": unique("赵六"),
                "post_id": 987654321,
            },
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.post_id"

    async def test_post_of_another_body_is_refused(self, registry, token_for, network):
        name = unique("钱七")
        response = await registry.post(
            OFFICERS,
            headers=auth(token_for()),
            json={
                "bureau_id": network["county_a"]["id"],
                "body": "enforcement",
                "name": name,
                "post_id": network["legal_post"]["id"],
            },
        )
        assert_problem(response, 409, "/problems/post-body-mismatch")
        await assert_no_officer(registry, name=name)

    async def test_bureau_out_of_scope_is_not_found(self, registry, token_for, network):
        for admin, target in (("zj_qs", "sd_qs"), ("county_a", "county_b"), ("county_a", "city")):
            name = unique("孙八")
            response = await registry.post(
                OFFICERS,
                headers=auth(token_for(network[admin])),
                json={"bureau_id": network[target]["id"], "body": "enforcement", "name": name},
            )
            assert_problem(response, 404, "/problems/not-found")
            await assert_no_officer(registry, name=name)

    @pytest.mark.parametrize("roles", [("enforcement",), ("head", "legal"), ()])
    async def test_non_admin_is_refused(self, registry, token_for, network, roles):
        response = await registry.post(
            OFFICERS,
            headers=auth(token_for(network["county_a"], roles=roles)),
            json={"bureau_id": network["county_a"]["id"], "body": "enforcement", "name": unique("周九")},
        )
        assert_problem(response, 403, "/problems/role-required")

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"name": "x"}, "body.name"),
            ({"name": None}, "body.name"),
            ({"body": "police"}, "body.body"),
            ({"credential_number": "ZJ 1234"}, "body.credential_number"),
            ({"credential_number": "Z1"}, "body.credential_number"),
            ({"credential_number": "Z" * 33}, "body.credential_number"),
            ({"active": False}, "body.active"),
            ({"version": 7}, "body.version"),
            ({"bureau_id": "abc"}, "body.bureau_id"),
        ],
    )
    async def test_malformed_payload_gets_field_errors(self, registry, token_for, network, payload, field):
        # A unique name and a unique credential: each bad value replaces one of them at most,
        # so the officer the request would have made is found by the other.
        good = {
            "bureau_id": network["county_a"]["id"],
            "body": "enforcement",
            "name": unique("吴十"),
            "credential_number": credential(),
        }
        response = await registry.post(OFFICERS, headers=auth(token_for()), json={**good, **payload})
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert field in [e["loc"] for e in problem["errors"]]
        await assert_no_officer(registry, name=good["name"])
        await assert_no_officer(registry, credential_number=good["credential_number"])

    @pytest.mark.parametrize("field", ["bureau_id", "post_id"])
    async def test_id_beyond_bigint_is_a_field_error(self, registry, token_for, network, field):
        transport = httpx.ASGITransport(app=registry.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            response = await client.post(
                OFFICERS,
                headers=auth(token_for()),
                json={
                    "bureau_id": network["county_a"]["id"],
                    "body": "enforcement",
                    "name": unique("吴十"),
                    field: 2**63,
                },
            )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == f"body.{field}"


class TestReadOfficer:
    async def test_read_gives_the_etag(self, registry, token_for, network):
        officer = await create_officer(registry, token_for(), network["county_a"])
        response = await registry.get(
            f"{OFFICERS}/{officer['id']}", headers=auth(token_for(network["county_a"]))
        )
        assert response.status_code == 200
        assert response.json() == officer
        assert response.headers["etag"] == '"1"'

    async def test_scope_follows_the_bureau_tree(self, registry, token_for, network):
        officer = await create_officer(registry, token_for(), network["county_b"])
        url = f"{OFFICERS}/{officer['id']}"
        for reader, status in (
            ("county_a", 404),
            ("sd_qs", 404),
            ("county_b", 200),
            ("city", 200),
            ("zj_qs", 200),
        ):
            token = token_for(network[reader], roles=("enforcement",))
            response = await registry.get(url, headers=auth(token))
            if status == 404:
                assert_problem(response, 404, "/problems/not-found")
            else:
                assert response.status_code == 200, reader
                assert response.json()["id"] == officer["id"]

    async def test_unknown_officer(self, registry, token_for):
        response = await registry.get(f"{OFFICERS}/999999999", headers=auth(token_for()))
        assert_problem(response, 404, "/problems/not-found")

    @pytest.mark.parametrize("bad", ["abc", "0", "-3", str(2**63)])
    async def test_bad_id(self, registry, token_for, bad):
        response = await registry.get(f"{OFFICERS}/{bad}", headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["path.officer_id"]


class TestUpdateOfficer:
    async def test_rename_with_if_match_then_stale_write_is_refused(self, registry, token_for, network):
        token = token_for(network["city"])
        officer = await create_officer(registry, token, network["county_a"])
        url = f"{OFFICERS}/{officer['id']}"
        response = await registry.patch(
            url, json={"name": "新名字"}, headers={**auth(token), "If-Match": '"1"'}
        )
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "新名字" and response.json()["version"] == 2
        assert response.headers["etag"] == '"2"'
        stale = await registry.patch(url, json={"name": "旧名字"}, headers={**auth(token), "If-Match": '"1"'})
        assert assert_problem(stale, 412, "/problems/precondition-failed")["current_etag"] == '"2"'
        assert (await registry.get(url, headers=auth(token))).json()["name"] == "新名字"

    async def test_update_without_if_match_is_refused(self, registry, token_for, network):
        officer = await create_officer(registry, token_for(), network["county_a"])
        response = await registry.patch(
            f"{OFFICERS}/{officer['id']}", json={"active": False}, headers=auth(token_for())
        )
        assert_problem(response, 428, "/problems/precondition-required")

    async def test_deactivate_assign_post_and_clear_credential(self, registry, token_for, network):
        token = token_for()
        officer = await create_officer(registry, token, network["county_a"])
        response = await registry.patch(
            f"{OFFICERS}/{officer['id']}",
            headers={**auth(token), "If-Match": '"1"'},
            json={"active": False, "post_id": network["enforcement_post"]["id"], "credential_number": None},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["active"], body["post_id"], body["credential_number"]) == (
            False,
            network["enforcement_post"]["id"],
            None,
        )
        # The cleared credential can now be given to someone else.
        other = await create_officer(
            registry,
            token,
            network["county_b"],
            credential=False,
            credential_number=officer["credential_number"],
        )
        assert other["credential_number"] == officer["credential_number"]

    def test_the_document_does_not_offer_null_for_required_fields(self, registry):
        schema = registry.app.openapi()["components"]["schemas"]["OfficerUpdate"]["properties"]
        assert schema["name"]["type"] == "string" and schema["active"] == {
            "type": "boolean",
            "title": "Active",
        }
        assert {"type": "null"} in schema["post_id"]["anyOf"]

    @pytest.mark.parametrize(("field", "value"), [("active", 0), ("active", "false"), ("post_id", "1")])
    async def test_values_of_another_json_type_are_refused(self, registry, token_for, network, field, value):
        officer = await create_officer(registry, token_for(), network["county_a"])
        response = await registry.patch(
            f"{OFFICERS}/{officer['id']}",
            json={field: value},
            headers={**auth(token_for()), "If-Match": '"1"'},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == [f"body.{field}"]

    @pytest.mark.parametrize("field", ["name", "active"])
    async def test_required_field_cannot_be_nulled(self, registry, token_for, network, field):
        officer = await create_officer(registry, token_for(), network["county_a"])
        response = await registry.patch(
            f"{OFFICERS}/{officer['id']}",
            json={field: None},
            headers={**auth(token_for()), "If-Match": '"1"'},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == [f"body.{field}"]
        read = (await registry.get(f"{OFFICERS}/{officer['id']}", headers=auth(token_for()))).json()
        assert read == officer

    @pytest.mark.parametrize(
        "payload",
        [{}, {"version": 9}, {"bureau_path": "1."}, {"body": "judge"}, {"bureau_id": None}, {"body": None}],
    )
    async def test_nothing_to_change_or_unchangeable_field(self, registry, token_for, network, payload):
        officer = await create_officer(registry, token_for(), network["county_a"])
        response = await registry.patch(
            f"{OFFICERS}/{officer['id']}", json=payload, headers={**auth(token_for()), "If-Match": '"1"'}
        )
        assert_problem(response, 422, "/problems/validation-error")
        read = (await registry.get(f"{OFFICERS}/{officer['id']}", headers=auth(token_for()))).json()
        assert read == officer

    async def test_credential_of_another_officer_is_refused(self, registry, token_for, network):
        token = token_for()
        holder = await create_officer(registry, token, network["county_b"])
        officer = await create_officer(registry, token, network["county_a"])
        url = f"{OFFICERS}/{officer['id']}"
        response = await registry.patch(
            url,
            json={"credential_number": holder["credential_number"]},
            headers={**auth(token), "If-Match": '"1"'},
        )
        assert_problem(response, 409, "/problems/credential-taken")
        # Re-sending one's own credential is not a conflict.
        own = await registry.patch(
            url,
            json={"credential_number": officer["credential_number"]},
            headers={**auth(token), "If-Match": '"1"'},
        )
        assert own.status_code == 200 and own.json()["version"] == 2

    async def test_post_rules_apply_on_update(self, registry, token_for, network):
        token = token_for()
        officer = await create_officer(registry, token, network["county_a"])
        url = f"{OFFICERS}/{officer['id']}"
        other_bureau = await registry.patch(
            url, json={"post_id": network["other_post"]["id"]}, headers={**auth(token), "If-Match": '"1"'}
        )
        problem = assert_problem(other_bureau, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["body.post_id"]
        other_body = await registry.patch(
            url, json={"post_id": network["legal_post"]["id"]}, headers={**auth(token), "If-Match": '"1"'}
        )
        assert_problem(other_body, 409, "/problems/post-body-mismatch")

    async def test_non_admin_is_refused(self, registry, token_for, network):
        officer = await create_officer(registry, token_for(), network["county_a"])
        token = token_for(network["county_a"], roles=("enforcement", "head"))
        response = await registry.patch(
            f"{OFFICERS}/{officer['id']}", json={"name": "越权者"}, headers={**auth(token), "If-Match": '"1"'}
        )
        assert_problem(response, 403, "/problems/role-required")

    async def test_out_of_scope_officer_is_not_found_as_a_missing_one_is(self, registry, token_for, network):
        officer = await create_officer(registry, token_for(), network["county_b"])
        missing = 999_999_999
        for admin in ("county_a", "sd_qs"):
            token = token_for(network[admin])
            for stale_or_not in ('"1"', '"7"'):  # scope is checked before the version
                out = await registry.patch(
                    f"{OFFICERS}/{officer['id']}",
                    json={"name": "越界者"},
                    headers={**auth(token), "If-Match": stale_or_not},
                )
                gone = await registry.patch(
                    f"{OFFICERS}/{missing}",
                    json={"name": "越界者"},
                    headers={**auth(token), "If-Match": stale_or_not},
                )
                assert_problem(out, 404, "/problems/not-found")
                assert_problem(gone, 404, "/problems/not-found")
                assert same_problem(out.json(), officer["id"]) == same_problem(gone.json(), missing)
        read = (await registry.get(f"{OFFICERS}/{officer['id']}", headers=auth(token_for()))).json()
        assert read["version"] == 1

    async def test_unknown_officer(self, registry, token_for):
        response = await registry.patch(
            f"{OFFICERS}/999999999", json={"name": "无此人"}, headers={**auth(token_for()), "If-Match": '"1"'}
        )
        assert_problem(response, 404, "/problems/not-found")

    @pytest.mark.parametrize("value", [True, False, "5"])
    async def test_ids_and_flags_take_no_other_json_type(self, registry, token_for, network, value):
        officer = await create_officer(registry, token_for(), network["county_a"])
        for field in ("post_id", "bureau_id", "active"):
            if isinstance(value, bool) and field == "active":
                continue
            response = await registry.patch(
                f"{OFFICERS}/{officer['id']}",
                json={field: value},
                headers={**auth(token_for()), "If-Match": '"1"'},
            )
            problem = assert_problem(response, 422, "/problems/validation-error")
            assert problem["errors"][0]["loc"] == f"body.{field}", (field, value)
        read = (await registry.get(f"{OFFICERS}/{officer['id']}", headers=auth(token_for()))).json()
        assert read == officer


class TestMoveOfficer:
    async def test_a_move_to_another_bureau_clears_the_post(self, registry, token_for, network):
        officer = await create_officer(
            registry, token_for(), network["county_a"], post_id=network["enforcement_post"]["id"]
        )
        response = await registry.patch(
            f"{OFFICERS}/{officer['id']}",
            json={"bureau_id": network["county_b"]["id"]},
            headers={**auth(token_for(network["city"])), "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        moved = response.json()
        assert (moved["bureau_id"], moved["bureau_path"], moved["post_id"]) == (
            network["county_b"]["id"],
            network["county_b"]["path"],
            None,
        )

    async def test_a_move_to_another_body_with_a_post_of_it(self, registry, token_for, network):
        officer = await create_officer(registry, token_for(), network["county_a"])
        response = await registry.patch(
            f"{OFFICERS}/{officer['id']}",
            json={"body": "legal", "post_id": network["legal_post"]["id"]},
            headers={**auth(token_for()), "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        assert (response.json()["body"], response.json()["post_id"]) == ("legal", network["legal_post"]["id"])

    async def test_a_move_keeps_the_post_rules(self, registry, token_for, network):
        officer = await create_officer(registry, token_for(), network["county_a"])
        response = await registry.patch(
            f"{OFFICERS}/{officer['id']}",
            json={"body": "legal", "post_id": network["enforcement_post"]["id"]},
            headers={**auth(token_for()), "If-Match": '"1"'},
        )
        assert_problem(response, 409, "/problems/post-body-mismatch")

    async def test_a_move_out_of_scope_is_refused_as_not_found(self, registry, token_for, network):
        officer = await create_officer(registry, token_for(), network["county_a"])
        for target in (network["sd_qs"]["id"], 999_999_999):
            response = await registry.patch(
                f"{OFFICERS}/{officer['id']}",
                json={"bureau_id": target},
                headers={**auth(token_for(network["zj_qs"])), "If-Match": '"1"'},
            )
            assert_problem(response, 404, "/problems/not-found")
            assert same_problem(response.json(), target) == {
                "type": "/problems/not-found",
                "title": "Not found",
                "status": 404,
                "detail": "Bureau <id> not found.",
            }
        read = (await registry.get(f"{OFFICERS}/{officer['id']}", headers=auth(token_for()))).json()
        assert read == officer


@pytest.fixture(scope="module")
async def staff(registry, token_for, network) -> dict:
    """A bureau of its own with five officers: three enforcement (one inactive), two legal."""
    token = token_for()
    bureau = await create_bureau(registry, token, network["city"], "county", "330726")
    officers = [
        await create_officer(registry, token, bureau, body=body)
        for body in ("enforcement", "enforcement", "enforcement", "legal", "legal")
    ]
    response = await registry.patch(
        f"{OFFICERS}/{officers[0]['id']}", json={"active": False}, headers={**auth(token), "If-Match": '"1"'}
    )
    assert response.status_code == 200
    return {"bureau": bureau, "officers": officers}


class TestListOfficers:
    async def test_keyset_pages_walk_without_duplicates(self, registry, token_for, staff):
        pages = await all_pages(registry, token_for(), OFFICERS, limit=2, bureau_id=staff["bureau"]["id"])
        ids = walk(pages)
        assert len(pages) == 3 and [len(p["items"]) for p in pages] == [2, 2, 1]
        assert ids == sorted(ids) and len(ids) == len(set(ids))
        assert ids == [o["id"] for o in staff["officers"]]

    async def test_whole_subtree_walk_has_no_duplicates(self, registry, token_for, network, staff):
        token = token_for(network["city"], roles=("enforcement",))
        ids = walk(await all_pages(registry, token, OFFICERS, limit=7))
        assert len(ids) == len(set(ids))
        assert {o["id"] for o in staff["officers"]} <= set(ids)

    async def test_filters(self, registry, token_for, staff):
        token, bureau_id = token_for(), staff["bureau"]["id"]
        officers = staff["officers"]

        async def ids(**params) -> list[int]:
            response = await registry.get(
                OFFICERS, params={"bureau_id": bureau_id, **params}, headers=auth(token)
            )
            assert response.status_code == 200
            return [o["id"] for o in response.json()["items"]]

        assert await ids(body="legal") == [o["id"] for o in officers[3:]]
        assert await ids(body="enforcement", active="true") == [o["id"] for o in officers[1:3]]
        assert await ids(active="false") == [officers[0]["id"]]
        assert await ids(name=officers[4]["name"]) == [officers[4]["id"]]
        assert await ids(body="supervision") == []

    async def test_list_holds_only_the_subtree(self, registry, token_for, network, staff):
        await create_officer(registry, token_for(), network["county_a"])  # so the list is not empty
        token = token_for(network["county_a"], roles=("enforcement",))
        items = [o for p in await all_pages(registry, token, OFFICERS, limit=50) for o in p["items"]]
        assert items and all(o["bureau_path"].startswith(network["county_a"]["path"]) for o in items)
        # Filtering by a bureau out of scope gives nothing, not its officers.
        response = await registry.get(
            OFFICERS, params={"bureau_id": staff["bureau"]["id"]}, headers=auth(token)
        )
        assert response.json()["items"] == []

    @pytest.mark.parametrize(
        "params",
        [
            {"body": "police"},
            {"limit": 0},
            {"limit": 501},
            {"active": "maybe"},
            {"cursor": "not-a-cursor"},
            {"bureau_id": 0},
        ],
    )
    async def test_bad_query(self, registry, token_for, params):
        response = await registry.get(OFFICERS, params=params, headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == [f"query.{next(iter(params))}"]

    @pytest.mark.parametrize("key", [["abc"], [None], [1e30], [True], ["7"], [7, 8]])
    async def test_cursor_with_a_key_of_the_wrong_type_is_refused(self, registry, token_for, key):
        transport = httpx.ASGITransport(app=registry.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            response = await client.get(
                OFFICERS, params={"cursor": encode_cursor(key)}, headers=auth(token_for())
            )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "query.cursor"

    async def test_bureau_id_filter_beyond_bigint_is_refused(self, registry, token_for):
        transport = httpx.ASGITransport(app=registry.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            response = await client.get(OFFICERS, params={"bureau_id": 2**63}, headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["query.bureau_id"]


class TestPosts:
    async def test_admin_creates_a_post_with_duties(self, registry, token_for, network):
        token = token_for(network["county_a"])
        name = unique("法制审核岗")
        response = await registry.post(
            f"{BUREAUS}/{network['county_a']['id']}/posts",
            headers=auth(token),
            json={"body": "legal", "name": name, "duties": "法制审核"},
        )
        assert response.status_code == 201, response.text
        post = response.json()
        assert (post["bureau_id"], post["body"], post["duties"]) == (
            network["county_a"]["id"],
            "legal",
            "法制审核",
        )
        [entry] = await audit_entries(registry, "post", post["id"])
        assert entry["action"] == "post.created"
        assert (entry["data"]["name"], entry["data"]["bureau_id"]) == (name, network["county_a"]["id"])

    async def test_post_names_are_unique_within_a_bureau(self, registry, token_for, network):
        token = token_for()
        name = network["enforcement_post"]["name"]
        response = await registry.post(
            f"{BUREAUS}/{network['county_a']['id']}/posts",
            headers=auth(token),
            json={"body": "enforcement", "name": name},
        )
        assert_problem(response, 409, "/problems/post-name-taken")
        # The same name in another bureau is fine.
        other = await registry.post(
            f"{BUREAUS}/{network['county_b']['id']}/posts",
            headers=auth(token),
            json={"body": "enforcement", "name": name},
        )
        assert other.status_code == 201

    async def test_non_admin_is_refused(self, registry, token_for, network):
        token = token_for(network["county_a"], roles=("enforcement",))
        response = await registry.post(
            f"{BUREAUS}/{network['county_a']['id']}/posts",
            headers=auth(token),
            json={"body": "enforcement", "name": unique("岗位")},
        )
        assert_problem(response, 403, "/problems/role-required")

    async def test_bureau_out_of_scope_is_not_found(self, registry, token_for, network):
        token = token_for(network["county_a"])
        create = await registry.post(
            f"{BUREAUS}/{network['county_b']['id']}/posts",
            headers=auth(token),
            json={"body": "enforcement", "name": unique("岗位")},
        )
        assert_problem(create, 404, "/problems/not-found")
        listing = await registry.get(f"{BUREAUS}/{network['county_b']['id']}/posts", headers=auth(token))
        assert_problem(listing, 404, "/problems/not-found")

    @pytest.mark.parametrize(
        "payload", [{"body": "police"}, {"name": "x"}, {"duties": "x" * 2001}, {"bureau_id": 1}]
    )
    async def test_malformed_post(self, registry, token_for, network, payload):
        response = await registry.post(
            f"{BUREAUS}/{network['county_a']['id']}/posts",
            headers=auth(token_for()),
            json={"body": "enforcement", "name": unique("岗位"), **payload},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == [f"body.{next(iter(payload))}"]

    async def test_posts_list_in_keyset_pages(self, registry, token_for, network):
        token = token_for()
        bureau = await create_bureau(registry, token, network["city"], "county", "330727")
        made = [
            await create_post(registry, token, bureau, body)
            for body in ("enforcement", "legal", "supervision")
        ]
        pages = await all_pages(
            registry, token_for(bureau, roles=("enforcement",)), f"{BUREAUS}/{bureau['id']}/posts", limit=2
        )
        assert walk(pages) == [p["id"] for p in made]
        assert pages[0]["items"][0] == made[0]
