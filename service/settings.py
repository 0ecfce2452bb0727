"""Settings of the API process, read from the environment (prefix ``LRSCHED_``) at the edge only."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Everything the API process can be configured with."""

    model_config = SettingsConfigDict(env_prefix="LRSCHED_", frozen=True)

    #: Largest request body accepted, in bytes (413 above it).
    max_body_bytes: int = 16 * 1024 * 1024
    #: Redis URL of the job store and Celery broker.
    redis_url: str = "redis://127.0.0.1:6379/0"


@lru_cache(maxsize=1)
def get_settings() -> ServiceSettings:
    """The process-wide settings; called only by entry points."""
    return ServiceSettings()
