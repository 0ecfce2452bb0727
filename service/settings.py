"""Settings of the API process, read from the environment (prefix ``LRSCHED_``) at the edge only."""

from __future__ import annotations

from functools import lru_cache
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lrsched import (
    DEFAULT_JOB_MAX_SECONDS,
    DEFAULT_REDIS_URL,
    DEFAULT_UNACKED_RESTORE_INTERVAL,
    DEFAULT_VISIBILITY_TIMEOUT,
    check_visibility_timeout,
)


class ServiceSettings(BaseSettings):
    """Everything the API process can be configured with."""

    model_config = SettingsConfigDict(env_prefix="LRSCHED_", frozen=True)

    #: Largest request body accepted, in bytes (413 above it).
    max_body_bytes: int = 16 * 1024 * 1024
    #: Largest ``POST /jobs`` body (a training config), in bytes (413 above it). Every job keeps
    #: its config, and a page of ``GET /jobs`` holds up to 200 of them.
    job_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    #: Redis URL of the job store and Celery broker.
    redis_url: str = DEFAULT_REDIS_URL
    #: Seconds to wait for Redis before a job endpoint answers 503.
    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    #: Prefix of every Redis key the job store writes.
    key_prefix: str = "lrsched"

    #: The credential workers present on the internal routes; unset, those routes answer 503.
    worker_token: SecretStr | None = None
    #: The longest a job may run (its ``max_seconds`` may not exceed this).
    job_max_seconds: float = Field(default=DEFAULT_JOB_MAX_SECONDS, gt=0)
    #: Redis redelivers an unacknowledged message after this long; the same value in every worker.
    visibility_timeout: float = Field(default=DEFAULT_VISIBILITY_TIMEOUT, gt=0)
    #: How often (seconds) the broker re-checks for messages past their visibility timeout.
    unacked_restore_interval: float = Field(default=DEFAULT_UNACKED_RESTORE_INTERVAL, gt=0)
    #: A running job whose worker has not reported for this long is presumed lost.
    lease_seconds: float = Field(default=60.0, gt=0)
    #: How often the API looks for expired leases (and re-enqueues their jobs).
    sweep_seconds: float = Field(default=5.0, gt=0)
    #: Attempts per job before the service gives up on one whose workers keep dying.
    max_attempts: int = Field(default=3, ge=1, le=100)
    #: A worker counts as alive for ``/readyz`` this long after its last heartbeat.
    worker_alive_seconds: float = Field(default=30.0, gt=0)
    #: How long an ``Idempotency-Key`` is remembered.
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=1)
    #: How long a finished job (its record and metrics) is kept before it is deleted.
    finished_job_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=1)
    #: The tenant every job belongs to until API keys arrive.
    default_owner: str = "local"

    @model_validator(mode="after")
    def _visibility_outlasts_jobs(self) -> Self:
        check_visibility_timeout(self.visibility_timeout, self.job_max_seconds)
        return self


@lru_cache(maxsize=1)
def get_settings() -> ServiceSettings:
    """The process-wide settings; called only by entry points."""
    return ServiceSettings()
