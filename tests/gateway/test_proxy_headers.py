"""Identity and origin headers belong to the gateway: a client's copy never reaches a service.

The list of client headers is written out here rather than read from
gateway/proxy.py, so that dropping an entry from the proxy's lists fails a test;
a second test checks that every entry of those lists is exercised here.
"""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.proxy import GATEWAY_OWNED, GATEWAY_OWNED_PREFIXES, request_headers, response_headers
from services.common.context import reset_request_id, set_request_id
from tests.conftest import _app_client, auth
from tests.servers import echo_server

ME = "/api/v1/registry/me"
# Headers a client might send to claim an identity or an origin; none may pass.
DROPPED = [
    "X-Roles",
    "X-Roles-Granted",
    "X-Account",
    "X-Account-Id",
    "X-Officer",
    "X-Officer-Id",
    "X-Bureau",
    "X-Bureau-Id",
    "X-Bureau-Path",
    "X-User",
    "X-User-Id",
    "X-Userinfo",
    "X-Principal",
    "X-Principal-Kind",
    "X-Auth",
    "X-Auth-User",
    "X-Auth-Request-Email",
    "X-Authenticated-User",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Server",
    "X-Forwarded-User",
    "Forwarded",
    "X-Real-IP",
]
# Headers the gateway sets itself: the service sees the gateway's one value, not the client's.
REPLACED = {
    "X-Forwarded-For": ("10.66.0.1", ["127.0.0.1"]),
    "X-Forwarded-Proto": ("https", ["http"]),
    "X-Forwarded-Host": ("evil.example", ["gateway"]),
}
FORGED = "forged-by-the-client"


@pytest.fixture(scope="module")
async def through_gateway():
    """A gateway whose registry upstream echoes back what it received."""
    async with echo_server() as echo:
        settings = GatewaySettings(registry_url=echo)
        async for client in _app_client(create_app(settings), "http://gateway"):
            yield client


async def received(client: httpx.AsyncClient, token: str, headers: dict[str, str]) -> dict[str, list[str]]:
    response = await client.get(ME, headers={**auth(token), **headers})
    assert response.status_code == 201, response.text
    out: dict[str, list[str]] = {}
    for name, value in response.json()["headers"]:
        out.setdefault(name, []).append(value)
    return out


def test_every_gateway_owned_name_and_prefix_is_exercised():
    sent = [h.lower().encode() for h in [*DROPPED, *REPLACED, "X-Request-ID"]]
    for name in GATEWAY_OWNED:
        assert name in sent, name
    for prefix in GATEWAY_OWNED_PREFIXES:
        assert any(h.startswith(prefix) for h in sent), prefix


class TestThroughTheGateway:
    @pytest.mark.parametrize("name", DROPPED)
    async def test_client_identity_header_is_dropped(self, through_gateway, token_for, name):
        headers = await received(through_gateway, token_for(), {name: FORGED})
        assert name.lower() not in headers
        assert not any(FORGED in v for values in headers.values() for v in values)

    @pytest.mark.parametrize("name", list(REPLACED))
    async def test_origin_header_is_the_gateways_own(self, through_gateway, token_for, name):
        forged, expected = REPLACED[name]
        headers = await received(through_gateway, token_for(), {name: forged})
        assert headers[name.lower()] == expected

    async def test_all_of_them_at_once(self, through_gateway, token_for):
        sent = {name: FORGED for name in DROPPED} | {n: v for n, (v, _) in REPLACED.items()}
        headers = await received(through_gateway, token_for(), sent)
        assert not {n.lower() for n in DROPPED} & set(headers)
        for name, (_, expected) in REPLACED.items():
            assert headers[name.lower()] == expected

    async def test_well_formed_request_id_is_passed_on_once(self, through_gateway, token_for):
        headers = await received(through_gateway, token_for(), {"X-Request-ID": "client-trace-0001"})
        assert headers["x-request-id"] == ["client-trace-0001"]

    async def test_malformed_request_id_is_replaced_by_the_gateways(self, through_gateway, token_for):
        response = await through_gateway.get(ME, headers={**auth(token_for()), "X-Request-ID": "bad id!"})
        upstream = [v for n, v in response.json()["headers"] if n == "x-request-id"]
        assert upstream == [response.headers["x-request-id"]]
        assert upstream != ["bad id!"]


def scope(headers: list[tuple[bytes, bytes]], method: str = "POST", **extra) -> dict:
    return {
        "type": "http",
        "method": method,
        "headers": headers,
        "client": ("10.1.2.3", 5555),
        "scheme": "https",
        **extra,
    }


class TestRequestHeaders:
    """The header cleaning on its own, without a server in between."""

    def test_what_is_kept_dropped_and_added(self):
        raw = [
            (b"host", b"gw.example"),
            (b"accept", b"application/json"),
            (b"x-bureau-path", b"1."),
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"connection", b"keep-alive, x-secret"),
            (b"x-secret", b"s"),
            (b"te", b"trailers"),
            (b"x-request-id", b"client-id-0001"),
        ]
        token = set_request_id("gateway-id-0001")
        try:
            out, has_body = request_headers(scope(raw))
        finally:
            reset_request_id(token)
        assert out == [
            (b"accept", b"application/json"),
            (b"x-forwarded-for", b"10.1.2.3"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"gw.example"),
            (b"x-request-id", b"gateway-id-0001"),
        ]
        assert has_body is False

    @pytest.mark.parametrize(
        ("raw", "has_body"),
        [
            ([(b"content-length", b"12")], True),
            ([(b"content-length", b"0")], False),
            ([(b"transfer-encoding", b"chunked")], True),
            ([], False),
        ],
    )
    def test_whether_a_body_follows(self, raw, has_body):
        out, found = request_headers(scope(raw))
        assert found is has_body
        assert (b"transfer-encoding", b"chunked") not in out

    def test_content_length_is_passed_on(self):
        out, _ = request_headers(scope([(b"content-length", b"12")]))
        assert (b"content-length", b"12") in out

    @pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "DELETE"])
    def test_no_body_nor_its_length_goes_up_on_a_bodyless_method(self, method):
        for raw in ([(b"content-length", b"12")], [(b"transfer-encoding", b"chunked")]):
            out, has_body = request_headers(scope(raw, method=method))
            assert has_body is False
            assert not any(n in (b"content-length", b"transfer-encoding") for n, _ in out)

    def test_without_client_or_host_only_what_is_known_is_added(self):
        out, _ = request_headers({"type": "http", "method": "GET", "headers": []})
        assert [n for n, _ in out] == [b"x-forwarded-proto", b"x-request-id"]
        assert dict(out)[b"x-forwarded-proto"] == b"http"
        assert dict(out)[b"x-request-id"] == b""


class TestResponseHeaders:
    def test_hop_by_hop_named_and_gateway_set_headers_are_not_returned(self):
        raw = [
            (b"Content-Type", b"application/json"),
            (b"Connection", b"close, X-Private"),
            (b"X-Private", b"1"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Date", b"yesterday"),
            (b"Server", b"uvicorn"),
            (b"X-Request-ID", b"upstream-id"),
            (b"ETag", b'"3"'),
        ]
        assert response_headers(raw, b"http://127.0.0.1:8001") == [
            (b"content-type", b"application/json"),
            (b"etag", b'"3"'),
        ]
