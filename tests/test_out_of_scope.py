"""Out of scope and missing look the same from outside, for every kind of object and route.

A principal of Zhejiang asks for Shandong's objects and for ids that do not
exist: both answers must be the same problem (type, title, status, and a
detail that names only what was asked for), so nothing tells them apart.
"""

from __future__ import annotations

import uuid

import pytest

from gateway.models import Account
from services.registry.models import Bureau, Officer, Post
from tests.conftest import auth
from tests.factories import create_officer, pilot_unit, rows_where, unique

MISSING_ID = 987_654_321
MISSING_UUID = "00000000-0000-4000-8000-000000000000"


def masked(problem: dict, asked: object) -> dict:
    """The problem with the asked-for id masked and without its request id."""
    out = {k: v for k, v in problem.items() if k != "request_id"}
    if "detail" in out:
        out["detail"] = out["detail"].replace(str(asked), "<asked>")
    return out


@pytest.fixture(scope="module")
async def two_provinces(registry, token_for) -> dict:
    national = token_for()
    zhejiang = await pilot_unit(registry, national, "quality_supervision", "330000")
    shandong = await pilot_unit(registry, national, "quality_supervision", "370000")
    officer = await create_officer(registry, national, shandong)
    return {"zhejiang": zhejiang, "shandong": shandong, "officer": officer}


# (method, path template, body); {id} is the object asked for.
REGISTRY_ROUTES = {
    "bureau": [
        ("GET", "/api/v1/registry/bureaus/{id}", None),
        ("PATCH", "/api/v1/registry/bureaus/{id}", {"name": "新的名字"}),
        ("GET", "/api/v1/registry/bureaus/{id}/bodies", None),
        ("GET", "/api/v1/registry/bureaus/{id}/posts", None),
        ("POST", "/api/v1/registry/bureaus/{id}/posts", {"body": "enforcement", "name": "执法岗"}),
        (
            "POST",
            "/api/v1/registry/bureaus",
            {"parent_id": "{id}", "name": "某县局", "level": "county", "division_code": "370102"},
        ),
        ("POST", "/api/v1/registry/officers", {"bureau_id": "{id}", "body": "legal", "name": "张三"}),
    ],
    "officer": [
        ("GET", "/api/v1/registry/officers/{id}", None),
        ("PATCH", "/api/v1/registry/officers/{id}", {"name": "李四"}),
        ("PATCH", "/api/v1/registry/officers/{id}", {"active": False}),
    ],
}


# What a POST to a route would have made: the table its own unique name would be found in.
MADE_BY = {"/posts": Post, "/bureaus": Bureau, "/officers": Officer}


def _fill(body, object_id, name: str):
    if body is None:
        return None
    filled = {k: (object_id if v == "{id}" else v) for k, v in body.items()}
    return {**filled, "name": name} if "name" in filled else filled


@pytest.mark.parametrize(
    ("kind", "method", "path", "body"),
    [(kind, *route) for kind, routes in REGISTRY_ROUTES.items() for route in routes],
)
async def test_registry_answers_alike(registry, token_for, two_provinces, kind, method, path, body):
    token = token_for(two_provinces["zhejiang"])
    existing = two_provinces["shandong"]["id"] if kind == "bureau" else two_provinces["officer"]["id"]
    before = None
    if method == "PATCH":
        before = (await registry.get(path.format(id=existing), headers=auth(token_for()))).json()
    name = unique("某名")
    answers = []
    for object_id in (existing, MISSING_ID):
        response = await registry.request(
            method,
            path.format(id=object_id),
            json=_fill(body, object_id, name),
            headers={**auth(token), "If-Match": f'"{before["version"] if before else 1}"'},
        )
        assert response.status_code == 404, (object_id, response.text)
        answers.append(masked(response.json(), object_id))
    assert answers[0] == answers[1]
    assert answers[0]["type"] == "/problems/not-found"
    # Nothing written to the other province's object, nor made under it.
    if method == "PATCH":
        read = await registry.get(path.format(id=existing), headers=auth(token_for()))
        assert read.json() == before
    if method == "POST":
        made_by = next(model for suffix, model in MADE_BY.items() if path.endswith(suffix))
        assert await rows_where(registry, made_by, name=name) == 0


@pytest.fixture(scope="module")
async def shandong_account(gateway, two_provinces):
    from gateway import passwords
    from gateway.models import Account

    account = Account(
        username=f"sd-{uuid.uuid4().hex[:10]}",
        kind="officer",
        secret_hash=await passwords.hash_secret("correct horse battery"),
        officer_id=two_provinces["officer"]["id"],
        bureau_id=two_provinces["shandong"]["id"],
        bureau_path=two_provinces["shandong"]["path"],
        body="enforcement",
        roles=["enforcement"],
    )
    async with gateway.app.state.sessionmaker() as session:
        session.add(account)
        await session.commit()
    return account


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GET", None),
        ("PATCH", {"active": False}),
        ("PATCH", {"roles": ["enforcement", "head"]}),
        ("PATCH", {"password": "a new long password"}),
    ],
)
async def test_gateway_accounts_answer_alike(
    gateway, token_for, two_provinces, shandong_account, method, body
):
    token = token_for(two_provinces["zhejiang"])
    answers = []
    for account_id in (shandong_account.id, MISSING_UUID):
        response = await gateway.request(
            method,
            f"/api/v1/auth/accounts/{account_id}",
            json=body,
            headers={**auth(token), "If-Match": f'"{shandong_account.version}"'},
        )
        assert response.status_code == 404, response.text
        answers.append(masked(response.json(), account_id))
    assert answers[0] == answers[1]
    assert answers[0]["type"] == "/problems/not-found"
    read = await gateway.get(f"/api/v1/auth/accounts/{shandong_account.id}", headers=auth(token_for()))
    assert read.json()["version"] == shandong_account.version and read.json()["active"] is True


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        (
            "/api/v1/auth/accounts/officers",
            "officer_id",
            {"username": "{name}", "password": "a long enough password", "roles": ["enforcement"]},
        ),
        ("/api/v1/auth/accounts/systems", "bureau_id", {"client_id": "{name}"}),
    ],
)
async def test_gateway_account_creation_answers_alike(gateway, token_for, two_provinces, path, field, body):
    token = token_for(two_provinces["zhejiang"])
    existing = two_provinces["officer"]["id"] if field == "officer_id" else two_provinces["shandong"]["id"]
    name = unique("unused")
    body = {k: (name if v == "{name}" else v) for k, v in body.items()}
    answers = []
    for object_id in (existing, MISSING_ID):
        response = await gateway.post(path, json={**body, field: object_id}, headers=auth(token))
        assert response.status_code == 404, response.text
        answers.append(masked(response.json(), object_id))
    assert answers[0] == answers[1]
    assert answers[0]["type"] == "/problems/not-found"
    assert await rows_where(gateway, Account, username=name) == 0
