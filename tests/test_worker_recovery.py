"""Recovery, for real: SIGKILL a worker mid-job, restart the API mid-job.

The service owns recovery (DESIGN §3): a job whose worker stops reporting is queued again as its
next attempt once its lease expires (a few seconds here), and the record keeps one set of metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conftest import finished, poll_job
from tests.servers import Api, Proc

# About a second an epoch on this machine's CPU, so a test can act between epochs.
SLOW: dict[str, Any] = {
    "schedule": {"kind": "constant", "step_size": 0.01},
    "epochs": 5,
    "batch_size": 8,
    "dataset": "synthetic",
    "max_train_examples": 1600,
    "max_eval_examples": 16,
}


def test_a_worker_killed_mid_job_leads_to_attempt_2_with_each_epoch_once(
    start_api: Callable[..., Api], start_worker: Callable[..., Proc]
) -> None:
    api = start_api(lease_seconds=3)
    first = start_worker(api, "doomed")
    job_id = api.client.post("/jobs", json=SLOW).json()["id"]
    poll_job(api, job_id, lambda job: len(job["metrics"]) >= 1)  # mid-job: an epoch is in
    first.kill()  # SIGKILL: no warm shutdown, no message handed back
    start_worker(api, "rescuer")
    requeued = poll_job(api, job_id, lambda job: job["attempt"] == 2, timeout=30)
    assert requeued["status"] in {"queued", "running"}
    job = poll_job(api, job_id, finished)
    assert job["status"] == "succeeded", job
    assert job["attempt"] == 2
    assert [record["epoch"] for record in job["metrics"]] == [0, 1, 2, 3, 4]


def test_an_api_restart_mid_job_loses_nothing(
    start_api: Callable[..., Api], start_worker: Callable[..., Proc]
) -> None:
    api = start_api(lease_seconds=30)
    start_worker(api, "steady")
    job_id = api.client.post("/jobs", json=SLOW).json()["id"]
    before = poll_job(api, job_id, lambda job: len(job["metrics"]) >= 1)
    assert before["status"] == "running" and len(before["metrics"]) < 5
    api.restart(down_for=1.0)  # the worker's reports retry with backoff meanwhile
    job = poll_job(api, job_id, finished)
    assert job["status"] == "succeeded", job
    assert job["attempt"] == 1
    assert [record["epoch"] for record in job["metrics"]] == [0, 1, 2, 3, 4]
    assert job["progress"]["epoch"] == 5 and job["config"]["max_train_examples"] == 1600
