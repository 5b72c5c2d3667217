"""Access tokens: signing (gateway) and verification (every service).

The only module that imports python-jose, so the library can be swapped in
one place. Tokens are RS256, pinned on decode; ``exp``, ``iat``, ``iss``,
``aud`` and ``sub`` are required and checked. Any JOSE error, and any token
that is malformed, oversized, signed with an unknown key id or marked with
critical header extensions (``crit``), is a 401.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from jose.exceptions import JOSEError

from services.common.problems import Unauthorized

ALGORITHM = "RS256"
# Far above any token the gateway issues; bigger ones are refused before parsing.
MAX_TOKEN_BYTES = 4096
_DECODE_OPTIONS = {
    "verify_signature": True,
    "verify_aud": True,
    "verify_iat": True,
    "verify_exp": True,
    "verify_iss": True,
    "verify_sub": True,
    "require_exp": True,
    "require_iat": True,
    "require_iss": True,
    "require_aud": True,
    "require_sub": True,
    "leeway": 0,
}


class PrincipalKind(StrEnum):
    OFFICER = "officer"
    SYSTEM = "system"  # a provincial information system (client credentials)
    SERVICE = "service"  # one of the platform's own services


class Role(StrEnum):
    ADMIN = "admin"  # manages bureaus, officers and accounts within scope
    HEAD = "head"  # bureau head: approves opening a case and a penalty decision
    SUPERVISION = "supervision"  # certification supervision body (认证监管机构)
    ENFORCEMENT = "enforcement"  # dedicated enforcement body (专职执法机构)
    LEGAL = "legal"  # legal-affairs body (法制工作机构)
    SYSTEM = "system"  # provincial information system
    SERVICE = "service"  # platform service


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting, and the bureau subtree they act in."""

    account_id: str
    kind: PrincipalKind
    bureau_id: int
    bureau_path: str  # materialized path of the bureau tree, e.g. "1.7.23."
    roles: frozenset[str] = field(default_factory=frozenset)
    body: str | None = None
    officer_id: int | None = None
    # The version of the account the token was issued from: the gateway refuses a
    # token issued before the account last changed (roles, bureau, disabling…).
    account_version: int | None = None

    def in_scope(self, bureau_path: str) -> bool:
        """True when the object's bureau lies in this principal's subtree."""
        return bureau_path.startswith(self.bureau_path)

    def has_role(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def is_national(self) -> bool:
        return self.bureau_path.count(".") == 1

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        try:
            for optional in ("officer_id", "ver"):
                if claims.get(optional) is not None and type(claims[optional]) is not int:
                    raise TypeError(f"{optional} must be an integer")
            return cls(
                account_id=str(claims["sub"]),
                kind=PrincipalKind(claims["kind"]),
                bureau_id=int(claims["bureau_id"]),
                bureau_path=str(claims["bureau_path"]),
                roles=frozenset(claims.get("roles") or ()),
                body=claims.get("body"),
                officer_id=claims.get("officer_id"),
                account_version=claims.get("ver"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise Unauthorized("The token does not carry a valid principal.") from exc

    def claims(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sub": self.account_id,
            "kind": self.kind.value,
            "bureau_id": self.bureau_id,
            "bureau_path": self.bureau_path,
            "roles": sorted(self.roles),
        }
        if self.body:
            out["body"] = self.body
        if self.officer_id is not None:
            out["officer_id"] = self.officer_id
        if self.account_version is not None:
            out["ver"] = self.account_version
        return out


# --- keys -----------------------------------------------------------------


def generate_private_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(private_pem: bytes) -> dict[str, str]:
    """The public JWK of a private key, with its RFC 7638 thumbprint as key id."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    numbers = key.public_key().public_numbers()  # type: ignore[union-attr]
    members = {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}
    thumbprint = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    return {**members, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def load_jwks(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


# --- signing --------------------------------------------------------------


class TokenSigner:
    def __init__(self, private_pem: bytes, *, issuer: str, audience: str, lifetime_seconds: int):
        self.public = public_jwk(private_pem)
        self.kid = self.public["kid"]
        self._key = private_pem.decode()
        self.issuer = issuer
        self.audience = audience
        self.lifetime_seconds = lifetime_seconds

    def issue(self, principal: Principal, *, lifetime_seconds: int | None = None) -> str:
        now = int(time.time())
        claims = {
            **principal.claims(),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + (self.lifetime_seconds if lifetime_seconds is None else lifetime_seconds),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})


# --- verification ---------------------------------------------------------


class TokenVerifier:
    """Checks bearer tokens against the gateway's published keys.

    A successfully verified token is remembered (bounded) by its exact text, so
    the signature is checked once per token rather than once per request; the
    expiry is still compared on every use. The cache belongs to one verifier, so to
    one issuer, audience and key set: a token is only ever cached after passing all
    of this verifier's checks. (Revocation is the gateway's business.)
    """

    def __init__(self, jwks: dict[str, Any], *, issuer: str, audience: str, cache_size: int = 20000):
        self._keys = {
            k["kid"]: jwk.construct(k, ALGORITHM)
            for k in jwks.get("keys", [])
            if k.get("kty") == "RSA" and k.get("kid")
        }
        self.issuer = issuer
        self.audience = audience
        self._cache: dict[str, tuple[Principal, int]] = {}
        self._cache_size = cache_size

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            principal, expires = cached
            if time.time() < expires:
                return principal
            del self._cache[token]
            raise Unauthorized("The token has expired.")
        principal, expires = self._verify_uncached(token)
        if len(self._cache) >= self._cache_size:
            # Bounded: the oldest entry goes (dicts keep insertion order), not the whole cache,
            # so a full cache never turns into a burst of signature checks.
            del self._cache[next(iter(self._cache))]
        self._cache[token] = (principal, expires)
        return principal

    def verify_authorization(self, header: str | None) -> Principal:
        if not header:
            raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": "Bearer"})
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
        return self.verify(token.strip())

    def _verify_uncached(self, token: str) -> tuple[Principal, int]:
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized("The token is too large.")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise Unauthorized("The token's algorithm is not accepted.")
            # RFC 7515 §4.1.11: a recipient must refuse extensions it does not understand,
            # and we understand none; a malformed crit is refused all the same.
            if "crit" in header:
                raise Unauthorized("The token marks header extensions as critical; none are supported.")
            key = self._keys.get(header.get("kid"))
            if key is None:
                raise Unauthorized("The token was signed with an unknown key.")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options=_DECODE_OPTIONS,
            )
        except JOSEError as exc:
            raise Unauthorized(f"The token is not valid: {exc}") from exc
        except (ValueError, TypeError, AttributeError) as exc:  # malformed beyond what jose catches
            raise Unauthorized("The token is malformed.") from exc
        if not isinstance(claims.get("exp"), int):
            raise Unauthorized("The token's expiry is not valid.")
        # jose compares whole seconds; a token is not valid at or after its exp.
        if claims["exp"] <= time.time():
            raise Unauthorized("The token has expired.")
        return Principal.from_claims(claims), claims["exp"]
