"""Training jobs on the wire: their states, the job resource, and what workers and the service say.

The service and the worker share these types and names (DESIGN §1: the service never imports the
worker and the worker never imports the service); neither Celery nor Redis nor HTTP appears here.

A job moves through its states like this (the service is the only one that moves it)::

    queued --claim--> running --result--> succeeded | failed | cancelled
      |                  |--lease expired, attempts left--> queued (attempt + 1)
      |                  |--lease expired, cancel asked---> cancelled
      |                  '--lease expired, none left-----> failed
      '--cancel--> cancelled

A running job that a client cancels stays ``running`` (with ``cancel_requested_at`` set) until its
worker learns it from the reply to its next report and stops; then it ends ``cancelled``. If the
cancel came after the last report, so the run went on to the end, it still ends ``cancelled`` (with
all its metrics): a cancel that was answered 202 is never lost. A run that failed stays ``failed``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lrsched.config import TrainConfig
from lrsched.metrics import EpochMetrics

#: The Celery task name the service enqueues by (it never imports the worker's code).
TRAIN_TASK = "lrsched.train"
#: The broker queue that workers owning an accelerator consume.
JOB_QUEUE = "gpu"
#: The longest ``error`` a job records; a longer one is cut in the middle (see :func:`shorten`).
MAX_ERROR_CHARS = 10_000
#: How much longer than the longest job the broker's visibility timeout must be (DESIGN §3).
VISIBILITY_MARGIN = 1.25
#: The header of a 409 that refuses the *worker* (its settings differ from the API's), not just
#: one delivery: the worker puts the message back and shuts down.
REFUSAL_HEADER = "Lrsched-Refusal"
#: Its value.
WORKER_MISCONFIGURED = "worker-misconfigured"

# The broker values the API and every worker must share (their settings' defaults).
#: Redis URL of the job store and Celery broker.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: The longest a job may run, in seconds.
DEFAULT_JOB_MAX_SECONDS = 4 * 3600.0
#: Redis redelivers an unacknowledged message after this long (seconds).
DEFAULT_VISIBILITY_TIMEOUT = 5 * 3600.0
#: How often (seconds) the broker looks for messages past their visibility timeout.
DEFAULT_UNACKED_RESTORE_INTERVAL = 10.0


class JobStatus(StrEnum):
    """Where a job is in its life. The last three are final: a finished job never changes again."""

    #: Accepted and waiting for a worker (also between attempts, after a worker was lost).
    QUEUED = "queued"
    #: A worker claimed it and is training.
    RUNNING = "running"
    #: Every epoch ran; ``metrics`` holds one record per epoch.
    SUCCEEDED = "succeeded"
    #: Training stopped on an error; ``error`` says why and what to do.
    FAILED = "failed"
    #: A client cancelled it (before it started, or while it ran).
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether this state is final."""
        return self in _FINISHED


_FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

#: The states a worker may end a job in.
FinalStatus = Literal["succeeded", "failed", "cancelled"]


