"""The enforcement responsibility system (执法责任制): the penalty-procedure steps a post (岗位)
allows, changed by the administrator of its subtree, and an officer's standing to take a step."""

from __future__ import annotations

import pytest

from services.common.auth import PrincipalKind, Role
from services.registry.models import Post
from tests.conftest import assert_problem, auth
from tests.factories import (
    audit_entries,
    create_bureau,
    create_officer,
    pilot_unit,
    rows_where,
    same_problem,
    unique,
)

BUREAUS = "/api/v1/registry/bureaus"
POSTS = "/api/v1/registry/posts"
OFFICERS = "/api/v1/registry/officers"

STEPS = ["file_case", "investigate", "hearing_notice"]
# 65 distinct codes of the right shape: one more than a post may carry.
TOO_MANY = [f"step_{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(65)]
BAD_STEPS = [
    pytest.param(["File_case"], "body.steps.0", id="capital"),
    pytest.param(["investigate", "1st_step"], "body.steps.1", id="digit"),
    pytest.param(["file-case"], "body.steps.0", id="dash"),
    pytest.param(["f"], "body.steps.0", id="too-short"),
    pytest.param(["f" * 49], "body.steps.0", id="too-long"),
    pytest.param([" file_case"], "body.steps.0", id="space"),
    pytest.param([7], "body.steps.0", id="number"),
    pytest.param([None], "body.steps.0", id="null-code"),
    pytest.param(["file_case", "investigate", "file_case"], "body.steps", id="duplicate"),
    pytest.param(TOO_MANY, "body.steps", id="too-many"),
    pytest.param("file_case", "body.steps", id="not-a-list"),
    pytest.param(None, "body.steps", id="null"),
]


@pytest.fixture(scope="module")
async def network(registry, token_for):
    """Zhejiang's quality-supervision unit, a city under it with two counties, and Shandong's unit."""
    national = token_for()
    zj_qs = await pilot_unit(registry, national, "quality_supervision", "330000")
    sd_qs = await pilot_unit(registry, national, "quality_supervision", "370000")
    city = await create_bureau(registry, national, zj_qs, "city", "330700")
    county_a = await create_bureau(registry, national, city, "county", "330702")
    county_b = await create_bureau(registry, national, city, "county", "330703")
    return {"zj_qs": zj_qs, "sd_qs": sd_qs, "city": city, "county_a": county_a, "county_b": county_b}


async def create_post(registry, token: str, bureau: dict, body: str = "enforcement", **extra) -> dict:
    response = await registry.post(
        f"{BUREAUS}/{bureau['id']}/posts",
        headers=auth(token),
        json={"body": body, "name": unique("岗位"), **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def read_post(registry, token: str, post_id: int) -> dict:
    response = await registry.get(f"{POSTS}/{post_id}", headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    return response.json()


async def assert_unchanged(registry, token: str, post: dict) -> None:
    """The post reads as it did, and no update of it was audited."""
    assert await read_post(registry, token, post["id"]) == post
    entries = await audit_entries(registry, "post", post["id"])
    assert [e["action"] for e in entries] == ["post.created"]


def patch_headers(token: str, version: int = 1) -> dict[str, str]:
    return {**auth(token), "If-Match": f'"{version}"'}


class TestCreatePostWithSteps:
    async def test_steps_are_kept_and_shown(self, registry, token_for, network):
        token = token_for(network["city"])
        name = unique("办案岗")
        response = await registry.post(
            f"{BUREAUS}/{network['county_a']['id']}/posts",
            headers=auth(token),
            json={"body": "enforcement", "name": name, "duties": "立案调查", "steps": STEPS},
        )
        assert response.status_code == 201, response.text
        post = response.json()
        assert (post["name"], post["duties"], post["steps"], post["version"]) == (name, "立案调查", STEPS, 1)
        assert response.headers["location"] == f"{POSTS}/{post['id']}"
        assert response.headers["etag"] == '"1"'
        assert await read_post(registry, token, post["id"]) == post
        listed = await registry.get(
            f"{BUREAUS}/{network['county_a']['id']}/posts", params={"limit": 100}, headers=auth(token)
        )
        assert [p for p in listed.json()["items"] if p["id"] == post["id"]] == [post]
        [entry] = await audit_entries(registry, "post", post["id"])
        assert (entry["action"], entry["data"]["steps"]) == ("post.created", STEPS)

    async def test_steps_default_to_none(self, registry, token_for, network):
        post = await create_post(registry, token_for(), network["county_a"], body="legal")
        assert post["steps"] == []

    @pytest.mark.parametrize(("steps", "loc"), BAD_STEPS)
    async def test_bad_steps_are_refused_and_nothing_written(self, registry, token_for, network, steps, loc):
        name = unique("坏岗位")
        response = await registry.post(
            f"{BUREAUS}/{network['county_a']['id']}/posts",
            headers=auth(token_for()),
            json={"body": "enforcement", "name": name, "steps": steps},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert loc in [e["loc"] for e in problem["errors"]], problem["errors"]
        assert await rows_where(registry, Post, name=name) == 0
        assert await audit_entries(registry, "post", name=name) == []

    async def test_sixty_four_steps_are_allowed(self, registry, token_for, network):
        post = await create_post(registry, token_for(), network["county_a"], steps=TOO_MANY[:64])
        assert post["steps"] == TOO_MANY[:64]


class TestReadPost:
    async def test_out_of_scope_reads_as_missing(self, registry, token_for, network):
        post = await create_post(registry, token_for(), network["county_a"])
        for reader in ("county_b", "sd_qs"):
            outside = await registry.get(f"{POSTS}/{post['id']}", headers=auth(token_for(network[reader])))
            missing = await registry.get(f"{POSTS}/987654321", headers=auth(token_for(network[reader])))
            assert_problem(outside, 404, "/problems/not-found")
            assert_problem(missing, 404, "/problems/not-found")
            assert same_problem(outside.json(), post["id"]) == same_problem(missing.json(), 987654321)

    async def test_any_role_in_scope_reads(self, registry, token_for, network):
        post = await create_post(registry, token_for(), network["county_a"], steps=STEPS)
        token = token_for(network["county_a"], roles=(Role.ENFORCEMENT,))
        assert (await read_post(registry, token, post["id"]))["steps"] == STEPS


class TestUpdatePost:
    async def test_admin_changes_the_steps(self, registry, token_for, network):
        token = token_for(network["city"])
        post = await create_post(registry, token, network["county_a"], duties="调查取证", steps=STEPS[:1])
        response = await registry.patch(
            f"{POSTS}/{post['id']}", json={"steps": STEPS}, headers=patch_headers(token)
        )
        assert response.status_code == 200, response.text
        updated = response.json()
        assert (updated["steps"], updated["duties"], updated["version"]) == (STEPS, "调查取证", 2)
        assert response.headers["etag"] == '"2"'
        assert updated["updated_at"] >= post["updated_at"]
        assert await read_post(registry, token, post["id"]) == updated
        [_, entry] = await audit_entries(registry, "post", post["id"])
        assert entry["action"] == "post.updated"
        assert entry["data"] == {"steps": STEPS, "previous": {"steps": STEPS[:1]}, "version": 2}

    async def test_duties_alone_leave_the_steps(self, registry, token_for, network):
        token = token_for()
        post = await create_post(registry, token, network["county_a"], steps=STEPS)
        response = await registry.patch(
            f"{POSTS}/{post['id']}", json={"duties": "案件审理"}, headers=patch_headers(token)
        )
        assert response.status_code == 200, response.text
        assert (response.json()["duties"], response.json()["steps"]) == ("案件审理", STEPS)

    async def test_duties_and_steps_together_and_an_empty_list_takes_every_step_away(
        self, registry, token_for, network
    ):
        token = token_for()
        post = await create_post(registry, token, network["county_a"], steps=STEPS)
        response = await registry.patch(
            f"{POSTS}/{post['id']}", json={"duties": "", "steps": []}, headers=patch_headers(token)
        )
        assert response.status_code == 200, response.text
        assert (response.json()["duties"], response.json()["steps"]) == ("", [])

    @pytest.mark.parametrize(("steps", "loc"), BAD_STEPS)
    async def test_bad_steps_are_refused_and_nothing_changes(self, registry, token_for, network, steps, loc):
        token = token_for()
        post = await create_post(registry, token, network["county_a"], steps=STEPS)
        response = await registry.patch(
            f"{POSTS}/{post['id']}", json={"duties": "改了", "steps": steps}, headers=patch_headers(token)
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert loc in [e["loc"] for e in problem["errors"]], problem["errors"]
        await assert_unchanged(registry, token, post)

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            ({}, "body"),
            ({"duties": None}, "body.duties"),
            ({"duties": "x" * 2001}, "body.duties"),
            ({"name": "改名"}, "body.name"),
            ({"steps": STEPS, "bureau_id": 1}, "body.bureau_id"),
        ],
    )
    async def test_bad_payload_is_refused(self, registry, token_for, network, payload, loc):
        token = token_for()
        post = await create_post(registry, token, network["county_a"], steps=STEPS)
        response = await registry.patch(f"{POSTS}/{post['id']}", json=payload, headers=patch_headers(token))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert loc in [e["loc"] for e in problem["errors"]], problem["errors"]
        await assert_unchanged(registry, token, post)

    @pytest.mark.parametrize("admin", ["county_b", "sd_qs"])
    async def test_out_of_scope_is_not_found(self, registry, token_for, network, admin):
        post = await create_post(registry, token_for(), network["county_a"], steps=STEPS)
        token = token_for(network[admin])
        outside = await registry.patch(
            f"{POSTS}/{post['id']}", json={"steps": []}, headers=patch_headers(token)
        )
        missing = await registry.patch(f"{POSTS}/987654321", json={"steps": []}, headers=patch_headers(token))
        assert_problem(outside, 404, "/problems/not-found")
        assert_problem(missing, 404, "/problems/not-found")
        assert same_problem(outside.json(), post["id"]) == same_problem(missing.json(), 987654321)
        await assert_unchanged(registry, token_for(), post)

    @pytest.mark.parametrize(
        "roles", [(Role.ENFORCEMENT,), (Role.HEAD, Role.LEGAL), (Role.SERVICE,), (Role.SUPERVISION,), ()]
    )
    async def test_non_admin_is_refused(self, registry, token_for, network, roles):
        post = await create_post(registry, token_for(), network["county_a"], steps=STEPS)
        response = await registry.patch(
            f"{POSTS}/{post['id']}",
            json={"steps": []},
            headers=patch_headers(token_for(network["county_a"], roles=roles)),
        )
        assert_problem(response, 403, "/problems/role-required")
        await assert_unchanged(registry, token_for(), post)

    async def test_stale_if_match_is_refused(self, registry, token_for, network):
        token = token_for()
        post = await create_post(registry, token, network["county_a"], steps=STEPS)
        url = f"{POSTS}/{post['id']}"
        first = await registry.patch(url, json={"steps": STEPS[:2]}, headers=patch_headers(token))
        assert first.status_code == 200, first.text
        stale = await registry.patch(url, json={"steps": []}, headers=patch_headers(token))
        assert assert_problem(stale, 412, "/problems/precondition-failed")["current_etag"] == '"2"'
        assert (await read_post(registry, token, post["id"]))["steps"] == STEPS[:2]

    @pytest.mark.parametrize("if_match", [None, "*"])
    async def test_if_match_is_required(self, registry, token_for, network, if_match):
        token = token_for()
        post = await create_post(registry, token, network["county_a"], steps=STEPS)
        headers = auth(token) if if_match is None else {**auth(token), "If-Match": if_match}
        response = await registry.patch(f"{POSTS}/{post['id']}", json={"steps": []}, headers=headers)
        assert_problem(response, 428, "/problems/precondition-required")
        await assert_unchanged(registry, token, post)


class TestOfficerStanding:
    async def standing(self, registry, token: str, officer_id: int) -> dict:
        response = await registry.get(f"{OFFICERS}/{officer_id}/standing", headers=auth(token))
        assert response.status_code == 200, response.text
        return response.json()

    async def test_officer_on_a_post_with_a_credential(self, registry, token_for, network):
        token = token_for()
        post = await create_post(registry, token, network["county_a"], steps=STEPS)
        officer = await create_officer(registry, token, network["county_a"], post_id=post["id"])
        assert await self.standing(registry, token, officer["id"]) == {
            "officer_id": officer["id"],
            "name": officer["name"],
            "bureau_id": network["county_a"]["id"],
            "bureau_path": network["county_a"]["path"],
            "body": "enforcement",
            "active": True,
            "credential_number": officer["credential_number"],
            "holds_credential": True,
            "post": {"id": post["id"], "name": post["name"], "steps": STEPS},
        }

    async def test_officer_without_post_or_credential(self, registry, token_for, network):
        token = token_for()
        officer = await create_officer(registry, token, network["county_a"], body="legal", credential=False)
        standing = await self.standing(registry, token, officer["id"])
        assert (standing["post"], standing["credential_number"], standing["holds_credential"]) == (
            None,
            None,
            False,
        )
        assert standing["active"] is True

    async def test_standing_follows_the_post_and_the_officer(self, registry, token_for, network):
        token = token_for()
        post = await create_post(registry, token, network["county_a"], steps=STEPS)
        officer = await create_officer(registry, token, network["county_a"], post_id=post["id"])
        changed = await registry.patch(
            f"{POSTS}/{post['id']}", json={"steps": ["investigate"]}, headers=patch_headers(token)
        )
        assert changed.status_code == 200, changed.text
        deactivated = await registry.patch(
            f"{OFFICERS}/{officer['id']}",
            json={"active": False, "credential_number": None},
            headers=patch_headers(token),
        )
        assert deactivated.status_code == 200, deactivated.text
        standing = await self.standing(registry, token, officer["id"])
        assert (standing["active"], standing["holds_credential"], standing["credential_number"]) == (
            False,
            False,
            None,
        )
        assert standing["post"] == {"id": post["id"], "name": post["name"], "steps": ["investigate"]}

    async def test_post_without_steps(self, registry, token_for, network):
        token = token_for()
        post = await create_post(registry, token, network["county_a"])
        officer = await create_officer(registry, token, network["county_a"], post_id=post["id"])
        assert (await self.standing(registry, token, officer["id"]))["post"]["steps"] == []

    @pytest.mark.parametrize("roles", [(Role.ENFORCEMENT,), (Role.LEGAL, Role.HEAD), ()])
    async def test_any_principal_in_scope_reads(self, registry, token_for, network, roles):
        officer = await create_officer(registry, token_for(), network["county_a"])
        for bureau in ("county_a", "city", "zj_qs"):
            token = token_for(network[bureau], roles=roles)
            assert (await self.standing(registry, token, officer["id"]))["officer_id"] == officer["id"]

    @pytest.mark.parametrize(
        ("reader", "kind", "roles"),
        [
            ("county_b", PrincipalKind.OFFICER, (Role.ADMIN,)),
            ("sd_qs", PrincipalKind.OFFICER, (Role.ADMIN,)),
            # The service role alone does not open other subtrees: only a platform service.
            ("sd_qs", PrincipalKind.OFFICER, (Role.SERVICE,)),
            ("sd_qs", PrincipalKind.SERVICE, (Role.ADMIN,)),
            ("sd_qs", PrincipalKind.SYSTEM, (Role.SYSTEM,)),
        ],
    )
    async def test_out_of_scope_is_not_found(self, registry, token_for, network, reader, kind, roles):
        officer = await create_officer(registry, token_for(), network["county_a"])
        token = token_for(network[reader], kind=kind, roles=roles)
        outside = await registry.get(f"{OFFICERS}/{officer['id']}/standing", headers=auth(token))
        missing = await registry.get(f"{OFFICERS}/987654321/standing", headers=auth(token))
        assert_problem(outside, 404, "/problems/not-found")
        assert_problem(missing, 404, "/problems/not-found")
        assert same_problem(outside.json(), officer["id"]) == same_problem(missing.json(), 987654321)

    async def test_a_platform_service_reads_any_officer(self, registry, token_for, network):
        token = token_for()
        post = await create_post(registry, token, network["county_a"], steps=STEPS)
        officer = await create_officer(registry, token, network["county_a"], post_id=post["id"])
        # A service principal whose own bureau is another province's: its role, not its place, counts.
        service = token_for(network["sd_qs"], kind=PrincipalKind.SERVICE, roles=(Role.SERVICE,))
        standing = await self.standing(registry, service, officer["id"])
        assert (standing["officer_id"], standing["post"]["steps"]) == (officer["id"], STEPS)
        missing = await registry.get(f"{OFFICERS}/987654321/standing", headers=auth(service))
        assert_problem(missing, 404, "/problems/not-found")

    async def test_unauthenticated_is_refused(self, registry, token_for, network):
        officer = await create_officer(registry, token_for(), network["county_a"])
        response = await registry.get(f"{OFFICERS}/{officer['id']}/standing")
        assert_problem(response, 401, "/problems/unauthorized")
