"""The gateway's signing keys and the public key set the services verify with.

    python -m gateway.keys               # creates a development key if none (as `create`)
    python -m gateway.keys rotate        # a new key: published at once, not yet signing
    python -m gateway.keys activate KID  # sign with KID from now on
    python -m gateway.keys retire KID    # remove a key whose tokens have all expired
    python -m gateway.keys list

Every ``*.pem`` in ``GATEWAY_SIGNING_KEY_DIR`` is a private key; all of them are
published in ``/.well-known/jwks.json`` (and written to ``JWKS_PATH``). Tokens are
signed with ``GATEWAY_SIGNING_KID`` when set, else with the key ``activate`` chose
(kept in ``state.json`` in the directory), else with the only key, or the newest
file's. ``GATEWAY_PRIVATE_KEY_PATH`` is the one-key fallback when the directory
holds none. The running gateway re-reads the directory every
``GATEWAY_SIGNING_KEY_RELOAD_SECONDS`` (see :func:`watch`), so a rotation needs no
restart:

1. ``rotate``: the new key is published; services fetch it when they first see its
   key id (or on their periodic refresh).
2. ``activate NEW``, once every gateway replica has re-read the directory (refused
   within one reload interval of ``rotate`` unless ``--force``): new tokens carry
   the new key id; tokens of the old one stay valid, its key still being published.
3. ``retire OLD``, once every token it signed has expired (one token lifetime plus
   one reload interval after ``activate``); refused earlier unless ``--force``.

In production the keys are provisioned (a secret mount); the gateway refuses to
invent one there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.config import GatewaySettings, get_settings
from services.common.auth import generate_private_key_pem, public_jwk
from services.common.settings import Environment

log = logging.getLogger("gateway.keys")
STATE_FILE = "state.json"


class NoSigningKey(Exception):
    """The key directory cannot give a signing key (none, or the chosen one is missing)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    path: Path
    pem: bytes
    mtime: float
    public: dict[str, str]


@dataclass(frozen=True)
class KeyRing:
    """The keys on disk and the one that signs."""

    keys: dict[str, SigningKey]
    active: str
    state: dict[str, Any]

    @property
    def active_pem(self) -> bytes:
        return self.keys[self.active].pem

    def jwks(self) -> dict[str, Any]:
        ordered = sorted(self.keys.values(), key=lambda k: (k.kid != self.active, k.mtime, k.path.name))
        return {"keys": [k.public for k in ordered]}

    def jwks_bytes(self) -> bytes:
        return json.dumps(self.jwks(), indent=2).encode()

    @classmethod
    def load(cls, settings: GatewaySettings) -> KeyRing:
        directory = settings.signing_key_dir
        paths = sorted(directory.glob("*.pem")) if directory.is_dir() else []
        if not paths and settings.private_key_path.is_file():
            paths = [settings.private_key_path]  # the one-key fallback
        keys: dict[str, SigningKey] = {}
        for path in paths:
            pem = path.read_bytes()
            public = public_jwk(pem)
            keys[public["kid"]] = SigningKey(public["kid"], path, pem, path.stat().st_mtime, public)
        if not keys:
            raise NoSigningKey(f"No signing key in {directory}: run `python -m gateway.keys`.")
        state = read_state(directory)
        if settings.signing_kid:
            active = settings.signing_kid
            if active not in keys:
                raise NoSigningKey(f"GATEWAY_SIGNING_KID {active} is not a key in {directory}.")
        elif state.get("active") in keys:
            active = state["active"]
        else:
            active = max(keys.values(), key=lambda k: (k.mtime, k.path.name)).kid
        return cls(keys, active, state)

    def retirable_at(self, kid: str, settings: GatewaySettings) -> datetime | None:
        """When the last token ``kid`` may have signed has expired; None when unknown."""
        if kid == self.active:
            return None
        deactivated = self.state.get("deactivated", {}).get(kid)
        if deactivated is None:
            created_here = kid in self.state.get("created", {})
            ever_active = kid in self.state.get("activated", {})
            # A key `rotate` made that was never activated has signed nothing.
            return datetime.fromtimestamp(0, UTC) if created_here and not ever_active else None
        grace = settings.token_lifetime_seconds + settings.signing_key_reload_seconds
        return datetime.fromisoformat(deactivated) + timedelta(seconds=grace)


def _now() -> datetime:
    return datetime.now(UTC)


