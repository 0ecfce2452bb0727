"""Putting jobs on the Celery broker, by task name: the service never imports the worker (DESIGN §1)."""

from __future__ import annotations

from typing import Any, Protocol

from celery import Celery

from lrsched import JOB_QUEUE, TRAIN_TASK, broker_transport_options


class QueueUnavailable(Exception):
    """The broker did not take the message."""


class JobQueue(Protocol):
    """Where the service puts a job attempt for a worker to run."""

    def enqueue(self, job_id: str, attempt: int, config: dict[str, Any]) -> None: ...


class CeleryJobQueue:
    """Sends ``lrsched.train(job_id, attempt, config)`` to the ``gpu`` queue.

    The broker options must match the workers' (the shortest visibility timeout on a broker wins),
    so they come from the same settings values.
    """

    def __init__(
        self, broker_url: str, *, visibility_timeout: float, unacked_restore_interval: float
    ) -> None:
        self.app = Celery("lrsched-api", broker=broker_url, set_as_current=False)
        self.app.conf.update(
            broker_transport_options=broker_transport_options(
                visibility_timeout, unacked_restore_interval
            ),
            broker_connection_retry_on_startup=True,
            task_publish_retry_policy={
                "max_retries": 2,
                "interval_start": 0.1,
                "interval_step": 0.2,
            },
            task_ignore_result=True,
        )

    def enqueue(self, job_id: str, attempt: int, config: dict[str, Any]) -> None:
        """Publish one attempt; its Celery task id is ``{job_id}.{attempt}``.

        Raises:
            QueueUnavailable: the broker did not take it (unreachable, or refusing writes).
        """
        try:
            self.app.send_task(
                TRAIN_TASK,
                args=[job_id, attempt, config],
                task_id=f"{job_id}.{attempt}",
                queue=JOB_QUEUE,
            )
        except Exception as error:  # kombu's OperationalError, or Redis refusing (OOM, read-only)
            raise QueueUnavailable(f"{type(error).__name__}: {error}") from error

    def close(self) -> None:
        self.app.close()
