"""The worker's side of DESIGN §2.4: an httpx client for the service's internal routes.

Transport errors and 5xx answers are retried with exponential backoff (a restarting API is only a
pause); a 4xx is never retried, because sending the same bad report again cannot help. Errors::

    ReporterError
     +-- ReportRefused       409: stop this delivery (a newer attempt owns the job, or it finished)
     |    +-- WorkerMisconfigured  409 refusing the worker itself (its settings differ): stop it
     +-- ReportRejected      another 4xx: bad input or a bad token
     +-- ServiceUnreachable  still failing when the retry budget ran out
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
from pydantic import BaseModel

from lrsched import (
    REFUSAL_HEADER,
    WORKER_MISCONFIGURED,
    Claim,
    ClaimRequest,
    EpochMetrics,
    EpochReport,
    FinalStatus,
    ProgressReport,
    ReportReply,
    ResultReport,
    WorkerHeartbeat,
)

log = logging.getLogger("lrsched.worker")

M = TypeVar("M", bound=BaseModel)


class ReporterError(Exception):
    """A report the service did not take."""


class ReportRefused(ReporterError):
    """409: this delivery must stop (the job is another attempt's, or finished)."""


class WorkerMisconfigured(ReportRefused):
    """409 for the worker itself: its settings differ from the API's, so it must not run jobs."""


class ReportRejected(ReporterError):
    """A 4xx other than 409: the report or the token is wrong; retrying cannot help."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code


class ServiceUnreachable(ReporterError):
    """Transport errors or 5xx answers until the retry budget ran out."""


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return str(detail)


class ServiceReporter:
    """Posts claims and reports to the service with the worker's token.

    Args:
        client: an ``httpx.Client`` whose ``base_url`` is the service (tests pass one with a
            ``MockTransport``, or a Starlette ``TestClient``).
        token: the worker token.
        retry_seconds: how long one report keeps being retried.
        result_retry_seconds: how long the final result keeps being retried (longer: a whole run
            is lost if it does not get through).
        first_delay: the first pause between tries; it doubles up to ``max_delay``.
        sleep, clock: injected for tests.
    """

    def __init__(
        self,
        client: httpx.Client,
        token: str,
        *,
        retry_seconds: float = 300.0,
        result_retry_seconds: float = 3600.0,
        first_delay: float = 0.2,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.retry_seconds = retry_seconds
        self.result_retry_seconds = result_retry_seconds
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.clock = clock

    def claim(
        self, job_id: str, attempt: int, worker: str, nonce: str, visibility_timeout: float
    ) -> Claim:
        body = ClaimRequest(
            attempt=attempt, worker=worker, nonce=nonce, visibility_timeout=visibility_timeout
        )
        return self._post(f"/internal/jobs/{job_id}/claim", body, Claim)

    def progress(self, job_id: str, attempt: int, step: int, steps: int | None) -> ReportReply:
        body = ProgressReport(attempt=attempt, step=step, steps=steps)
        return self._post(f"/internal/jobs/{job_id}/progress", body, ReportReply)

    def epoch(
        self,
        job_id: str,
        attempt: int,
        metrics: EpochMetrics,
        step: int | None = None,
        steps: int | None = None,
    ) -> ReportReply:
        body = EpochReport(attempt=attempt, metrics=metrics, step=step, steps=steps)
        return self._post(f"/internal/jobs/{job_id}/epochs", body, ReportReply)

    def finish(
        self,
        job_id: str,
        attempt: int,
        status: FinalStatus,
        error: str | None = None,
        step: int | None = None,
        steps: int | None = None,
    ) -> ReportReply:
        body = ResultReport(attempt=attempt, status=status, error=error, step=step, steps=steps)
        path = f"/internal/jobs/{job_id}/result"
        return self._post(path, body, ReportReply, self.result_retry_seconds)

    def heartbeat(self, beat: WorkerHeartbeat, *, retry_seconds: float = 0.0) -> None:
        self._send("/internal/workers/heartbeat", beat, retry_seconds)

    def _post(
        self, path: str, body: BaseModel, reply: type[M], retry_seconds: float | None = None
    ) -> M:
        retry = self.retry_seconds if retry_seconds is None else retry_seconds
        return reply.model_validate_json(self._send(path, body, retry).content)

    def _send(self, path: str, body: BaseModel, retry_seconds: float) -> httpx.Response:
        deadline = self.clock() + retry_seconds
        delay = self.first_delay
        content = body.model_dump_json()
        headers = {**self.headers, "Content-Type": "application/json"}
        while True:
            try:
                response = self.client.post(path, content=content, headers=headers)
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 400:
                    return response
                if response.status_code == 409:
                    if response.headers.get(REFUSAL_HEADER) == WORKER_MISCONFIGURED:
                        raise WorkerMisconfigured(_detail(response))
                    raise ReportRefused(_detail(response))
                if response.status_code < 500:
                    raise ReportRejected(response.status_code, _detail(response))
                problem = f"{response.status_code}: {_detail(response)}"
            if self.clock() + delay > deadline:
                raise ServiceUnreachable(f"POST {path} failed for {retry_seconds:g} s: {problem}")
            log.warning("POST %s failed (%s); retrying in %.1f s", path, problem, delay)
            self.sleep(delay * random.uniform(0.75, 1.0))
            delay = min(delay * 2, self.max_delay)
