"""The verifier accepts RS256 and refuses every other algorithm by name, itself.

A pin that held only because the key object cannot check another algorithm
would give way with the next key type or library release, so each token here
carries the published key id and, where the algorithm allows, a signature made
with the right key: what refuses it must be the verifier's algorithm check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gateway.config import GatewaySettings
from services.common.auth import TokenVerifier, load_jwks, public_jwk
from services.common.problems import Unauthorized
from tests.conftest import auth

REFUSAL = "The token's algorithm is not accepted."
HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Forger:
    """Builds tokens byte by byte, so any header and any signature scheme can be tried."""

    def __init__(self) -> None:
        settings = GatewaySettings()
        self.private_pem = Path(os.environ["GATEWAY_PRIVATE_KEY_PATH"]).read_bytes()
        self.private_key = serialization.load_pem_private_key(self.private_pem, password=None)
        self.jwk = public_jwk(self.private_pem)
        self.issuer, self.audience = settings.token_issuer, settings.token_audience

    def claims(self) -> dict:
        now = int(time.time())
        return {
            "sub": str(uuid.uuid4()),
            "kind": "officer",
            "bureau_id": 1,
            "bureau_path": "1.",
            "roles": ["admin"],
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + 300,
        }

    def signing_input(self, alg: str | None) -> str:
        header = {"typ": "JWT", "kid": self.jwk["kid"], **({"alg": alg} if alg is not None else {})}
        return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(self.claims()).encode())}"

    def rsa(self, alg: str, *, pss: bool = False, header_alg: str | None = None) -> str:
        data = self.signing_input(header_alg or alg).encode()
        digest = HASHES[alg[-3:]]()
        pad = (
            padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            if pss
            else padding.PKCS1v15()
        )
        return f"{data.decode()}.{b64url(self.private_key.sign(data, pad, digest))}"

    def ecdsa(self, alg: str, curve: ec.EllipticCurve) -> str:
        data = self.signing_input(alg).encode()
        key = ec.generate_private_key(curve)
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(HASHES[alg[-3:]]())))
        size = (curve.key_size + 7) // 8
        return f"{data.decode()}.{b64url(r.to_bytes(size, 'big') + s.to_bytes(size, 'big'))}"

    def hmac(self, alg: str, secret: bytes) -> str:
        data = self.signing_input(alg)
        mac = hmac.new(secret, data.encode(), getattr(hashlib, f"sha{alg[-3:]}")).digest()
        return f"{data}.{b64url(mac)}"

    def unsigned(self, alg: str | None) -> str:
        return f"{self.signing_input(alg)}."

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


OTHER_ALGORITHMS = {
    "RS384-right-key": lambda f: f.rsa("RS384"),
    "RS512-right-key": lambda f: f.rsa("RS512"),
    "PS256-right-key": lambda f: f.rsa("PS256", pss=True),
    "PS384-right-key": lambda f: f.rsa("PS384", pss=True),
    "PS512-right-key": lambda f: f.rsa("PS512", pss=True),
    "ES256": lambda f: f.ecdsa("ES256", ec.SECP256R1()),
    "ES384": lambda f: f.ecdsa("ES384", ec.SECP384R1()),
    "HS256-public-pem": lambda f: f.hmac("HS256", f.public_pem()),
    "HS384-public-pem": lambda f: f.hmac("HS384", f.public_pem()),
    "HS512-public-pem": lambda f: f.hmac("HS512", f.public_pem()),
    "HS256-public-jwk-json": lambda f: f.hmac("HS256", json.dumps(f.jwk).encode()),
    "HS256-public-jwk-json-sorted": lambda f: f.hmac(
        "HS256", json.dumps(f.jwk, sort_keys=True, separators=(",", ":")).encode()
    ),
    "HS256-modulus": lambda f: f.hmac("HS256", f.jwk["n"].encode()),
    "none": lambda f: f.unsigned("none"),
    "None": lambda f: f.unsigned("None"),
    "NONE": lambda f: f.unsigned("NONE"),
    "empty-alg": lambda f: f.unsigned(""),
    "no-alg": lambda f: f.unsigned(None),
    "rs256-lowercase-right-signature": lambda f: f.rsa("RS256", header_alg="rs256"),
    "RS256-with-space-right-signature": lambda f: f.rsa("RS256", header_alg="RS256 "),
}


@pytest.fixture(scope="module")
def forger() -> Forger:
    # Not at import: the run's keys are made by a session fixture.
    return Forger()


@pytest.fixture
def verifier(forger) -> TokenVerifier:
    return TokenVerifier(
        load_jwks(Path(os.environ["JWKS_PATH"])), issuer=forger.issuer, audience=forger.audience
    )


class TestVerifier:
    def test_rs256_built_the_same_way_is_accepted(self, forger, verifier):
        # The control: the forger's tokens are sound but for their algorithm.
        assert verifier.verify(forger.rsa("RS256")).bureau_path == "1."

    @pytest.mark.parametrize("case", list(OTHER_ALGORITHMS))
    def test_any_other_algorithm_is_refused_by_name(self, forger, verifier, case):
        with pytest.raises(Unauthorized) as refused:
            verifier.verify(OTHER_ALGORITHMS[case](forger))
        assert refused.value.detail == REFUSAL

    @pytest.mark.parametrize("case", ["RS384-right-key", "HS256-public-pem", "none"])
    def test_a_refused_algorithm_stays_refused(self, forger, verifier, case):
        token = OTHER_ALGORITHMS[case](forger)
        for _ in range(2):
            with pytest.raises(Unauthorized):
                verifier.verify(token)


class TestThroughTheRegistry:
    @pytest.mark.parametrize("case", list(OTHER_ALGORITHMS))
    async def test_any_other_algorithm_is_a_401_problem(self, forger, registry, case):
        response = await registry.get("/api/v1/registry/me", headers=auth(OTHER_ALGORITHMS[case](forger)))
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == "/problems/unauthorized"
        assert problem["detail"] == REFUSAL

    async def test_rs256_built_the_same_way_is_accepted(self, forger, registry):
        response = await registry.get("/api/v1/registry/me", headers=auth(forger.rsa("RS256")))
        assert response.status_code == 200, response.text
