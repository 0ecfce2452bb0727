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
from worker.reporter import ServiceReporter
from worker.tasks import Keepalive

REPLY = {"status": "running", "cancel": False, "lease_seconds": 30.0}
Handler = Callable[[httpx.Request], httpx.Response]


def service(handle: Handler, **options: Any) -> ServiceReporter:
    client = httpx.Client(base_url="http://service", transport=httpx.MockTransport(handle))
    return ServiceReporter(client, "s3cret", **options)


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
