"""Alembic plumbing shared by every service's migration tree.

Each tree's ``env.py`` calls :func:`run_migrations` with its own metadata and
settings. The database URL comes from the service's settings unless the
caller (the test run, the dev runner) sets ``sqlalchemy.url`` on the config.
"""

from __future__ import annotations

import asyncio

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.settings import REPO_ROOT

ALEMBIC_INI = REPO_ROOT / "alembic.ini"
MIGRATED_PARTS = ("registry", "enforcement", "statistics", "gateway")


def alembic_config(part: str, database_url: str | None = None) -> Config:
    """The Alembic config of one part (a service or the gateway), optionally on another database."""
    config = Config(str(ALEMBIC_INI), ini_section=part)
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def upgrade(part: str, database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(part, database_url), revision)


def downgrade(part: str, database_url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(part, database_url), revision)


def run_migrations(metadata: MetaData, default_url: str) -> None:
    config = context.config
    url = config.attributes.get("database_url") or default_url

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    async def run_async() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())
