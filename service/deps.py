"""What the job routes depend on (``Annotated`` aliases), and the job machinery's lifespan.

``install_job_services(app)`` gives an app its Redis client, job store and queue for its lifetime,
the background sweep (:mod:`service.sweep`: re-enqueues jobs whose worker was lost and drains the
outbox; the service owns recovery, DESIGN §3), and the 503 answers for a job store that cannot be
reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import redis
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.backoff import NoBackoff
from redis.retry import Retry

from service.queue import CeleryJobQueue, JobQueue
from service.settings import ServiceSettings
from service.store import JobStore, Keys
from service.sweep import Sweeper

log = logging.getLogger("lrsched.service")


def get_service_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


def get_store(request: Request) -> JobStore:
    store: JobStore = request.app.state.job_store
    return store


def get_queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.job_queue
    return queue


SettingsDep = Annotated[ServiceSettings, Depends(get_service_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]


def get_owner(settings: SettingsDep) -> str:
    """The tenant of the caller: the one local tenant until API keys arrive."""
    return settings.default_owner


OwnerDep = Annotated[str, Depends(get_owner)]

_bearer = HTTPBearer(auto_error=False, description="The worker token (LRSCHED_WORKER_TOKEN).")


def require_worker(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: SettingsDep,
) -> None:
    """Let only workers through: ``Authorization: Bearer <worker token>`` (DESIGN §2.4)."""
    if settings.worker_token is None:
        raise HTTPException(
            503,
            "this service has no worker token, so no worker can report; set "
            "LRSCHED_WORKER_TOKEN to the same secret in the API and the workers",
        )
    if credentials is None:
        raise HTTPException(
            401,
            "internal routes are for workers: send Authorization: Bearer <LRSCHED_WORKER_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = settings.worker_token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(403, "this credential may not call internal routes; only workers may")


WorkerDep = Depends(require_worker)


def redis_client(settings: ServiceSettings) -> redis.Redis:
    """A client that fails fast, so a job endpoint answers 503 instead of hanging."""
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


@contextlib.asynccontextmanager
async def _job_services(app: FastAPI) -> AsyncIterator[None]:
    settings: ServiceSettings = app.state.settings
    client = redis_client(settings)
    store = JobStore(
        client,
        Keys(settings.key_prefix),
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        idempotency_ttl=settings.idempotency_ttl_seconds,
        finished_ttl=settings.finished_job_ttl_seconds,
    )
    queue = CeleryJobQueue(
        settings.redis_url,
        visibility_timeout=settings.visibility_timeout,
        unacked_restore_interval=settings.unacked_restore_interval,
    )
    app.state.job_store = store
    app.state.job_queue = queue
    sweep = Sweeper(store, queue, grace=settings.lease_seconds)
    sweeper = asyncio.create_task(sweep.run(settings.sweep_seconds))
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        queue.close()
        client.close()


def _store_unavailable(request: Request, error: Exception) -> JSONResponse:
    """503 for any Redis error: unreachable, or refusing (out of memory, read-only in a failover)."""
    settings: ServiceSettings = request.app.state.settings
    where = f"the job store (Redis at {_redacted(settings.redis_url)})"
    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        problem = f"{where} cannot be reached, so job endpoints are unavailable until it is back"
    else:
        log.warning("job store error on %s %s: %r", request.method, request.url.path, error)
        problem = (
            f"{where} refused the request ({_first_line(error)}), so job endpoints are "
            "unavailable until it recovers"
        )
    return JSONResponse(
        status_code=503,
        content={"detail": f"{problem}; schedule evaluation still works"},
        headers={"Retry-After": "5"},
    )


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


def install_job_services(app: FastAPI) -> None:
    """Give ``app`` the job store, queue and lease sweep for its lifetime, and their 503s."""
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with previous(app) as state, _job_services(app):
            yield state

    app.router.lifespan_context = lifespan
    app.add_exception_handler(redis.RedisError, _store_unavailable)
