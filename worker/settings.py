"""Settings of a worker process, read from the environment (prefix ``LRSCHED_``) at the edge only.

The broker values (``redis_url``, ``visibility_timeout``, ``job_max_seconds``) must be the same as the
API's: they share one environment in ``lrsched dev`` and in ``docker-compose.yml``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
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


class WorkerSettings(BaseSettings):
    """Everything a worker process can be configured with."""

    model_config = SettingsConfigDict(env_prefix="LRSCHED_", frozen=True, extra="ignore")

    #: Redis URL of the Celery broker (the API's job store lives there too; the worker never writes it).
    redis_url: str = DEFAULT_REDIS_URL
    #: Where the worker reaches the service's internal routes.
    service_url: str = "http://127.0.0.1:8000"
    #: The worker's own credential for those routes (not a client's key).
    worker_token: SecretStr | None = None
    #: The same as the API's: the longest a job may run.
    job_max_seconds: float = Field(default=DEFAULT_JOB_MAX_SECONDS, gt=0)
    #: The same as the API's: Redis redelivers an unacknowledged message after this long.
    visibility_timeout: float = Field(default=DEFAULT_VISIBILITY_TIMEOUT, gt=0)
    #: How often (seconds) the broker re-checks for messages past their visibility timeout.
    unacked_restore_interval: float = Field(default=DEFAULT_UNACKED_RESTORE_INTERVAL, gt=0)
    #: Which GPU this worker owns when ``CUDA_VISIBLE_DEVICES`` is unset (it wins when set).
    device: str | None = None
    #: A directory holding the datasets' IDX files (never downloaded into); None: use the cache.
    data_dir: Path | None = None
    #: Where downloaded datasets are kept; None: the library's default (~/.cache/lrsched).
    cache_dir: Path | None = None
    #: Whether a missing dataset may be downloaded.
    download: bool = True
    #: How often (seconds) a running job's progress is posted; each post renews its lease.
    progress_seconds: float = Field(default=2.0, gt=0)
    #: How often (seconds) the worker tells the service it is alive.
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    #: How long one report is retried (transport errors and 5xx) before the worker gives up on it.
    report_retry_seconds: float = Field(default=300.0, gt=0)
    #: How long the final result of a run is retried: longer, since the whole run reruns if it
    #: never gets through (the worker takes no other job meanwhile).
    result_retry_seconds: float = Field(default=3600.0, gt=0)
    #: On a stop signal, how long the running job may go on before the worker stops cold (its
    #: lease then expires and it runs again as its next attempt); 0 stops at once.
    soft_shutdown_seconds: float = Field(default=30.0, ge=0)
    #: Timeout of one HTTP request to the service.
    http_timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _visibility_outlasts_jobs(self) -> Self:
        check_visibility_timeout(self.visibility_timeout, self.job_max_seconds)
        return self


@lru_cache(maxsize=1)
def get_worker_settings() -> WorkerSettings:
    """The process-wide settings; called only by the worker's entry point."""
    return WorkerSettings()
