"""``/internal``: where workers claim jobs and report on them (DESIGN §2.4).

Only a worker's token opens these routes (a client's credential gets 403), and they are left out of
the public OpenAPI document. Every report is idempotent, and every reply says whether the job was
cancelled. A 409 tells the worker to stop this delivery: a newer attempt owns the job, or it has
finished. A 409 with ``Lrsched-Refusal: worker-misconfigured`` (on a claim or a heartbeat) refuses
the worker itself, whose visibility timeout differs from the API's: it hands the message back and
shuts down.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from lrsched import (
    REFUSAL_HEADER,
    WORKER_MISCONFIGURED,
    Claim,
    ClaimRequest,
    EpochReport,
    ProgressReport,
    ReportReply,
    ResultReport,
    WorkerHeartbeat,
)
from service.deps import SettingsDep, StoreDep, WorkerDep
from service.store import JobNotFound, ReportRefused

router = APIRouter(
    prefix="/internal", tags=["internal"], dependencies=[WorkerDep], include_in_schema=False
)


def _refused(error: ReportRefused | JobNotFound) -> HTTPException:
    return HTTPException(409 if isinstance(error, ReportRefused) else 404, str(error))


def _check_visibility_timeout(worker: str, visibility_timeout: float, expected: float) -> None:
    """Refuse a worker whose broker visibility timeout differs from the API's (DESIGN §3): with a
    shorter one anywhere, Redis hands a running job to a second worker."""
    if visibility_timeout != expected:
        raise HTTPException(
            409,
            f"worker {worker} has visibility_timeout {visibility_timeout:g} s but the API "
            f"has {expected:g} s; set LRSCHED_VISIBILITY_TIMEOUT to the same "
            "value in the API and every worker",
            headers={REFUSAL_HEADER: WORKER_MISCONFIGURED},
        )


@router.post("/jobs/{job_id}/claim")
def claim(job_id: str, body: ClaimRequest, store: StoreDep, settings: SettingsDep) -> Claim:
    """Start ``attempt``: the job moves to running and the worker holds a lease. A worker whose
    visibility timeout differs from the API's is refused before anything changes."""
    _check_visibility_timeout(body.worker, body.visibility_timeout, settings.visibility_timeout)
    try:
        return store.claim(job_id, body.attempt, body.worker, body.nonce)
    except (ReportRefused, JobNotFound) as error:
        raise _refused(error) from None


@router.post("/jobs/{job_id}/progress")
def progress(job_id: str, body: ProgressReport, store: StoreDep) -> ReportReply:
    try:
        return store.progress(job_id, body.attempt, body.step, body.steps)
    except (ReportRefused, JobNotFound) as error:
        raise _refused(error) from None


@router.post("/jobs/{job_id}/epochs")
def epoch(job_id: str, body: EpochReport, store: StoreDep) -> ReportReply:
    try:
        return store.record_epoch(job_id, body.attempt, body.metrics, body.step, body.steps)
    except (ReportRefused, JobNotFound) as error:
        raise _refused(error) from None


@router.post("/jobs/{job_id}/result")
def result(job_id: str, body: ResultReport, store: StoreDep) -> ReportReply:
    try:
        return store.finish(job_id, body.attempt, body.status, body.error, body.step, body.steps)
    except (ReportRefused, JobNotFound) as error:
        raise _refused(error) from None


@router.post("/workers/heartbeat", status_code=204)
def heartbeat(body: WorkerHeartbeat, store: StoreDep, settings: SettingsDep) -> None:
    """A worker is alive. One whose broker visibility timeout differs from the API's is refused:
    with a shorter one Redis would hand its running jobs to a second worker (DESIGN §3)."""
    _check_visibility_timeout(body.worker, body.visibility_timeout, settings.visibility_timeout)
    if body.stopping:
        store.worker_gone(body.worker)
        return
    store.worker_seen(
        body.worker, {"device": body.device, "pid": str(body.pid), "job_id": body.job_id or ""}
    )
