"""The integrator's kit in the OpenAPI documents (DESIGN §6, issue 9 item 6): every operation
has a summary, an English description naming the Chinese term, examples of its request and
success bodies that validate against their schemas, and every status its dependencies can
answer, each problem status with an example of its types."""

from __future__ import annotations

import copy
import re
from typing import Annotated, Any

import jsonschema
import pytest
from fastapi import Header
from pydantic import BaseModel

from gateway.app import build_api
from gateway.config import GatewaySettings
from gateway.openapi import merge_documents
from services.common.deps import Authorize, PrincipalDep
from services.common.examples import example_of
from services.common.openapi import HTTP_METHODS, PlatformAPI, problem_status, standard_statuses
from services.common.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, PROBLEM_TYPES

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
BINARY = ("application/vnd.", "application/octet-stream", "application/pdf")


def apps() -> dict[str, Any]:
    from services.enforcement.app import create_app as enforcement
    from services.registry.app import create_app as registry
    from services.statistics.app import create_app as statistics

    return {
        "gateway": build_api(GatewaySettings()),
        "registry": registry(),
        "enforcement": enforcement(),
        "statistics": statistics(),
    }


@pytest.fixture(scope="module")
def documents() -> dict[str, tuple[Any, dict[str, Any]]]:
    return {name: (app, app.openapi()) for name, app in apps().items()}


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def expected_statuses(operation: dict[str, Any], method: str) -> set[int]:
    """What the document's own parameters imply, read independently of the mechanism."""
    expected = {429}
    parameters = operation.get("parameters", [])
    names = {p["name"].lower() for p in parameters if p["in"] == "header"}
    if parameters or "requestBody" in operation:
        expected.add(422)
    if any(p["in"] == "path" for p in parameters):
        expected.add(404)
    if "if-match" in names:
        expected |= {412, 428}
    if "idempotency-key" in names:
        expected |= {400, 409, 422}
    if "requestBody" in operation or "idempotency-key" in names:
        expected.add(413)
    return expected


def _media_examples(content: dict[str, Any]) -> list[Any]:
    if "example" in content:
        return [content["example"]]
    return [e["value"] for e in content.get("examples", {}).values()]


def validate(example: Any, schema: dict[str, Any], doc: dict[str, Any]) -> None:
    jsonschema.validate(example, {**schema, "components": doc.get("components", {})})


def kit_gaps(app: Any, doc: dict[str, Any]) -> list[str]:
    """Each thing the kit asks for that an operation lacks, as ``METHOD path: what``."""
    gaps: list[str] = []
    routes = {}
    from fastapi.routing import APIRoute, iter_route_contexts

    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            for method in route.methods:
                routes[(route.path_format, method.lower())] = route
    for path, method, operation in operations(doc):
        where = f"{method.upper()} {path}"
        if not operation.get("summary"):
            gaps.append(f"{where}: no summary")
        if not CJK.search(operation.get("description", "")):
            gaps.append(f"{where}: no description naming the Chinese term")
        for media_type, content in operation.get("requestBody", {}).get("content", {}).items():
            if not media_type.startswith(BINARY) and not _media_examples(content):
                gaps.append(f"{where}: no example of the {media_type} request")
        for status, response in operation["responses"].items():
            for media_type, content in response.get("content", {}).items():
                if media_type.startswith(BINARY):
                    continue
                if status.startswith("2") and not _media_examples(content):
                    gaps.append(f"{where}: no example of the {status} {media_type} answer")
                typed = any(problem_status(slug) == int(status) for slug in PROBLEM_TYPES)
                if media_type == PROBLEM_MEDIA_TYPE and typed and not content.get("examples"):
                    gaps.append(f"{where}: no example of the {status} problem types")
        declared = {int(s) for s in operation["responses"] if s.isdigit()}
        expected = expected_statuses(operation, method)
        route = routes.get((path, method))
        if route is not None:
            expected |= standard_statuses(route, method)
        for status in sorted(expected - declared):
            gaps.append(f"{where}: {status} not declared")
    return gaps


