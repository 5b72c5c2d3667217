"""Keys, the key set, what a signed token holds, the principal's claims and the verifier's cache.

These are the parts of services/common/auth.py that a bad token alone does not
exercise: a signer and a verifier that drifted together (a wrong key id, an
oversized key, a claim left out) would still agree with each other.
"""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt

from services.common.auth import (
    ALGORITHM,
    Principal,
    PrincipalKind,
    TokenSigner,
    TokenVerifier,
    _b64,
    generate_private_key_pem,
    public_jwk,
)
from services.common.problems import Unauthorized

ISSUER, AUDIENCE = "test-issuer", "test-audience"


def b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


@pytest.fixture(scope="module")
def private_pem() -> bytes:
    return generate_private_key_pem()


@pytest.fixture(scope="module")
def signer(private_pem) -> TokenSigner:
    return TokenSigner(private_pem, issuer=ISSUER, audience=AUDIENCE, lifetime_seconds=300)


def verifier_for(*keys: dict, cache_size: int = 20000) -> TokenVerifier:
    return TokenVerifier({"keys": list(keys)}, issuer=ISSUER, audience=AUDIENCE, cache_size=cache_size)


def officer(**overrides) -> Principal:
    values = {
        "account_id": "acct-1",
        "kind": PrincipalKind.OFFICER,
        "bureau_id": 7,
        "bureau_path": "1.7.",
        "roles": frozenset({"enforcement", "head"}),
    }
    return Principal(**(values | overrides))


