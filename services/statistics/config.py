from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class StatisticsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATISTICS_", extra="ignore")

    port: int = 8003
    # Oversight: a deadline this many calendar days away (or nearer) raises a "near" alert.
    oversight_near_days: int = 3
    # A worker holds a cron tick this long; past it, a tick it did not finish is run again.
    oversight_lease_seconds: int = 900
    # At most this many missed daily ticks are caught up after the workers were down.
    oversight_catch_up_ticks: int = 31


def get_settings() -> StatisticsSettings:
    return StatisticsSettings()
