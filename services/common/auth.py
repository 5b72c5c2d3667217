"""Access tokens: signing (gateway) and verification (every service).

The only module that imports python-jose, so the library can be swapped in
one place. Tokens are RS256, pinned on decode; ``exp``, ``iat``, ``iss``,
``aud`` and ``sub`` are required and checked. Any JOSE error, and any token
that is malformed, oversized, signed with an unknown key id or marked with
critical header extensions (``crit``), is a 401.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jwt
from jose.exceptions import JOSEError

from services.common.problems import Unauthorized

log = logging.getLogger("platform.auth")

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


def jwks_fetcher(url: str | None, path: Path | None, timeout: float = 2.0) -> Callable[[], dict[str, Any]]:
    """A function returning the current key set: the gateway's JWKS at ``url`` when set,
    else (or when the gateway does not answer) the file at ``path``; raises when neither
    gives a set with a key."""

    def fetch() -> dict[str, Any]:
        failures = []
        if url:
            try:
                response = httpx.get(url, timeout=timeout, follow_redirects=False)
                response.raise_for_status()
                jwks = response.json()
                if _construct_keys(jwks):
                    return jwks
                failures.append(f"{url}: no usable key")
            except (httpx.HTTPError, JOSEError, ValueError, TypeError, AttributeError) as exc:
                failures.append(f"{url}: {exc!r}")
        if path is not None:
            try:
                jwks = load_jwks(path)
                if _construct_keys(jwks):
                    return jwks
                failures.append(f"{path}: no usable key")
            except (OSError, JOSEError, ValueError, TypeError, AttributeError) as exc:
                failures.append(f"{path}: {exc!r}")
        raise LookupError("no key set could be read: " + "; ".join(failures))

    return fetch


def _construct_keys(jwks: dict[str, Any]) -> dict[str, Any]:
    return {
        k["kid"]: jwk.construct(k, ALGORITHM)
        for k in jwks.get("keys", [])
        if isinstance(k, dict) and k.get("kty") == "RSA" and isinstance(k.get("kid"), str)
    }


# --- signing --------------------------------------------------------------


class TokenSigner:
    """Signs with one key at a time; :meth:`use` switches the key (the gateway's key
    rotation), and tokens signed before the switch carry the old key id."""

    def __init__(self, private_pem: bytes, *, issuer: str, audience: str, lifetime_seconds: int):
        self.use(private_pem)
        self.issuer = issuer
        self.audience = audience
        self.lifetime_seconds = lifetime_seconds

    def use(self, private_pem: bytes) -> None:
        public = public_jwk(private_pem)
        # One assignment: a token being signed meanwhile gets a matching key and key id.
        self._signing = (private_pem.decode(), public["kid"])
        self.public = public

    @property
    def kid(self) -> str:
        return self._signing[1]

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
        key, kid = self._signing
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})


# --- verification ---------------------------------------------------------


class TokenVerifier:
    """Checks bearer tokens against the gateway's published keys.

    A successfully verified token is remembered (bounded) by its exact text, so
    the signature is checked once per token rather than once per request; the
    expiry is still compared on every use. The cache belongs to one verifier, so to
    one issuer, audience and key set: a token is only ever cached after passing all
    of this verifier's checks. (Revocation is the gateway's business.)
    """

    def __init__(
        self,
        jwks: dict[str, Any],
        *,
        issuer: str,
        audience: str,
        cache_size: int = 20000,
        fetch: Callable[[], dict[str, Any]] | None = None,
        min_refresh_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``fetch`` returns the current key set (the gateway's JWKS); without it the
        set given here is the only one. A token naming a key id not in the set makes
        the verifier fetch again, at most once per ``min_refresh_seconds``."""
        self._keys = _construct_keys(jwks)
        self.issuer = issuer
        self.audience = audience
        self._cache: dict[str, tuple[Principal, int, str]] = {}
        self._cache_size = cache_size
        self._fetch = fetch
        self.min_refresh_seconds = min_refresh_seconds
        self._clock = clock
        self._last_fetch: float | None = None  # the last fetch for an unknown key id

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def set_keys(self, jwks: dict[str, Any]) -> bool:
        """Replace the key set (a set without a usable key is refused: the last good one stays).

        Tokens cached under a key that left the set are forgotten: they are checked again,
        and refused. Returns whether the set was taken."""
        keys = _construct_keys(jwks)
        if not keys:
            return False
        if keys.keys() == self._keys.keys() and all(
            keys[kid].to_dict() == self._keys[kid].to_dict() for kid in keys
        ):
            return True  # the same keys: nothing changed
        log.info("token signing keys changed", extra={"kids": sorted(keys)})
        self._keys = keys
        gone = [token for token, (_, _, kid) in self._cache.items() if kid not in keys]
        for token in gone:
            self._cache.pop(token, None)
        return True

    def refresh(self) -> bool:
        """Fetch the key set for a token naming an unknown key id, unless such a fetch was
        made less than ``min_refresh_seconds`` ago (a flood of made-up key ids costs the
        gateway one request per interval). On failure the last good set stays. Returns
        whether a set was taken."""
        if self._fetch is None:
            return False
        now = self._clock()
        if self._last_fetch is not None and now - self._last_fetch < self.min_refresh_seconds:
            return False
        self._last_fetch = now
        return self._take(self._fetch)

    async def refresh_periodically(self, interval: float) -> None:
        """Fetch the key set every ``interval`` seconds (the fetch in a thread, the new set
        taken on the event loop), so keys retired at the gateway leave here too."""
        fetch = self._fetch
        if fetch is None:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                jwks = await asyncio.to_thread(fetch)
            except Exception as exc:
                log.warning("could not fetch the token signing keys; keeping the last good set: %r", exc)
                continue
            self.set_keys(jwks)

    def _take(self, fetch: Callable[[], dict[str, Any]]) -> bool:
        try:
            jwks = fetch()
        except Exception as exc:  # the gateway away, a bad answer: keep what we have
            log.warning("could not fetch the token signing keys; keeping the last good set: %r", exc)
            return False
        return self.set_keys(jwks)

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            principal, expires, _ = cached
            if time.time() < expires:
                return principal
            del self._cache[token]
            raise Unauthorized("The token has expired.")
        principal, expires, kid = self._verify_uncached(token)
        if len(self._cache) >= self._cache_size:
            # Bounded: the oldest entry goes (dicts keep insertion order), not the whole cache,
            # so a full cache never turns into a burst of signature checks.
            del self._cache[next(iter(self._cache))]
        self._cache[token] = (principal, expires, kid)
        return principal

    def verify_authorization(self, header: str | None) -> Principal:
        if not header:
            raise Unauthorized("A bearer token is required.", headers={"WWW-Authenticate": "Bearer"})
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
        return self.verify(token.strip())

    def _verify_uncached(self, token: str) -> tuple[Principal, int, str]:
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
            kid = header.get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None and isinstance(kid, str) and self.refresh():
                key = self._keys.get(kid)  # a key published since the last fetch (a rotation)
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
        return Principal.from_claims(claims), claims["exp"], kid
