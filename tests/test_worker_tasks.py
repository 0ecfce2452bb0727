"""The training task's edges at their seam: an ``httpx.MockTransport`` plays the service.

No Celery worker and no training run here (the configs either are refused before training or are
never trained): what is tested is how the task talks to the service, and what it does when that
goes wrong. The real thing, end to end, is in ``test_jobs_e2e.py`` and ``test_worker_recovery.py``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from worker.background import repeat
from worker.device import choose_device
from worker.reporter import ServiceReporter
from worker.tasks import Keepalive, execute

REPLY = {"status": "running", "cancel": False, "lease_seconds": 30.0}
CLAIM = {"job_id": "job-1", "attempt": 1, "lease_seconds": 30.0}
#: Refused by the worker's own validation, so ``execute`` claims and reports without training.
INVALID = {"schedule": {"kind": "constant", "step_size": 0.01}, "surprise": 1}
Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """``sleep`` advances ``clock``: retries run instantly."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now


def service(handle: Handler, **options: Any) -> ServiceReporter:
    client = httpx.Client(base_url="http://service", transport=httpx.MockTransport(handle))
    return ServiceReporter(client, "s3cret", **options)


def timed_service(handle: Handler, time: FakeTime) -> ServiceReporter:
    """Reports retried for 10 s; the final result for 1000 s."""
    return service(
        handle, retry_seconds=10, result_retry_seconds=1000, first_delay=0.5, max_delay=5,
        sleep=time.sleep, clock=time.clock,
    )  # fmt: skip


def run(reporter: ServiceReporter) -> str:
    return execute(reporter, "job-1", 1, INVALID, worker="w1@test", visibility_timeout=150)


def test_the_final_result_is_retried_longer_than_other_reports() -> None:
    time = FakeTime()
    results: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/claim"):
            return httpx.Response(200, json=CLAIM)
        results.append(time.now)
        if time.now < 300:  # the service is restarting for five minutes
            return httpx.Response(503, json={"detail": "the job store cannot be reached"})
        return httpx.Response(200, json={**REPLY, "status": "failed"})

    assert run(timed_service(handle, time)) == "failed"
    assert results[-1] >= 300 and len(results) > 10  # well past the 10 s of other reports


@pytest.mark.parametrize(
    ("answer", "ended"),
    [
        (httpx.Response(409, json={"detail": "job job-1 is already cancelled"}), "refused"),
        (httpx.Response(503, json={"detail": "down"}), "unreported"),  # for the whole budget
        (httpx.Response(422, json={"detail": "bad"}), "unreported"),
    ],
    ids=["refused", "unreachable", "rejected"],
)
def test_a_result_that_is_not_taken_ends_the_task_cleanly(
    answer: httpx.Response, ended: str
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/claim"):
            return httpx.Response(200, json=CLAIM)
        return answer

    assert run(timed_service(handle, FakeTime())) == ended  # no exception for Celery to retry


def test_the_keepalive_survives_an_unexpected_error_and_keeps_renewing_the_lease(
    caplog: pytest.LogCaptureFixture,
) -> None:
    steps: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        steps.append(json.loads(request.content)["step"])
        if len(steps) == 1:
            raise RuntimeError("something nobody expected")
        return httpx.Response(200, json=REPLY)

    with (
        caplog.at_level(logging.ERROR, logger="lrsched.worker"),
        Keepalive(service(handle), "job-1", 1, every=0.01) as keepalive,
    ):
        keepalive.update(3, 10)
        deadline = time.monotonic() + 5
        while len(steps) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(steps) >= 3  # the posts went on after the error
    (record,) = [r for r in caplog.records if "progress report failed" in r.getMessage()]
    assert record.exc_info is not None and "nobody expected" in str(record.exc_info[1])


def test_repeat_logs_anything_with_its_traceback_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    done = threading.Event()

    def action() -> None:
        calls.append(1)
        if len(calls) >= 4:
            done.set()
        raise KeyError("a bug")

    with caplog.at_level(logging.ERROR, logger="lrsched.worker"):
        repeat(action, 0.001, "heartbeat", done, at_once=True)
    assert len(calls) == 4
    assert all(r.exc_info for r in caplog.records) and len(caplog.records) == 4


@pytest.mark.parametrize(
    ("environ", "device", "gpus", "chosen", "warns"),
    [
        ({}, None, 4, "0", True),  # several GPUs, none chosen: the first, and say how to choose
        ({}, None, 1, None, False),
        ({}, None, 0, None, False),
        ({}, "2", 4, "2", False),  # LRSCHED_DEVICE
        ({"CUDA_VISIBLE_DEVICES": "3"}, "2", 4, None, False),  # always wins
        ({"CUDA_VISIBLE_DEVICES": ""}, None, 4, None, False),  # set, even empty: the user chose
        ({"JAX_PLATFORMS": "cpu"}, None, 4, None, False),  # no GPU will be used
    ],
    ids=["several", "one", "none", "setting", "cuda-env", "cuda-env-empty", "cpu"],
)
def test_a_worker_owns_one_accelerator(
    environ: dict[str, str], device: str | None, gpus: int, chosen: str | None, warns: bool
) -> None:
    choice = choose_device(environ, device, gpus)
    assert choice.cuda_visible_devices == chosen
    assert bool(choice.warning) is warns
    if warns:
        assert "CUDA_VISIBLE_DEVICES" in (choice.warning or "") and "GPU 0" in (
            choice.warning or ""
        )