def read_state(directory: Path) -> dict[str, Any]:
    try:
        state = json.loads((directory / STATE_FILE).read_text())
    except FileNotFoundError:
        return {}
    return state if isinstance(state, dict) else {}


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_state(directory: Path, state: dict[str, Any]) -> None:
    _write_atomically(directory / STATE_FILE, json.dumps(state, indent=2, sort_keys=True).encode())


def write_jwks(ring: KeyRing, jwks_path: Path) -> bool:
    """Write the public key set for the services; True if it changed."""
    data = ring.jwks_bytes()
    try:
        if jwks_path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    _write_atomically(jwks_path, data)
    return True


def _new_key(directory: Path, name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or f"key-{_now():%Y%m%dT%H%M%S%fZ}.pem")
    # Written aside, then linked in whole (refused if the name exists): a gateway re-reading
    # the directory never sees half a key.
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(generate_private_key_pem())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def ensure_keys(settings: GatewaySettings) -> bool:
    """Create a signing key when the directory holds none (taking over the key at
    ``GATEWAY_PRIVATE_KEY_PATH`` if there is one), and write the JWKS; True if created."""
    directory, legacy = settings.signing_key_dir, settings.private_key_path
    created = False
    if not any(directory.glob("*.pem")):
        if legacy.is_file():
            directory.mkdir(parents=True, exist_ok=True)
            shutil.copy2(legacy, directory / legacy.name)
        elif settings.environment == Environment.PRODUCTION:
            raise SystemExit(f"No signing key in {directory}; provision one before starting.")
        else:
            # A configured key path inside the directory is where the first key goes.
            inside = legacy.parent.resolve() == directory.resolve()
            _new_key(directory, legacy.name if inside else None)
            created = True
    ring = KeyRing.load(settings)
    state = read_state(directory)
    if state.get("active") not in ring.keys:
        state["active"] = ring.active
        state.setdefault("activated", {})[ring.active] = _now().isoformat()
        write_state(directory, state)
    write_jwks(ring, settings.jwks_path)
    return created


def active_signing_pem(settings: GatewaySettings | None = None) -> bytes:
    """The private key tokens are signed with now (for tools and tests that sign tokens)."""
    return KeyRing.load(settings or get_settings()).active_pem


def rotate(settings: GatewaySettings) -> dict[str, Any]:
    ring = KeyRing.load(settings)
    directory = settings.signing_key_dir
    state = read_state(directory)
    state["active"] = ring.active  # pinned: the new key is the newest, not the signing one
    path = _new_key(directory)
    kid = public_jwk(path.read_bytes())["kid"]
    state.setdefault("created", {})[kid] = _now().isoformat()
    write_state(directory, state)
    write_jwks(KeyRing.load(settings), settings.jwks_path)
    return {"kid": kid, "file": str(path), "state": "published", "signing": ring.active}


def activate(settings: GatewaySettings, kid: str, force: bool = False) -> dict[str, Any]:
    ring = KeyRing.load(settings)
    if kid not in ring.keys:
        raise SystemExit(f"No key {kid} in {settings.signing_key_dir}.")
    directory = settings.signing_key_dir
    state = read_state(directory)
    created = state.get("created", {}).get(kid)
    if created and not force:
        # Every gateway replica must publish (and verify with) the key before one signs with it.
        published_at = datetime.fromisoformat(created) + timedelta(
            seconds=settings.signing_key_reload_seconds
        )
        if published_at > _now():
            raise SystemExit(
                f"{kid} was added less than GATEWAY_SIGNING_KEY_RELOAD_SECONDS ago; every gateway "
                f"publishes it by {published_at.isoformat()}: activate it after that (or with --force)."
            )
    previous = state.get("active") if state.get("active") in ring.keys else ring.active
    now = _now().isoformat()
    if previous != kid:
        state.setdefault("deactivated", {})[previous] = now
        state.setdefault("activated", {})[kid] = now
    state.get("deactivated", {}).pop(kid, None)
    state["active"] = kid
    write_state(directory, state)
    write_jwks(KeyRing.load(settings), settings.jwks_path)
    out = {"kid": kid, "state": "signing", "previous": previous}
    if settings.signing_kid and settings.signing_kid != kid:
        out["warning"] = f"GATEWAY_SIGNING_KID pins {settings.signing_kid}; it wins until unset"
    return out


