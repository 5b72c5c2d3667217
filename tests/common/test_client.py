"""The typed service client against a real HTTP server: parsed models, our typed errors
from problem answers, retries of safe reads and of keyed writes, the request id passed
on, and a token renewed once after a 401."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Header, Request, Response
from pydantic import BaseModel

from gateway.accounts import GATEWAY_PRINCIPAL
from services.common.client import ServiceClient, SignedTokens
from services.common.context import reset_request_id, set_request_id
from services.common.pagination import Page
from services.common.problems import (
    Conflict,
    Forbidden,
    GatewayTimeout,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    Unauthorized,
    UnprocessableEntity,
    UpstreamProblem,
    install_problem_handlers,
    problem_response,
)
from tests.servers import serve, silent_server
from tools.platform import free_port


class Item(BaseModel):
    id: int
    name: str


class Upstream:
    """A small service: items, problems on demand, and endpoints that fail a set number of times."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.keys: defaultdict[str, list[str | None]] = defaultdict(list)
        self.request_ids: list[str | None] = []
        self.accepted_token = "fresh"
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI()
        install_problem_handlers(app)

        @app.get("/items/{item_id}")
        async def get_item(item_id: int, request: Request) -> Item:
            self.request_ids.append(request.headers.get("x-request-id"))
            if item_id == 404:
                raise NotFound(f"Item {item_id} not found.")
            return Item(id=item_id, name=f"item {item_id}")

        @app.get("/items")
        async def list_items() -> Page[Item]:
            return Page(items=[Item(id=1, name="a"), Item(id=2, name="b")], next_cursor="Ag")

        @app.get("/problems/{status}")
        async def problem(status: int) -> Response:
            extra = {"allowed": [{"step": "close", "target": "closed"}]} if status == 409 else {}
            if status == 422:
                extra = {"errors": [{"loc": "body.name", "message": "required", "type": "missing"}]}
            slug = {409: "invalid-transition", 403: "role-required"}.get(status, f"status-{status}")
            return problem_response(status, slug, "A problem", f"detail of {status}", **extra)

        @app.get("/plain-error")
        async def plain_error() -> Response:
            return Response("upstream exploded", status_code=500, media_type="text/plain")

        @app.api_route("/flaky/{name}", methods=["GET", "POST", "PATCH"])
        async def flaky(
            name: str,
            request: Request,
            failures: int = 2,
            status: int = 503,
            slug: str = "service-unavailable",
        ) -> dict:
            self.calls[name] += 1
            self.keys[name].append(request.headers.get("idempotency-key"))
            if self.calls[name] <= failures:
                return problem_response(status, slug, "Unavailable", "try again")
            return {"calls": self.calls[name]}

        @app.get("/protected")
        async def protected(authorization: str = Header()) -> dict:
            self.calls["protected"] += 1
            if authorization != f"Bearer {self.accepted_token}":
                return problem_response(401, "unauthorized", "Authentication required", "stale token")
            return {"ok": True}

        @app.post("/items", status_code=201)
        async def create_item(item: Item, request: Request) -> Item:
            self.keys["create"].append(request.headers.get("idempotency-key"))
            return item

        @app.delete("/items/{item_id}", status_code=204)
        async def delete_item(item_id: int) -> Response:
            return Response(status_code=204)

        return app


