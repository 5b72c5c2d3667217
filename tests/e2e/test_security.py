"""Attacks on the running platform, through the real gateway process: request
framing on pooled connections, redirects, and an officer's standing in the registry."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import assert_problem, auth
from tests.factories import unique

PASSWORD = "correct horse battery staple"
NOT_ALLOWED = (405, "/problems/method-not-allowed")


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )


@pytest.fixture
async def provincial_token(through_gateway) -> str:
    response = await login(through_gateway, "admin-330000-qs", os.environ["DEMO_ADMIN_PASSWORD"])
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def raw_exchange(url: str, request: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes on a fresh socket and read until the server closes or goes quiet."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        chunks = []
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), timeout=1.0 if chunks else timeout)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()


def digest(document: dict) -> str:
    """The sha256 digest of a JSON document in one canonical form."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def outcome(response: bytes) -> tuple[int, str | None]:
    """The status of a raw HTTP answer, and its problem type when it is a problem."""
    head, _, body = response.partition(b"\r\n\r\n")
    is_problem = b"content-type: application/problem+json" in head.lower()
    return status_of(response), json.loads(body)["type"] if is_problem else None


class TestFramingOnPooledConnections:
    """A request whose body the gateway does not forward must not leave its length behind:
    the service would read the next caller's request, on the same pooled connection, as that body."""

    # What an attacker puts in the body: the start of a request of its own.
    SMUGGLED = b"GET /api/v1/registry/bureaus/1 HTTP/1.1\r\nHost: x\r\nX-Pad: "

    @pytest.mark.parametrize(
        ("method", "answer"),
        [("GET", (200, None)), ("OPTIONS", NOT_ALLOWED), ("DELETE", NOT_ALLOWED)],
    )
    async def test_a_body_on_a_bodyless_method_is_not_forwarded(
        self, platform, provincial_token, method, answer
    ):
        """The request is answered as itself; the smuggled request in its body is never run."""
        host = urlsplit(platform.gateway_url).netloc.encode()
        request = (
            f"{method} /api/v1/registry/me HTTP/1.1\r\n".encode()
            + b"Host: " + host + b"\r\n"
            + b"Authorization: Bearer " + provincial_token.encode() + b"\r\n"
            + b"Content-Length: " + str(len(self.SMUGGLED)).encode() + b"\r\n"
            + b"Connection: close\r\n\r\n"
            + self.SMUGGLED
        )  # fmt: skip
        received = await raw_exchange(platform.gateway_url, request)
        assert outcome(received) == answer, received[:300]
        assert b'"path":"1."' not in received  # the national bureau, which the smuggled request asked for

    async def test_other_principals_get_their_own_answers_every_time(
        self, platform, through_gateway, national_admin_token, provincial_token
    ):
        """Smuggling attempts interleaved with two principals' reads on the gateway's pools."""
        host = urlsplit(platform.gateway_url).netloc.encode()
        national = (
            await through_gateway.get("/api/v1/registry/me", headers=auth(national_admin_token))
        ).json()
        provincial = (await through_gateway.get("/api/v1/registry/me", headers=auth(provincial_token))).json()
        assert national["account_id"] != provincial["account_id"]

        async def smuggle(method: bytes) -> bytes:
            request = (
                method + b" /api/v1/registry/me HTTP/1.1\r\nHost: " + host + b"\r\n"
                + b"Authorization: Bearer " + provincial_token.encode() + b"\r\n"
                + b"Content-Length: " + str(len(self.SMUGGLED)).encode() + b"\r\n"
                + b"Connection: close\r\n\r\n" + self.SMUGGLED
            )  # fmt: skip
            return await raw_exchange(platform.gateway_url, request)

        async def read_me(token: str) -> dict:
            response = await through_gateway.get("/api/v1/registry/me", headers=auth(token))
            assert response.status_code == 200, response.text
            return response.json()

        for _ in range(15):
            results = await asyncio.gather(
                smuggle(b"GET"),
                smuggle(b"DELETE"),
                *(read_me(national_admin_token) for _ in range(5)),
                *(read_me(provincial_token) for _ in range(5)),
                smuggle(b"OPTIONS"),
            )
            assert [r["account_id"] for r in results[2:7]] == [national["account_id"]] * 5
            assert [r["account_id"] for r in results[7:12]] == [provincial["account_id"]] * 5
            smuggled = [results[0], results[1], results[-1]]
            assert [outcome(r) for r in smuggled] == [(200, None), NOT_ALLOWED, NOT_ALLOWED]
            assert provincial["account_id"].encode() in smuggled[0]

    async def test_a_post_body_goes_upstream_with_its_length(self, through_gateway, national_admin_token):
        """The good case of the same rule: a body is forwarded whole, and the next request is intact."""
        for _ in range(5):
            name, duties = unique("岗位"), "依法查处认证违法行为。" * 40  # a body of some kilobytes
            body = json.dumps({"name": name, "body": "enforcement", "duties": duties}, ensure_ascii=False)
            created = await through_gateway.post(
                "/api/v1/registry/bureaus/1/posts",
                content=body.encode(),
                headers={**auth(national_admin_token), "Content-Type": "application/json"},
            )
            assert created.status_code == 201, created.text
            # The service read every byte that was sent: what it stored is what was sent.
            stored = {k: created.json()[k] for k in ("name", "body", "duties")}
            assert digest(stored) == digest(json.loads(body))
            assert (
                await through_gateway.get("/api/v1/registry/me", headers=auth(national_admin_token))
            ).status_code == 200

    @pytest.mark.parametrize(
        "framing",
        [
            b"Content-Length: 5\r\nContent-Length: 6\r\n",
            b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        ],
    )
    async def test_ambiguous_framing_never_reaches_a_service(self, platform, national_admin_token, framing):
        host = urlsplit(platform.gateway_url).netloc.encode()
        request = (
            b"POST /api/v1/registry/bureaus/1/posts HTTP/1.1\r\nHost: " + host + b"\r\n"
            + b"Authorization: Bearer " + national_admin_token.encode() + b"\r\n"
            + b"Content-Type: application/json\r\n" + framing
            + b"Connection: close\r\n\r\n0\r\n\r\n"
        )  # fmt: skip
        answer = await raw_exchange(platform.gateway_url, request)
        # Refused by the gateway's HTTP server before the app sees it (a service would have
        # answered the empty body with a 422). The gateway's own refusal of what a parser lets
        # through, /problems/ambiguous-framing, is tested past the parser in tests/gateway/test_proxy.py.
        assert status_of(answer) == 400, answer[:300]
        assert answer.endswith(b"\r\n\r\nInvalid HTTP request received."), answer[:300]


