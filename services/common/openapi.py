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
        add_links(doc)
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
                    parameter["schema"] = {"type": "string", "minLength": 1, "title": "If-Match"}


# OpenAPI links (https://spec.openapis.org/oas/v3.1.0#link-object), derived from the routes: what a
# client may do next with the object an answer names. Clients and API tools (schemathesis's
# stateful runs) follow them: a created case is read, its officers assigned, its steps taken.
_PATH_PARAMETER = re.compile(r"\{([^}/]+)\}")
_SUCCESS = ("201", "200")


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in doc.get("paths", {}).items()
        for method, operation in item.items()
        if method in HTTP_METHODS and isinstance(operation, dict) and "operationId" in operation
    ]


def _success(operation: dict[str, Any]) -> tuple[str, str | None] | None:
    """The first success status an operation answers, and the schema its JSON body refers to."""
    for status in _SUCCESS:
        response = operation.get("responses", {}).get(status)
        if response is not None:
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            return status, schema.get("$ref")
    return None


def _schema(doc: dict[str, Any], ref: str | None) -> dict[str, Any]:
    if not ref or not ref.startswith("#/components/schemas/"):
        return {}
    return doc.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})


def _has_id(doc: dict[str, Any], ref: str | None) -> bool:
    return "id" in _schema(doc, ref).get("properties", {})


def _needs_if_match(operation: dict[str, Any]) -> bool:
    return any(
        p.get("in") == "header" and p.get("name", "").lower() == "if-match"
        for p in operation.get("parameters", [])
    )


def _item_path(path: str) -> str | None:
    """``/cases/{case_id}`` of ``/cases/{case_id}/transitions``: the object an operation acts on."""
    segments = path.split("/")
    for index in range(len(segments) - 1, -1, -1):
        if _PATH_PARAMETER.fullmatch(segments[index]):
            return "/".join(segments[: index + 1])
    return None


def _created_item(
    path: str, ref: str | None, paths: dict[str, Any], reads: dict[str, tuple[str, str | None] | None]
) -> tuple[str, str] | None:
    """Where the object a create makes is read, and its identifier's name: ``/cases/{case_id}``
    for ``POST /cases``; ``/accounts/{account_id}`` for ``POST /accounts/officers``, whose answer
    is the object that read answers with."""
    new = [m.group(1) for p in paths if (m := re.fullmatch(re.escape(path) + r"/\{([^}/]+)\}", p))]
    if len(new) == 1:
        return f"{path}/{{{new[0]}}}", new[0]
    parent = path.rsplit("/", 1)[0]
    for p in paths:
        m = re.fullmatch(re.escape(parent) + r"/\{([^}/]+)\}", p)
        read = reads.get(p)
        if m is not None and read is not None and ref is not None and read[1] == ref:
            return p, m.group(1)
    return None


def add_links(doc: dict[str, Any]) -> None:
    """Give every success answer naming an object (an ``id``) links to the operations on it.

    A create (``POST /cases`` answered 201) links to the operations under ``/cases/{case_id}``
    with the new ``id``; an answer about an object (``GET /cases/{case_id}``, a transition, an
    update) links to the other operations under that object with the path it was given. An
    operation that names the version it read (If-Match) gets the answer's ``ETag`` when the
    answer is the object itself (its schema is the one its read answers with).
    """
    operations = _operations(doc)
    reads = {path: _success(op) for path, method, op in operations if method == "get"}
    paths = doc.get("paths", {})
    # The read of one object by its own identifier: ``GET /cases/{case_id}``.
    item_reads = {
        params[0]: op
        for path, method, op in operations
        if method == "get" and len(params := _PATH_PARAMETER.findall(path)) == 1 and path.endswith("}")
    }
    for path, method, operation in operations:
        success = _success(operation)
        if success is None:
            continue
        status, ref = success
        if method == "get" and not path.endswith("}"):
            _link_page(doc, path, operation, ref, operations)
        # A step on an object (``POST /cases/{case_id}/transitions``) links nowhere: a tool that
        # starts its chains at any POST with links would start there, with an object that is not.
        if not _has_id(doc, ref) or (method == "post" and _PATH_PARAMETER.search(path)):
            continue
        given = set(_PATH_PARAMETER.findall(path))
        if method == "post" and status == "201" and not path.endswith("}"):
            found = _created_item(path, ref, paths, reads)
            if found is None:
                continue
            item, fresh = found
        else:
            found = _item_path(path)
            if found is None:
                continue
            item, fresh = found, None
        read = reads.get(item)
        same_object = read is not None and read[1] == ref
        links: dict[str, Any] = {}
        for target_path, _target_method, target in operations:
            if target is operation or not (target_path == item or target_path.startswith(item + "/")):
                continue
            parameters: dict[str, str] = {}
            for name in _PATH_PARAMETER.findall(target_path):
                if name == fresh:
                    parameters[f"path.{name}"] = "$response.body#/id"
                elif name in given:
                    parameters[f"path.{name}"] = f"$request.path.{name}"
                else:
                    break
            else:
                if _needs_if_match(target):
                    if not same_object:
                        continue
                    parameters["header.If-Match"] = "$response.header.ETag"
                links[target["operationId"]] = {
                    "operationId": target["operationId"],
                    "parameters": parameters,
                }
        # An object naming another (``case_id`` on a lead once its case is opened) links to its read.
        properties = _schema(doc, ref).get("properties", {})
        for name in sorted(properties):
            target = item_reads.get(name)
            if name.endswith("_id") and target is not None and target["operationId"] not in links:
                links[target["operationId"]] = {
                    "operationId": target["operationId"],
                    "parameters": {f"path.{name}": f"$response.body#/{name}"},
                }
        if links:
            response = operation["responses"][status]
            response["links"] = {**links, **response.get("links", {})}


def _link_page(
    doc: dict[str, Any],
    path: str,
    operation: dict[str, Any],
    ref: str | None,
    operations: list[tuple[str, str, dict[str, Any]]],
) -> None:
    """A page of objects (``GET /cases``: ``items`` of objects with an ``id``) links to the read
    of its first object (``GET /cases/{case_id}``), from which the other links go on."""
    items = _schema(doc, ref).get("properties", {}).get("items", {}).get("items", {})
    if not _has_id(doc, items.get("$ref")):
        return
    given = set(_PATH_PARAMETER.findall(path))
    links = {}
    for target_path, target_method, target in operations:
        match = re.fullmatch(re.escape(path) + r"/\{([^}/]+)\}", target_path)
        if target_method != "get" or match is None:
            continue
        parameters = {f"path.{name}": f"$request.path.{name}" for name in given}
        parameters[f"path.{match.group(1)}"] = "$response.body#/items/0/id"
        links[target["operationId"]] = {"operationId": target["operationId"], "parameters": parameters}
    if links:
        response = operation["responses"]["200"]
        response["links"] = {**links, **response.get("links", {})}
