"""Seed the gateway's accounts: one client account per service, and a demo
administrator login for the national regulator and each provincial pilot unit.

    DEMO_ADMIN_PASSWORD=... python -m gateway.seed

The registry must be running (the officers and bureaus are read from it over
HTTP, as any administrator would). Idempotent: existing accounts are kept,
except that a service account's secret follows the service's configuration.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import httpx

from gateway import passwords
from gateway.accounts import find_by_username
from gateway.app import AUDIT
from gateway.config import SERVICES, GatewaySettings, get_settings
from gateway.models import Account, AccountKind
from services.common.auth import Principal, PrincipalKind, Role, TokenSigner
from services.common.client import pooled_client
from services.common.db import make_engine, make_sessionmaker
from services.common.settings import Environment, part_settings

NATIONAL_BUREAU_ID = 1
NATIONAL_PATH = "1."
DEMO_ADMIN_NAME = "演示管理员"
SYSTEM_CODES = {"entry_exit": "ee", "quality_supervision": "qs"}


def demo_username(bureau: dict[str, Any]) -> str:
    if bureau["id"] == NATIONAL_BUREAU_ID:
        return "admin"
    return f"admin-{bureau['division_code']}-{SYSTEM_CODES[bureau['system']]}"


async def _seed_service_accounts(session) -> list[str]:
    changed = []
    for settings in (part_settings(name) for name in SERVICES):
        account = await find_by_username(session, settings.client_id)
        if account is None:
            account = Account(
                username=settings.client_id,
                kind=AccountKind.SERVICE,
                secret_hash=await passwords.hash_secret(settings.client_secret),
                display_name=settings.client_id,
                bureau_id=NATIONAL_BUREAU_ID,
                bureau_path=NATIONAL_PATH,
                roles=[Role.SERVICE.value],
            )
            session.add(account)
            changed.append(settings.client_id)
        elif not await passwords.verify_secret(account.secret_hash, settings.client_secret):
            account.secret_hash = await passwords.hash_secret(settings.client_secret)
            account.version += 1
            changed.append(settings.client_id)
    return changed


async def _registry_admin_officers(settings: GatewaySettings) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(bureau, demo administrator officer) for the national regulator and every pilot unit."""
    signer = TokenSigner(
        settings.private_key_path.read_bytes(),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        lifetime_seconds=120,
    )
    seeder = Principal(
        account_id="gateway-seed",
        kind=PrincipalKind.SERVICE,
        bureau_id=NATIONAL_BUREAU_ID,
        bureau_path=NATIONAL_PATH,
        roles=frozenset({Role.SERVICE, Role.ADMIN}),
    )
    headers = {"authorization": f"Bearer {signer.issue(seeder)}"}
    client = pooled_client(settings.registry_url, timeout=httpx.Timeout(10.0))
    try:
        national = await client.get(f"/api/v1/registry/bureaus/{NATIONAL_BUREAU_ID}", headers=headers)
        national.raise_for_status()
        units = await client.get(
            "/api/v1/registry/bureaus", params={"pilot": "provincial", "limit": 100}, headers=headers
        )
        units.raise_for_status()
        pairs = []
        for bureau in [national.json(), *units.json()["items"]]:
            officers = await client.get(
                "/api/v1/registry/officers",
                headers=headers,
                params={"bureau_id": bureau["id"], "name": DEMO_ADMIN_NAME},
            )
            officers.raise_for_status()
            items = officers.json()["items"]
            if items:
                pairs.append((bureau, items[0]))
        return pairs
    finally:
        await client.aclose()


async def _reset_demo_password(
    session, settings: GatewaySettings, account: Account, demo_password: str
) -> bool:
    """In development the printed demo password is the one that works, even when the demo
    administrators were made by an earlier checkout (or before ``var/`` was removed).
    Elsewhere an existing account's password is never touched by the seed."""
    if settings.environment != Environment.DEVELOPMENT:
        return False
    if await passwords.verify_secret(account.secret_hash, demo_password):
        return False
    account.secret_hash = await passwords.hash_secret(demo_password)
    account.version += 1  # tokens issued under the old password stop working
    session.add(account)
    await AUDIT.record(session, None, "account.demo_password_reset", "account", account.id, {})
    return True


async def seed(settings: GatewaySettings, demo_password: str) -> dict[str, Any]:
    engine = make_engine(settings.database_url, pool_size=2, max_overflow=0)
    maker = make_sessionmaker(engine)
    try:
        pairs = await _registry_admin_officers(settings)
        async with maker() as session:
            services = await _seed_service_accounts(session)
            created: list[str] = []
            reset: list[str] = []
            for bureau, officer in pairs:
                username = demo_username(bureau)
                existing = await find_by_username(session, username)
                if existing:
                    if await _reset_demo_password(session, settings, existing, demo_password):
                        reset.append(username)
                    continue
                account = Account(
                    username=username,
                    kind=AccountKind.OFFICER,
                    secret_hash=await passwords.hash_secret(demo_password),
                    display_name=f"{bureau['name']} {DEMO_ADMIN_NAME}",
                    officer_id=officer["id"],
                    bureau_id=bureau["id"],
                    bureau_path=bureau["path"],
                    body=officer["body"],
                    roles=[Role.ADMIN.value],
                )
                session.add(account)
                await session.flush()
                await AUDIT.record(
                    session, None, "account.seeded", "account", account.id, {"username": username}
                )
                created.append(username)
            await session.commit()
        return {
            "service_accounts_set": services,
            "demo_admins_created": created,
            "demo_passwords_reset": reset,
            "demo_admins": [demo_username(b) for b, _ in pairs],
        }
    finally:
        await engine.dispose()


def main() -> None:
    password = os.environ.get("DEMO_ADMIN_PASSWORD", "")
    if len(password) < 12:
        sys.exit("Set DEMO_ADMIN_PASSWORD (12 characters or more) for the demo administrators.")
    print(json.dumps({"gateway_seed": asyncio.run(seed(get_settings(), password))}, ensure_ascii=False))


if __name__ == "__main__":
    main()