class TestNoRedirects:
    @pytest.mark.parametrize(
        "path", ["/api/v1/registry/me/", "/api/v1/registry/bureaus/", "/api/v1/auth/accounts/"]
    )
    async def test_a_trailing_slash_is_not_found_and_points_nowhere(
        self, platform, through_gateway, national_admin_token, path
    ):
        response = await through_gateway.get(
            path, headers={**auth(national_admin_token), "X-Forwarded-Proto": "https"}
        )
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert "location" not in response.headers
        for name in platform.service_ports:
            assert str(platform.service_ports[name]) not in response.text

    async def test_services_do_not_redirect_either(self, platform, national_admin_token):
        async with httpx.AsyncClient() as client:
            url = f"{platform.service_url('registry')}/api/v1/registry/me/"
            response = await client.get(url, headers=auth(national_admin_token))
        assert_problem(response, 404, "/problems/not-found")
        assert "location" not in response.headers


@pytest.fixture
async def officer_login(through_gateway, national_admin_token):
    """A new officer of a new county bureau in Zhejiang with a login; returns what a test needs."""
    token = national_admin_token
    units = await through_gateway.get(
        "/api/v1/registry/bureaus",
        params={"pilot": "provincial", "system": "quality_supervision", "limit": 100},
        headers=auth(token),
    )
    zhejiang = next(b for b in units.json()["items"] if b["division_code"] == "330000")
    county = await through_gateway.post(
        "/api/v1/registry/bureaus",
        json={
            "parent_id": zhejiang["id"],
            "name": unique("县局"),
            "level": "county",
            "division_code": "330106",
        },
        headers=auth(token),
    )
    assert county.status_code == 201, county.text
    officer = await through_gateway.post(
        "/api/v1/registry/officers",
        json={"bureau_id": county.json()["id"], "body": "enforcement", "name": unique("执法员")[:20]},
        headers=auth(token),
    )
    assert officer.status_code == 201, officer.text
    username = f"officer-{uuid.uuid4().hex[:10]}"
    account = await through_gateway.post(
        "/api/v1/auth/accounts/officers",
        json={
            "username": username,
            "password": PASSWORD,
            "officer_id": officer.json()["id"],
            "roles": ["enforcement", "admin"],
        },
        headers=auth(token),
    )
    assert account.status_code == 201, account.text
    first = await login(through_gateway, username, PASSWORD)
    assert first.status_code == 200, first.text
    return {
        "username": username,
        "officer": officer.json(),
        "zhejiang": zhejiang,
        "county": county.json(),
        "token": first.json()["access_token"],
    }


