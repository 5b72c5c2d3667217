"""The token endpoint (OAuth2 password and client_credentials grants) and the key set."""

from __future__ import annotations

import base64

import pytest
from jose import jwt

from gateway.models import AccountKind
from tests.conftest import auth

TOKEN = "/api/v1/auth/token"
SECRET = "correct horse battery"


def assert_oauth_problem(response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["error"] == error and body["status"] == status and body["title"]


class TestPasswordGrant:
    async def test_officer_gets_a_token_the_services_accept(self, gateway, registry, make_account):
        account = await make_account(roles=("enforcement", "head"))
        response = await gateway.post(
            TOKEN, data={"grant_type": "password", "username": account.username, "password": SECRET}
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 900
        claims = jwt.get_unverified_claims(body["access_token"])
        assert claims["exp"] - claims["iat"] == 900
        assert claims["sub"] == str(account.id) and claims["kind"] == "officer"
        assert sorted(claims["roles"]) == ["enforcement", "head"]
        me = await registry.get("/api/v1/registry/me", headers=auth(body["access_token"]))
        assert me.status_code == 200 and me.json()["account_id"] == str(account.id)

    async def test_wrong_password(self, gateway, make_account):
        account = await make_account()
        response = await gateway.post(
            TOKEN,
            data={"grant_type": "password", "username": account.username, "password": "wrong password!"},
        )
        assert_oauth_problem(response, 400, "invalid_grant")

    async def test_unknown_user_looks_like_a_wrong_password(self, gateway):
        response = await gateway.post(
            TOKEN, data={"grant_type": "password", "username": "nobody-here", "password": SECRET}
        )
        assert_oauth_problem(response, 400, "invalid_grant")
        assert response.json()["detail"] == "Wrong username or password."

    async def test_disabled_account(self, gateway, make_account):
        account = await make_account(active=False)
        response = await gateway.post(
            TOKEN, data={"grant_type": "password", "username": account.username, "password": SECRET}
        )
        assert_oauth_problem(response, 400, "invalid_grant")
        assert "disabled" in response.json()["detail"]

    async def test_a_client_account_cannot_use_the_password_grant(self, gateway, make_account):
        account = await make_account(AccountKind.SYSTEM, roles=("system",))
        response = await gateway.post(
            TOKEN, data={"grant_type": "password", "username": account.username, "password": SECRET}
        )
        assert_oauth_problem(response, 400, "invalid_grant")

    async def test_missing_password(self, gateway):
        response = await gateway.post(TOKEN, data={"grant_type": "password", "username": "someone"})
        assert_oauth_problem(response, 400, "invalid_request")


class TestClientCredentials:
    async def test_system_gets_a_token_with_form_fields(self, gateway, make_account):
        account = await make_account(AccountKind.SYSTEM, roles=("system",))
        response = await gateway.post(
            TOKEN,
            data={"grant_type": "client_credentials", "client_id": account.username, "client_secret": SECRET},
        )
        assert response.status_code == 200, response.text
        assert jwt.get_unverified_claims(response.json()["access_token"])["kind"] == "system"

    async def test_system_gets_a_token_with_http_basic(self, gateway, make_account):
        account = await make_account(AccountKind.SERVICE, roles=("service",))
        basic = base64.b64encode(f"{account.username}:{SECRET}".encode()).decode()
        response = await gateway.post(
            TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
        )
        assert response.status_code == 200, response.text

    async def test_wrong_client_secret(self, gateway, make_account):
        account = await make_account(AccountKind.SYSTEM, roles=("system",))
        response = await gateway.post(
            TOKEN,
            data={"grant_type": "client_credentials", "client_id": account.username, "client_secret": "nope"},
        )
        assert_oauth_problem(response, 401, "invalid_client")
        assert response.headers["www-authenticate"] == "Basic"

    async def test_an_officer_cannot_use_client_credentials(self, gateway, make_account):
        account = await make_account()
        response = await gateway.post(
            TOKEN,
            data={"grant_type": "client_credentials", "client_id": account.username, "client_secret": SECRET},
        )
        assert_oauth_problem(response, 401, "invalid_client")

    async def test_disabled_client(self, gateway, make_account):
        account = await make_account(AccountKind.SYSTEM, roles=("system",), active=False)
        response = await gateway.post(
            TOKEN,
            data={"grant_type": "client_credentials", "client_id": account.username, "client_secret": SECRET},
        )
        assert_oauth_problem(response, 401, "invalid_client")

    async def test_malformed_basic_credentials(self, gateway):
        response = await gateway.post(
            TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic !!!not-base64"}
        )
        assert_oauth_problem(response, 401, "invalid_client")


class TestBadTokenRequests:
    async def test_unsupported_grant(self, gateway):
        response = await gateway.post(TOKEN, data={"grant_type": "authorization_code", "code": "x"})
        assert_oauth_problem(response, 400, "unsupported_grant_type")

    async def test_no_grant_type(self, gateway):
        assert_oauth_problem(await gateway.post(TOKEN, data={}), 400, "invalid_request")

    async def test_json_instead_of_a_form(self, gateway):
        response = await gateway.post(
            TOKEN, json={"grant_type": "password", "username": "a", "password": "b"}
        )
        assert_oauth_problem(response, 400, "invalid_request")

    async def test_a_file_part_is_the_declared_422_problem(self, gateway):
        response = await gateway.post(
            TOKEN, data={"grant_type": "password", "password": "b"}, files={"username": ("u.txt", b"a")}
        )
        assert response.status_code == 422 and response.json()["type"] == "/problems/validation-error"
        assert response.headers["content-type"] == "application/problem+json"

    async def test_overlong_field_is_an_invalid_request(self, gateway):
        response = await gateway.post(
            TOKEN, data={"grant_type": "password", "username": "a" * 65, "password": "b"}
        )
        assert_oauth_problem(response, 400, "invalid_request")

    @pytest.mark.parametrize("field", ["username", "password", "client_id", "client_secret"])
    async def test_nul_character_is_an_invalid_request(self, gateway, field):
        data = {
            "grant_type": "password",
            "username": "a",
            "password": "b",
            "client_id": "c",
            "client_secret": "d",
            field: "x\x00y",
        }
        assert_oauth_problem(await gateway.post(TOKEN, data=data), 400, "invalid_request")

    async def test_nul_in_basic_credentials(self, gateway):
        basic = base64.b64encode(b"client\x00:secret").decode()
        response = await gateway.post(
            TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
        )
        assert_oauth_problem(response, 401, "invalid_client")

    async def test_client_authenticating_two_ways_is_refused(self, gateway, make_account):
        account = await make_account(AccountKind.SYSTEM, roles=("system",))
        basic = base64.b64encode(f"{account.username}:{SECRET}".encode()).decode()
        response = await gateway.post(
            TOKEN,
            data={"grant_type": "client_credentials", "client_id": account.username, "client_secret": SECRET},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert_oauth_problem(response, 400, "invalid_request")


class TestKeySet:
    async def test_jwks_publishes_the_signing_key_without_private_parts(self, gateway, make_account):
        keys = (await gateway.get("/.well-known/jwks.json")).json()["keys"]
        assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])
        account = await make_account()
        token = (
            await gateway.post(
                TOKEN, data={"grant_type": "password", "username": account.username, "password": SECRET}
            )
        ).json()["access_token"]
        assert jwt.get_unverified_header(token)["kid"] == keys[0]["kid"]
