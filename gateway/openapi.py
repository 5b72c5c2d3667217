"""One OpenAPI document for the whole platform, and the docs pages, served offline.

The document is the gateway's own paths plus each service's, fetched from the
services and cached briefly. A service that is down is listed under
``x-unavailable-services`` instead of failing the whole document. Swagger UI
and ReDoc load their scripts from the gateway itself, never from a CDN.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import fastapi_offline
import httpx
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from services.common.client import TOKEN_PATH
from services.common.openapi import RETRY_AFTER_HEADER, check_operation_ids, operation_ids, problem_examples
from services.common.problems import PROBLEM_MEDIA_TYPE, problem_doc

DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
CACHE_SECONDS = 30.0
# A service builds its document once, on the first request: seconds on a loaded machine.
DOCUMENT_TIMEOUT_SECONDS = 20.0


def _rename_schemas(doc: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    if not renames:
        return doc
    text = json.dumps(doc)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    doc = json.loads(text)
    schemas = doc.get("components", {}).get("schemas", {})
    for old, new in renames.items():
        if old in schemas:
            schemas[new] = schemas.pop(old)
    return doc


def merge_documents(base: dict[str, Any], parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Union of paths and components; a clashing schema name is prefixed with its service.

    Operation ids are not renamed: two operations with one id (or one path served
    twice) raise ``ValueError``, since generated clients would silently lose one.
    """
    merged = json.loads(json.dumps(base))
    schemas = merged.setdefault("components", {}).setdefault("schemas", {})
    tags = {t["name"]: t for t in merged.get("tags", [])}
    for service, doc in parts.items():
        theirs = doc.get("components", {}).get("schemas", {})
        renames = {
            name: f"{service.capitalize()}{name}"
            for name, schema in theirs.items()
            if name in schemas and schemas[name] != schema
        }
        doc = _rename_schemas(doc, renames)
        schemas.update(doc.get("components", {}).get("schemas", {}))
        for path, item in doc.get("paths", {}).items():
            for operation in item.values():
                if isinstance(operation, dict):
                    operation["tags"] = [f"{service}: {t}" for t in operation.get("tags", [service])]
                    operation["responses"] = _through_the_gateway(operation.get("responses", {}))
            if path in merged["paths"]:
                raise ValueError(f"{service} serves {path}, which the document already has")
            merged["paths"][path] = item
        for tag in doc.get("tags", []):
            tags.setdefault(f"{service}: {tag['name']}", {**tag, "name": f"{service}: {tag['name']}"})
    check_operation_ids(operation_ids(merged))
    if tags:
        merged["tags"] = list(tags.values())
    merged["components"].setdefault("securitySchemes", {})["OAuth2PasswordBearer"] = {
        "type": "oauth2",
        "flows": {"password": {"tokenUrl": TOKEN_PATH, "scopes": {}}},
    }
    return merged


# What the gateway itself answers for a service that is down or slow (gateway/proxy.py).
PROXY_ERRORS = {
    "503": "The service is unavailable: retry after `Retry-After` seconds",
    "504": "The service did not answer in time",
}


def _through_the_gateway(responses: dict[str, Any]) -> dict[str, Any]:
    responses = dict(responses)
    for status, description in PROXY_ERRORS.items():
        if status not in responses:
            response = problem_doc(description)
            response["content"][PROBLEM_MEDIA_TYPE]["examples"] = problem_examples(int(status))
            if status == "503":
                response["headers"] = RETRY_AFTER_HEADER
            responses[status] = response
    return dict(sorted(responses.items()))


class MergedOpenAPI:
    def __init__(self, app: FastAPI, clients: dict[str, httpx.AsyncClient]) -> None:
        self.app = app
        self.clients = clients
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0

    async def document(self) -> dict[str, Any]:
        if self._cached is not None and time.monotonic() - self._cached_at < CACHE_SECONDS:
            return self._cached
        # Fetched side by side: a service builds its document once, which takes seconds on a
        # loaded machine, and the three builds should not add up.
        answers = await asyncio.gather(*(self._fetch(s, c) for s, c in self.clients.items()))
        parts = {service: doc for service, doc in zip(self.clients, answers, strict=True) if doc}
        missing = [service for service, doc in zip(self.clients, answers, strict=True) if not doc]
        doc = merge_documents(self.app.openapi(), parts)
        if missing:
            doc["x-unavailable-services"] = missing
        else:  # cache only a complete document
            self._cached, self._cached_at = doc, time.monotonic()
        return doc

    @staticmethod
    async def _fetch(service: str, client: httpx.AsyncClient) -> dict[str, Any] | None:
        try:
            response = await client.get(f"/api/v1/{service}/openapi.json", timeout=DOCUMENT_TIMEOUT_SECONDS)
            response.raise_for_status()
            doc = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if not isinstance(doc, dict) or "openapi" not in doc or "paths" not in doc:
            return None
        return doc


def install_docs(app: FastAPI, title: str) -> None:
    app.mount(ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_json() -> Any:
        return await app.state.openapi.document()

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} — Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} — ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
