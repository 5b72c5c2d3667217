"""Signing key rotation (gateway/keys.py): the key tool on a directory of its own, and a
rotation end to end against real processes (a gateway and a registry started for it, on
this run's databases, with keys of their own) with no restart of the service."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from jose import jwt

from gateway import keys
from gateway.config import GatewaySettings
from gateway.models import AccountKind
from services.common.auth import Principal, PrincipalKind, TokenSigner, generate_private_key_pem, public_jwk
from tests.conftest import RUN_DIR, TEST_ENV, assert_problem, auth
from tools.platform import Platform, free_port

SECRET = "correct horse battery"
ME = "/api/v1/registry/me"
UNAUTHORIZED = "/problems/unauthorized"


def settings_in(directory: Path, **overrides) -> GatewaySettings:
    return GatewaySettings(
        signing_key_dir=directory / "signing",
        private_key_path=directory / "signing" / "first.pem",
        jwks_path=directory / "jwks.json",
        **{"signing_key_reload_seconds": 0, **overrides},
    )


def published(settings: GatewaySettings) -> list[str]:
    return [k["kid"] for k in json.loads(settings.jwks_path.read_text())["keys"]]


class TestKeyTool:
    def test_create_makes_one_key_once_and_publishes_it(self, tmp_path):
        settings = settings_in(tmp_path)
        assert keys.ensure_keys(settings) is True
        assert keys.ensure_keys(settings) is False
        ring = keys.KeyRing.load(settings)
        assert list(ring.keys) == [ring.active] == published(settings)
        assert ring.keys[ring.active].path == settings.private_key_path
        assert settings.private_key_path.stat().st_mode & 0o777 == 0o600

    def test_a_key_at_the_old_single_key_path_is_taken_over(self, tmp_path):
        legacy = tmp_path / "signing-key.pem"
        legacy.write_bytes(generate_private_key_pem())
        settings = GatewaySettings(
            signing_key_dir=tmp_path / "signing", private_key_path=legacy, jwks_path=tmp_path / "jwks.json"
        )
        # The fallback before the directory exists, then taken over by the key tool.
        assert keys.KeyRing.load(settings).active == public_jwk(legacy.read_bytes())["kid"]
        assert keys.ensure_keys(settings) is False
        ring = keys.KeyRing.load(settings)
        assert ring.active == public_jwk(legacy.read_bytes())["kid"]
        assert ring.keys[ring.active].path.parent == tmp_path / "signing"

    def test_rotate_publishes_a_key_that_does_not_sign_until_activated(self, tmp_path):
        settings = settings_in(tmp_path)
        keys.ensure_keys(settings)
        old = keys.KeyRing.load(settings).active
        new = keys.rotate(settings)["kid"]
        ring = keys.KeyRing.load(settings)
        assert ring.active == old and set(ring.keys) == {old, new}
        assert published(settings) == [old, new]
        keys.activate(settings, new)
        assert keys.KeyRing.load(settings).active == new
        assert published(settings) == [new, old]  # the signing key first

    def test_a_new_key_signs_only_once_every_gateway_publishes_it(self, tmp_path):
        settings = settings_in(tmp_path, signing_key_reload_seconds=60)
        keys.ensure_keys(settings)
        old = keys.KeyRing.load(settings).active
        new = keys.rotate(settings)["kid"]
        with pytest.raises(SystemExit, match="activate it after that"):
            keys.activate(settings, new)
        assert keys.KeyRing.load(settings).active == old
        assert keys.activate(settings, new, force=True)["kid"] == new
        assert keys.KeyRing.load(settings).active == new

    def test_the_signing_kid_setting_wins(self, tmp_path):
        settings = settings_in(tmp_path)
        keys.ensure_keys(settings)
        old = keys.KeyRing.load(settings).active
        new = keys.rotate(settings)["kid"]
        assert keys.KeyRing.load(settings_in(tmp_path, signing_kid=new)).active == new
        assert "warning" in keys.activate(settings_in(tmp_path, signing_kid=old), new)
        with pytest.raises(keys.NoSigningKey, match="not a key"):
            keys.KeyRing.load(settings_in(tmp_path, signing_kid="nope"))

    def test_without_a_choice_the_newest_key_signs(self, tmp_path):
        directory = tmp_path / "signing"
        directory.mkdir()
        older, newer = directory / "a.pem", directory / "b.pem"
        for path, age in ((older, 100), (newer, 0)):
            path.write_bytes(generate_private_key_pem())
            stamp = time.time() - age
            os.utime(path, (stamp, stamp))
        ring = keys.KeyRing.load(settings_in(tmp_path))
        assert ring.active == public_jwk(newer.read_bytes())["kid"]

    def test_retire_waits_for_the_tokens_of_the_key_to_expire(self, tmp_path):
        settings = settings_in(tmp_path, token_lifetime_seconds=900, signing_key_reload_seconds=5)
        keys.ensure_keys(settings)
        old = keys.KeyRing.load(settings).active
        new = keys.rotate(settings)["kid"]
        state = keys.read_state(settings.signing_key_dir)
        state["created"][new] = (datetime.now(UTC) - timedelta(seconds=6)).isoformat()  # published by all
        keys.write_state(settings.signing_key_dir, state)
        with pytest.raises(SystemExit, match="signs tokens now"):
            keys.retire(settings, old)
        keys.activate(settings, new)
        with pytest.raises(SystemExit, match="may be valid until"):
            keys.retire(settings, old)
        [row] = [r for r in keys.listing(settings) if r["kid"] == old]
        deactivated = datetime.fromisoformat(row["deactivated"])
        assert datetime.fromisoformat(row["retirable_at"]) == deactivated + timedelta(seconds=905)
        # One lifetime (and a reload) after the switch, it may go.
        state = keys.read_state(settings.signing_key_dir)
        state["deactivated"][old] = (datetime.now(UTC) - timedelta(seconds=906)).isoformat()
        keys.write_state(settings.signing_key_dir, state)
        assert keys.retire(settings, old) == {"kid": old, "state": "retired", "forced": False}
        assert published(settings) == [new]
        assert list(keys.KeyRing.load(settings).keys) == [new]

    def test_a_key_rotated_in_and_never_activated_may_go_at_once(self, tmp_path):
        settings = settings_in(tmp_path)
        keys.ensure_keys(settings)
        new = keys.rotate(settings)["kid"]
        assert keys.retire(settings, new)["state"] == "retired"

    def test_a_key_of_unknown_history_needs_force(self, tmp_path):
        settings = settings_in(tmp_path)
        keys.ensure_keys(settings)
        stranger = settings.signing_key_dir / "provisioned.pem"
        stranger.write_bytes(generate_private_key_pem())
        kid = public_jwk(stranger.read_bytes())["kid"]
        with pytest.raises(SystemExit, match="--force"):
            keys.retire(settings, kid)
        assert keys.retire(settings, kid, force=True) == {"kid": kid, "state": "retired", "forced": True}

    def test_the_command_line(self, tmp_path):
        env = {
            **TEST_ENV,
            "GATEWAY_SIGNING_KEY_DIR": str(tmp_path / "signing"),
            "GATEWAY_PRIVATE_KEY_PATH": str(tmp_path / "none.pem"),
            "JWKS_PATH": str(tmp_path / "jwks.json"),
            "GATEWAY_SIGNING_KEY_RELOAD_SECONDS": "0",
        }

        def run(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "-m", "gateway.keys", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        created = json.loads(run().stdout)
        assert created["state"] == "created"
        new = json.loads(run("rotate").stdout)["kid"]
        assert json.loads(run("activate", new).stdout)["previous"] == created["kid"]
        refused = run("retire", created["kid"])
        assert refused.returncode != 0 and "may be valid until" in refused.stderr
        listed = json.loads(run("list").stdout)
        assert [(r["kid"], r["signing"]) for r in listed] == [(created["kid"], False), (new, True)]


# --- end to end ----------------------------------------------------------------------


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


async def eventually(check, timeout: float = 20.0, every: float = 0.2):
    """Await ``check()`` until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(every)


