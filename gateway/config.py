from __future__ import annotations

from pathlib import Path

from pydantic import PositiveFloat, PositiveInt
from pydantic_settings import SettingsConfigDict

from services.common.settings import VAR_DIR, ServiceSettings

SERVICES = ("registry", "enforcement", "statistics")
# The registry's bulk sync route, the one path whose uploads may be large.
IMPORTS_PATH = "/api/v1/registry/imports"


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    port: int = 8000
    db_pool_size: int = 10  # logins and account administration only
    # Signing keys: every *.pem here is published; GATEWAY_SIGNING_KID (else the key
    # `python -m gateway.keys activate` chose, else the only or newest one) signs. The directory
    # is re-read every signing_key_reload_seconds, so a rotation needs no restart.
    signing_key_dir: Path = VAR_DIR / "keys" / "signing"
    signing_kid: str = ""
    signing_key_reload_seconds: float = 5.0
    # The one-key fallback when the directory holds no key (taken over by `gateway.keys`).
    private_key_path: Path = VAR_DIR / "keys" / "signing-key.pem"
    token_lifetime_seconds: int = 900
    # How often the gateway re-reads which accounts are disabled (their tokens stop at once here).
    revocation_refresh_seconds: float = 5.0
    registry_url: str = "http://127.0.0.1:8001"
    enforcement_url: str = "http://127.0.0.1:8002"
    statistics_url: str = "http://127.0.0.1:8003"
    upstream_connect_timeout: float = 2.0
    upstream_read_timeout: float = 30.0
    upstream_pool_timeout: float = 2.0
    upstream_max_connections: int = 200
    # The registry's bulk sync streams files far above MAX_BODY_BYTES through the proxy; only
    # that route (POST, exact path) is allowed this much. Keep it at or below the registry's own.
    import_max_body_bytes: int = 2 * 1024**3
    # Login throttling at the token endpoint (see gateway/throttle.py), counted in Redis.
    login_failure_window_seconds: PositiveInt = 900  # failures are forgotten after this long without one
    login_slowdown_after: PositiveInt = 5  # an account's failures before each next attempt must wait
    login_slowdown_seconds: PositiveInt = 1  # the first wait; doubles with every further failure
    login_max_failures: PositiveInt = 10  # an account's failures that lock it
    login_address_max_failures: PositiveInt = 50  # failures from one address, any accounts, that lock it
    login_lockout_seconds: PositiveInt = 900
    login_throttle_key_prefix: str = "login-throttle:"
    # Requests per client through the proxy in a fixed window (see gateway/edge.py), counted in
    # Redis so every replica shares them: a client is its token's subject, a caller without one
    # its address. Generous by default (100/s sustained): a guard against floods, not a quota.
    rate_limit_requests: PositiveInt = 6000
    rate_limit_window_seconds: PositiveInt = 60
    rate_limit_key_prefix: str = "rate-limit:"
    # Read timeouts at the edge (gateway/edge.py). The request line and headers must be in
    # within this long of the connection's (or the request's) first byte: 408, then closed.
    header_timeout_seconds: PositiveFloat = 10.0
    # The body may keep the gateway waiting this long, plus one second per
    # ``body_min_rate_bytes`` received (so a large upload at a sane pace is never cut): 408.
    body_timeout_seconds: PositiveFloat = 30.0
    body_min_rate_bytes: PositiveInt = 1024
    # An idle keep-alive connection is closed after this long.
    keep_alive_timeout_seconds: PositiveFloat = 5.0
    # Request line and header limits, checked as the bytes arrive: 414, 431.
    max_url_bytes: PositiveInt = 8 * 1024
    max_header_bytes: PositiveInt = 32 * 1024

    def upstreams(self) -> dict[str, str]:
        return {name: getattr(self, f"{name}_url").rstrip("/") for name in SERVICES}

    def secret_fields(self) -> dict[str, str]:
        return {}


def get_settings() -> GatewaySettings:
    return GatewaySettings()
