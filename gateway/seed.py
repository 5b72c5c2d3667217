"""Seed the gateway's accounts: one client account per service, a demo administrator
login for the national regulator and each provincial pilot unit, and, where the registry
holds them (development), logins for each pilot unit's demo enforcement officers:
``officer1-<division>-<ee|qs>``, ``officer2-…`` (enforcement), ``head-…`` (head of the
enforcement body) and ``legal-…`` (legal-affairs reviewer), with the same demo password.

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
from dataclasses import dataclass
from typing import Any

import httpx

from gateway import passwords
from gateway.accounts import find_by_username
from gateway.config import SERVICES, GatewaySettings, get_settings
from gateway.keys import active_signing_pem
from gateway.models import AUDIT, Account, AccountKind
from services.common.auth import Principal, PrincipalKind, Role, TokenSigner
from services.common.client import pooled_client
from services.common.db import make_engine, make_sessionmaker
from services.common.settings import Environment, part_settings

NATIONAL_BUREAU_ID = 1
NATIONAL_PATH = "1."
DEMO_ADMIN_NAME = "演示管理员"
SYSTEM_CODES = {"entry_exit": "ee", "quality_supervision": "qs"}
# The registry's demo officers of each pilot unit (services/registry/demo.py DEMO_OFFICERS),
# by name: (login prefix, officer name, roles).
DEMO_OFFICERS = (
    ("officer1", "演示执法员甲", (Role.ENFORCEMENT,)),
    ("officer2", "演示执法员乙", (Role.ENFORCEMENT,)),
    ("head", "演示执法负责人", (Role.HEAD,)),
    ("legal", "演示法制审核员", (Role.LEGAL,)),
)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    bureau: dict[str, Any]
    officer: dict[str, Any]
    roles: tuple[Role, ...]
    display_name: str


def demo_username(bureau: dict[str, Any], prefix: str = "admin") -> str:
    if bureau["id"] == NATIONAL_BUREAU_ID:
        return prefix
    return f"{prefix}-{bureau['division_code']}-{SYSTEM_CODES[bureau['system']]}"


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


async def _registry_demo_logins(settings: GatewaySettings) -> list[DemoLogin]:
    """The demo logins to have: the demo administrator of the national regulator and of every
    pilot unit, and each pilot unit's demo enforcement officers the registry holds."""
    signer = TokenSigner(
        active_signing_pem(settings),
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
        logins = []
        for bureau in [national.json(), *units.json()["items"]]:
            wanted = [("admin", DEMO_ADMIN_NAME, (Role.ADMIN,))]
            if bureau["id"] != NATIONAL_BUREAU_ID:
                wanted += DEMO_OFFICERS
            for prefix, name, roles in wanted:
                officers = await client.get(
                    "/api/v1/registry/officers",
                    headers=headers,
                    params={"bureau_id": bureau["id"], "name": name},
                )
                officers.raise_for_status()
                items = officers.json()["items"]
                if items:
                    logins.append(
                        DemoLogin(
                            demo_username(bureau, prefix), bureau, items[0], roles, f"{bureau['name']} {name}"
                        )
                    )
        return logins
    finally:
        await client.aclose()


class DemoHashes:
    """The demo password's hash, made once per seed and given to every demo login it creates
    or resets (they share the printed password, so one salt tells nothing more); checking an
    account's hash is remembered per hash. Hashing costs about 0.2 s: per login, four logins
    per pilot unit would add many seconds to every `make run`."""

    def __init__(self, password: str) -> None:
        self.password = password
        self._hash: str | None = None
        self._checked: dict[str, bool] = {}

    async def hash(self) -> str:
        if self._hash is None:
            self._hash = await passwords.hash_secret(self.password)
            self._checked[self._hash] = True
        return self._hash

    async def matches(self, stored: str | None) -> bool:
        if stored is None:
            return False
        if stored not in self._checked:
            self._checked[stored] = await passwords.verify_secret(stored, self.password)
        return self._checked[stored]


async def _reset_demo_password(
    session, settings: GatewaySettings, account: Account, hashes: DemoHashes
) -> bool:
    """In development the printed demo password is the one that works, even when the demo
    administrators were made by an earlier checkout (or before ``var/`` was removed).
    Elsewhere an existing account's password is never touched by the seed."""
    if settings.environment != Environment.DEVELOPMENT:
        return False
    if await hashes.matches(account.secret_hash):
        return False
    account.secret_hash = await hashes.hash()
    account.version += 1  # tokens issued under the old password stop working
    session.add(account)
    await AUDIT.record(session, None, "account.demo_password_reset", "account", account.id, {})
    return True


async def seed(settings: GatewaySettings, demo_password: str) -> dict[str, Any]:
    engine = make_engine(settings.database_url, pool_size=2, max_overflow=0)
    maker = make_sessionmaker(engine)
    try:
        logins = await _registry_demo_logins(settings)
        hashes = DemoHashes(demo_password)
        async with maker() as session:
            services = await _seed_service_accounts(session)
            created: list[str] = []
            reset: list[str] = []
            for login in logins:
                username = login.username
                existing = await find_by_username(session, username)
                if existing:
                    if await _reset_demo_password(session, settings, existing, hashes):
                        reset.append(username)
                    continue
                account = Account(
                    username=username,
                    kind=AccountKind.OFFICER,
                    secret_hash=await hashes.hash(),
                    display_name=login.display_name,
                    officer_id=login.officer["id"],
                    bureau_id=login.bureau["id"],
                    bureau_path=login.bureau["path"],
                    body=login.officer["body"],
                    roles=[role.value for role in login.roles],
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
            "demo_logins_created": created,
            "demo_passwords_reset": reset,
            "demo_admins": [x.username for x in logins if Role.ADMIN in x.roles],
            "demo_officer_logins": sum(Role.ADMIN not in x.roles for x in logins),
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
