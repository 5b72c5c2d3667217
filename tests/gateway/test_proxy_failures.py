"""What the proxy does when a service fails or a client goes away, and what it logs.

Operators find a failing upstream by the log line and its ``upstream`` field; a
client that disconnects in the middle of an upload must not have the part it sent
forwarded as if it were the whole body.
"""

from __future__ import annotations

import hashlib
import json
import logging

import httpx

from gateway.proxy import Proxy
from services.common.auth import Principal, PrincipalKind
from services.common.client import pooled_transport
from tests.servers import echo_server, silent_server
from tools.platform import free_port

PRINCIPAL = Principal(account_id="a", kind=PrincipalKind.OFFICER, bureau_id=1, bureau_path="1.")


def proxy_to(url: str, read_timeout: float = 0.5) -> Proxy:
    return Proxy(
        {"registry": (httpx.URL(url), pooled_transport(4))},
        httpx.Timeout(read_timeout, connect=0.5),
        lambda _header: PRINCIPAL,
    )


def scope(method: str = "GET", headers: list | None = None) -> dict:
    return {
        "type": "http",
        "method": method,
        "path": "/api/v1/registry/bulk",
        "raw_path": b"/api/v1/registry/bulk",
        "query_string": b"",
        "headers": [(b"host", b"gateway"), (b"authorization", b"Bearer x"), *(headers or [])],
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
    }


class Sent:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def __call__(self, message: dict) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int | None:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")

    def problem(self, status: int, type_: str) -> dict:
        """The answer is the problem ``type_`` with ``status``; returns it."""
        start = next(m for m in self.messages if m["type"] == "http.response.start")
        assert start["status"] == status, self.body
        assert (b"content-type", b"application/problem+json") in start["headers"]
        problem = json.loads(self.body)
        assert (problem["type"], problem["status"]) == (type_, status), problem
        return problem


async def no_body():
    return {"type": "http.request", "body": b"", "more_body": False}


class TestFailingUpstream:
    async def test_timeout_is_a_504_problem_naming_the_service_and_logged(self, caplog):
        caplog.set_level(logging.WARNING, logger="gateway.proxy")
        sent = Sent()
        async with silent_server() as url:
            await proxy_to(url)(scope(), no_body, sent, "registry")
        problem = sent.problem(504, "/problems/upstream-timeout")
        assert problem["detail"] == "The registry service did not answer in time."
        [record] = [r for r in caplog.records if r.name == "gateway.proxy"]
        assert (record.getMessage(), record.upstream) == ("upstream timed out", "registry")

    async def test_unreachable_is_a_503_problem_naming_the_service_and_logged(self, caplog):
        caplog.set_level(logging.WARNING, logger="gateway.proxy")
        sent = Sent()
        await proxy_to(f"http://127.0.0.1:{free_port()}")(scope(), no_body, sent, "registry")
        problem = sent.problem(503, "/problems/service-unavailable")
        assert problem["detail"] == "The registry service is unavailable."
        start = next(m for m in sent.messages if m["type"] == "http.response.start")
        assert (b"retry-after", b"5") in start["headers"]
        [record] = [r for r in caplog.records if r.name == "gateway.proxy"]
        assert (record.getMessage(), record.upstream) == ("upstream unavailable", "registry")
        assert record.error  # the kind of failure, for the operator


class TestClientGoesAway:
    async def test_a_disconnect_mid_upload_forwards_nothing_and_answers_nothing(self):
        messages = [
            {"type": "http.request", "body": b"x" * 100, "more_body": True},
            {"type": "http.disconnect"},
        ]

        async def receive():
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        sent = Sent()
        async with echo_server() as url:
            await proxy_to(url)(scope("POST", [(b"content-length", b"1000")]), receive, sent, "registry")
        assert sent.messages == []

    async def test_a_whole_upload_is_forwarded(self):
        parts = [b"x" * 600, b"y" * 400]
        messages = [
            {"type": "http.request", "body": parts[0], "more_body": True},
            {"type": "http.request", "body": parts[1], "more_body": False},
        ]

        async def receive():
            return messages.pop(0)

        sent = Sent()
        async with echo_server() as url:
            await proxy_to(url)(scope("POST", [(b"content-length", b"1000")]), receive, sent, "registry")
        assert sent.status == 201
        received = json.loads(sent.body)  # what the echo service received, and its digest
        assert (received["length"], received["sha256"]) == (1000, hashlib.sha256(b"".join(parts)).hexdigest())