@pytest.fixture(scope="module")
async def rotating(platform_databases):
    """A gateway and a registry (no workers) on this run's databases, with a key directory of
    their own; the registry fetches keys from the gateway (JWKS_URL, set by Platform)."""
    directory = RUN_DIR / "rotation"
    env = {
        **TEST_ENV,
        "LOG_LEVEL": "INFO",
        "GATEWAY_SIGNING_KEY_DIR": str(directory / "signing"),
        "GATEWAY_PRIVATE_KEY_PATH": str(directory / "signing" / "first.pem"),
        "JWKS_PATH": str(directory / "jwks.json"),
        "GATEWAY_SIGNING_KEY_RELOAD_SECONDS": "0.5",  # and `activate` waits as long after `rotate`
        # An unknown key id fetches the set at once (after a second); no periodic fetch in the test.
        "JWKS_MIN_REFRESH_SECONDS": "1",
        "JWKS_REFRESH_SECONDS": "3600",
    }
    running = Platform(
        env=env,
        gateway_port=free_port(),
        service_ports={"registry": free_port()},
        workers=False,
        log_dir=directory / "logs",
    )

    def tool(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "gateway.keys", *args],
            env=running.process_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    running.tool = tool  # type: ignore[attr-defined]
    assert tool().returncode == 0
    try:
        running.start_services()
        await asyncio.to_thread(running.wait_ready, [running.service_url("registry")])
        running.start_gateway()
        await asyncio.to_thread(running.wait_ready, [running.gateway_url])
        yield running
    finally:
        await asyncio.to_thread(running.stop)


