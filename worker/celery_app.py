"""The Celery app of a training worker: ``celery -A worker.celery_app worker``.

One worker process owns one accelerator (DESIGN §3): the solo pool with concurrency 1 (JAX never
forks), prefetch 1 with late acks (a job a worker dies in is still on the broker), and a visibility
timeout above the longest job, the same as the API's. Under solo, Celery's time limits, revoke and
``task_reject_on_worker_lost`` do nothing, so deadlines live in the training loop, cancellation
rides on the replies to reports, and a dead worker is noticed by the service's lease sweep.

At start the worker refuses any other pool or concurrency, picks its device (``LRSCHED_DEVICE``
when ``CUDA_VISIBLE_DEVICES`` is unset; the latter always wins; with neither and several GPUs, the
first, with a warning: :mod:`worker.device`) and logs the device JAX uses.
Its visibility timeout must be the API's: the service checks it on the first heartbeat (a refusal
stops the start), on every claim and every heartbeat after (a refusal shuts the worker down, and
a refused claim's message goes back on the queue), so a worker that could not reach the API at
start still never runs a job with a mismatched broker.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
from typing import Any

import httpx
import jax
from celery import Celery, signals
from kombu.entity import Queue

from lrsched import JOB_QUEUE, TRAIN_TASK, WorkerHeartbeat, broker_transport_options
from worker.background import repeat
from worker.device import choose_device, nvidia_gpus
from worker.reporter import ReporterError, ReportRefused, ServiceReporter
from worker.settings import WorkerSettings, get_worker_settings

log = logging.getLogger("lrsched.worker")


def make_app(settings: WorkerSettings) -> Celery:
    """The worker's Celery app, configured from ``settings``."""
    app = Celery("lrsched-worker", broker=settings.redis_url, include=["worker.tasks"])
    app.conf.update(
        worker_pool="solo",
        worker_concurrency=1,
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        task_ignore_result=True,
        task_queues=(Queue(JOB_QUEUE),),  # type: ignore[no-untyped-call]
        task_default_queue=JOB_QUEUE,
        task_create_missing_queues=False,
        task_routes={TRAIN_TASK: {"queue": JOB_QUEUE}},
        broker_transport_options=broker_transport_options(
            settings.visibility_timeout, settings.unacked_restore_interval
        ),
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # A stop signal gives the running job this long to finish before the cold stop.
        worker_soft_shutdown_timeout=settings.soft_shutdown_seconds,
        worker_send_task_events=False,
    )
    return app


settings = get_worker_settings()
app = make_app(settings)


class WorkerState:
    """What this worker process is: its node name, its device, the job it runs."""

    name = f"worker-{os.getpid()}"
    device = "unknown"
    job_id: str | None = None


state = WorkerState()


@functools.cache
def reporter() -> ServiceReporter:
    """The process's reporter (one connection pool to the service)."""
    token = settings.worker_token.get_secret_value() if settings.worker_token else ""
    client = httpx.Client(base_url=settings.service_url, timeout=settings.http_timeout_seconds)
    return ServiceReporter(
        client,
        token,
        retry_seconds=settings.report_retry_seconds,
        result_retry_seconds=settings.result_retry_seconds,
    )


def heartbeat(*, stopping: bool = False) -> WorkerHeartbeat:
    return WorkerHeartbeat(
        worker=state.name,
        device=state.device,
        pid=os.getpid(),
        job_id=state.job_id,
        visibility_timeout=settings.visibility_timeout,
        stopping=stopping,
    )


@signals.worker_init.connect  # type: ignore[untyped-decorator]
def _check_and_pick_device(sender: Any, **_: Any) -> None:
    pool = sender.pool_cls if isinstance(sender.pool_cls, str) else sender.pool_cls.__module__
    if "solo" not in str(pool) or sender.concurrency != 1:
        raise SystemExit(
            f"lrsched workers run one job at a time in the solo pool (got pool {pool}, "
            f"concurrency {sender.concurrency}): start it as `celery -A worker.celery_app worker` "
            "without -P/-c, one worker per accelerator"
        )
    if settings.worker_token is None:
        raise SystemExit("set LRSCHED_WORKER_TOKEN: the worker reports to the service with it")
    choice = choose_device(os.environ, settings.device, nvidia_gpus())
    if choice.warning:
        log.warning("%s", choice.warning)
    if choice.cuda_visible_devices is not None:  # before JAX starts its backends
        os.environ["CUDA_VISIBLE_DEVICES"] = choice.cuda_visible_devices
    state.name = str(sender.hostname)
    try:  # the API and the worker must agree on the visibility timeout: ask before consuming
        reporter().heartbeat(heartbeat(), retry_seconds=3.0)
    except ReportRefused as error:
        raise SystemExit(f"the service refuses this worker: {error}") from None
    except ReporterError as error:
        log.warning("service not reachable yet (%s); heartbeats will keep trying", error)


@signals.worker_process_init.connect  # type: ignore[untyped-decorator]
def _log_device(**_: Any) -> None:
    # Under the solo pool this runs once, in the only process: JAX starts here, never forked.
    device = jax.devices()[0]
    state.device = f"{device.platform}:{device.id}"
    log.warning(
        "lrsched worker trains on %s (%s; backend %s, %d device(s) visible, CUDA_VISIBLE_DEVICES=%s)",
        state.device,
        getattr(device, "device_kind", "?"),
        jax.default_backend(),
        jax.device_count(),
        os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
    )


@signals.worker_ready.connect  # type: ignore[untyped-decorator]
def _start_heartbeats(**_: Any) -> None:
    threading.Thread(
        target=repeat,
        args=(_beat, settings.heartbeat_seconds, "heartbeat"),
        kwargs={"at_once": True},
        name="heartbeat",
        daemon=True,
    ).start()


def _beat() -> None:
    try:
        reporter().heartbeat(heartbeat())
    except ReportRefused as error:  # the service refuses this worker: it must not run jobs
        stop_worker(f"the service refuses this worker: {error}")
    except ReporterError as error:
        log.warning("heartbeat not delivered: %s", error)


_stopping = threading.Event()


def stop_worker(reason: str) -> None:
    """Shut this worker down (Celery's warm shutdown: a running job may finish), saying why."""
    if _stopping.is_set():
        return
    _stopping.set()
    log.critical("lrsched worker shutting down: %s", reason)
    os.kill(os.getpid(), signal.SIGTERM)


@signals.worker_shutdown.connect  # type: ignore[untyped-decorator]
def _say_goodbye(**_: Any) -> None:
    try:
        reporter().heartbeat(heartbeat(stopping=True))
    except ReporterError as error:
        log.warning("could not tell the service this worker stops: %s", error)
