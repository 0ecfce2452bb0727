"""The training task: a thin edge over ``lrsched.train`` (STYLE §3.2, rules 7 and 12).

The task ``lrsched.train(job_id, attempt, config)`` re-validates the config, claims the attempt from the
service, trains, and reports progress, each epoch's metrics and the result over HTTP. The service
decides everything else: a claim it refuses (a stale or duplicate delivery, a cancelled job) is
acknowledged without running; a reply that says ``cancel`` stops training at the next callback.
A claim refused because this *worker* is misconfigured (its visibility timeout differs from the
API's) puts the message back on the queue for another worker, and this one shuts down.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from celery import Task
from celery.exceptions import Reject
from pydantic import ValidationError

from lrsched import (
    TRAIN_TASK,
    DataError,
    EpochMetrics,
    FinalStatus,
    ReportReply,
    ScheduleRangeError,
    TrainConfig,
    TrainingError,
    TrainStatus,
    check_schedule,
    train,
)
from worker.background import repeat
from worker.celery_app import app, reporter, settings, state, stop_worker
from worker.reporter import (
    ReporterError,
    ReportRefused,
    ServiceReporter,
    ServiceUnreachable,
    WorkerMisconfigured,
)

log = logging.getLogger("lrsched.worker")


class Keepalive:
    """Posts the attempt's progress every ``every`` seconds from a thread, renewing its lease.

    It also holds the reasons to stop: a reply that carried ``cancel``, or a refusal (a newer
    attempt owns the job). The training callbacks ask :attr:`should_stop`.
    """

    def __init__(self, reporter: ServiceReporter, job_id: str, attempt: int, every: float) -> None:
        self.reporter, self.job_id, self.attempt, self.every = reporter, job_id, attempt, every
        self.step: int = 0
        self.steps: int | None = None
        self.cancelled = False
        self.refused: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"keepalive-{job_id}", daemon=True)

    @property
    def should_stop(self) -> bool:
        return self.cancelled or self.refused is not None

    def update(self, step: int, steps: int | None) -> None:
        self.step, self.steps = step, steps

    def note(self, reply: ReportReply) -> None:
        self.cancelled = self.cancelled or reply.cancel

    def _run(self) -> None:
        repeat(self._report, self.every, f"job {self.job_id}: progress report", self._done)

    def _report(self) -> None:
        try:
            self.note(self.reporter.progress(self.job_id, self.attempt, self.step, self.steps))
        except ReportRefused as error:
            self.refused = str(error)
        except ReporterError as error:
            log.warning("job %s: progress not reported: %s", self.job_id, error)

    def __enter__(self) -> Keepalive:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()


@dataclass(frozen=True)
class DataOptions:
    """Where ``lrsched.train`` finds datasets (``train``'s keyword arguments of the same names)."""

    data_dir: Path | None = None
    cache_dir: Path | None = None
    download: bool = True


def execute(
    service: ServiceReporter,
    job_id: str,
    attempt: int,
    payload: dict[str, Any],
    *,
    worker: str,
    visibility_timeout: float,
    progress_seconds: float = 2.0,
    data: DataOptions = DataOptions(),
    max_seconds: float | None = None,
) -> str:
    """Run one delivery of one attempt of a job.

    Args:
        service: the reporter (the service's internal routes).
        job_id, attempt, payload: the Celery message: the job, its attempt and its config.
        worker: this worker's node name.
        visibility_timeout: this worker's broker visibility timeout (the claim carries it).
        progress_seconds: how often progress is posted (and the lease renewed).
        data: where the datasets are.
        max_seconds: the longest any run may take here; a config without a deadline gets it.

    Returns:
        How the delivery ended: ``succeeded``, ``failed``, ``cancelled`` (as the service recorded
        it), ``refused`` (the service would not let it run, or took the job away from it), or
        ``unreported`` (the result could not be delivered: the service reruns the job once its
        lease expires).

    Raises:
        ServiceUnreachable: the service could not be reached for the whole retry budget, before
            the result (then Celery retries the task).
        WorkerMisconfigured: the service refuses this worker (nothing ran).
    """
    invalid: str | None = None
    try:
        config = TrainConfig.model_validate(payload)
        check_schedule(config)
        limit = max_seconds
        if limit is not None and (config.max_seconds is None or config.max_seconds > limit):
            # No run may outlive the broker's visibility timeout (DESIGN §3).
            config = config.model_copy(update={"max_seconds": limit})
    except ValidationError as error:
        invalid = f"the job's configuration is invalid: {error}"
    except ScheduleRangeError as error:
        invalid = str(error)
    try:
        claim = service.claim(job_id, attempt, worker, uuid.uuid4().hex, visibility_timeout)
    except WorkerMisconfigured:
        raise
    except ReportRefused as error:
        log.info("job %s attempt %d not run: %s", job_id, attempt, error)
        return "refused"
    if invalid is not None:
        return _finish(service, job_id, attempt, "failed", invalid)
    log.info("job %s: attempt %d claimed by %s", job_id, attempt, worker)
    every = min(progress_seconds, claim.lease_seconds / 3)
    try:
        with Keepalive(service, job_id, attempt, every) as keepalive:

            def on_epoch(metrics: EpochMetrics) -> bool:
                step, steps = keepalive.step, keepalive.steps
                keepalive.note(service.epoch(job_id, attempt, metrics, step, steps))
                return keepalive.should_stop

            def on_progress(steps_done: int, steps_total: int) -> bool:
                keepalive.update(steps_done, steps_total)
                return keepalive.should_stop

            try:
                result = train(
                    config,
                    data_dir=data.data_dir,
                    cache_dir=data.cache_dir,
                    download=data.download,
                    on_epoch=on_epoch,
                    on_progress=on_progress,
                    progress_interval=progress_seconds,
                )
            except (ReportRefused, ServiceUnreachable):
                raise
            except Exception as error:
                log.exception("job %s: training failed", job_id)
                step, steps = keepalive.step, keepalive.steps
                return _finish(service, job_id, attempt, "failed", _reason(error), step, steps)
    except ReportRefused as error:
        log.info("job %s attempt %d stopped: %s", job_id, attempt, error)
        return "refused"
    if keepalive.refused is not None:
        log.info("job %s attempt %d stopped: %s", job_id, attempt, keepalive.refused)
        return "refused"
    stopped = result.status is TrainStatus.STOPPED and keepalive.cancelled
    status: FinalStatus = "cancelled" if stopped else "succeeded"
    return _finish(service, job_id, attempt, status, None, result.steps_done, result.steps_total)


def _finish(
    service: ServiceReporter,
    job_id: str,
    attempt: int,
    status: FinalStatus,
    error: str | None,
    step: int | None = None,
    steps: int | None = None,
) -> str:
    """Report the result (retried for the reporter's longer result budget) and end the delivery.

    Nothing escapes: a Celery retry of the task would only be refused at claim (a new nonce), so
    a result that cannot be delivered is logged, and the lease sweep decides what comes next.
    """
    try:
        reply = service.finish(job_id, attempt, status, error, step, steps)
    except ReportRefused as error_:
        log.info("job %s attempt %d: result %s not taken: %s", job_id, attempt, status, error_)
        return "refused"
    except ReporterError as error_:
        log.error(
            "job %s attempt %d: result %s could not be reported (%s); the service runs the job "
            "again once its lease expires",
            job_id,
            attempt,
            status,
            error_,
        )
        return "unreported"
    return reply.status.value


def _reason(error: BaseException) -> str:
    """The job's ``error``: the library's own sentence for the failures it explains.

    However long (an XLA out-of-memory dump, a long validation error), it is sent shortened to
    its head and tail: ``ResultReport`` cuts it to ``MAX_ERROR_CHARS``.
    """
    text = str(error).strip()
    if isinstance(error, TrainingError | DataError | ScheduleRangeError) and text:
        return text
    return f"training failed: {type(error).__name__}: {text}" if text else type(error).__name__


@app.task(  # type: ignore[untyped-decorator]
    name=TRAIN_TASK,
    bind=True,
    acks_late=True,
    autoretry_for=(ServiceUnreachable,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=12,
)
def train_job(self: Task, job_id: str, attempt: int, config: dict[str, Any]) -> str:
    """Celery's entry: one attempt of one job (the message is the job id, attempt and config)."""
    state.job_id = job_id
    try:
        return execute(
            reporter(),
            job_id,
            attempt,
            config,
            worker=str(self.request.hostname),
            visibility_timeout=settings.visibility_timeout,
            progress_seconds=settings.progress_seconds,
            data=DataOptions(settings.data_dir, settings.cache_dir, settings.download),
            max_seconds=settings.job_max_seconds,
        )
    except WorkerMisconfigured as error:
        # Not this job's fault: hand its message back (late ack: it was never acknowledged) for a
        # worker the service accepts, and stop consuming.
        stop_worker(f"the service refuses this worker: {error}")
        raise Reject(str(error), requeue=True) from None
    finally:
        state.job_id = None