async def refused_at_the_gateway(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """The registry's event reaches the gateway's worker after the commit, and the gateway
    refuses the token from its next revocation refresh (every 5 s): allow for both."""
    for _ in range(150):
        response = await client.get("/api/v1/registry/me", headers=auth(token))
        if response.status_code == 401:
            return response
        await asyncio.sleep(0.1)
    return response


class TestOfficerStandingInTheRegistry:
    async def test_a_deactivated_officer_stops_logging_in_and_its_token_stops(
        self, through_gateway, national_admin_token, officer_login
    ):
        officer = officer_login["officer"]
        assert (
            await through_gateway.get("/api/v1/registry/me", headers=auth(officer_login["token"]))
        ).status_code == 200
        changed = await through_gateway.patch(
            f"/api/v1/registry/officers/{officer['id']}",
            json={"active": False},
            headers={**auth(national_admin_token), "If-Match": f'"{officer["version"]}"'},
        )
        assert changed.status_code == 200, changed.text

        again = await login(through_gateway, officer_login["username"], PASSWORD)
        assert assert_problem(again, 400, "/problems/oauth-invalid-grant")["error"] == "invalid_grant"

        refused = await refused_at_the_gateway(through_gateway, officer_login["token"])
        assert_problem(refused, 401, "/problems/unauthorized")

        # Active again in the registry: the login works again, with no account change needed.
        back = await through_gateway.patch(
            f"/api/v1/registry/officers/{officer['id']}",
            json={"active": True},
            headers={**auth(national_admin_token), "If-Match": changed.headers["etag"]},
        )
        assert back.status_code == 200
        assert (await login(through_gateway, officer_login["username"], PASSWORD)).status_code == 200

    async def test_a_moved_officer_login_follows_the_move(
        self, through_gateway, national_admin_token, officer_login
    ):
        officer = officer_login["officer"]
        moved = await through_gateway.patch(
            f"/api/v1/registry/officers/{officer['id']}",
            json={"bureau_id": officer_login["zhejiang"]["id"], "body": "legal"},
            headers={**auth(national_admin_token), "If-Match": f'"{officer["version"]}"'},
        )
        assert moved.status_code == 200, moved.text

        # The old token carried the old bureau and the administrator role: it stops.
        refused = await refused_at_the_gateway(through_gateway, officer_login["token"])
        assert_problem(refused, 401, "/problems/unauthorized")

        fresh = await login(through_gateway, officer_login["username"], PASSWORD)
        assert fresh.status_code == 200, fresh.text
        me = (
            await through_gateway.get("/api/v1/registry/me", headers=auth(fresh.json()["access_token"]))
        ).json()
        assert (me["bureau_id"], me["bureau_path"], me["body"]) == (
            officer_login["zhejiang"]["id"],
            officer_login["zhejiang"]["path"],
            "legal",
        )
        # Administrator was granted for the county, enforcement for the old body: both gone.
        assert me["roles"] == []

    async def test_a_notice_from_anyone_but_a_service_is_refused(
        self, through_gateway, national_admin_token, officer_login
    ):
        response = await through_gateway.post(
            "/api/v1/auth/officer-changes",
            json={"officer_id": officer_login["officer"]["id"]},
            headers=auth(national_admin_token),
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
