from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class StatisticsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATISTICS_", extra="ignore")

    port: int = 8003


def get_settings() -> StatisticsSettings:
    return StatisticsSettings()