class TestKeys:
    def test_a_new_key_is_unencrypted_pkcs8_rsa_2048_with_exponent_65537(self, private_pem):
        assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        key = serialization.load_pem_private_key(private_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == 2048
        assert key.public_key().public_numbers().e == 65537

    def test_public_jwk_holds_the_public_numbers_only(self, private_pem):
        key = serialization.load_pem_private_key(private_pem, password=None)
        numbers = key.public_key().public_numbers()
        jwk = public_jwk(private_pem)
        assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", ALGORITHM, "sig")
        assert (b64url_int(jwk["n"]), b64url_int(jwk["e"])) == (numbers.n, numbers.e)
        assert jwk["e"] == "AQAB"

    def test_the_key_id_is_the_rfc_7638_thumbprint(self, private_pem):
        jwk = public_jwk(private_pem)
        canonical = '{"e":"%s","kty":"RSA","n":"%s"}' % (jwk["e"], jwk["n"])  # noqa: UP031
        expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
        assert jwk["kid"] == expected

    @pytest.mark.parametrize(
        ("value", "encoded"),
        [(65537, "AQAB"), (1, "AQ"), (255, "_w"), (256, "AQA"), (2**64 - 1, "__________8")],
    )
    def test_integers_are_base64url_without_padding_or_leading_zeros(self, value, encoded):
        assert _b64(value) == encoded

    def test_two_keys_have_two_key_ids(self, private_pem):
        assert public_jwk(private_pem)["kid"] != public_jwk(generate_private_key_pem())["kid"]


class TestSigner:
    def test_token_holds_the_principal_and_the_registered_claims(self, signer):
        before = int(time.time())
        token = signer.issue(officer(body="enforcement", officer_id=3))
        after = int(time.time())
        header = jwt.get_unverified_header(token)
        claims = jwt.get_unverified_claims(token)
        assert header["alg"] == ALGORITHM and header["kid"] == signer.kid == signer.public["kid"]
        assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
        assert before <= claims["iat"] <= after
        assert claims["exp"] == claims["iat"] + 300
        assert len(claims["jti"]) == 32
        assert Principal.from_claims(claims) == officer(body="enforcement", officer_id=3)

    def test_each_token_has_its_own_id(self, signer):
        first, second = (jwt.get_unverified_claims(signer.issue(officer())) for _ in range(2))
        assert first["jti"] != second["jti"]

    def test_a_lifetime_of_its_own(self, signer):
        claims = jwt.get_unverified_claims(signer.issue(officer(), lifetime_seconds=60))
        assert claims["exp"] - claims["iat"] == 60

    def test_its_tokens_verify_with_its_public_key(self, signer):
        principal = officer(body="enforcement", officer_id=3)
        assert verifier_for(signer.public).verify(signer.issue(principal)) == principal


class TestKeySet:
    def test_keys_that_are_not_rsa_or_have_no_key_id_are_ignored(self, signer):
        ec_jwk = {"kty": "EC", "kid": signer.kid, "crv": "P-256", "x": "AA", "y": "AA"}
        nameless = {k: v for k, v in signer.public.items() if k != "kid"}
        with pytest.raises(Unauthorized, match="unknown key"):
            verifier_for(ec_jwk, nameless).verify(signer.issue(officer()))

    def test_the_key_with_the_tokens_key_id_verifies_it(self, signer):
        other = public_jwk(generate_private_key_pem())
        assert verifier_for(other, signer.public).verify(signer.issue(officer())) == officer()

    def test_an_empty_key_set_accepts_nothing(self, signer):
        with pytest.raises(Unauthorized):
            TokenVerifier({}, issuer=ISSUER, audience=AUDIENCE).verify(signer.issue(officer()))

    def test_an_ec_token_under_an_ec_key_id_is_refused(self, signer):
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        numbers = key.public_key().public_numbers()
        ec_jwk = {
            "kty": "EC",
            "kid": "ec-1",
            "crv": "P-256",
            "x": base64.urlsafe_b64encode(numbers.x.to_bytes(32, "big")).rstrip(b"=").decode(),
            "y": base64.urlsafe_b64encode(numbers.y.to_bytes(32, "big")).rstrip(b"=").decode(),
        }
        claims = {**officer().claims(), "iss": ISSUER, "aud": AUDIENCE, "iat": int(time.time())}
        token = jwt.encode(
            {**claims, "exp": claims["iat"] + 60}, pem, algorithm="ES256", headers={"kid": "ec-1"}
        )
        with pytest.raises(Unauthorized):
            verifier_for(ec_jwk, signer.public).verify(token)


class TestCache:
    def test_the_cache_stays_within_its_size(self, signer):
        verifier = verifier_for(signer.public, cache_size=2)
        tokens = [signer.issue(officer(account_id=f"acct-{n}")) for n in range(5)]
        for n, token in enumerate(tokens):
            assert verifier.verify(token).account_id == f"acct-{n}"
            assert len(verifier._cache) <= 2
        # What was dropped from the cache is verified again, not refused.
        assert verifier.verify(tokens[0]).account_id == "acct-0"

    def test_a_cached_token_is_the_same_principal(self, signer):
        verifier = verifier_for(signer.public)
        token = signer.issue(officer())
        assert verifier.verify(token) is verifier.verify(token)

    def test_an_expired_cached_token_is_forgotten(self, signer, monkeypatch):
        verifier = verifier_for(signer.public)
        token = signer.issue(officer(), lifetime_seconds=60)
        verifier.verify(token)
        later = time.time() + 61
        monkeypatch.setattr(time, "time", lambda: later)
        with pytest.raises(Unauthorized, match="expired"):
            verifier.verify(token)
        assert token not in verifier._cache


class TestAuthorizationHeader:
    @pytest.fixture
    def verifier(self, signer) -> TokenVerifier:
        return verifier_for(signer.public)

    @pytest.mark.parametrize("header", [None, ""])
    def test_missing_header_asks_for_a_bearer_token(self, verifier, header):
        with pytest.raises(Unauthorized) as refused:
            verifier.verify_authorization(header)
        assert refused.value.headers == {"WWW-Authenticate": "Bearer"}

    @pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic abc", "Token abc", "Bearerabc"])
    def test_other_schemes_and_empty_credentials_are_refused(self, verifier, header):
        with pytest.raises(Unauthorized, match="Bearer <token>"):
            verifier.verify_authorization(header)

    @pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
    def test_bearer_in_any_case_with_the_token_trimmed(self, verifier, signer, scheme):
        token = signer.issue(officer())
        assert verifier.verify_authorization(f"{scheme} {token} ") == officer()


class TestPrincipal:
    def test_claims_round_trip(self):
        principal = officer(body="legal", officer_id=0)
        claims = principal.claims()
        assert claims == {
            "sub": "acct-1",
            "kind": "officer",
            "bureau_id": 7,
            "bureau_path": "1.7.",
            "roles": ["enforcement", "head"],
            "body": "legal",
            "officer_id": 0,
        }
        assert Principal.from_claims(claims) == principal

    def test_optional_claims_are_left_out_and_default_on_reading(self):
        claims = officer(kind=PrincipalKind.SYSTEM, roles=frozenset()).claims()
        assert set(claims) == {"sub", "kind", "bureau_id", "bureau_path", "roles"}
        principal = Principal.from_claims({k: v for k, v in claims.items() if k != "roles"})
        assert (principal.roles, principal.body, principal.officer_id) == (frozenset(), None, None)
        assert principal.kind is PrincipalKind.SYSTEM

    def test_numeric_ids_in_claims_are_read_as_text_and_numbers(self):
        principal = Principal.from_claims(
            {"sub": 12, "kind": "service", "bureau_id": "7", "bureau_path": "1.7.", "roles": None}
        )
        assert (principal.account_id, principal.bureau_id, principal.roles) == ("12", 7, frozenset())

    @pytest.mark.parametrize("missing", ["sub", "kind", "bureau_id", "bureau_path"])
    def test_a_missing_claim_is_unauthorized(self, missing):
        claims = {k: v for k, v in officer().claims().items() if k != missing}
        with pytest.raises(Unauthorized, match="valid principal"):
            Principal.from_claims(claims)

    @pytest.mark.parametrize(
        ("roles", "asked", "expected"),
        [
            ({"enforcement", "head"}, ("head",), True),
            ({"enforcement", "head"}, ("admin", "enforcement"), True),
            ({"enforcement"}, ("admin", "legal"), False),
            (set(), ("admin",), False),
            ({"admin"}, (), False),
        ],
    )
    def test_has_role_is_any_of_the_roles_asked(self, roles, asked, expected):
        assert officer(roles=frozenset(roles)).has_role(*asked) is expected
