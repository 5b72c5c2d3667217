from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class StatisticsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATISTICS_", extra="ignore")

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/cert_statistics"
    port: int = 8003
    client_id: str = "svc-statistics"


def get_settings() -> StatisticsSettings:
    return StatisticsSettings()