class TestEveryOperation:
    @pytest.mark.parametrize("service", ["gateway", "registry", "enforcement", "statistics"])
    def test_has_its_summary_description_examples_and_statuses(self, documents, service):
        app, doc = documents[service]
        assert list(operations(doc))
        assert kit_gaps(app, doc) == []

    def test_every_example_validates_against_its_schema(self, documents):
        checked, invalid = 0, []
        for _, doc in documents.values():
            for path, method, operation in operations(doc):
                bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
                for body in bodies:
                    for media_type, content in body.get("content", {}).items():
                        if "schema" not in content:
                            continue
                        for example in _media_examples(content):
                            try:
                                validate(example, content["schema"], doc)
                            except jsonschema.ValidationError as exc:
                                invalid.append(f"{method.upper()} {path} {media_type}: {exc.message}")
                            checked += 1
        assert invalid == []
        assert checked > 500

    def test_the_problem_examples_name_each_type_with_its_status(self, documents):
        _, doc = documents["registry"]
        operation = doc["paths"]["/api/v1/registry/bureaus/{bureau_id}"]["patch"]
        examples = {
            status: operation["responses"][status]["content"][PROBLEM_MEDIA_TYPE]["examples"]
            for status in ("401", "403", "404", "412", "422", "428", "429", "503")
        }
        assert set(examples["412"]) == {"precondition-failed"}
        assert set(examples["403"]) == {"forbidden", "role-required"}
        assert {"validation-error", "idempotency-key-reused", "invalid-value"} <= set(examples["422"])
        assert examples["422"]["validation-error"]["value"]["errors"]
        for status, named in examples.items():
            for slug, example in named.items():
                assert example["value"]["type"] == PROBLEM_TYPE_BASE + slug
                assert example["value"]["status"] == int(status)
        assert operation["responses"]["429"]["headers"]["Retry-After"]

    def test_the_merged_document_keeps_them(self, documents):
        merged = merge_documents(
            documents["gateway"][1], {name: doc for name, (_, doc) in documents.items() if name != "gateway"}
        )
        total = sum(len(list(operations(doc))) for _, doc in documents.values())
        merged_operations = list(operations(merged))
        assert len(merged_operations) == total
        for path, method, operation in merged_operations:
            assert CJK.search(operation["description"]), f"{method} {path}"
            assert "429" in operation["responses"], f"{method} {path}"
            if not path.startswith(("/api/v1/auth", "/.well-known")):  # through the gateway's proxy
                assert {"503", "504"} <= set(operation["responses"]), f"{method} {path}"
                examples = operation["responses"]["504"]["content"][PROBLEM_MEDIA_TYPE]["examples"]
                assert list(examples) == ["upstream-timeout"]


class Thing(BaseModel):
    name: str


Admin = Authorize("admin")


class TestTheCheckFindsWhatIsMissing:
    """A route without the kit fails ``kit_gaps``: the test above cannot pass vacuously."""

    def app(self, description: str | None) -> PlatformAPI:
        app = PlatformAPI(title="toy")

        @app.patch("/things/{thing_id}", summary="Change a thing", description=description)
        async def change_thing(
            thing_id: int,
            data: Thing,
            principal: Admin,
            if_match: Annotated[str | None, Header()] = None,
        ) -> Thing:
            return data

        @app.get("/me", summary="Who", description="The principal (主体).")
        async def who(principal: PrincipalDep) -> Thing:
            return Thing(name=principal.name)

        return app

    def test_a_described_route_gets_every_standard_status_and_examples(self):
        app = self.app("Changes a thing (事物).")
        doc = app.openapi()
        assert kit_gaps(app, doc) == []
        responses = doc["paths"]["/things/{thing_id}"]["patch"]["responses"]
        assert {"401", "403", "404", "412", "413", "422", "428", "429"} <= set(responses)
        assert set(doc["paths"]["/me"]["get"]["responses"]) == {"200", "401", "429"}
        body = doc["paths"]["/things/{thing_id}"]["patch"]["requestBody"]["content"]["application/json"]
        assert body["example"] == {"name": "name"}

    def test_a_route_without_a_chinese_description_is_reported(self):
        app = self.app("Changes a thing.")
        assert kit_gaps(app, app.openapi()) == [
            "PATCH /things/{thing_id}: no description naming the Chinese term"
        ]

    def test_missing_statuses_and_examples_are_reported(self):
        app = self.app("Changes a thing (事物).")
        doc = copy.deepcopy(app.openapi())
        operation = doc["paths"]["/things/{thing_id}"]["patch"]
        del operation["responses"]["404"], operation["responses"]["412"]
        del operation["requestBody"]["content"]["application/json"]["example"]
        del operation["responses"]["200"]["content"]["application/json"]["example"]
        del operation["summary"]
        assert kit_gaps(app, doc) == [
            "PATCH /things/{thing_id}: no summary",
            "PATCH /things/{thing_id}: no example of the application/json request",
            "PATCH /things/{thing_id}: no example of the 200 application/json answer",
            "PATCH /things/{thing_id}: 404 not declared",
            "PATCH /things/{thing_id}: 412 not declared",
        ]


class TestDerivedExamples:
    def test_they_follow_patterns_bounds_formats_and_references(self):
        components = {"Money": {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?$"}}
        schema = {
            "type": "object",
            "properties": {
                "code": {"type": "string", "pattern": r"^\d{6}$"},
                "odd": {"type": "string", "pattern": r"^Q[a-c]{3}$"},
                "fine": {"$ref": "#/components/schemas/Money"},
                "day": {"type": "string", "format": "date"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
                "state": {"enum": ["open", "closed"]},
                "note": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string", "minLength": 2}},
            },
        }
        example = example_of(schema, components)
        assert example["code"] == "330100"
        assert re.fullmatch(r"Q[a-c]{3}", example["odd"])
        assert example["fine"] == "12000.00"
        assert example["state"] == "open"
        jsonschema.validate(example, {**schema, "components": {"schemas": components}})
