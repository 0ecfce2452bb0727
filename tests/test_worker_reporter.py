"""The worker's reporter at its seam: an ``httpx.MockTransport`` plays the service.

Transport errors and 5xx are retried with growing pauses until the budget runs out; a 4xx never is;
a 409 means "stop this delivery".
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from lrsched.jobs import MAX_ERROR_CHARS, EpochReport, ReportReply, ResultReport
from lrsched.metrics import EpochMetrics
from worker.reporter import (
    ReportRefused,
    ReportRejected,
    ServiceReporter,
    ServiceUnreachable,
    WorkerMisconfigured,
)
from worker.settings import WorkerSettings

REPLY = {"status": "running", "cancel": False, "lease_seconds": 30.0}


class FakeTime:
    """``sleep`` advances ``clock``: retries run instantly and their pauses are recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def reporter(
    answers: list[httpx.Response | Exception], seen: list[httpx.Request], time: FakeTime
) -> ServiceReporter:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = httpx.Client(base_url="http://service", transport=httpx.MockTransport(handle))
    return ServiceReporter(
        client, "s3cret", retry_seconds=10, first_delay=0.5, max_delay=2,
        sleep=time.sleep, clock=time.clock,
    )  # fmt: skip


def progress(service: ServiceReporter) -> ReportReply:
    return service.progress("job-1", 1, 5, 10)


def test_a_report_carries_the_worker_token_and_its_body() -> None:
    seen: list[httpx.Request] = []
    service = reporter([httpx.Response(200, json=REPLY)], seen, FakeTime())
    metrics = EpochMetrics(
        epoch=0, train_loss=1.0, val_loss=1.1, val_accuracy=0.5, lr=0.01, seconds=2.0
    )
    assert service.epoch("job-1", 2, metrics) == ReportReply.model_validate(REPLY)
    (request,) = seen
    assert request.url.path == "/internal/jobs/job-1/epochs"
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert EpochReport.model_validate_json(request.content) == EpochReport(
        attempt=2, metrics=metrics
    )


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.Response(503, json={"detail": "restarting"}),
        httpx.Response(500, text="oops"),
    ],
    ids=["connect", "timeout", "503", "500"],
)
def test_transport_errors_and_5xx_are_retried_with_backoff(
    failure: httpx.Response | Exception,
) -> None:
    seen: list[httpx.Request] = []
    time = FakeTime()
    service = reporter([failure, failure, failure, httpx.Response(200, json=REPLY)], seen, time)
    assert progress(service).status == "running"
    assert len(seen) == 4
    # Pauses double from 0.5 s (with up to 25 % jitter below) and stop at max_delay = 2 s.
    for pause, nominal in zip(time.pauses, [0.5, 1.0, 2.0], strict=True):
        assert 0.75 * nominal <= pause <= nominal


def test_retries_stop_when_the_budget_is_spent() -> None:
    seen: list[httpx.Request] = []
    time = FakeTime()
    service = reporter([httpx.ConnectError("refused")], seen, time)
    with pytest.raises(ServiceUnreachable, match="refused"):
        progress(service)
    assert time.now <= 10 and len(seen) >= 5
    assert max(time.pauses) <= 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(409, ReportRefused), (401, ReportRejected), (403, ReportRejected), (422, ReportRejected)],
)
def test_a_4xx_is_never_retried(status: int, error: type[Exception]) -> None:
    seen: list[httpx.Request] = []
    time = FakeTime()
    service = reporter([httpx.Response(status, json={"detail": "no"})], seen, time)
    with pytest.raises(error, match="no"):
        progress(service)
    assert len(seen) == 1 and time.pauses == []


def test_worker_settings_check_the_visibility_timeout() -> None:
    check: Callable[[], WorkerSettings] = lambda: WorkerSettings(  # noqa: E731
        job_max_seconds=1000, visibility_timeout=1200
    )
    with pytest.raises(ValueError, match=r"at least 1\.25 x job_max_seconds"):
        check()


def test_an_over_long_error_is_sent_shortened_with_its_head_and_tail() -> None:
    seen: list[httpx.Request] = []
    service = reporter([httpx.Response(200, json={**REPLY, "status": "failed"})], seen, FakeTime())
    error = "RESOURCE_EXHAUSTED: Out of memory while trying to allocate" + "x" * 50_000 + "END"
    service.finish("job-1", 1, "failed", error)
    (request,) = seen
    sent = ResultReport.model_validate_json(request.content).error or ""
    assert len(sent) <= MAX_ERROR_CHARS and len(request.content) < 2 * MAX_ERROR_CHARS
    assert sent.startswith("RESOURCE_EXHAUSTED: Out of memory") and sent.endswith("xEND")
    assert "characters cut" in sent


def test_a_409_that_refuses_the_worker_itself_is_told_apart() -> None:
    refusal = httpx.Response(
        409, json={"detail": "visibility_timeout differs"},
        headers={"Lrsched-Refusal": "worker-misconfigured"},
    )  # fmt: skip
    service = reporter([refusal], [], FakeTime())
    with pytest.raises(WorkerMisconfigured, match="visibility_timeout differs"):
        service.claim("job-1", 1, "w1", "nonce", 150)
    plain = reporter([httpx.Response(409, json={"detail": "stale"})], [], FakeTime())
    with pytest.raises(ReportRefused) as refused:
        plain.claim("job-1", 1, "w1", "nonce", 150)
    assert not isinstance(refused.value, WorkerMisconfigured)
