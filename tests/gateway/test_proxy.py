"""Forwarding through the gateway: paths, bodies, header hygiene, and what a failing service looks like."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from gateway.app import create_app
from gateway.config import GatewaySettings
from tests.conftest import _app_client, assert_problem, auth
from tests.servers import download_body, echo_server, silent_server
from tools.platform import free_port


@pytest.fixture(scope="module")
async def upstreams():
    async with echo_server() as echo, silent_server() as silent:
        yield {"echo": echo, "silent": silent, "closed": f"http://127.0.0.1:{free_port()}"}


@pytest.fixture(scope="module")
async def proxied(upstreams):
    """A gateway whose registry is the echo server, enforcement hangs and statistics is down."""
    settings = GatewaySettings(
        registry_url=upstreams["echo"],
        enforcement_url=upstreams["silent"],
        statistics_url=upstreams["closed"],
        upstream_read_timeout=1.0,
    )
    async for client in _app_client(create_app(settings), "http://gateway"):
        yield client


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def echoed(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    body = response.json()
    body["header_map"] = {}
    for name, value in body["headers"]:
        body["header_map"].setdefault(name, []).append(value)
    return body


class TestForwarding:
    async def test_path_query_method_and_body_reach_the_service_unchanged(self, proxied, token_for):
        sent = json.dumps({"name": "岗位"}, ensure_ascii=False).encode()
        response = await proxied.post(
            "/api/v1/registry/bureaus/7/posts?a=1&b=%E4%B8%AD",
            content=sent,
            headers={**auth(token_for()), "Content-Type": "application/json"},
        )
        body = echoed(response)
        assert body["method"] == "POST"
        assert body["raw_path"] == "/api/v1/registry/bureaus/7/posts"
        assert body["query"] == "a=1&b=%E4%B8%AD"
        assert (body["length"], body["sha256"]) == (len(sent), sha256(sent))
        assert body["header_map"]["content-length"] == [str(len(sent))]
        assert body["header_map"]["authorization"][0].startswith("Bearer ")

    @pytest.mark.parametrize("method", ["GET", "DELETE"])
    async def test_a_body_on_a_bodyless_method_is_not_announced_upstream(self, proxied, token_for, method):
        # The length used to be forwarded without the body: the service then read the
        # next request on the connection as this one's body and answered 400.
        for _ in range(3):
            response = await proxied.request(
                method, "/api/v1/registry/x", content=b'{"a": 1}', headers=auth(token_for())
            )
            body = echoed(response)
            assert body["method"] == method
            assert (body["length"], body["sha256"]) == (0, sha256(b""))
            assert body["header_map"].get("content-length", ["0"]) == ["0"]

    async def test_identity_and_origin_headers_from_the_client_are_replaced(self, proxied, token_for):
        response = await proxied.get(
            "/api/v1/registry/me",
            headers={
                **auth(token_for()),
                "X-Forwarded-For": "10.9.9.9",
                "X-Forwarded-Host": "evil",
                "Forwarded": "for=10.9.9.9",
                "X-Real-IP": "10.9.9.9",
                "X-Principal": "national",
                "X-User-Id": "1",
                "X-Bureau-Path": "1.",
                "Connection": "keep-alive, X-Hop-Secret",
                "X-Hop-Secret": "s",
                "Proxy-Authorization": "Basic x",
                "X-Request-ID": "client-chosen-id-123",
            },
        )
        headers = echoed(response)["header_map"]
        for dropped in (
            "x-principal",
            "x-user-id",
            "x-bureau-path",
            "forwarded",
            "x-real-ip",
            "x-hop-secret",
            "proxy-authorization",
        ):
            assert dropped not in headers, dropped
        assert headers["x-forwarded-for"] == ["127.0.0.1"]
        assert headers["x-forwarded-host"] == ["gateway"]
        assert headers["x-request-id"] == ["client-chosen-id-123"]
        assert response.headers["x-request-id"] == "client-chosen-id-123"

    async def test_a_request_id_is_made_when_none_is_sent(self, proxied, token_for):
        response = await proxied.get("/api/v1/registry/me", headers=auth(token_for()))
        headers = echoed(response)["header_map"]
        assert len(headers["x-request-id"][0]) == 32
        assert response.headers["x-request-id"] == headers["x-request-id"][0]

    async def test_large_upload_streams_through(self, proxied, token_for):
        blob = bytes(range(256)) * 40000  # ~10 MB

        async def chunks():
            for i in range(0, len(blob), 1 << 20):
                yield blob[i : i + (1 << 20)]

        response = await proxied.post("/api/v1/registry/bulk", content=chunks(), headers=auth(token_for()))
        body = echoed(response)
        assert (body["length"], body["sha256"]) == (len(blob), sha256(blob))

    async def test_large_download_streams_through_and_hop_headers_are_dropped(self, proxied, token_for):
        size = 12 * 1024 * 1024 + 7
        response = await proxied.get(
            "/api/v1/registry/download", params={"size": size}, headers=auth(token_for())
        )
        assert response.status_code == 200
        # What the client received is what the service sent, byte for byte.
        assert len(response.content) == size
        assert sha256(response.content) == response.headers["x-content-sha256"]
        assert sha256(response.content) == sha256(download_body(size))
        assert response.headers["x-upstream"] == "echo"
        assert "x-upstream-private" not in response.headers

    async def test_no_token_is_refused_before_forwarding(self, proxied):
        response = await proxied.get("/api/v1/registry/me")
        assert_problem(response, 401, "/problems/unauthorized")

    async def test_invalid_token_is_refused_before_forwarding(self, proxied):
        response = await proxied.get("/api/v1/registry/me", headers=auth("not.a.token"))
        assert_problem(response, 401, "/problems/unauthorized")

    async def test_unknown_service_prefix_is_not_forwarded(self, proxied, token_for):
        response = await proxied.get("/api/v1/registryx/me", headers=auth(token_for()))
        assert_problem(response, 404, "/problems/not-found")


class TestFraming:
    """What goes upstream is framed exactly: a body with its own length, or neither."""

    async def test_a_bodyless_request_goes_up_without_a_length(self, proxied, token_for):
        response = await proxied.get(
            "/api/v1/registry/me", headers={**auth(token_for()), "Content-Length": "0"}
        )
        body = echoed(response)
        assert "content-length" not in body["header_map"] and body["length"] == 0

    async def test_a_chunked_body_goes_up_chunked_without_a_length(self, proxied, token_for):
        async def chunks():
            yield b"abc"
            yield b"def"

        response = await proxied.post("/api/v1/registry/bulk", content=chunks(), headers=auth(token_for()))
        body = echoed(response)
        assert (body["length"], body["sha256"]) == (6, sha256(b"abcdef"))
        assert "content-length" not in body["header_map"]

    @pytest.mark.parametrize(
        "headers",
        [
            [("content-length", "3"), ("content-length", "3")],
            [("content-length", "3"), ("transfer-encoding", "chunked")],
            [("content-length", "+3")],
            [("content-length", "0x3")],
        ],
    )
    async def test_ambiguous_framing_is_refused(self, proxied, token_for, headers):
        """Reached through ASGI, past a server's own parser: the gateway's check holds alone."""
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"abc", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/registry/bulk",
            "raw_path": b"/api/v1/registry/bulk",
            "query_string": b"",
            "headers": [(b"authorization", f"Bearer {token_for()}".encode())]
            + [(n.encode(), v.encode()) for n, v in headers],
            "client": ("127.0.0.1", 1234),
            "server": ("gateway", 80),
            "scheme": "http",
            "http_version": "1.1",
        }
        await proxied.asgi(scope, receive, send)
        assert sent[0]["status"] == 400
        assert (b"content-type", b"application/problem+json") in sent[0]["headers"]
        problem = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
        assert (problem["type"], problem["status"]) == ("/problems/ambiguous-framing", 400)


class TestRedirects:
    async def test_a_location_on_the_services_own_address_is_cut_to_its_path(self, proxied, token_for):
        response = await proxied.get("/api/v1/registry/redirect", headers=auth(token_for()))
        assert response.status_code == 307
        assert response.headers["location"] == "/api/v1/registry/me"

    @pytest.mark.parametrize("target", ["https://example.org/elsewhere", "/api/v1/registry/relative"])
    async def test_other_locations_are_left_as_they_are(self, proxied, token_for, target):
        response = await proxied.get(
            "/api/v1/registry/redirect", params={"to": target}, headers=auth(token_for())
        )
        assert response.headers["location"] == target


class TestFailingServices:
    async def test_service_down_is_503(self, proxied, token_for):
        response = await proxied.get("/api/v1/statistics/me", headers=auth(token_for()))
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/service-unavailable"
        assert response.headers["retry-after"] == "5"

    async def test_service_that_hangs_is_504(self, proxied, token_for):
        response = await proxied.get("/api/v1/enforcement/me", headers=auth(token_for()))
        assert response.status_code == 504
        assert response.json()["type"] == "/problems/upstream-timeout"

    async def test_merged_document_lists_what_is_missing(self, proxied):
        doc = (await proxied.get("/openapi.json")).json()
        assert "/api/v1/auth/token" in doc["paths"]
        assert set(doc["x-unavailable-services"]) == {"registry", "enforcement", "statistics"}


@pytest.fixture(scope="module")
async def small_limit(upstreams):
    settings = GatewaySettings(registry_url=upstreams["echo"], max_body_bytes=1000)
    async for client in _app_client(create_app(settings), "http://gateway"):
        yield client


class TestBodyLimit:
    async def test_declared_length_over_the_limit_is_413_before_forwarding(self, small_limit, token_for):
        response = await small_limit.post(
            "/api/v1/registry/bulk", content=b"x" * 1001, headers=auth(token_for())
        )
        assert response.status_code == 413
        assert response.json()["type"] == "/problems/payload-too-large"

    async def test_chunked_body_over_the_limit_is_413(self, small_limit, token_for):
        async def chunks():
            for _ in range(10):
                yield b"x" * 300

        response = await small_limit.post(
            "/api/v1/registry/bulk", content=chunks(), headers=auth(token_for())
        )
        assert_problem(response, 413, "/problems/payload-too-large")

    async def test_body_within_the_limit_is_forwarded(self, small_limit, token_for):
        sent = bytes(range(250)) * 4
        response = await small_limit.post("/api/v1/registry/bulk", content=sent, headers=auth(token_for()))
        body = echoed(response)
        assert (body["length"], body["sha256"]) == (1000, sha256(sent))


class TestPathsThatWouldLeaveTheServicePrefix:
    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/registry/../../metrics",
            "/api/v1/registry/%2e%2e/%2e%2e/%2e%2e/metrics",
            "/api/v1/registry/%2E%2E/readyz",
            "/api/v1/registry/%2e/me",
            "/api/v1/registry/a%2F..%2F..%2Fmetrics",
            "/api/v1/registry/a%5C..%5Cmetrics",
        ],
    )
    async def test_dot_segments_and_encoded_separators_are_not_forwarded(self, proxied, token_for, path):
        response = await proxied.get(path, headers=auth(token_for()))
        assert_problem(response, 404, "/problems/not-found")

    async def test_only_the_exact_document_path_skips_the_gateway_token_check(self, proxied):
        response = await proxied.get("/api/v1/registry/anything/openapi.json")
        assert_problem(response, 401, "/problems/unauthorized")


class TestPublicPaths:
    """What a service publishes to everyone (``/api/v1/<service>/public/…``) needs no token."""

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/registry/public/inspection-results",
            "/api/v1/registry/public/inspection-results.csv",
        ],
    )
    async def test_public_paths_pass_through_without_a_token(self, proxied, path):
        response = await proxied.get(path, params={"year": "2026"})
        body = echoed(response)
        assert (body["method"], body["raw_path"], body["query"]) == ("GET", path, "year=2026")
        assert "authorization" not in body["header_map"]

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/registry/inspection-tasks",
            "/api/v1/registry/publicx/inspection-results",
            "/api/v1/registry/public",
            "/api/v1/registry/inspection-plans/public/1",
        ],
    )
    async def test_other_paths_still_need_a_token(self, proxied, path):
        assert_problem(await proxied.get(path), 401, "/problems/unauthorized")

    @pytest.mark.parametrize(
        "path",
        ["/api/v1/registry/public/%2e%2e/inspection-tasks", "/api/v1/registry/public/a%2F..%2F..%2Fme"],
    )
    async def test_a_public_prefix_cannot_be_walked_out_of(self, proxied, path):
        assert_problem(await proxied.get(path), 404, "/problems/not-found")
