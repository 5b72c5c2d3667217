"""The gateway's signing key and the public key set the services verify with.

    python -m gateway.keys    # creates development keys if absent

In production the key is provisioned (a secret mount); the gateway refuses to
invent one there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gateway.config import GatewaySettings, get_settings
from services.common.auth import generate_private_key_pem, public_jwk
from services.common.settings import Environment


def ensure_keys(settings: GatewaySettings) -> bool:
    """Create the signing key and the JWKS beside it when missing; True if created."""
    key_path, jwks_path = settings.private_key_path, settings.jwks_path
    created = False
    if not key_path.exists():
        if settings.environment == Environment.PRODUCTION:
            raise SystemExit(f"The signing key {key_path} is missing; provision it before starting.")
        key_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(generate_private_key_pem())
        created = True
    write_jwks(key_path, jwks_path)
    return created


def write_jwks(key_path: Path, jwks_path: Path) -> None:
    jwks = {"keys": [public_jwk(key_path.read_bytes())]}
    jwks_path.parent.mkdir(parents=True, exist_ok=True)
    jwks_path.write_text(json.dumps(jwks, indent=2))


def main() -> None:
    settings = get_settings()
    created = ensure_keys(settings)
    state = "created" if created else "present"
    print(
        json.dumps(
            {"signing_key": str(settings.private_key_path), "state": state, "jwks": str(settings.jwks_path)}
        )
    )


if __name__ == "__main__":
    main()