class Tokens:
    """A token provider that hands out ``stale`` until asked to renew."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    async def __call__(self, *, renew: bool = False) -> str:
        token = "fresh" if renew or self.issued else "stale"
        self.issued.append(token)
        return token


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    service = Upstream()
    async with serve(service.app) as url:
        yield service, url


def client_for(url: str, tokens=None, **kwargs) -> ServiceClient:
    async def fixed(*, renew: bool = False) -> str:
        return "fresh"

    return ServiceClient(base_url=url, tokens=tokens or fixed, backoff_seconds=0.01, **kwargs)


class TestTypedAnswers:
    async def test_a_read_is_parsed_into_the_model(self, upstream):
        _, url = upstream
        async with client_for(url) as client:
            item = await client.get("/items/7", model=Item)
        assert item == Item(id=7, name="item 7")

    async def test_a_page_is_parsed_through_a_type_adapter(self, upstream):
        _, url = upstream
        async with client_for(url) as client:
            page = await client.get("/items", model=Page[Item])
            raw = await client.get("/items")
        assert [i.id for i in page.items] == [1, 2] and page.next_cursor == "Ag"
        assert raw["items"][0] == {"id": 1, "name": "a"}

    async def test_a_write_returns_the_stored_object_and_an_empty_answer_is_none(self, upstream):
        _, url = upstream
        async with client_for(url) as client:
            created = await client.post("/items", json={"id": 3, "name": "c"}, model=Item)
            assert await client.delete("/items/3") is None
        assert created == Item(id=3, name="c")

    async def test_an_answer_the_model_cannot_read_is_an_upstream_problem(self, upstream):
        _, url = upstream
        async with client_for(url) as client:
            with pytest.raises(UpstreamProblem, match="cannot read"):
                await client.get("/items", model=Item)


class TestTypedErrors:
    @pytest.mark.parametrize(
        ("status", "error", "type_"),
        [
            (403, Forbidden, "role-required"),
            (404, NotFound, "status-404"),
            (409, InvalidTransition, "invalid-transition"),
            (412, PreconditionFailed, "status-412"),
            (422, UnprocessableEntity, "status-422"),
            (503, ServiceUnavailable, "status-503"),
            (504, GatewayTimeout, "status-504"),
        ],
    )
    async def test_a_problem_becomes_our_typed_error(self, upstream, status, error, type_):
        _, url = upstream
        async with client_for(url, attempts=1) as client:
            with pytest.raises(error) as caught:
                await client.get(f"/problems/{status}")
        assert type(caught.value) is error
        assert caught.value.status == status
        assert caught.value.slug == type_
        assert caught.value.detail == f"detail of {status}"

    async def test_the_problem_members_come_along(self, upstream):
        _, url = upstream
        async with client_for(url) as client:
            with pytest.raises(Conflict) as transition:
                await client.get("/problems/409")
            with pytest.raises(UnprocessableEntity) as invalid:
                await client.get("/problems/422")
        assert transition.value.extra["allowed"] == [{"step": "close", "target": "closed"}]
        assert invalid.value.extra["errors"][0]["loc"] == "body.name"
        # Rendered again by a service that lets it through, it is the same problem.
        rendered = transition.value.to_response()
        assert rendered.status_code == 409 and b'"/problems/invalid-transition"' in rendered.body

    async def test_a_missing_object_is_not_found(self, upstream):
        _, url = upstream
        async with client_for(url) as client:
            with pytest.raises(NotFound, match="Item 404 not found"):
                await client.get("/items/404", model=Item)

    async def test_an_error_without_a_typed_counterpart_is_a_502(self, upstream):
        _, url = upstream
        async with client_for(url) as client:
            with pytest.raises(UpstreamProblem) as caught:
                await client.get("/problems/418")
            with pytest.raises(UpstreamProblem, match="answered 500"):
                await client.get("/plain-error")
        assert caught.value.status == 502
        assert caught.value.extra["upstream_status"] == 418
        assert caught.value.extra["upstream_type"] == "/problems/status-418"


class TestRetries:
    async def test_a_read_is_retried_through_passing_503s(self, upstream):
        service, url = upstream
        async with client_for(url) as client:
            answer = await client.get("/flaky/read")
        assert answer == {"calls": 3} and service.calls["read"] == 3

    @pytest.mark.parametrize("status", [502, 504])
    async def test_gateway_failures_are_retried_too(self, upstream, status):
        service, url = upstream
        async with client_for(url) as client:
            await client.get(f"/flaky/s{status}", params={"failures": 1, "status": status})
        assert service.calls[f"s{status}"] == 2

    async def test_attempts_are_bounded(self, upstream):
        service, url = upstream
        async with client_for(url, attempts=3) as client:
            with pytest.raises(ServiceUnavailable):
                await client.get("/flaky/down", params={"failures": 10})
        assert service.calls["down"] == 3

    async def test_a_post_is_retried_with_one_idempotency_key(self, upstream):
        service, url = upstream
        async with client_for(url) as client:
            await client.post("/flaky/write", json={"n": 1})
        keys = service.keys["write"]
        assert len(keys) == 3 and len(set(keys)) == 1
        uuid.UUID(keys[0])  # generated: a UUID

    async def test_a_post_sends_the_callers_key(self, upstream):
        service, url = upstream
        async with client_for(url) as client:
            await client.post("/flaky/mine", json={}, idempotency_key="batch-2026-11-29-0001")
        assert service.keys["mine"] == ["batch-2026-11-29-0001"] * 3

    async def test_each_post_gets_its_own_key(self, upstream):
        service, url = upstream
        async with client_for(url) as client:
            await client.post("/items", json={"id": 1, "name": "a"})
            await client.post("/items", json={"id": 1, "name": "a"})
        first, second = service.keys["create"]
        assert first and second and first != second

    async def test_a_write_whose_first_attempt_still_runs_is_retried_for_its_answer(self, upstream):
        service, url = upstream
        params = {"failures": 1, "status": 409, "slug": "idempotency-key-in-progress"}
        async with client_for(url) as client:
            assert await client.post("/flaky/running", json={}, params=params) == {"calls": 2}
            with pytest.raises(Conflict):  # any other conflict is the caller's to handle
                await client.post("/flaky/conflict", json={}, params={**params, "slug": "conflict"})
        assert service.calls["running"] == 2 and service.calls["conflict"] == 1

    async def test_a_write_without_a_key_is_not_retried(self, upstream):
        service, url = upstream
        async with client_for(url) as client:
            with pytest.raises(ServiceUnavailable):
                await client.patch("/flaky/unkeyed", json={})
            await client.patch("/flaky/keyed", json={}, idempotency_key="k-1")
        assert service.calls["unkeyed"] == 1
        assert service.calls["keyed"] == 3 and service.keys["keyed"] == ["k-1"] * 3

    async def test_a_connection_never_made_is_retried_then_unavailable(self):
        tokens = Tokens()  # asked once per attempt
        async with ServiceClient(
            base_url=f"http://127.0.0.1:{free_port()}", tokens=tokens, backoff_seconds=0.01
        ) as client:
            with pytest.raises(ServiceUnavailable, match="could not be reached"):
                await client.patch("/items/1", json={})
        assert len(tokens.issued) == 3

    async def test_a_read_that_times_out_is_a_504_and_not_repeated(self):
        tokens = Tokens()
        async with (
            silent_server() as url,
            httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(0.3)) as http,
            ServiceClient(http=http, tokens=tokens, backoff_seconds=0.01) as client,
        ):
            with pytest.raises(GatewayTimeout):
                await client.get("/items/1")
        assert len(tokens.issued) == 1


class TestIdentity:
    async def test_the_request_id_is_passed_on(self, upstream):
        service, url = upstream
        token = set_request_id("request-id-0042")
        try:
            async with client_for(url) as client:
                await client.get("/items/1")
        finally:
            reset_request_id(token)
        assert service.request_ids == ["request-id-0042"]

    async def test_outside_a_request_none_is_invented(self, upstream):
        service, url = upstream
        async with client_for(url) as client:
            await client.get("/items/1")
        assert service.request_ids == [None]

    async def test_a_401_renews_the_token_once_and_retries(self, upstream):
        service, url = upstream
        tokens = Tokens()
        async with client_for(url, tokens=tokens) as client:
            assert await client.get("/protected") == {"ok": True}
            assert await client.get("/protected") == {"ok": True}
        assert tokens.issued == ["stale", "fresh", "fresh"]
        assert service.calls["protected"] == 3

    async def test_a_token_still_refused_after_renewal_is_a_503(self, upstream):
        service, url = upstream
        service.accepted_token = "never"
        tokens = Tokens()
        async with client_for(url, tokens=tokens) as client:
            with pytest.raises(ServiceUnavailable, match="refused this service's credentials"):
                await client.get("/protected")
        assert service.calls["protected"] == 2

    async def test_a_callers_refused_token_is_the_callers_401(self, upstream):
        service, url = upstream
        async with client_for(url) as client:
            with pytest.raises(Unauthorized):
                await client.get("/protected", authorization="Bearer someone-elses")
        assert service.calls["protected"] == 1

    async def test_the_gateways_signed_token_is_accepted_by_a_service(self, registry, signer):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=registry.app), base_url="http://r")
        async with http, ServiceClient(http=http, tokens=SignedTokens(signer, GATEWAY_PRINCIPAL)) as client:
            me = await client.get("/api/v1/registry/me")
        assert me["account_id"] == "gateway" and me["roles"] == ["service"]
