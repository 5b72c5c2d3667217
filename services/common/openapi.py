"""The OpenAPI conventions every app's document follows (DESIGN §6).

* Operation ids are the route function's name (``list_bureaus``), short and
  stable; an id used twice fails the document instead of being renamed.
* Errors declare the ``Problem`` schema on ``application/problem+json``, the
  media type actually sent (see ``problem_responses``), with an example of each
  problem ``type`` the status stands for.
* Every operation lists the statuses its dependencies can answer
  (``standard_statuses``): a token 401, a role check 403, a path id 404, parameters
  or a body 422, If-Match 412/428, Idempotency-Key 400/409/422, a body 413, the
  gateway's rate limit 429, a store 503. A route adds the rules of its own domain.
* Every request body and success answer has an example (``services.common.examples``).
"""

from __future__ import annotations

import copy
import functools
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from services.common.concurrency import ETAG_HEADER_MAX_LENGTH
from services.common.examples import example_of
from services.common.idempotency import DEFAULT_TTL_SECONDS, IDEMPOTENCY_KEY_HEADER, KEY_PATTERN
from services.common.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_TYPE_BASE,
    PROBLEM_TYPES,
    Problem,
    ProblemError,
    problem_doc,
)

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
        if self.openapi_schema:  # built once: the steps below change the document in place
            return self.openapi_schema
        doc = super().openapi()
        # Error responses refer to Problem by $ref only, so FastAPI does not list it itself.
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in problem_schemas().items():
            schemas.setdefault(name, schema)
        _require_if_match(doc)
        _document_idempotency_key(doc)
        _document_standard_statuses(doc, self.routes)
        _document_examples(doc)
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
                    parameter["schema"] = {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": parameter["schema"].get("maxLength", ETAG_HEADER_MAX_LENGTH),
                        "title": "If-Match",
                    }


# --- the statuses an operation's dependencies can answer ---------------------------------

# A dependency states the problems it raises with this attribute (``check.problem_statuses = (403,)``).
PROBLEM_STATUSES_ATTRIBUTE = "problem_statuses"
STORE_DEPENDENCIES = frozenset({"get_session", "get_read_session", "get_database", "get_audit", "get_outbox"})
RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}
STANDARD_DESCRIPTIONS: dict[int, str] = {
    400: "Idempotency-Key is not 1–255 printable ASCII characters",
    401: "Missing, invalid or expired token",
    403: "The principal's role does not allow this",
    404: "Not found, or outside the principal's scope",
    409: "A business rule is broken (the `type` names it), or a request with this Idempotency-Key "
    "is still in progress",
    412: "The resource changed since it was read (If-Match)",
    413: "Request body too large",
    422: "Malformed payload, with the field errors",
    428: "If-Match is required",
    429: "Too many requests from this client: retry after `Retry-After` seconds",
    503: "A service or the database is unavailable or busy: retry after `Retry-After` seconds",
}


def _calls(dependant: Dependant) -> list[Any]:
    found: list[Any] = []
    for sub in dependant.dependencies:
        if sub.call is not None:
            found.append(sub.call)
        found.extend(_calls(sub))
    return found


def _parameters(dependant: Dependant) -> list[Any]:
    found = [*dependant.path_params, *dependant.query_params, *dependant.header_params]
    found += [*dependant.cookie_params, *dependant.body_params]
    for sub in dependant.dependencies:
        found.extend(_parameters(sub))
    return found


def standard_statuses(route: Any, method: str) -> set[int]:
    """The statuses ``route`` can answer by what it depends on, whatever its domain."""
    calls = _calls(route.dependant)
    names = {getattr(call, "__name__", "") for call in calls}
    statuses = {429}  # the gateway limits every client (workstream edge: GATEWAY_RATE_LIMIT_*)
    for call in calls:
        statuses.update(getattr(call, PROBLEM_STATUSES_ATTRIBUTE, ()))
    if "get_principal" in names:
        statuses.add(401)
    if names & STORE_DEPENDENCIES:
        statuses.add(503)
    parameters = _parameters(route.dependant)
    if parameters or route.body_field is not None:
        statuses.add(422)
    if _all_path_params(route.dependant):
        statuses.add(404)
    headers = {(p.alias or p.name).lower().replace("_", "-") for p in _header_params(route.dependant)}
    if "if-match" in headers:
        statuses |= {412, 428}
    if route.body_field is not None or method == "post":
        statuses.add(413)
    return statuses


