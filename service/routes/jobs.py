"""``/jobs``: submit a training job, read it, list them, cancel one (DESIGN §2.3)."""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Header, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from lrsched import Job, JobPage, JobStatus, ScheduleRangeError, TrainConfig, check_schedule
from service.deps import OwnerDep, QueueDep, SettingsDep, StoreDep
from service.errors import ERROR_RESPONSES, Problem
from service.json_route import OrjsonRoute
from service.queue import QueueUnavailable
from service.store import IdempotencyMismatch, IdempotencyPending, JobFinished, JobNotFound

router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=OrjsonRoute)

log = logging.getLogger("lrsched.service")


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such job."},
    422: ERROR_RESPONSES[422],
}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "model": Problem,
        "description": "The job store (Redis) cannot be reached, or refuses writes.",
    }
}


def _json(
    model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """The model as JSON, serialized once: FastAPI would first validate it again against the
    route's response model, and the store built it validated already."""
    return Response(model.model_dump_json(), status_code, headers, media_type="application/json")


def _unprocessable(loc: list[str | int], msg: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": msg, "type": kind}])


@router.post(
    "",
    status_code=202,
    response_model=Job,
    operation_id="submit_job",
    summary="Submit a training job",
    responses={
        202: {
            "description": "Accepted: queued for a worker; Location is its URL.",
            "headers": {
                "Location": {"description": "The job's URL.", "schema": {"type": "string"}},
                "Retry-After": {
                    "description": "Seconds until a poll is useful.",
                    "schema": {"type": "integer"},
                },
            },
        },
        409: {
            "model": Problem,
            "description": "This Idempotency-Key's first request is in flight.",
        },
        **ERROR_RESPONSES,
        **_UNAVAILABLE,
    },
)
def submit_job(
    config: TrainConfig,
    store: StoreDep,
    queue: QueueDep,
    owner: OwnerDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Resending a submit with the same key returns the same job.",
        ),
    ] = None,
) -> Response:
    """Validate the whole config (the schedule over every step the run will use), then queue it."""
    if config.max_seconds is None:  # every job has a deadline: the broker's timeout outlasts it
        config = config.model_copy(update={"max_seconds": settings.job_max_seconds})
    elif config.max_seconds > settings.job_max_seconds:
        raise _unprocessable(
            ["body", "max_seconds"],
            f"max_seconds may be at most {settings.job_max_seconds:g} on this service "
            "(LRSCHED_JOB_MAX_SECONDS); ask for less, or split the run",
            "less_than_equal",
        )
    try:
        check_schedule(config)
    except ScheduleRangeError as error:
        raise _unprocessable(["body", "schedule"], str(error), "schedule_range") from None
    try:
        job, created = store.create(owner, config, idempotency_key=idempotency_key)
    except IdempotencyPending as error:
        raise HTTPException(409, str(error), headers={"Retry-After": "1"}) from None
    except IdempotencyMismatch as error:
        raise _unprocessable(
            ["header", "Idempotency-Key"], str(error), "idempotency_mismatch"
        ) from None
    if created:
        # The job is in the store's outbox: if this enqueue fails, or this process dies first,
        # the sweep enqueues it; enqueuing it twice is harmless (the claim refuses a duplicate).
        try:
            queue.enqueue(job.id, job.attempt, config.model_dump(mode="json"))
        except QueueUnavailable as error:
            log.warning("job %s: not enqueued yet (%s); the sweep will retry", job.id, error)
        else:
            with contextlib.suppress(redis.RedisError):
                store.enqueued(job.id, job.attempt)
    return _json(job, 202, {"Location": f"/jobs/{job.id}", "Retry-After": "2"})


@router.get(
    "",
    response_model=JobPage,
    operation_id="list_jobs",
    summary="List jobs, newest first",
    responses={422: ERROR_RESPONSES[422], **_UNAVAILABLE},
)
def list_jobs(
    store: StoreDep,
    owner: OwnerDep,
    status: Annotated[
        list[JobStatus] | None, Query(description="Only jobs in these states (repeatable).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Jobs per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=100, description="A next_cursor from the previous page.")
    ] = None,
) -> Response:
    """Each item is the job without its metrics (``GET /jobs/{id}`` has them), so a page stays
    small however long its jobs ran. Finished jobs are kept for the service's retention period
    (30 days by default), then deleted."""
    try:
        page = store.page(owner, statuses=status or (), limit=limit, cursor=cursor)
    except ValueError as error:
        raise _unprocessable(["query", "cursor"], str(error), "value_error") from None
    return _json(page)


@router.get(
    "/{job_id}",
    response_model=Job,
    operation_id="get_job",
    summary="Read a job: status, progress, metrics",
    responses={**_NOT_FOUND, **_UNAVAILABLE},
)
def get_job(job_id: str, store: StoreDep, owner: OwnerDep) -> Response:
    try:
        return _json(store.get(owner, job_id))
    except JobNotFound as error:
        raise HTTPException(404, str(error)) from None


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    operation_id="cancel_job",
    summary="Cancel a queued or running job",
    responses={
        200: {"description": "The job was queued and is now cancelled."},
        202: {
            "model": Job,
            "description": "The job is running; its worker stops at its next report.",
        },
        **_NOT_FOUND,
        409: {"model": Problem, "description": "The job has already finished."},
        **_UNAVAILABLE,
    },
)
def cancel_job(job_id: str, store: StoreDep, owner: OwnerDep) -> Response:
    try:
        job = store.cancel(owner, job_id)
    except JobNotFound as error:
        raise HTTPException(404, str(error)) from None
    except JobFinished as error:
        raise HTTPException(409, str(error)) from None
    return _json(job, 200 if job.status is JobStatus.CANCELLED else 202)
