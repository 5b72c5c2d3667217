"""Settings every service shares, read from the environment by pydantic-settings.

Each service subclasses :class:`ServiceSettings` with its own env prefix
(``REGISTRY_``, ``ENFORCEMENT_``…); values common to the whole platform
(``PLATFORM_ENV``, the Redis URL, the token issuer and audience) are read
without a prefix so one environment file serves every process.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
VAR_DIR = REPO_ROOT / "var"
PLACEHOLDER_SECRET = "change-me"  # noqa: S105 - the placeholder that refuses to start outside development


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def shared(name: str, default):
    """A field read from an unprefixed platform-wide variable (e.g. ``REDIS_URL``)."""
    return Field(default, validation_alias=AliasChoices(name, name.lower()))


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    environment: Environment = shared("PLATFORM_ENV", Environment.DEVELOPMENT)
    redis_url: str = shared("REDIS_URL", "redis://127.0.0.1:6379/0")
    # Prefix of every worker's arq queue (``arq:registry``…); several platforms sharing one
    # Redis (test runs) keep their jobs apart with their own.
    queue_prefix: str = shared("ARQ_QUEUE_PREFIX", "arq:")
    token_issuer: str = shared("TOKEN_ISSUER", "cert-platform-gateway")
    token_audience: str = shared("TOKEN_AUDIENCE", "cert-platform")
    jwks_path: Path = shared("JWKS_PATH", VAR_DIR / "keys" / "jwks.json")
    # The gateway's published key set; when set, services fetch it (else they read JWKS_PATH,
    # which is also the fallback while the gateway is away). Fetched again when a token names
    # an unknown key id (at most once per JWKS_MIN_REFRESH_SECONDS) and every
    # JWKS_REFRESH_SECONDS; the last good set is kept when neither answers.
    jwks_url: str = shared("JWKS_URL", "")
    jwks_min_refresh_seconds: float = shared("JWKS_MIN_REFRESH_SECONDS", 30.0)
    jwks_refresh_seconds: float = shared("JWKS_REFRESH_SECONDS", 300.0)
    jwks_fetch_timeout_seconds: float = shared("JWKS_FETCH_TIMEOUT_SECONDS", 2.0)
    # The audit chain's head is checkpointed in Redis under this prefix + the service's name
    # (a list, newest first, AUDIT_CHECKPOINT_HISTORY long), every AUDIT_CHECKPOINT_MINUTES by
    # the service's worker and after each successful verification.
    audit_checkpoint_key_prefix: str = shared("AUDIT_CHECKPOINT_KEY_PREFIX", "audit-checkpoint:")
    audit_checkpoint_minutes: int = shared("AUDIT_CHECKPOINT_MINUTES", 5)
    audit_checkpoint_history: int = shared("AUDIT_CHECKPOINT_HISTORY", 288)
    gateway_url: str = shared("GATEWAY_URL", "http://127.0.0.1:8000")
    log_level: str = shared("LOG_LEVEL", "INFO")
    # Bodies above this size are refused with 413 before they are read in full.
    max_body_bytes: int = shared("MAX_BODY_BYTES", 50 * 1024 * 1024)

    # Left empty, these follow the part's name (its env prefix): database cert_<part>,
    # client svc-<part>.
    database_url: str = ""
    # Connections beyond the pool would be opened and closed per request under load
    # (costly, and a long tail); requests wait for a pooled one instead.
    db_pool_size: int = 20
    db_max_overflow: int = 0
    # A request waits at most this long, first come first served, for a pooled connection;
    # then it is answered 503 /problems/service-unavailable with Retry-After.
    db_connection_wait_seconds: float = 5.0
    # A database that does not accept a connection within this long is unavailable (503).
    db_connect_timeout_seconds: float = 5.0
    # Idempotency-Key rows live in a pool of their own: a request holding a session's
    # connection must never wait on the pool it holds one of to record its answer.
    idempotency_pool_size: int = 5
    # How long an Idempotency-Key is remembered after first use (then it may be used again).
    idempotency_key_ttl_seconds: int = 24 * 3600
    host: str = "127.0.0.1"
    port: int = 8001
    # Client credentials this service uses to call the others through the gateway.
    client_id: str = ""
    client_secret: str = PLACEHOLDER_SECRET
    # arq: a short poll keeps a worker well above 200 jobs/s.
    worker_poll_delay: float = 0.05
    # A job running longer is cancelled. A worker killed mid-job (SIGKILL, out of memory) leaves
    # its job marked in progress this long plus 10 s; then another worker takes it again.
    worker_job_timeout_seconds: int = shared("WORKER_JOB_TIMEOUT_SECONDS", 300)
    # On SIGTERM (a rolling update, a scale-down) the worker takes no new job and gives the
    # running ones this long to finish; only those still running then are cancelled and run
    # again elsewhere. Keep the orchestrator's grace period (Kubernetes'
    # terminationGracePeriodSeconds, Compose's stop_grace_period) above it.
    worker_drain_seconds: int = 30

    @property
    def part(self) -> str:
        """The part these settings belong to, from the env prefix (``REGISTRY_`` → ``registry``)."""
        return str(self.model_config.get("env_prefix", "")).rstrip("_").lower()

    @model_validator(mode="after")
    def _defaults_from_the_part(self):
        if not self.database_url:
            self.database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_{self.part}"
        if not self.client_id:
            self.client_id = f"svc-{self.part}"
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self):
        if self.environment == Environment.PRODUCTION:
            for name, value in self.secret_fields().items():
                if not value or value == PLACEHOLDER_SECRET:
                    raise ValueError(
                        f"{name} is left at its placeholder; set it before starting in production"
                    )
        return self

    def secret_fields(self) -> dict[str, str]:
        return {"client_secret": self.client_secret}


def part_settings(part: str) -> ServiceSettings:
    """The shared settings of a part as its own process reads them (e.g. its client
    credentials), for the tools that seed or start it without importing its package."""
    prefixed = type(
        f"{part.capitalize()}PartSettings",
        (ServiceSettings,),
        {"model_config": SettingsConfigDict(env_prefix=f"{part.upper()}_", extra="ignore")},
    )
    return prefixed()
