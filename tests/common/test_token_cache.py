"""The verified-token cache: it saves signature checks, never a check that matters.

A token is cached only after passing every check of its verifier (issuer, audience,
key, expiry); the expiry is compared again on every use; the cache is bounded.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.config import GatewaySettings
from services.common import auth as auth_module
from services.common.auth import Principal, PrincipalKind, TokenSigner, TokenVerifier, load_jwks
from services.common.problems import Unauthorized

PRINCIPAL = Principal(account_id="cache-1", kind=PrincipalKind.OFFICER, bureau_id=1, bureau_path="1.")


def signer_for(audience: str | None = None, issuer: str | None = None) -> TokenSigner:
    settings = GatewaySettings()
    return TokenSigner(
        settings.private_key_path.read_bytes(),
        issuer=issuer or settings.token_issuer,
        audience=audience or settings.token_audience,
        lifetime_seconds=300,
    )


def verifier_for(audience: str | None = None, cache_size: int = 20000) -> TokenVerifier:
    settings = GatewaySettings()
    return TokenVerifier(
        load_jwks(Path(os.environ["JWKS_PATH"])),
        issuer=settings.token_issuer,
        audience=audience or settings.token_audience,
        cache_size=cache_size,
    )


class TestExpiry:
    def test_cached_token_is_refused_once_its_expiry_passes(self, monkeypatch):
        verifier = verifier_for()
        token = signer_for().issue(PRINCIPAL, lifetime_seconds=60)
        assert verifier.verify(token) == PRINCIPAL
        assert token in verifier._cache
        real_time = auth_module.time.time
        monkeypatch.setattr(auth_module.time, "time", lambda: real_time() + 61)
        with pytest.raises(Unauthorized, match="expired"):
            verifier.verify(token)
        assert token not in verifier._cache

    def test_cached_token_is_accepted_until_its_expiry(self, monkeypatch):
        verifier = verifier_for()
        token = signer_for().issue(PRINCIPAL, lifetime_seconds=60)
        verifier.verify(token)
        real_time = auth_module.time.time
        monkeypatch.setattr(auth_module.time, "time", lambda: real_time() + 50)
        assert verifier.verify(token) == PRINCIPAL


class TestAudienceAndIssuer:
    def test_token_for_another_audience_is_never_cached_nor_accepted(self):
        verifier = verifier_for()
        foreign = signer_for(audience="another-platform").issue(PRINCIPAL)
        for _ in range(2):
            with pytest.raises(Unauthorized):
                verifier.verify(foreign)
        assert foreign not in verifier._cache

    def test_token_cached_by_one_verifier_is_refused_by_a_verifier_of_another_audience(self):
        token = signer_for().issue(PRINCIPAL)
        assert verifier_for().verify(token) == PRINCIPAL
        with pytest.raises(Unauthorized):
            verifier_for(audience="another-platform").verify(token)

    def test_token_of_another_issuer_is_refused_after_a_good_one_was_cached(self):
        verifier = verifier_for()
        verifier.verify(signer_for().issue(PRINCIPAL))
        with pytest.raises(Unauthorized):
            verifier.verify(signer_for(issuer="someone-else").issue(PRINCIPAL))


class TestBound:
    def test_cache_keeps_at_most_its_size_evicting_the_oldest(self):
        verifier = verifier_for(cache_size=3)
        signer = signer_for()
        tokens = [signer.issue(PRINCIPAL) for _ in range(5)]
        for token in tokens:
            verifier.verify(token)
        assert list(verifier._cache) == tokens[2:]

    def test_evicted_token_is_verified_again_in_full(self, monkeypatch):
        verifier = verifier_for(cache_size=1)
        signer = signer_for()
        first, second = signer.issue(PRINCIPAL), signer.issue(PRINCIPAL)
        verifier.verify(first)
        verifier.verify(second)
        calls = []
        original = verifier._verify_uncached
        monkeypatch.setattr(verifier, "_verify_uncached", lambda t: calls.append(t) or original(t))
        assert verifier.verify(first) == PRINCIPAL
        assert calls == [first]