def shorten(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` if it has at most ``limit`` characters, else its head and tail around a note.

    An error's first lines say what failed (XLA's ``RESOURCE_EXHAUSTED: Out of memory ...``) and
    its last ones what raised (a traceback's final line), so the middle is what goes.
    """
    if len(text) <= limit:
        return text
    half = max(0, (limit - 60) // 2)  # 60: room for the note
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut} characters cut ...]\n{text[len(text) - half :]}"


def _shortened(value: object) -> object:
    return shorten(value) if isinstance(value, str) else value


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JobProgress(_Wire):
    """How far the current attempt got."""

    #: Epochs finished.
    epoch: int = Field(ge=0)
    #: Epochs the run will train.
    epochs: int = Field(ge=1)
    #: Batches (optimizer steps) finished over the whole run.
    step: int = Field(ge=0)
    #: Batches the whole run will train; null until the worker has loaded the data.
    steps: int | None = Field(default=None, ge=0)


class JobSummary(_Wire):
    """One job in ``GET /jobs``: the job resource without its metrics (``GET /jobs/{id}`` has them)."""

    id: str
    #: The tenant the job belongs to (every job is the local tenant's until API keys arrive).
    owner: str
    status: JobStatus
    #: The attempt that is queued or running, or that ended the job: 1 first, 2 after a lost worker.
    attempt: int = Field(ge=1)
    #: Attempts the service makes before it gives up on a job whose workers keep dying.
    max_attempts: int = Field(ge=1)
    created_at: datetime
    updated_at: datetime
    #: When the current attempt was claimed by a worker.
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: When a client asked to cancel (the job stays running until its worker stops).
    cancel_requested_at: datetime | None = None
    progress: JobProgress
    #: Why the job failed, as a sentence a person can act on.
    error: str | None = None
    #: The configuration it runs, with every default filled in.
    config: TrainConfig


class Job(JobSummary):
    """The job resource that ``GET /jobs/{id}`` answers."""

    #: One record per finished epoch of the current attempt, in epoch order.
    metrics: list[EpochMetrics]


class JobPage(_Wire):
    """One page of ``GET /jobs``, newest first."""

    items: list[JobSummary]
    #: Pass as ``cursor`` to get the next (older) page; null on the last page.
    next_cursor: str | None = None


_Attempt = Annotated[int, Field(ge=1, le=1_000)]
_Text = Annotated[str, Field(min_length=1, max_length=200)]


class ClaimRequest(_Wire):
    """A worker asks to run one delivery of a job: ``POST /internal/jobs/{id}/claim``."""

    attempt: _Attempt
    #: The worker's node name, for the record and the logs.
    worker: _Text
    #: Random per delivery, so a retried claim is recognised as the same one.
    nonce: _Text
    #: The worker's broker visibility timeout: the service refuses a claim whose value differs
    #: from its own (Redis would hand the running job to a second worker, DESIGN §3).
    visibility_timeout: float = Field(gt=0)


class Claim(_Wire):
    """The service's grant: the worker runs ``attempt`` and must report within the lease."""

    job_id: str
    attempt: int
    #: The lease lasts this long after each report; a worker silent longer is presumed dead.
    lease_seconds: float


class ProgressReport(_Wire):
    """``POST /internal/jobs/{id}/progress``: renews the lease."""

    attempt: _Attempt
    step: int = Field(ge=0)
    steps: int | None = Field(default=None, ge=0)


class EpochReport(_Wire):
    """``POST /internal/jobs/{id}/epochs``: one epoch's metrics, keyed by (job, attempt, epoch)."""

    attempt: _Attempt
    metrics: EpochMetrics
    #: Batches finished over the whole run, and in all (the same as in a progress report).
    step: int | None = Field(default=None, ge=0)
    steps: int | None = Field(default=None, ge=0)


class ResultReport(_Wire):
    """``POST /internal/jobs/{id}/result``: how the attempt ended."""

    attempt: _Attempt
    status: FinalStatus
    #: Why it failed. A longer one than :data:`MAX_ERROR_CHARS` is shortened, never refused: the
    #: worker shortens it before sending and the service again on receipt, so a long XLA or
    #: validation error cannot make the result itself fail (and the job be wrongly retried).
    error: Annotated[str | None, BeforeValidator(_shortened)] = None
    step: int | None = Field(default=None, ge=0)
    steps: int | None = Field(default=None, ge=0)


class ReportReply(_Wire):
    """The service's answer to every report: it carries cancellation (DESIGN §2.4)."""

    status: JobStatus
    #: True once a client asked to cancel: stop at the next chance and report ``cancelled``.
    cancel: bool
    lease_seconds: float


class WorkerHeartbeat(_Wire):
    """``POST /internal/workers/heartbeat``: a worker process is alive (``/readyz`` counts these)."""

    worker: _Text
    #: The device JAX trains on, e.g. ``cuda:0`` or ``cpu:0``.
    device: str = Field(max_length=200)
    pid: int
    #: The job it is running, if any.
    job_id: str | None = None
    #: The worker's broker visibility timeout: the service refuses a worker whose value differs.
    visibility_timeout: float = Field(gt=0)
    #: True in the last heartbeat of a worker that is shutting down: it no longer counts as alive.
    stopping: bool = False


def broker_transport_options(
    visibility_timeout: float, unacked_restore_interval: float
) -> dict[str, Any]:
    """Celery's ``broker_transport_options`` for the Redis broker, the same in the API and workers.

    On one broker the shortest visibility timeout wins, so both processes build them here from the
    same settings values (``shared/reference/service.md`` §1.1).
    """
    return {
        "visibility_timeout": visibility_timeout,
        "unacked_restore_interval": unacked_restore_interval,
    }


def check_visibility_timeout(visibility_timeout: float, job_max_seconds: float) -> None:
    """Refuse a broker visibility timeout that a job could outlive (DESIGN §3).

    Redis hands an unacknowledged message to a second worker once it is older than the timeout,
    so the timeout must exceed the longest job by a margin.

    Raises:
        ValueError: with the smallest timeout that would do.
    """
    needed = VISIBILITY_MARGIN * job_max_seconds
    if visibility_timeout < needed:
        raise ValueError(
            f"visibility_timeout ({visibility_timeout:g} s) must be at least "
            f"{VISIBILITY_MARGIN:g} x job_max_seconds ({job_max_seconds:g} s) = {needed:g} s, "
            "or Redis hands a running job to a second worker; raise LRSCHED_VISIBILITY_TIMEOUT "
            "or lower LRSCHED_JOB_MAX_SECONDS (the same values in the API and every worker)"
        )
