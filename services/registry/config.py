from __future__ import annotations

from pydantic import Field
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
    # Bulk sync (批量同步): the one route whose body may exceed MAX_BODY_BYTES, the rows
    # written per transaction (one audit entry and one event each), and the longest row.
    import_max_body_bytes: int = 2 * 1024**3
    import_batch_rows: int = Field(default=5000, ge=1, le=100_000)
    import_max_row_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A dossier (档案) waits this long for the enforcement chain, then answers without it.
    dossier_enforcement_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # The published inspection results (一公开) need no token: requests per client address
    # per fixed window (counted in Redis; the key prefix keeps platforms sharing one apart).
    public_rate_limit: int = Field(default=120, ge=1)
    public_rate_window_seconds: int = Field(default=60, ge=1, le=86_400)
    public_rate_key_prefix: str = "registry:public-rate:"
    # A result is published within this many working days of its inspection.
    public_due_working_days: int = Field(default=20, ge=1, le=60)


def get_settings() -> RegistrySettings:
    return RegistrySettings()
