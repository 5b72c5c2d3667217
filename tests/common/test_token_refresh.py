"""The verifier's key set kept current (services/common/auth.py): fetched again when a token
names an unknown key id (rate-limited), periodically, and kept when the gateway is away."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.common.auth import (
    Principal,
    PrincipalKind,
    TokenSigner,
    TokenVerifier,
    generate_private_key_pem,
    jwks_fetcher,
    public_jwk,
)
from services.common.problems import Unauthorized
from tools.platform import free_port

ISSUER, AUDIENCE = "test-issuer", "test-audience"
OFFICER = Principal(account_id="acct-1", kind=PrincipalKind.OFFICER, bureau_id=7, bureau_path="1.7.")


@pytest.fixture(scope="module")
def old_pem() -> bytes:
    return generate_private_key_pem()


@pytest.fixture(scope="module")
def new_pem() -> bytes:
    return generate_private_key_pem()


def signer(pem: bytes) -> TokenSigner:
    return TokenSigner(pem, issuer=ISSUER, audience=AUDIENCE, lifetime_seconds=300)


def jwks(*pems: bytes) -> dict:
    return {"keys": [public_jwk(p) for p in pems]}


class Gateway:
    """What a verifier fetches: the current set, or a failure (the gateway away); counts fetches."""

    def __init__(self, current: dict) -> None:
        self.current: dict | None = current
        self.fetches = 0

    def __call__(self) -> dict:
        self.fetches += 1
        if self.current is None:
            raise LookupError("the gateway is away")
        return self.current


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier_on(gateway: Gateway, start: dict, clock: Clock, min_refresh: float = 30.0) -> TokenVerifier:
    return TokenVerifier(
        start, issuer=ISSUER, audience=AUDIENCE, fetch=gateway, min_refresh_seconds=min_refresh, clock=clock
    )


def assert_unauthorized(verifier: TokenVerifier, token: str, detail: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    problem = caught.value
    assert (problem.status, problem.slug) == (401, "unauthorized")
    assert detail in str(problem.detail)


class TestUnknownKeyId:
    def test_a_new_key_is_fetched_when_a_token_names_it(self, old_pem, new_pem):
        gateway, clock = Gateway(jwks(old_pem, new_pem)), Clock()
        verifier = verifier_on(gateway, jwks(old_pem), clock)
        assert verifier.verify(signer(new_pem).issue(OFFICER)).account_id == "acct-1"
        assert gateway.fetches == 1
        assert verifier.kids == {public_jwk(old_pem)["kid"], public_jwk(new_pem)["kid"]}
        # The old key's tokens still verify, without another fetch.
        assert verifier.verify(signer(old_pem).issue(OFFICER)).account_id == "acct-1"
        assert gateway.fetches == 1

    def test_fetches_for_unknown_key_ids_are_rate_limited(self, old_pem, new_pem):
        stranger = generate_private_key_pem()  # a key the gateway never published
        gateway, clock = Gateway(jwks(old_pem)), Clock()
        verifier = verifier_on(gateway, jwks(old_pem), clock, min_refresh=30)
        for _ in range(5):
            assert_unauthorized(verifier, signer(stranger).issue(OFFICER), "unknown key")
        assert gateway.fetches == 1  # one fetch for five tokens within the interval
        clock.now += 29.9
        assert_unauthorized(verifier, signer(stranger).issue(OFFICER), "unknown key")
        assert gateway.fetches == 1
        # The interval over, the next unknown key id fetches again, and finds the new key.
        gateway.current = jwks(old_pem, new_pem)
        clock.now += 0.2
        assert verifier.verify(signer(new_pem).issue(OFFICER)).account_id == "acct-1"
        assert gateway.fetches == 2

    def test_a_key_published_within_the_interval_waits_for_its_end(self, old_pem, new_pem):
        gateway, clock = Gateway(jwks(old_pem)), Clock()
        verifier = verifier_on(gateway, jwks(old_pem), clock, min_refresh=30)
        token = signer(new_pem).issue(OFFICER)
        assert_unauthorized(verifier, token, "unknown key")
        gateway.current = jwks(old_pem, new_pem)
        clock.now += 10
        assert_unauthorized(verifier, token, "unknown key")
        clock.now += 20
        assert verifier.verify(token).account_id == "acct-1"
        assert gateway.fetches == 2

    def test_without_a_source_an_unknown_key_id_is_refused_at_once(self, old_pem, new_pem):
        verifier = TokenVerifier(jwks(old_pem), issuer=ISSUER, audience=AUDIENCE)
        assert_unauthorized(verifier, signer(new_pem).issue(OFFICER), "unknown key")


class TestLastGoodSet:
    def test_the_gateway_away_keeps_the_set_in_use(self, old_pem, new_pem):
        gateway, clock = Gateway(jwks(old_pem)), Clock()
        verifier = verifier_on(gateway, jwks(old_pem), clock)
        gateway.current = None
        assert_unauthorized(verifier, signer(new_pem).issue(OFFICER), "unknown key")
        assert gateway.fetches == 1
        assert verifier.kids == {public_jwk(old_pem)["kid"]}
        assert verifier.verify(signer(old_pem).issue(OFFICER)).account_id == "acct-1"

    @pytest.mark.parametrize("answer", [{"keys": []}, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, {}])
    def test_a_set_without_a_usable_key_is_not_taken(self, old_pem, answer):
        verifier = TokenVerifier(jwks(old_pem), issuer=ISSUER, audience=AUDIENCE)
        assert verifier.set_keys(answer) is False
        assert verifier.verify(signer(old_pem).issue(OFFICER)).account_id == "acct-1"

    def test_a_key_that_leaves_the_set_takes_its_cached_tokens_along(self, old_pem, new_pem):
        verifier = TokenVerifier(jwks(old_pem, new_pem), issuer=ISSUER, audience=AUDIENCE)
        old_token, new_token = signer(old_pem).issue(OFFICER), signer(new_pem).issue(OFFICER)
        verifier.verify(old_token), verifier.verify(new_token)  # both cached
        assert verifier.set_keys(jwks(new_pem))  # the old key retired
        assert_unauthorized(verifier, old_token, "unknown key")
        assert verifier.verify(new_token).account_id == "acct-1"

    async def test_the_periodic_refresh_takes_new_sets_and_keeps_the_last_good_one(self, old_pem, new_pem):
        gateway, clock = Gateway(jwks(old_pem)), Clock()
        verifier = verifier_on(gateway, jwks(old_pem), clock)
        task = asyncio.create_task(verifier.refresh_periodically(0.05))
        try:
            gateway.current = jwks(old_pem, new_pem)
            await until(lambda: len(verifier.kids) == 2)
            gateway.current = None  # away: the set stays
            fetched = gateway.fetches
            await until(lambda: gateway.fetches >= fetched + 3)
            assert len(verifier.kids) == 2
            gateway.current = jwks(new_pem)  # the old key retired at the gateway
            await until(lambda: verifier.kids == {public_jwk(new_pem)["kid"]})
        finally:
            task.cancel()
        assert_unauthorized(verifier, signer(old_pem).issue(OFFICER), "unknown key")


async def until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


class TestFetcher:
    def test_the_file_is_the_fallback_when_the_gateway_does_not_answer(self, tmp_path, old_pem):
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(jwks(old_pem)))
        fetch = jwks_fetcher(f"http://127.0.0.1:{free_port()}/.well-known/jwks.json", path, timeout=1.0)
        assert fetch() == jwks(old_pem)

    def test_neither_answering_is_an_error_the_verifier_survives(self, tmp_path, old_pem):
        fetch = jwks_fetcher(f"http://127.0.0.1:{free_port()}/x", tmp_path / "missing.json", timeout=1.0)
        with pytest.raises(LookupError, match="no key set"):
            fetch()
        verifier = TokenVerifier(jwks(old_pem), issuer=ISSUER, audience=AUDIENCE, fetch=fetch)
        assert verifier.refresh() is False
        assert verifier.verify(signer(old_pem).issue(OFFICER)).account_id == "acct-1"

    def test_a_file_without_a_key_is_no_set(self, tmp_path):
        path = tmp_path / "jwks.json"
        path.write_text('{"keys": []}')
        with pytest.raises(LookupError, match="no usable key"):
            jwks_fetcher(None, path)()
