"""Every value a client sends is bounded: the merged OpenAPI document declares a length for
every request string and a count for every request list (what schemathesis and generated
clients read), and the bounds are enforced with a problem answer.

URL, query string and header sizes are bounded once for everything at the edge
(tests/gateway/test_edge_timeouts.py: 414, 431); bodies by MAX_BODY_BYTES (413); pages by
``MAX_LIMIT``.
"""

from __future__ import annotations

import re._parser as regex_parser
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.app import build_api
from gateway.config import GatewaySettings
from gateway.openapi import merge_documents
from services.common.auth import Role
from services.common.concurrency import ETAG_HEADER_MAX_LENGTH
from services.common.pagination import MAX_LIMIT
from tests.common.test_openapi import service_documents
from tests.conftest import assert_problem, auth

METHODS = {"get", "put", "post", "delete", "patch"}
# Formats whose syntax bounds their length.
BOUNDED_FORMATS = {"date", "date-time", "time", "uuid", "binary", "email"}
# A declared pattern bounds a string when anchored and of finite width below this.
PATTERN_WIDTH_LIMIT = 10_000
PAGE_CEILING = 1000


@pytest.fixture(scope="module")
def merged() -> dict:
    return merge_documents(build_api(GatewaySettings()).openapi(), service_documents())


def pattern_bounds(pattern: str | None) -> bool:
    """The pattern (matched as a search) lets no string longer than the limit through."""
    if not pattern or not pattern.startswith("^") or not pattern.endswith("$") or pattern.endswith("\\$"):
        return False
    return regex_parser.parse(pattern).getwidth()[1] < PATTERN_WIDTH_LIMIT


def unbounded(doc: dict, schema: dict, where: str, inherited: dict, seen: frozenset) -> Iterator[str]:
    """The places under ``schema`` where a string has no length bound or a list no count."""
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return
        seen = seen | {ref}
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    # A bound beside anyOf/oneOf applies to each branch (JSON Schema keywords are per type).
    limits = {k: schema[k] for k in ("maxLength", "maxItems") if k in schema} or inherited
    for keyword in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(keyword, []):
            yield from unbounded(doc, branch, where, limits, seen)
    kind = schema.get("type")
    if kind == "string":
        bounded = (
            "maxLength" in schema
            or "maxLength" in limits
            or "enum" in schema
            or "const" in schema
            or schema.get("format") in BOUNDED_FORMATS
            or pattern_bounds(schema.get("pattern"))
        )
        if not bounded:
            yield f"{where}: a string without maxLength"
    elif kind == "array":
        if "maxItems" not in schema and "maxItems" not in limits:
            yield f"{where}: a list without maxItems"
        yield from unbounded(doc, schema.get("items", {}), f"{where}[]", {}, seen)
    for name, child in schema.get("properties", {}).items():
        yield from unbounded(doc, child, f"{where}.{name}", {}, seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from unbounded(doc, extra, f"{where}.*", {}, seen)


def request_values(doc: dict) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each parameter and request body of each operation, with where it is."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for parameter in operation.get("parameters", []):
                yield f"{method.upper()} {path} {parameter['in']} {parameter['name']}", parameter["schema"]
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                yield f"{method.upper()} {path} body ({media})", content.get("schema", {})


class TestTheDocument:
    def test_every_request_string_and_list_is_bounded(self, merged):
        found = [
            problem
            for where, schema in request_values(merged)
            for problem in unbounded(merged, schema, where, {}, frozenset())
        ]
        assert found == [], "\n".join(found)

    def test_the_walk_finds_what_it_looks_for(self):
        """The check above would see an unbounded string or list, nested or referenced."""
        doc = {
            "components": {
                "schemas": {
                    "Item": {"type": "object", "properties": {"note": {"type": "string"}}},
                    "Body": {
                        "type": "object",
                        "properties": {
                            "items": {
                                "type": "array",
                                "maxItems": 3,
                                "items": {"$ref": "#/components/schemas/Item"},
                            },
                            "tags": {
                                "anyOf": [{"type": "array", "items": {"type": "string", "maxLength": 9}}]
                            },
                            "code": {"type": "string", "pattern": "^[a-z]+$"},
                            "kind": {"type": "string", "pattern": "^[a-z]{1,8}$"},
                            "name": {"anyOf": [{"type": "string"}, {"type": "null"}], "maxLength": 5},
                        },
                    },
                }
            }
        }
        found = list(unbounded(doc, {"$ref": "#/components/schemas/Body"}, "body", {}, frozenset()))
        assert found == [
            "body.items[].note: a string without maxLength",
            "body.tags: a list without maxItems",
            "body.code: a string without maxLength",
        ]

    def test_every_page_size_is_bounded(self, merged):
        sizes = [
            (where, schema) for where, schema in request_values(merged) if where.endswith(" query limit")
        ]
        assert sizes
        # Lists page at MAX_LIMIT; the changes-since feed, read by machines, at 1000.
        assert [w for w, s in sizes if s.get("maximum", PAGE_CEILING + 1) > PAGE_CEILING] == []


class TestEnforced:
    async def test_an_etag_header_too_long_is_refused(self, registry, token_for):
        response = await registry.patch(
            "/api/v1/registry/bureaus/1",
            json={"name": "x"},
            headers={**auth(token_for()), "If-Match": '"1", ' * ETAG_HEADER_MAX_LENGTH},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert any(e["loc"] == "header.if-match" for e in problem["errors"]), problem

    async def test_a_page_too_large_is_refused(self, registry, token_for):
        response = await registry.get(
            "/api/v1/registry/officers", params={"limit": MAX_LIMIT + 1}, headers=auth(token_for())
        )
        assert_problem(response, 422, "/problems/validation-error")

    async def test_a_share_written_too_long_is_refused(self, registry, token_for):
        response = await registry.post(
            "/api/v1/registry/inspection-plans",
            json={
                "year": 2026,
                "title": "t",
                "subject_type": "certificate",
                "draw_share": "0." + "0" * 40 + "1",
            },
            headers=auth(token_for()),
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert any(e["loc"].endswith("draw_share") for e in problem["errors"]), problem

    async def test_too_many_roles_are_refused(self, gateway, token_for):
        response = await gateway.post(
            "/api/v1/auth/accounts/officers",
            json={"username": "many-roles", "password": "p" * 16, "officer_id": 1, "roles": ["head"] * 20},
            headers=auth(token_for(roles=(Role.ADMIN,))),
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert any(e["loc"].endswith("roles") for e in problem["errors"]), problem

    async def test_a_token_form_field_too_long_is_an_oauth_error(self, gateway):
        response = await gateway.post("/api/v1/auth/token", data={"grant_type": "g" * 65})
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
