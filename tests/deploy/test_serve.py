"""The entrypoint's parts: each name the image may be given is accepted, and the one-shot
parts run for real — ``keys`` then ``migrate`` on empty databases, then ``seed`` with the
registry running — as the Compose file and the Kubernetes Jobs run them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

import asyncpg
import pytest

from services.common.serve import APPS, ONE_SHOT, PARTS, parse_args
from services.common.settings import REPO_ROOT
from tests.conftest import RUN_ID
from tools.platform import Platform, drop_databases, free_port

DATABASES = {
    part: f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_{RUN_ID}_deploy_{part}"
    for part in ("registry", "enforcement", "statistics", "gateway")
}


class TestParts:
    def test_every_part_is_accepted(self):
        assert set(PARTS) == {"gateway", "registry", "enforcement", "statistics", *ONE_SHOT}
        for part in PARTS:
            assert parse_args([part]).part == part

    def test_each_http_part_has_a_worker(self):
        for part in APPS:
            assert parse_args([part, "--worker", "--host", "0.0.0.0"]).worker

    @pytest.mark.parametrize(
        "argv", [["migrate", "--worker"], ["gateway", "--demo"], ["nonsense"], ["keys", "--worker"]]
    )
    def test_a_wrong_combination_is_refused(self, argv, capsys):
        with pytest.raises(SystemExit) as exit_:
            parse_args(argv)
        assert exit_.value.code == 2

    def test_seed_takes_demo(self):
        assert parse_args(["seed", "--demo"]).demo


def run_part(args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "services.common.serve", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        k: v for line in done.stdout.splitlines() if line.startswith("{") for k, v in json.loads(line).items()
    }


async def fetch(url: str, query: str, *args):
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def deployed_env(tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys")
    env = {
        **{f"{part.upper()}_DATABASE_URL": url for part, url in DATABASES.items()},
        "GATEWAY_PRIVATE_KEY_PATH": str(keys / "signing-key.pem"),
        "GATEWAY_SIGNING_KEY_DIR": str(keys / "signing"),
        "JWKS_PATH": str(keys / "jwks.json"),
    }
    asyncio.run(drop_databases(DATABASES))
    yield env, keys
    asyncio.run(drop_databases(DATABASES))


def test_keys_migrate_and_seed_on_empty_databases(deployed_env):
    env, keys = deployed_env
    made = run_part(["keys"], env)
    jwks = json.loads((keys / "jwks.json").read_text())
    assert [key["kid"] for key in jwks["keys"]] == [made["kid"]]
    (pem,) = (keys / "signing").glob("*.pem")
    assert not os.stat(pem).st_mode & 0o077  # the private key: its owner's only
    # The key tool's own commands pass through.
    listed = subprocess.run(
        [sys.executable, "-m", "services.common.serve", "keys", "list"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert made["kid"] in listed.stdout

    migrated = run_part(["migrate"], env)["migrate"]
    assert sorted(migrated["created"]) == sorted(urlsplit(u).path.lstrip("/") for u in DATABASES.values())
    for url in DATABASES.values():
        versions = asyncio.run(fetch(url, "SELECT version_num FROM alembic_version"))
        assert len(versions) == 1

    port = free_port()
    platform = Platform(
        env={**env, "PLATFORM_ENV": "test"},
        gateway_port=free_port(),
        service_ports={"registry": port},
        workers=False,
    )
    platform.start_services()
    try:
        platform.wait_ready([platform.service_url("registry")])
        seeded = run_part(["seed"], {**env, "GATEWAY_REGISTRY_URL": platform.service_url("registry")})
    finally:
        platform.stop()
    assert seeded["registry_seed"]["bureaus"] == 17  # the national regulator and 16 pilot units
    # Reference data only: no demo data unasked.
    assert set(seeded["registry_seed"]) == {"divisions", "bureaus", "demo_admin_officers"}
    assert "admin" in seeded["gateway_seed"]["demo_admins"]
    accounts = asyncio.run(
        fetch(DATABASES["gateway"], "SELECT username, kind FROM account ORDER BY username")
    )
    names = {row["username"] for row in accounts}
    assert {"svc-registry", "svc-enforcement", "svc-statistics", "admin"} <= names
