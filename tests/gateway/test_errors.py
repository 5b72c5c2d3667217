"""An unexpected failure in one of the gateway's own routes is a bare 500 problem.

The problem names the request id the failure was logged under and nothing of the
exception: no message, no class name, no stack trace.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway import accounts
from gateway.app import create_app
from gateway.config import GatewaySettings
from tests.conftest import _app_client, auth

SECRET = "connection to db-primary.internal:5432 failed, password=hunter2"
LEAKS = ("db-primary", "hunter2", "password=", "RuntimeError", "Traceback", 'File "')


@pytest.fixture(scope="module")
async def gateway_server(registry_url) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway driven as a server would drive it: an app error becomes a response, not a raise."""
    app = create_app(GatewaySettings(registry_url=registry_url))
    async for client in _app_client(app, "http://gateway", raise_app_exceptions=False):
        yield client


def fail(*_args, **_kwargs):
    raise RuntimeError(SECRET)


async def fail_async(*_args, **_kwargs):
    raise RuntimeError(SECRET)


def assert_internal_error(response: httpx.Response, request_id: str) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/internal-error"
    assert problem["status"] == 500
    assert problem["request_id"] == request_id
    assert response.headers["x-request-id"] == request_id
    for leak in LEAKS:
        assert leak not in response.text, leak


class TestUnexpectedErrorInAGatewayRoute:
    async def test_token_endpoint(self, gateway_server, monkeypatch):
        monkeypatch.setattr(accounts, "authenticate", fail_async)
        request_id = f"token-{uuid.uuid4().hex}"
        response = await gateway_server.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": "someone", "password": "whatever-it-is"},
            headers={"X-Request-ID": request_id},
        )
        assert_internal_error(response, request_id)

    async def test_signing_a_token(self, gateway_server, make_account, monkeypatch):
        account = await make_account(secret="the right password")
        monkeypatch.setattr(accounts, "principal_of", fail)
        request_id = f"sign-{uuid.uuid4().hex}"
        response = await gateway_server.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": account.username, "password": "the right password"},
            headers={"X-Request-ID": request_id},
        )
        assert_internal_error(response, request_id)

    async def test_account_list(self, gateway_server, token_for, monkeypatch):
        monkeypatch.setattr(accounts, "list_accounts", fail_async)
        request_id = f"list-{uuid.uuid4().hex}"
        response = await gateway_server.get(
            "/api/v1/auth/accounts", headers={**auth(token_for()), "X-Request-ID": request_id}
        )
        assert_internal_error(response, request_id)

    async def test_a_request_id_is_made_when_none_is_sent(self, gateway_server, token_for, monkeypatch):
        monkeypatch.setattr(accounts, "list_accounts", fail_async)
        response = await gateway_server.get("/api/v1/auth/accounts", headers=auth(token_for()))
        request_id = response.headers["x-request-id"]
        assert len(request_id) == 32
        assert_internal_error(response, request_id)
