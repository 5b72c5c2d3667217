from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    port: int = 8001
    # The hot read paths live here: a pool as large as the expected concurrency keeps
    # waiters from queueing (and starving) for a connection.
    db_pool_size: int = 30
    # GB/T 2260 revision the bureau network is drawn on (any year the gb2260 package carries).
    division_revision: int = 2008


def get_settings() -> RegistrySettings:
    return RegistrySettings()
