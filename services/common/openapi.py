"""The OpenAPI conventions every app's document follows (DESIGN §6).

* Operation ids are the route function's name (``list_bureaus``), short and
  stable; an id used twice fails the document instead of being renamed.
* Errors declare the ``Problem`` schema on ``application/problem+json``, the
  media type actually sent (see ``problem_responses``).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from services.common.concurrency import ETAG_HEADER_MAX_LENGTH
from services.common.idempotency import DEFAULT_TTL_SECONDS, IDEMPOTENCY_KEY_HEADER, KEY_PATTERN
from services.common.problems import PROBLEM_TYPE_BASE, PROBLEM_TYPES, Problem, problem_doc

OPERATION_ID = re.compile(r"^[a-z][a-z0-9_]*$")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def operation_id(route: APIRoute) -> str:
    return route.name


def operation_ids(doc: dict[str, Any]) -> list[str]:
    return [
        operation["operationId"]
        for item in doc.get("paths", {}).values()
        for method, operation in item.items()
        if method in HTTP_METHODS and "operationId" in operation
    ]


def check_operation_ids(ids: Iterable[str]) -> None:
    """Raise if an id is used twice or is not a short snake_case name."""
    counts = Counter(ids)
    clashes = sorted(i for i, n in counts.items() if n > 1)
    if clashes:
        raise ValueError(f"Operation ids used more than once: {', '.join(clashes)}")
    malformed = sorted(i for i in counts if not OPERATION_ID.match(i))
    if malformed:
        raise ValueError(f"Operation ids not in snake_case: {', '.join(malformed)}")


def problem_schemas() -> dict[str, Any]:
    """``Problem`` and the models it uses, as component schemas."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    listed = "; ".join(f"`{PROBLEM_TYPE_BASE}{slug}`: {meaning}" for slug, meaning in PROBLEM_TYPES.items())
    schema["properties"]["type"]["description"] = (
        f"The rule broken, a stable URI. Those every service may answer: {listed}. "
        "A service adds the rules of its own domain (`/problems/credential-taken`…)."
    )
    components = schema.pop("$defs", {})
    components["Problem"] = schema
    return components


class PlatformAPI(FastAPI):
    """FastAPI with the platform's operation ids and problem schemas."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("generate_unique_id_function", operation_id)
        super().__init__(**kwargs)

    def openapi(self) -> dict[str, Any]:
        doc = super().openapi()
        # Error responses refer to Problem by $ref only, so FastAPI does not list it itself.
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in problem_schemas().items():
            schemas.setdefault(name, schema)
        _require_if_match(doc)
        _document_idempotency_key(doc)
        check_operation_ids(operation_ids(doc))
        return doc


# ``openapi_extra={NO_IDEMPOTENCY_KEY: True}`` on a POST the key means nothing to (the token endpoint).
NO_IDEMPOTENCY_KEY = "x-no-idempotency-key"
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_KEY_HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes the write safe to retry: a request repeated with the same key (a UUID, say) within "
        f"{DEFAULT_TTL_SECONDS // 3600} hours is carried out once, and the repeat gets the first "
        "answer again, marked `Idempotent-Replayed: true`. The same key with another method, path "
        "or body is refused (422 `/problems/idempotency-key-reused`); while the first request runs, "
        "a repeat is answered 409 `/problems/idempotency-key-in-progress`. Keys are per account."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
}
_IDEMPOTENCY_ERRORS = {
    "400": problem_doc("Idempotency-Key is not 1–255 printable ASCII characters"),
    "409": problem_doc(
        "A business rule is broken (the `type` names it), or a request with this Idempotency-Key "
        "is still in progress"
    ),
    "422": problem_doc("Malformed payload, with the field errors; or an Idempotency-Key reused"),
}


def _document_idempotency_key(doc: dict[str, Any]) -> None:
    """Every POST takes an Idempotency-Key (``services.common.idempotency``)."""
    for item in doc.get("paths", {}).values():
        operation = item.get("post")
        if operation is None or operation.pop(NO_IDEMPOTENCY_KEY, False):
            continue
        operation.setdefault("parameters", []).append(copy.deepcopy(IDEMPOTENCY_KEY_PARAMETER))
        responses = operation.setdefault("responses", {})
        for status, response in _IDEMPOTENCY_ERRORS.items():
            responses.setdefault(status, response)


def _require_if_match(doc: dict[str, Any]) -> None:
    """Updates need If-Match; its absence is a 428 (RFC 6585) rather than FastAPI's 422,
    so the route declares it optional and the document states the rule here."""
    for item in doc.get("paths", {}).values():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header" and parameter["name"].lower() == "if-match":
                    parameter["required"] = True
                    parameter["schema"] = {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": parameter["schema"].get("maxLength", ETAG_HEADER_MAX_LENGTH),
                        "title": "If-Match",
                    }
