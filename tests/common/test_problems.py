"""RFC 9457 problems: every error a service answers is ``application/problem+json``,
a stack trace never leaves the process, and every response carries a request id."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, Request

from services.common.app import create_service_app
from services.registry.config import RegistrySettings
from services.registry.models import AUDIT
from tests.conftest import auth

BUREAUS = "/api/v1/registry/bureaus"


def assert_problem(response: httpx.Response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["type"] == type_ and problem["title"]
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


async def serve(app) -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan and drive it like a server would: app errors become responses."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def probe_router() -> APIRouter:
    """Routes that fail on purpose or read bodies, to exercise the shared app skeleton."""
    router = APIRouter(prefix="/api/v1/test")

    @router.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("secret detail: password=hunter2")

    @router.post("/echo")
    async def echo(request: Request) -> dict:
        return {"received": len(await request.body())}

    @router.post("/json")
    async def json_body(payload: dict) -> dict:
        return {"keys": len(payload)}

    return router


@pytest.fixture(scope="module")
async def small_app() -> AsyncIterator[httpx.AsyncClient]:
    """A service app with a test router and a 1000-byte body limit."""
    settings = RegistrySettings(max_body_bytes=1000)
    app = create_service_app(
        name="test", title="t", description="t", settings=settings, routers=[probe_router()], audit=AUDIT
    )
    async for client in serve(app):
        yield client


class TestRoutingProblems:
    async def test_unknown_path_is_a_404_problem(self, registry, token_for):
        response = await registry.get("/api/v1/registry/no-such-thing", headers=auth(token_for()))
        assert_problem(response, 404, "/problems/not-found")

    async def test_wrong_method_is_a_405_problem(self, registry, token_for):
        response = await registry.delete(f"{BUREAUS}/1", headers=auth(token_for()))
        assert_problem(response, 405, "/problems/method-not-allowed")

    @pytest.mark.parametrize(
        ("method", "path", "allowed"),
        [
            ("DELETE", "/api/v1/registry/officers/1", "GET, PATCH"),
            ("PUT", "/api/v1/registry/bureaus/7", "GET, PATCH"),
            ("DELETE", "/api/v1/registry/bureaus", "GET, POST"),
            ("POST", "/api/v1/registry/me", "GET"),
        ],
    )
    async def test_405_allows_every_method_of_the_path(self, registry, token_for, method, path, allowed):
        # Starlette named only the first route's methods: GET for an item that also has PATCH.
        response = await registry.request(method, path, headers=auth(token_for()))
        assert_problem(response, 405, "/problems/method-not-allowed")
        assert response.headers["allow"] == allowed

    async def test_gateway_405_allows_every_method_of_the_path(self, gateway, token_for):
        response = await gateway.delete(
            "/api/v1/auth/accounts/00000000-0000-0000-0000-000000000001", headers=auth(token_for())
        )
        assert_problem(response, 405, "/problems/method-not-allowed")
        assert response.headers["allow"] == "GET, PATCH"

    async def test_a_collection_action_is_not_taken_for_an_account_id(self, gateway, token_for):
        # `/accounts/officers` used to match `PATCH /accounts/{account_id}` and answer 422.
        response = await gateway.patch(
            "/api/v1/auth/accounts/officers", json={"active": False}, headers=auth(token_for())
        )
        assert_problem(response, 405, "/problems/method-not-allowed")
        assert response.headers["allow"] == "POST"

    async def test_validation_error_lists_the_fields(self, registry, token_for):
        response = await registry.get(f"{BUREAUS}/abc", headers=auth(token_for()))
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [e["loc"] for e in problem["errors"]] == ["path.bureau_id"]


class TestMalformedBody:
    """A body that is not JSON is a malformed payload: 422, as the documents declare, never 400."""

    @pytest.mark.parametrize("body", ['{"name": "杭州'.encode(), b"{", b"[1,", b"nul", b'{"a": 1}}'])
    async def test_json_that_does_not_parse_is_a_422_at_body(self, registry, token_for, body):
        response = await registry.post(
            BUREAUS, content=body, headers={**auth(token_for()), "content-type": "application/json"}
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [("body", "json_invalid")]
        assert "not valid JSON" in problem["errors"][0]["message"]

    @pytest.mark.parametrize("body", [b"\xff\xfe{", b'{"name": "\xff"}'])
    async def test_body_that_is_not_utf8_is_a_422_at_body(self, registry, token_for, body):
        response = await registry.post(
            BUREAUS, content=body, headers={**auth(token_for()), "content-type": "application/json"}
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [("body", "unicode_invalid")]

    async def test_gateway_answers_the_same(self, gateway, token_for):
        response = await gateway.post(
            "/api/v1/auth/accounts/officers",
            content=b'{"officer_id": 1, "username": "ab',
            headers={**auth(token_for()), "content-type": "application/json"},
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [("body", "json_invalid")]


class TestUnexpectedError:
    async def test_is_a_500_problem_without_the_exception_text(self, small_app):
        response = await small_app.get("/api/v1/test/boom")
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "/problems/internal-error" and problem["status"] == 500
        for leak in ("secret detail", "hunter2", "Traceback", "RuntimeError", 'File "'):
            assert leak not in response.text

    async def test_carries_the_request_id_it_was_logged_under(self, small_app):
        response = await small_app.get("/api/v1/test/boom", headers={"X-Request-ID": "trace-500-abcdef"})
        assert response.status_code == 500
        assert response.json().get("request_id") == "trace-500-abcdef"
        assert response.headers.get("x-request-id") == "trace-500-abcdef"


async def chunks(total: int, size: int = 256) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b"x" * n


class TestBodyLimit:
    def test_settings_read_the_platform_wide_limit(self, monkeypatch):
        monkeypatch.setenv("MAX_BODY_BYTES", "1234")
        assert RegistrySettings().max_body_bytes == 1234
        assert RegistrySettings(max_body_bytes=1000).max_body_bytes == 1000

    async def test_body_under_the_limit_is_read(self, small_app):
        response = await small_app.post("/api/v1/test/echo", content=b"x" * 1000)
        assert response.status_code == 200 and response.json() == {"received": 1000}

    async def test_declared_length_over_the_limit_is_a_413_problem(self, small_app):
        response = await small_app.post("/api/v1/test/echo", content=b"x" * 1001)
        assert_problem(response, 413, "/problems/payload-too-large")

    async def test_declared_length_is_checked_before_any_route(self, small_app):
        # Not even the router runs: an unknown path still answers 413, not 404.
        response = await small_app.post("/api/v1/test/nowhere", content=b"x" * 5000)
        assert_problem(response, 413, "/problems/payload-too-large")

    async def test_chunked_body_under_the_limit_is_read(self, small_app):
        response = await small_app.post("/api/v1/test/echo", content=chunks(900))
        assert response.status_code == 200 and response.json() == {"received": 900}

    async def test_chunked_body_over_the_limit_is_a_413_problem(self, small_app):
        request = small_app.build_request("POST", "/api/v1/test/echo", content=chunks(5000))
        assert "content-length" not in request.headers
        response = await small_app.send(request)
        assert_problem(response, 413, "/problems/payload-too-large")

    async def test_chunked_json_body_over_the_limit_is_a_413_problem(self, small_app):
        request = small_app.build_request(
            "POST", "/api/v1/test/json", content=chunks(5000), headers={"content-type": "application/json"}
        )
        response = await small_app.send(request)
        assert_problem(response, 413, "/problems/payload-too-large")


class TestRequestId:
    async def test_well_formed_incoming_id_is_echoed(self, registry):
        response = await registry.get("/healthz", headers={"X-Request-ID": "gw-1234:abcd.EF_9"})
        assert response.headers["x-request-id"] == "gw-1234:abcd.EF_9"

    async def test_each_request_without_an_id_gets_a_fresh_one(self, registry):
        first = (await registry.get("/healthz")).headers["x-request-id"]
        second = (await registry.get("/healthz")).headers["x-request-id"]
        assert first != second and len(first) >= 8

    @pytest.mark.parametrize(
        "bad", ["has spaces in it", "x" * 500, "short", "semi;colon;id", "<script>alert</script>"]
    )
    async def test_malformed_incoming_id_is_replaced(self, registry, bad):
        response = await registry.get("/healthz", headers={"X-Request-ID": bad})
        assert response.headers["x-request-id"] != bad
        assert 8 <= len(response.headers["x-request-id"]) <= 128

    async def test_problem_carries_the_request_id(self, registry):
        response = await registry.get(f"{BUREAUS}/1", headers={"X-Request-ID": "trace-401-abcdef"})
        problem = assert_problem(response, 401, "/problems/unauthorized")
        assert problem["request_id"] == "trace-401-abcdef"


class TestDocumentedList:
    def test_every_typed_error_of_the_mechanisms_is_in_the_list(self):
        import services.common.idempotency  # noqa: F401 - its errors join the subclasses
        from services.common.problems import PROBLEM_TYPES, ProblemError

        def subclasses(cls):
            return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

        mechanisms = [c for c in subclasses(ProblemError) if c.__module__.startswith("services.common.")]
        assert len(mechanisms) > 15
        assert sorted({c.slug for c in mechanisms} - set(PROBLEM_TYPES)) == []
