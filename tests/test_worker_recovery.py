"""Recovery, for real: SIGKILL a worker mid-job; take the API down for longer than the lease.

The service owns recovery (DESIGN §3): a job whose worker stops reporting is queued again as its
next attempt once its lease expires (a few seconds here), and the record keeps one set of metrics;
a job whose worker is fine is never restarted, even when the API was down longer than the lease.

The tests act on what they observe, never on how fast this machine trains: the job is far longer
than any test waits for (1000 epochs), each step waits until the job has reported progress, and
each test ends the job with a cancel once it has seen what it came for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from tests.conftest import finished, poll_job
from tests.servers import Api, Proc

LONG: dict[str, Any] = {
    "schedule": {"kind": "constant", "step_size": 0.01},
    "epochs": 1000,
    "batch_size": 8,
    "dataset": "synthetic",
    "max_train_examples": 400,
    "max_eval_examples": 16,
}


def epochs(job: dict[str, Any]) -> list[int]:
    return [record["epoch"] for record in job["metrics"]]


def stored_metrics(redis_client: redis.Redis, job_id: str) -> list[str]:
    """The fields of the job's metrics hash in Redis itself: ``"{attempt}:{epoch}"``."""
    return sorted(str(name) for name in redis_client.hkeys(f"lrsched:job:{job_id}:metrics"))


def cancel(api: Api, job_id: str) -> dict[str, Any]:
    response = api.client.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 202, response.text
    return poll_job(api, job_id, finished, timeout=60)


def test_a_worker_killed_mid_job_leads_to_attempt_2_with_one_set_of_metrics(
    start_api: Callable[..., Api], start_worker: Callable[..., Proc], redis_client: redis.Redis
) -> None:
    api = start_api(lease_seconds=3)
    first = start_worker(api, "doomed")
    job_id = api.client.post("/jobs", json=LONG).json()["id"]
    running = poll_job(api, job_id, lambda job: job["status"] == "running" and job["metrics"])
    assert running["attempt"] == 1
    first.kill()  # SIGKILL, mid-job: no warm shutdown, no message handed back
    start_worker(api, "rescuer")
    again = poll_job(api, job_id, lambda job: job["attempt"] == 2 and job["metrics"], timeout=60)
    assert again["status"] == "running"
    job = cancel(api, job_id)
    assert (job["status"], job["attempt"]) == ("cancelled", 2), job
    assert epochs(job) == list(range(len(job["metrics"]))) and job["metrics"]
    # Attempt 1's records are gone from Redis, not merely hidden by the job view.
    assert stored_metrics(redis_client, job_id) == sorted(f"2:{epoch}" for epoch in epochs(job))


def test_an_api_down_for_longer_than_the_lease_restarts_no_healthy_job(
    start_api: Callable[..., Api], start_worker: Callable[..., Proc], redis_client: redis.Redis
) -> None:
    lease = 8.0  # above the worker's longest pause between retries (5 s)
    api = start_api(lease_seconds=lease)
    start_worker(api, "steady")
    job_id = api.client.post("/jobs", json=LONG).json()["id"]
    before = poll_job(api, job_id, lambda job: job["status"] == "running" and job["metrics"])
    api.restart(down_for=lease + 2)  # every lease has expired when it is back
    back = time.monotonic()
    # Past the grace period, the job is still attempt 1 and still training.
    later = poll_job(
        api,
        job_id,
        lambda job: job["attempt"] != 1
        or (time.monotonic() > back + lease + 1 and len(job["metrics"]) > len(before["metrics"])),
        timeout=60,
    )
    assert (later["status"], later["attempt"]) == ("running", 1), later
    job = cancel(api, job_id)
    assert (job["status"], job["attempt"]) == ("cancelled", 1), job
    assert epochs(job) == list(range(len(job["metrics"])))  # nothing lost, nothing twice
    assert stored_metrics(redis_client, job_id) == sorted(f"1:{epoch}" for epoch in epochs(job))