async def test_rotation_with_no_restart_of_the_service(rotating, make_account):
    gateway = httpx.AsyncClient(base_url=rotating.gateway_url, timeout=30)
    registry = httpx.AsyncClient(base_url=rotating.service_url("registry"), timeout=30)
    account = await make_account(AccountKind.SYSTEM, roles=("system",), secret=SECRET)
    stranger = TokenSigner(generate_private_key_pem(), issuer="x", audience="y", lifetime_seconds=60)
    stranger_token = stranger.issue(
        Principal(account_id="nobody", kind=PrincipalKind.SYSTEM, bureau_id=1, bureau_path="1.")
    )

    async def login() -> str:
        response = await gateway.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": account.username, "client_secret": SECRET},
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    async def accepted(token: str) -> None:
        for client in (gateway, registry):
            response = await client.get(ME, headers=auth(token))
            assert response.status_code == 200, (client.base_url, response.text)
            assert response.json()["account_id"] == str(account.id)

    async def jwks_kids() -> list[str]:
        return [k["kid"] for k in (await gateway.get("/.well-known/jwks.json")).json()["keys"]]

    def run(*args: str) -> dict:
        done = rotating.tool(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    try:
        token_a = await login()
        old = kid_of(token_a)
        await accepted(token_a)

        # Rotate: the new key is published (gateway and JWKS_PATH) and does not sign yet.
        new = run("rotate")["kid"]
        assert await eventually(lambda: _has(jwks_kids, new))
        assert new in [k["kid"] for k in json.loads(Path(rotating.env["JWKS_PATH"]).read_text())["keys"]]
        assert kid_of(await login()) == old

        # Activate (one reload interval after rotate, as the tool asks): tokens issued from
        # now on carry the new key id, with no restart.
        await asyncio.sleep(0.6)
        run("activate", new)
        token_b = await eventually(lambda: _login_with(login, new))
        # The registry has not restarted: it fetches the set when it first sees the new kid.
        response = await registry.get(ME, headers=auth(token_b))
        assert response.status_code == 200, response.text
        await accepted(token_b)
        await accepted(token_a)  # the old key is still published: its tokens stay valid

        # The gateway restarted: both keys are on disk, both kinds of token verify.
        rotating.stop("gateway")
        # Meanwhile the registry keeps its last good set (its source is away).
        assert (await registry.get(ME, headers=auth(token_a))).status_code == 200
        rotating.start_gateway()
        await asyncio.to_thread(rotating.wait_ready, [rotating.gateway_url])
        await accepted(token_a)
        await accepted(token_b)
        assert kid_of(await login()) == new

        # Retire: refused while the old key's tokens may be valid, unless forced.
        refused = rotating.tool("retire", old)
        assert refused.returncode != 0 and "may be valid until" in refused.stderr
        await accepted(token_a)
        assert run("retire", old, "--force")["forced"] is True
        assert await eventually(lambda: _lacks(jwks_kids, old))
        problem = assert_problem(await gateway.get(ME, headers=auth(token_a)), 401, UNAUTHORIZED)
        assert "unknown key" in problem["detail"]
        # The registry learns it on its next fetch: an unknown key id triggers one (rate-limited).
        await asyncio.sleep(1.1)
        assert_problem(await registry.get(ME, headers=auth(stranger_token)), 401, UNAUTHORIZED)
        problem = assert_problem(await registry.get(ME, headers=auth(token_a)), 401, UNAUTHORIZED)
        assert "unknown key" in problem["detail"]
        await accepted(token_b)
    finally:
        await gateway.aclose()
        await registry.aclose()


async def _has(jwks_kids, kid: str) -> bool:
    return kid in await jwks_kids()


async def _lacks(jwks_kids, kid: str) -> bool:
    return kid not in await jwks_kids()


async def _login_with(login, kid: str) -> str | None:
    token = await login()
    return token if kid_of(token) == kid else None