def _all_path_params(dependant: Dependant) -> list[Any]:
    return [*dependant.path_params, *(p for sub in dependant.dependencies for p in _all_path_params(sub))]


def _header_params(dependant: Dependant) -> list[Any]:
    return [*dependant.header_params, *(p for sub in dependant.dependencies for p in _header_params(sub))]


def _document_standard_statuses(doc: dict[str, Any], routes: list[Any]) -> None:
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        item = doc.get("paths", {}).get(route.path_format, {})
        for method in route.methods:
            operation = item.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(standard_statuses(route, method.lower())):
                responses.setdefault(str(status), problem_doc(STANDARD_DESCRIPTIONS[status]))
            operation["responses"] = dict(sorted(responses.items()))


# --- examples ---------------------------------------------------------------------------

# Types raised with ``slug=`` on a generic error rather than by a class of their own.
_SLUG_STATUSES = {"role-required": 403, "method-not-allowed": 405, "invalid-value": 422}
_EXAMPLE_EXTRAS: dict[str, dict[str, Any]] = {
    "validation-error": {
        "detail": "body.name: Field required",
        "errors": [{"loc": "body.name", "message": "Field required", "type": "missing"}],
    },
    "invalid-transition": {"detail": "A closed case takes no step.", "state": "closed", "allowed": []},
}
EXAMPLE_REQUEST_ID = "9b2d4e6f8a0c4b1d"


def problem_classes() -> dict[str, type[ProblemError]]:
    """Every typed error by its ``type`` slug (the classes imported so far)."""
    found: dict[str, type[ProblemError]] = {ProblemError.slug: ProblemError}
    pending = [ProblemError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.setdefault(sub.slug, sub)
            pending.append(sub)
    return found


def problem_status(slug: str) -> int | None:
    if slug in _SLUG_STATUSES:
        return _SLUG_STATUSES[slug]
    cls = problem_classes().get(slug)
    return cls.status if cls else None


def problem_example(slug: str) -> dict[str, Any]:
    cls = problem_classes().get(slug)
    status = problem_status(slug) or 500
    example: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": cls.title if cls else PROBLEM_TYPES.get(slug, slug),
        "status": status,
        "detail": PROBLEM_TYPES.get(slug, ""),
        "request_id": EXAMPLE_REQUEST_ID,
    }
    example.update(_EXAMPLE_EXTRAS.get(slug, {}))
    return example


@functools.lru_cache(maxsize=64)
def problem_examples(status: int) -> dict[str, Any]:
    """An example of each mechanism's problem ``type`` answered with ``status`` (shared: read only)."""
    return {
        slug: {"summary": PROBLEM_TYPES[slug], "value": problem_example(slug)}
        for slug in PROBLEM_TYPES
        if problem_status(slug) == status
    }


BINARY_MEDIA_TYPES = ("application/vnd.", "application/octet-stream", "application/pdf")
TEXT_EXAMPLES = {
    "text/csv": "id,name\n1,Example\n",
    "application/x-ndjson": '{"id": 1}\n',
}


def _media_example(media_type: str, content: dict[str, Any], components: dict[str, Any]) -> Any:
    if media_type.startswith(BINARY_MEDIA_TYPES):
        return None
    schema = content.get("schema")
    if media_type in TEXT_EXAMPLES and (not schema or schema.get("type") == "string"):
        return TEXT_EXAMPLES[media_type]
    if schema is None:
        return None
    return example_of(schema, components)


def _document_examples(doc: dict[str, Any]) -> None:
    components = doc.get("components", {}).get("schemas", {})
    for item in doc.get("paths", {}).values():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            bodies = [operation.get("requestBody", {})]
            for status, response in list(operation.get("responses", {}).items()):
                if status.startswith("2"):
                    bodies.append(response)
                elif status[0] in "45" and PROBLEM_MEDIA_TYPE in response.get("content", {}):
                    response = operation["responses"][status] = copy.deepcopy(response)
                    examples = problem_examples(int(status))
                    if examples:
                        response["content"][PROBLEM_MEDIA_TYPE].setdefault("examples", examples)
                    if status in ("429", "503"):
                        response.setdefault("headers", RETRY_AFTER_HEADER)
            for body in bodies:
                for media_type, content in body.get("content", {}).items():
                    if "example" in content or "examples" in content:
                        continue
                    example = _media_example(media_type, content, components)
                    if example is not None:
                        content["example"] = example


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
