from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class EnforcementSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENFORCEMENT_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/cert_enforcement"
    port: int = 8002
    client_id: str = "svc-enforcement"


def get_settings() -> EnforcementSettings:
    return EnforcementSettings()
