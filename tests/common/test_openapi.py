"""The OpenAPI documents: what generated clients read (DESIGN §6)."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter

from gateway.app import build_api
from gateway.config import GatewaySettings
from gateway.openapi import merge_documents
from services.common.app import create_service_app
from services.common.concurrency import ETAG_HEADER_MAX_LENGTH
from services.common.openapi import operation_ids
from services.common.pagination import CURSOR_PATTERN, MAX_LIMIT, encode_cursor
from services.registry.config import RegistrySettings
from services.registry.models import AUDIT
from tests.common.test_problems import assert_problem
from tests.conftest import auth

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
METHODS = {"get", "put", "post", "delete", "patch"}


def service_documents() -> dict[str, dict]:
    from services.enforcement.app import create_app as enforcement
    from services.registry.app import create_app as registry
    from services.statistics.app import create_app as statistics

    return {
        "registry": registry().openapi(),
        "enforcement": enforcement().openapi(),
        "statistics": statistics().openapi(),
    }


@pytest.fixture(scope="module")
def gateway_document() -> dict:
    return build_api(GatewaySettings()).openapi()


@pytest.fixture(scope="module")
def merged(gateway_document) -> dict:
    return merge_documents(gateway_document, service_documents())


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


class TestErrorResponses:
    def test_every_error_declares_the_problem_schema_on_problem_json(self, merged):
        errors = [
            (path, method, status, response)
            for path, method, operation in operations(merged)
            for status, response in operation["responses"].items()
            if status[0] in "45"
        ]
        assert len(errors) > 40
        for path, method, status, response in errors:
            where = f"{method} {path} {status}"
            assert list(response["content"]) == ["application/problem+json"], where
            assert response["content"]["application/problem+json"]["schema"] == PROBLEM_REF, where

    def test_the_problem_schema_is_a_component_of_every_document(self, gateway_document):
        for doc in (gateway_document, *service_documents().values()):
            schemas = doc["components"]["schemas"]
            assert set(schemas["Problem"]["required"]) == {"type", "title", "status"}
            errors = schemas["Problem"]["properties"]["errors"]["anyOf"][0]["items"]
            assert errors == {"$ref": "#/components/schemas/FieldError"}
            assert "FieldError" in schemas
            assert "HTTPValidationError" not in schemas


class TestOperationIds:
    def test_merged_ids_are_unique_snake_case_names(self, merged):
        ids = operation_ids(merged)
        assert len(ids) == len(set(ids)) == sum(1 for _ in operations(merged))
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids

    def test_ids_are_the_route_names(self, merged):
        ids = {(method, path): operation["operationId"] for path, method, operation in operations(merged)}
        assert ids[("get", "/api/v1/registry/bureaus")] == "list_bureaus"
        assert ids[("get", "/api/v1/registry/bureaus/{bureau_id}")] == "get_bureau"
        assert ids[("post", "/api/v1/auth/token")] == "issue_token"

    def test_routes_every_service_has_are_named_after_the_service(self, merged):
        ids = set(operation_ids(merged))
        for service in ("registry", "enforcement", "statistics"):
            assert {f"{service}_me", f"verify_{service}_audit_chain"} <= ids
        assert "verify_auth_audit_chain" in ids

    def test_merging_two_operations_with_one_id_fails(self, gateway_document):
        docs = service_documents()
        docs["statistics"]["paths"]["/api/v1/statistics/me"]["get"]["operationId"] = "list_bureaus"
        with pytest.raises(ValueError, match="list_bureaus"):
            merge_documents(gateway_document, docs)

    @pytest.mark.filterwarnings("ignore:Duplicate Operation ID")
    def test_one_app_with_two_routes_of_one_name_fails(self):
        first, second = APIRouter(prefix="/api/v1/a"), APIRouter(prefix="/api/v1/b")

        @first.get("/things")
        async def list_things() -> list[int]:
            return []

        second.add_api_route("/things", list_things)
        app = create_service_app(
            name="test",
            title="t",
            description="t",
            settings=RegistrySettings(),
            routers=[first, second],
            audit=AUDIT,
        )
        with pytest.raises(ValueError, match="list_things"):
            app.openapi()


class TestParameters:
    def test_if_match_is_required_by_every_update(self, merged):
        updates = [(p, op) for p, m, op in operations(merged) if m == "patch"]
        assert {op["operationId"] for _, op in updates} >= {
            "update_account",
            "update_bureau",
            "update_officer",
            "update_certification_body",
            "update_auditor",
            "update_enterprise",
            "update_product",
            "update_certificate",
            "update_inspection",
        }
        for path, operation in updates:
            header = next(p for p in operation["parameters"] if p["name"].lower() == "if-match")
            assert header["required"] is True, path
            assert header["schema"] == {
                "type": "string",
                "minLength": 1,
                "maxLength": ETAG_HEADER_MAX_LENGTH,
                "title": "If-Match",
            }

    def test_ids_are_bounded_to_what_json_clients_hold_exactly(self, merged):
        operation = merged["paths"]["/api/v1/registry/officers/{officer_id}"]["get"]
        schema = operation["parameters"][0]["schema"]
        assert (schema["minimum"], schema["maximum"]) == (1, 2**53 - 1)
        body = merged["components"]["schemas"]["OfficerCreate"]["properties"]["bureau_id"]
        assert body["maximum"] == 2**53 - 1

    async def test_an_id_beyond_the_bound_is_a_422_problem(self, registry, token_for):
        response = await registry.get(f"/api/v1/registry/officers/{2**53}", headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["path.officer_id"]

    def test_account_ids_are_uuids(self, merged):
        operation = merged["paths"]["/api/v1/auth/accounts/{account_id}"]["get"]
        assert operation["parameters"][0]["schema"]["format"] == "uuid"


class TestPagination:
    def parameters(self, merged) -> dict:
        operation = merged["paths"]["/api/v1/registry/officers"]["get"]
        return {p["name"]: p for p in operation["parameters"]}

    def test_cursor_declares_its_format_and_length(self, merged):
        cursor = self.parameters(merged)["cursor"]
        schema = cursor["schema"]["anyOf"][0]
        assert schema["pattern"] == CURSOR_PATTERN and schema["maxLength"] == 512
        assert "next_cursor" in cursor["description"]

    def test_limit_declares_its_bounds_and_default(self, merged):
        schema = self.parameters(merged)["limit"]["schema"]
        assert (schema["minimum"], schema["maximum"], schema["default"]) == (1, MAX_LIMIT, 50)

    def test_next_cursor_is_described(self, merged):
        page = merged["components"]["schemas"]["Page_OfficerRead_"]
        assert "cursor" in page["properties"]["next_cursor"]["description"]

    @pytest.mark.parametrize("key", [[1], ["x"], [12345678901234], ["杭州", 99]])
    def test_issued_cursors_match_the_declared_pattern(self, key):
        assert re.fullmatch(CURSOR_PATTERN, encode_cursor(key))

    @pytest.mark.parametrize("cursor", ["not a cursor", "abc=", "a", "x+y/", "A" * 513])
    async def test_a_cursor_outside_the_format_is_a_422_problem(self, registry, token_for, cursor):
        response = await registry.get(
            "/api/v1/registry/officers", params={"cursor": cursor}, headers=auth(token_for())
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["query.cursor"]
