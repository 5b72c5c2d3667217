"""Products (产品) of certified enterprises: an active holder, category and model, scope and roles."""

from __future__ import annotations

import pytest

from tests.conftest import auth
from tests.factories import (
    audit_entries,
    create_enterprise,
    create_product,
    credit_code,
    legacy_enterprise,
    org_code,
    same_problem,
    two_provinces,
    unique,
)

PRODUCTS = "/api/v1/registry/products"


@pytest.fixture(scope="module")
async def places(registry, token_for):
    return await two_provinces(registry, token_for())


@pytest.fixture
def writer(token_for, places):
    return token_for(places["home"], roles=("supervision",))


@pytest.fixture
async def holder(registry, writer):
    return await create_enterprise(registry, writer)


async def products_of(registry, token: str, holder: dict, **params) -> list[dict]:
    response = await registry.get(PRODUCTS, params={"holder_id": holder["id"], **params}, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def product_payload(holder: dict, **extra) -> dict:
    return {
        "holder_id": holder["id"],
        "name": unique("电冰箱"),
        "category_code": "0701",
        "model": "BCD-520W",
        **extra,
    }


class TestCreateProduct:
    async def test_a_product_is_recorded_for_its_holder(self, registry, writer, holder, places):
        response = await registry.post(
            PRODUCTS, json=product_payload(holder, trademark=" 示例 "), headers=auth(writer)
        )
        assert response.status_code == 201, response.text
        product = response.json()
        assert (product["holder_id"], product["category_code"], product["model"], product["trademark"]) == (
            holder["id"],
            "0701",
            "BCD-520W",
            "示例",
        )
        assert product["bureau_path"] == places["home"]["path"]
        assert response.headers["location"] == f"{PRODUCTS}/{product['id']}"
        assert response.headers["etag"] == '"1"'
        entries = await audit_entries(registry, "product", product["id"])
        assert [e["action"] for e in entries] == ["product.created"]

    async def test_a_bureau_may_record_a_product_of_an_enterprise_of_another_province(
        self, registry, token_for, places, holder
    ):
        other = token_for(places["away"], roles=("supervision",))
        product = await create_product(registry, other, holder)
        assert (product["holder_id"], product["bureau_id"]) == (holder["id"], places["away"]["id"])

    async def test_a_missing_holder_is_refused(self, registry, writer):
        response = await registry.post(PRODUCTS, json=product_payload({"id": 2**52}), headers=auth(writer))
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.holder_id"

    async def test_a_merged_holder_is_refused_naming_the_survivor(self, registry, writer, places):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        newer = await legacy_enterprise(
            registry, places["home"], credit_code=credit_code(org=older["org_code"])
        )
        merged = await registry.post(
            f"/api/v1/registry/enterprises/{newer['id']}/merge",
            json={"duplicate_id": older["id"]},
            headers=auth(writer),
        )
        assert merged.status_code == 200, merged.text
        response = await registry.post(PRODUCTS, json=product_payload(older), headers=auth(writer))
        assert response.status_code == 409
        assert (response.json()["type"], response.json()["survivor_id"]) == (
            "/problems/enterprise-merged",
            newer["id"],
        )
        assert await products_of(registry, writer, older) == []

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head"])
    async def test_other_roles_are_refused(self, registry, token_for, places, holder, role):
        response = await registry.post(
            PRODUCTS, json=product_payload(holder), headers=auth(token_for(places["home"], roles=(role,)))
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert await products_of(registry, token_for(), holder) == []

    async def test_a_bureau_outside_scope_is_not_found(self, registry, writer, places, holder):
        response = await registry.post(
            PRODUCTS, json=product_payload(holder, bureau_id=places["away"]["id"]), headers=auth(writer)
        )
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert await products_of(registry, writer, holder) == []

    @pytest.mark.parametrize(
        "change",
        [
            {"category_code": "07-01"},
            {"category_code": "a"},
            {"model": ""},
            {"name": "x"},
            {"holder_id": "1"},
            {"holder_id": 0},
            {"status": "active"},
        ],
    )
    async def test_malformed_fields_are_refused(self, registry, writer, holder, change):
        response = await registry.post(
            PRODUCTS, json={**product_payload(holder), **change}, headers=auth(writer)
        )
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"
        assert await products_of(registry, writer, holder) == []


class TestReadAndListProducts:
    async def test_any_principal_reads_a_product(self, registry, writer, token_for, places, holder):
        product = await create_product(registry, writer, holder)
        response = await registry.get(
            f"{PRODUCTS}/{product['id']}", headers=auth(token_for(places["away"], roles=("enforcement",)))
        )
        assert response.status_code == 200
        assert response.json() == product
        assert response.headers["etag"] == '"1"'

    async def test_a_missing_product_is_not_found(self, registry, token_for):
        response = await registry.get(f"{PRODUCTS}/{2**52}", headers=auth(token_for()))
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"

    async def test_filters_by_holder_category_and_name(self, registry, writer, token_for, holder):
        marker = unique("筛选产品")
        fridge = await create_product(registry, writer, holder, name=f"{marker}冰箱", category_code="0701")
        washer = await create_product(registry, writer, holder, name=f"{marker}洗衣机", category_code="0703")
        elsewhere = await create_product(
            registry, writer, await create_enterprise(registry, writer), name=f"{marker}灯"
        )
        reader = token_for()
        assert [p["id"] for p in await products_of(registry, reader, holder)] == [fridge["id"], washer["id"]]
        assert [p["id"] for p in await products_of(registry, reader, holder, category_code="0703")] == [
            washer["id"]
        ]
        response = await registry.get(PRODUCTS, params={"q": marker, "limit": 2}, headers=auth(reader))
        page = response.json()
        assert [p["id"] for p in page["items"]] == [fridge["id"], washer["id"]]
        response = await registry.get(
            PRODUCTS, params={"q": marker, "limit": 2, "cursor": page["next_cursor"]}, headers=auth(reader)
        )
        assert [p["id"] for p in response.json()["items"]] == [elsewhere["id"]]


class TestUpdateProduct:
    async def test_a_change_with_if_match_makes_a_new_version(self, registry, writer, holder):
        product = await create_product(registry, writer, holder)
        response = await registry.patch(
            f"{PRODUCTS}/{product['id']}",
            json={"model": "BCD-600W", "trademark": ""},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        assert (response.json()["model"], response.json()["version"]) == ("BCD-600W", 2)
        assert response.headers["etag"] == '"2"'

    async def test_the_holder_does_not_change_by_update(self, registry, writer, holder):
        product = await create_product(registry, writer, holder)
        other = await create_enterprise(registry, writer)
        response = await registry.patch(
            f"{PRODUCTS}/{product['id']}",
            json={"holder_id": other["id"]},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 422
        assert (await registry.get(f"{PRODUCTS}/{product['id']}", headers=auth(writer))).json() == product

    async def test_a_stale_if_match_is_refused(self, registry, writer, holder):
        product = await create_product(registry, writer, holder)
        url = f"{PRODUCTS}/{product['id']}"
        assert (
            await registry.patch(url, json={"model": "A"}, headers={**auth(writer), "If-Match": '"1"'})
        ).status_code == 200
        response = await registry.patch(url, json={"model": "B"}, headers={**auth(writer), "If-Match": '"1"'})
        assert response.status_code == 412
        assert response.json()["type"] == "/problems/precondition-failed"
        assert (await registry.get(url, headers=auth(writer))).json()["model"] == "A"

    async def test_a_missing_if_match_is_refused(self, registry, writer, holder):
        product = await create_product(registry, writer, holder)
        response = await registry.patch(
            f"{PRODUCTS}/{product['id']}", json={"model": "B"}, headers=auth(writer)
        )
        assert response.status_code == 428
        assert response.json()["type"] == "/problems/precondition-required"
        assert (await registry.get(f"{PRODUCTS}/{product['id']}", headers=auth(writer))).json() == product

    async def test_a_product_outside_scope_is_not_found_like_a_missing_one(
        self, registry, writer, token_for, places, holder
    ):
        product = await create_product(registry, writer, holder)
        headers = {**auth(token_for(places["away"], roles=("supervision",))), "If-Match": '"1"'}
        outside = await registry.patch(f"{PRODUCTS}/{product['id']}", json={"model": "X"}, headers=headers)
        missing = await registry.patch(f"{PRODUCTS}/{2**52}", json={"model": "X"}, headers=headers)
        assert outside.status_code == missing.status_code == 404
        assert same_problem(outside.json(), product["id"]) == same_problem(missing.json(), 2**52)
        assert (await registry.get(f"{PRODUCTS}/{product['id']}", headers=auth(writer))).json() == product

    async def test_a_legal_officer_is_refused(self, registry, writer, token_for, places, holder):
        product = await create_product(registry, writer, holder)
        response = await registry.patch(
            f"{PRODUCTS}/{product['id']}",
            json={"model": "X"},
            headers={**auth(token_for(places["home"], roles=("legal",))), "If-Match": '"1"'},
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
