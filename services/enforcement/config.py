from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class EnforcementSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENFORCEMENT_", extra="ignore")

    port: int = 8002


def get_settings() -> EnforcementSettings:
    return EnforcementSettings()
