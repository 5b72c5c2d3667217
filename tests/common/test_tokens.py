"""Bearer tokens: every forged, broken or incomplete token is a 401 problem, never a 500.

Each bad token is tried twice: against ``TokenVerifier`` itself and through the
registry app, which must answer ``401 application/problem+json``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from jose import jws, jwt

from gateway.config import GatewaySettings
from services.common.auth import (
    ALGORITHM,
    MAX_TOKEN_BYTES,
    Principal,
    PrincipalKind,
    TokenSigner,
    TokenVerifier,
    generate_private_key_pem,
    load_jwks,
    public_jwk,
)
from services.common.problems import Unauthorized
from tests.conftest import auth

BUREAU = "/api/v1/registry/bureaus/1"
ME = "/api/v1/registry/me"
DROP = object()  # a claim value meaning "leave the claim out"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64json(value) -> str:
    return b64url(json.dumps(value).encode())


@dataclass(frozen=True)
class Keys:
    private_pem: bytes
    kid: str
    issuer: str
    audience: str

    def claims(self, **overrides) -> dict:
        now = int(time.time())
        claims = {
            "sub": str(uuid.uuid4()),
            "kind": "officer",
            "bureau_id": 1,
            "bureau_path": "1.",
            "roles": ["admin"],
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not DROP}

    def sign(self, claims: dict, *, key: bytes | None = None, headers: dict | None = None) -> str:
        headers = {"kid": self.kid} if headers is None else headers
        return jwt.encode(claims, (key or self.private_pem).decode(), algorithm=ALGORITHM, headers=headers)

    def token(self, **overrides) -> str:
        return self.sign(self.claims(**overrides))

    def public_pem(self) -> bytes:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        return key.public_key().public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@pytest.fixture(scope="module")
def keys() -> Keys:
    settings = GatewaySettings()
    private_pem = Path(os.environ["GATEWAY_PRIVATE_KEY_PATH"]).read_bytes()
    return Keys(private_pem, public_jwk(private_pem)["kid"], settings.token_issuer, settings.token_audience)


@pytest.fixture
def verifier(keys) -> TokenVerifier:
    """A fresh verifier (empty cache) on the published key set."""
    return TokenVerifier(load_jwks(Path(os.environ["JWKS_PATH"])), issuer=keys.issuer, audience=keys.audience)


# --- the bad tokens ---------------------------------------------------------


def unsigned(keys: Keys, header: dict) -> str:
    return f"{b64json(header)}.{b64json(keys.claims())}."


def hs256_with_public_key(keys: Keys, with_kid: bool) -> str:
    """The classic key-confusion forgery: HMAC keyed with the public RSA key."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": keys.kid} if with_kid else {})}
    signing_input = f"{b64json(header)}.{b64json(keys.claims())}"
    mac = hmac.new(keys.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def tampered_payload(keys: Keys) -> str:
    header, _, signature = keys.token(roles=["enforcement"], bureau_path="1.7.").split(".")
    return f"{header}.{b64json(keys.claims(roles=['admin'], bureau_path='1.'))}.{signature}"


def tampered_signature(keys: Keys) -> str:
    header, payload, signature = keys.token().split(".")
    first = "B" if signature[0] != "B" else "C"  # the first character carries 6 full bits
    return f"{header}.{payload}.{first}{signature[1:]}"


def signed_raw_payload(keys: Keys, payload: bytes) -> str:
    return jws.sign(payload, keys.private_pem.decode(), headers={"kid": keys.kid}, algorithm=ALGORITHM)


def signed_raw_header(keys: Keys, header: bytes) -> str:
    """A token whose header is not a JSON object, with a real RS256 signature over it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{b64url(header)}.{b64json(keys.claims())}"
    key = serialization.load_pem_private_key(keys.private_pem, password=None)
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    return f"{signing_input}.{b64url(signature)}"


def with_header(keys: Keys, **parameters) -> str:
    """A correctly signed token whose header carries these extra parameters."""
    return keys.sign(keys.claims(), headers={"kid": keys.kid, **parameters})


BAD_TOKENS = {
    "alg-none-without-kid": lambda k: unsigned(k, {"alg": "none", "typ": "JWT"}),
    "alg-none-with-kid": lambda k: unsigned(k, {"alg": "none", "typ": "JWT", "kid": k.kid}),
    "alg-None-capitalised-with-kid": lambda k: unsigned(k, {"alg": "None", "kid": k.kid}),
    "hs256-keyed-with-public-pem": lambda k: hs256_with_public_key(k, with_kid=True),
    "hs256-keyed-with-public-pem-no-kid": lambda k: hs256_with_public_key(k, with_kid=False),
    "expired": lambda k: k.token(iat=int(time.time()) - 600, exp=int(time.time()) - 60),
    "no-exp": lambda k: k.token(exp=DROP),
    "no-iat": lambda k: k.token(iat=DROP),
    "no-aud": lambda k: k.token(aud=DROP),
    "no-iss": lambda k: k.token(iss=DROP),
    "no-sub": lambda k: k.token(sub=DROP),
    "exp-null": lambda k: k.token(exp=None),
    "exp-a-string": lambda k: k.token(exp=str(int(time.time()) + 300)),
    "exp-a-float": lambda k: k.token(exp=time.time() + 300.5),
    "iat-not-a-number": lambda k: k.token(iat="yesterday"),
    "sub-not-a-string": lambda k: k.token(sub=12345),
    "not-before-in-the-future": lambda k: k.token(nbf=int(time.time()) + 120),
    "wrong-iss": lambda k: k.token(iss="someone-else"),
    "wrong-aud": lambda k: k.token(aud="another-platform"),
    "aud-list-without-ours": lambda k: k.token(aud=["a", "b"]),
    "unknown-kid": lambda k: k.sign(k.claims(), headers={"kid": "not-a-published-key"}),
    "no-kid": lambda k: k.sign(k.claims(), headers={}),
    "kid-not-a-string": lambda k: k.sign(k.claims(), headers={"kid": ["a", "list"]}),
    "right-kid-foreign-key": lambda k: k.sign(k.claims(), key=generate_private_key_pem()),
    "tampered-payload": tampered_payload,
    "tampered-signature": tampered_signature,
    "signature-stripped": lambda k: k.token().rsplit(".", 1)[0] + ".",
    "malformed-abc": lambda k: "abc",
    "malformed-a.b": lambda k: "a.b",
    "malformed-a.b.c": lambda k: "a.b.c",
    "malformed-dots": lambda k: "..",
    "malformed-four-parts": lambda k: k.token() + ".extra",
    "malformed-not-base64": lambda k: "!!!$.@@@%.###^",
    "malformed-non-ascii": lambda k: "éé.ü.ß",
    "payload-a-json-list": lambda k: signed_raw_payload(k, b'[{"sub": "x"}]'),
    "payload-not-json": lambda k: signed_raw_payload(k, b"not json at all"),
    "header-a-json-list": lambda k: signed_raw_header(k, b'["RS256"]'),
    "oversized": lambda k: k.token(pad="x" * (MAX_TOKEN_BYTES + 100)),
    "no-bureau-path": lambda k: k.token(bureau_path=DROP),
    "no-kind": lambda k: k.token(kind=DROP),
    "no-bureau-id": lambda k: k.token(bureau_id=DROP),
    "unknown-kind": lambda k: k.token(kind="superuser"),
    "bureau-id-not-a-number": lambda k: k.token(bureau_id="one"),
    "roles-not-a-list": lambda k: k.token(roles=7),
    # RFC 7515 §4.1.11: critical extensions we do not understand (we understand none).
    "crit-unknown-extension": lambda k: with_header(k, crit=["urn:example:must-understand"]),
    "crit-b64-unencoded-payload": lambda k: with_header(k, crit=["b64"], b64=True),
    "crit-naming-a-registered-parameter": lambda k: with_header(k, crit=["exp"]),
    "crit-empty-list": lambda k: with_header(k, crit=[]),
    "crit-not-a-list": lambda k: with_header(k, crit="urn:example:must-understand"),
    "crit-null": lambda k: with_header(k, crit=None),
}


class TestVerifierRefuses:
    @pytest.mark.parametrize("case", list(BAD_TOKENS))
    def test_bad_token_is_unauthorized(self, keys, verifier, case):
        token = BAD_TOKENS[case](keys)
        with pytest.raises(Unauthorized):
            verifier.verify(token)

    def test_oversized_token_really_is_over_the_limit_and_otherwise_valid(self, keys, verifier):
        token = BAD_TOKENS["oversized"](keys)
        assert len(token) > MAX_TOKEN_BYTES
        roomy = TokenVerifier(
            load_jwks(Path(os.environ["JWKS_PATH"])), issuer=keys.issuer, audience=keys.audience
        )
        # The same claims without padding verify, so the size alone is what refuses it.
        assert roomy.verify(keys.token()).bureau_path == "1."

    def test_a_refused_token_stays_refused(self, keys, verifier):
        token = BAD_TOKENS["tampered-payload"](keys)
        for _ in range(2):
            with pytest.raises(Unauthorized):
                verifier.verify(token)

    def test_an_unknown_header_parameter_that_is_not_critical_is_ignored(self, keys, verifier):
        # The crit cases above differ from this token only by crit, so crit is what refuses them.
        token = with_header(keys, **{"urn:example:must-understand": 1})
        assert verifier.verify(token).bureau_path == "1."

    def test_crit_token_is_refused_for_what_it_is(self, keys, verifier):
        with pytest.raises(Unauthorized) as refused:
            verifier.verify(BAD_TOKENS["crit-unknown-extension"](keys))
        assert "critical" in str(refused.value.detail)

    def test_signer_output_is_accepted(self, keys, verifier, signer):
        principal = Principal(
            account_id="acct-1",
            kind=PrincipalKind.SYSTEM,
            bureau_id=7,
            bureau_path="1.7.",
            roles=frozenset({"system"}),
        )
        assert verifier.verify(signer.issue(principal)) == principal

    async def test_token_that_expires_while_cached_is_refused(self, keys, verifier, signer):
        principal = Principal(account_id="acct-2", kind=PrincipalKind.OFFICER, bureau_id=1, bureau_path="1.")
        # exp is whole seconds: two seconds leave at least one of validity for the first use.
        token = signer.issue(principal, lifetime_seconds=2)
        assert verifier.verify(token) == principal
        await asyncio.sleep(3)
        with pytest.raises(Unauthorized):
            verifier.verify(token)

    async def test_token_whose_exp_has_just_passed_is_refused(self, keys, verifier):
        # Start just after a second boundary, so "now" is after exp yet within the same second.
        await asyncio.sleep(1.05 - time.time() % 1)
        now = time.time()
        token = keys.token(iat=int(now) - 60, exp=int(now))
        assert time.time() > int(now)
        with pytest.raises(Unauthorized):
            verifier.verify(token)

    def test_signer_lifetime_zero_is_not_the_default_lifetime(self, keys):
        signer = TokenSigner(
            keys.private_pem, issuer=keys.issuer, audience=keys.audience, lifetime_seconds=300
        )
        principal = Principal(account_id="acct-3", kind=PrincipalKind.OFFICER, bureau_id=1, bureau_path="1.")
        claims = jwt.get_unverified_claims(signer.issue(principal, lifetime_seconds=0))
        assert claims["exp"] - claims["iat"] == 0


def assert_unauthorized_problem(response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 401 and problem["type"] == "/problems/unauthorized"
    assert "www-authenticate" in response.headers


class TestRegistryRefuses:
    @pytest.mark.parametrize("case", list(BAD_TOKENS))
    async def test_bad_token_is_a_401_problem(self, registry, keys, case):
        # Sent as raw bytes, so a non-ASCII token reaches the app as it is.
        header = f"Bearer {BAD_TOKENS[case](keys)}".encode()
        response = await registry.get(BUREAU, headers={"Authorization": header})
        assert_unauthorized_problem(response)

    async def test_missing_authorization_header(self, registry):
        response = await registry.get(BUREAU)
        assert_unauthorized_problem(response)
        assert response.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize("header", ["Basic xyz", "Bearer", "Token abc.def.ghi", "bearer", "", "Bearer "])
    async def test_wrong_scheme_or_empty_credentials(self, registry, header):
        response = await registry.get(BUREAU, headers={"Authorization": header})
        assert_unauthorized_problem(response)

    async def test_valid_token_in_another_scheme_is_refused(self, registry, keys):
        response = await registry.get(BUREAU, headers={"Authorization": f"Basic {keys.token()}"})
        assert_unauthorized_problem(response)

    async def test_problem_does_not_echo_the_token(self, registry, keys):
        token = BAD_TOKENS["tampered-payload"](keys)
        response = await registry.get(BUREAU, headers=auth(token))
        assert_unauthorized_problem(response)
        assert token not in response.text


class TestRegistryAccepts:
    async def test_valid_token_reads_a_bureau(self, registry, keys):
        response = await registry.get(BUREAU, headers=auth(keys.token()))
        assert response.status_code == 200, response.text
        assert response.json()["id"] == 1

    async def test_me_returns_the_principal_of_the_claims(self, registry, token_for, network_unit):
        token = token_for(
            network_unit,
            roles=("enforcement", "head"),
            body="enforcement",
            officer_id=42,
            account_id="acct-me",
        )
        response = await registry.get(ME, headers=auth(token))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "account_id": "acct-me",
            "kind": "officer",
            "bureau_id": network_unit["id"],
            "bureau_path": network_unit["path"],
            "roles": ["enforcement", "head"],
            "body": "enforcement",
            "officer_id": 42,
        }

    async def test_bearer_scheme_is_case_insensitive(self, registry, keys):
        response = await registry.get(BUREAU, headers={"Authorization": f"bearer {keys.token()}"})
        assert response.status_code == 200

    async def test_token_that_expires_after_being_cached_is_refused(self, registry, token_for):
        token = token_for(lifetime_seconds=2)  # whole seconds: at least one of validity
        assert (await registry.get(BUREAU, headers=auth(token))).status_code == 200
        await asyncio.sleep(3)
        assert_unauthorized_problem(await registry.get(BUREAU, headers=auth(token)))


@pytest.fixture(scope="module")
async def network_unit(registry, token_for) -> dict:
    """A provincial pilot unit (not the national regulator), so the claims are not defaults."""
    response = await registry.get(
        "/api/v1/registry/bureaus", params={"pilot": "provincial", "limit": 1}, headers=auth(token_for())
    )
    return response.json()["items"][0]