def retire(settings: GatewaySettings, kid: str, force: bool = False) -> dict[str, Any]:
    ring = KeyRing.load(settings)
    if kid not in ring.keys:
        raise SystemExit(f"No key {kid} in {settings.signing_key_dir}.")
    if kid == ring.active:
        raise SystemExit(f"{kid} signs tokens now; activate another key first.")
    when = ring.retirable_at(kid, settings)
    if not force:
        if when is None:
            raise SystemExit(f"When {kid} last signed a token is not known; retire it with --force.")
        if when > _now():
            raise SystemExit(
                f"Tokens signed with {kid} may be valid until {when.isoformat()}; "
                "retire it after that, or with --force (those tokens stop verifying)."
            )
    ring.keys[kid].path.unlink()
    directory = settings.signing_key_dir
    state = read_state(directory)
    for record in ("created", "activated", "deactivated"):
        state.get(record, {}).pop(kid, None)
    write_state(directory, state)
    write_jwks(KeyRing.load(settings), settings.jwks_path)
    return {"kid": kid, "state": "retired", "forced": force and (when is None or when > _now())}


def listing(settings: GatewaySettings) -> list[dict[str, Any]]:
    ring = KeyRing.load(settings)
    rows = []
    for key in sorted(ring.keys.values(), key=lambda k: (k.mtime, k.path.name)):
        when = ring.retirable_at(key.kid, settings)
        rows.append(
            {
                "kid": key.kid,
                "file": str(key.path),
                "signing": key.kid == ring.active,
                "activated": ring.state.get("activated", {}).get(key.kid),
                "deactivated": ring.state.get("deactivated", {}).get(key.kid),
                "retirable_at": when.isoformat() if when else None,
            }
        )
    return rows


# --- the running gateway ----------------------------------------------------------


def _fingerprint(settings: GatewaySettings) -> tuple:
    directory = settings.signing_key_dir
    try:
        entries = [p for p in directory.iterdir() if p.suffix == ".pem" or p.name == STATE_FILE]
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in entries))
    except FileNotFoundError:
        return ()


async def watch(settings: GatewaySettings, apply: Callable[[KeyRing], None], interval: float) -> None:
    """Re-read the key directory every ``interval`` seconds and ``apply`` it when it changed
    (a key added or removed, another one activated); a directory that cannot be read, or
    gives no signing key, leaves the keys in use as they are."""
    seen = _fingerprint(settings)
    while True:
        await asyncio.sleep(interval)
        current = _fingerprint(settings)
        if current == seen:
            continue
        try:
            ring = KeyRing.load(settings)
        except Exception:
            log.exception("could not reload the signing keys; keeping those in use")
            continue
        seen = current
        apply(ring)
        try:
            write_jwks(ring, settings.jwks_path)
        except OSError as exc:  # a read-only mount: the key tool writes it
            log.warning("could not write %s: %r", settings.jwks_path, exc)
        log.info("signing keys reloaded", extra={"signing": ring.active, "kids": sorted(ring.keys)})


def _kid_as_operand(argv: list[str]) -> list[str]:
    """A kid is base64url and may begin with "-", which argparse would read as an option: the
    words after ``activate``/``retire`` other than its flags go after ``--``."""
    if not argv or argv[0] not in ("activate", "retire") or "--" in argv:
        return argv
    flags = [a for a in argv[1:] if a in ("--force", "-h", "--help")]
    return [argv[0], *flags, "--", *(a for a in argv[1:] if a not in flags)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.keys", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("create", help="create a key when there is none (the default)")
    commands.add_parser("rotate", help="add a new key: published, not yet signing")
    activating = commands.add_parser("activate", help="sign with this key from now on")
    activating.add_argument("kid")
    activating.add_argument("--force", action="store_true", help="even before every gateway publishes it")
    retiring = commands.add_parser("retire", help="remove a key whose tokens have expired")
    retiring.add_argument("kid")
    retiring.add_argument("--force", action="store_true", help="even if its tokens may still be valid")
    commands.add_parser("list", help="the keys, the signing one and when each may be retired")
    args = parser.parse_args(_kid_as_operand(sys.argv[1:] if argv is None else argv))
    settings = get_settings()
    if args.command in (None, "create"):
        created = ensure_keys(settings)
        ring = KeyRing.load(settings)
        out: Any = {
            "signing_key": str(ring.keys[ring.active].path),
            "kid": ring.active,
            "state": "created" if created else "present",
            "jwks": str(settings.jwks_path),
        }
    elif args.command == "rotate":
        out = rotate(settings)
    elif args.command == "activate":
        out = activate(settings, args.kid, args.force)
    elif args.command == "retire":
        out = retire(settings, args.kid, args.force)
    else:
        out = listing(settings)
    json.dump(out, sys.stdout, indent=None if args.command != "list" else 2)
    print()


if __name__ == "__main__":
    main()
