"""``/readyz``: can this API serve jobs (Redis reachable and at least one worker alive)?

Liveness (``/healthz``) checks nothing; readiness checks the job store and the workers' heartbeats,
and never touches JAX or an accelerator.
"""

from __future__ import annotations

import anyio.to_thread
import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.deps import SettingsDep, StoreDep

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    """Why the API is or is not ready."""

    status: str
    redis: str
    workers: int


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Readiness: Redis reachable and a worker alive",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: see `redis` and `workers`."}},
)
async def readyz(store: StoreDep, settings: SettingsDep) -> JSONResponse:
    try:
        workers = await anyio.to_thread.run_sync(store.live_workers, settings.worker_alive_seconds)
        reachable = "ok"
    except redis.RedisError as error:
        workers, reachable = 0, f"unreachable: {error}"
    ready = reachable == "ok" and workers > 0
    body = Readiness(status="ready" if ready else "not ready", redis=reachable, workers=workers)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
