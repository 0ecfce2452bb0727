"""End to end over real HTTP: the API (uvicorn), a real Celery worker process, a real redis-server.

One API and one worker serve the whole module; each test submits tiny synthetic jobs and polls.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from lrsched.config import TrainConfig
from lrsched.jobs import MAX_ERROR_CHARS
from service.cli import worker_command
from service.queue import CeleryJobQueue
from service.store import JobStore, Keys
from tests.conftest import finished, poll_job
from tests.servers import REPO, Api, Proc, launch_api, launch_worker, stack_env

TINY: dict[str, Any] = {
    "schedule": {
        "kind": "exponential_decay",
        "step_size": 0.05,
        "decay_steps": 3,
        "decay_rate": 0.5,
    },
    "schedule_unit": "step",
    "epochs": 3,
    "batch_size": 16,
    "dataset": "synthetic",
    "max_train_examples": 40,
    "max_eval_examples": 16,
}


@pytest.fixture(scope="module")
def stack(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, compile_cache: Path
) -> Iterator[tuple[Api, Proc]]:
    folder = tmp_path_factory.mktemp("e2e")
    api = launch_api(redis_url, folder, lease_seconds=10)
    try:
        # No dataset files and no downloads: a Fashion-MNIST job must fail, and say why.
        worker = launch_worker(
            redis_url, folder, api, "e2e", compile_cache,
            cache_dir=folder / "datasets", download="false",
        )  # fmt: skip
        try:
            yield api, worker
        finally:
            worker.kill()
    finally:
        api.close()


@pytest.fixture
def api(stack: tuple[Api, Proc]) -> Api:
    return stack[0]


def submit(api: Api, config: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post("/jobs", json=config)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    return job


def test_a_tiny_job_succeeds_with_one_record_per_epoch_at_the_evaluated_rate(api: Api) -> None:
    job = poll_job(api, submit(api, TINY)["id"], finished)
    assert job["status"] == "succeeded", job
    assert job["attempt"] == 1 and job["error"] is None
    assert job["started_at"] and job["finished_at"]
    metrics = job["metrics"]
    assert [record["epoch"] for record in metrics] == [0, 1, 2]
    steps_per_epoch = math.ceil(TINY["max_train_examples"] / TINY["batch_size"])
    assert job["progress"] == {
        "epoch": 3, "epochs": 3, "step": 3 * steps_per_epoch, "steps": 3 * steps_per_epoch,
    }  # fmt: skip
    # DESIGN §2.3: an epoch's lr is the rate at its last batch, counting batches from 0.
    last_steps = [(epoch + 1) * steps_per_epoch - 1 for epoch in range(3)]
    evaluated = api.client.post(
        "/schedules/evaluate", json={"schedule": TINY["schedule"], "steps": last_steps}
    )
    assert evaluated.status_code == 200, evaluated.text
    assert np.array_equal(
        np.float32([record["lr"] for record in metrics]), np.float32(evaluated.json()["values"])
    )
    for record in metrics:
        assert record["seconds"] > 0 and 0 <= record["val_accuracy"] <= 1
        assert math.isfinite(record["train_loss"]) and math.isfinite(record["val_loss"])


def test_cancel_a_queued_job_and_a_running_one(api: Api) -> None:
    long = {**TINY, "epochs": 1000, "schedule_unit": "epoch"}
    running = submit(api, long)
    poll_job(api, running["id"], lambda job: job["progress"]["step"] > 0)
    queued = submit(api, TINY)  # the only worker is busy: this one waits
    response = api.client.post(f"/jobs/{queued['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"

    response = api.client.post(f"/jobs/{running['id']}/cancel")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "running" and response.json()["cancel_requested_at"]
    job = poll_job(api, running["id"], finished, timeout=30)
    assert job["status"] == "cancelled" and len(job["metrics"]) < 1000
    assert api.client.post(f"/jobs/{running['id']}/cancel").status_code == 409

    # The worker then takes the cancelled job's message, is refused at claim, and moves on.
    after = poll_job(api, submit(api, TINY)["id"], finished)
    assert after["status"] == "succeeded"
    never_ran = api.client.get(f"/jobs/{queued['id']}").json()
    assert never_ran["status"] == "cancelled" and never_ran["started_at"] is None


def test_a_training_failure_fails_the_job_with_the_reason(api: Api) -> None:
    job = poll_job(api, submit(api, {**TINY, "dataset": "fashion_mnist"})["id"], finished)
    assert job["status"] == "failed", job
    assert "fashion_mnist" in job["error"] or "Fashion-MNIST" in job["error"], job["error"]
    assert job["metrics"] == [] and job["finished_at"]


def test_an_over_long_validation_error_fails_the_job_with_it_shortened(
    api: Api, redis_url: str, redis_client: redis.Redis
) -> None:
    # A message whose config the worker refuses with a very long pydantic error: the API would
    # never send one, so the test writes the job and sends the message itself.
    store = JobStore(redis_client, Keys())
    job, _ = store.create("local", TrainConfig.model_validate(TINY))
    store.enqueued(job.id, 1)
    queue = CeleryJobQueue(redis_url, visibility_timeout=150, unacked_restore_interval=1)
    try:
        queue.enqueue(job.id, 1, {**TINY, **{f"unknown_{i}": i for i in range(600)}})
    finally:
        queue.close()
    failed = poll_job(api, job.id, finished, timeout=60)
    assert failed["status"] == "failed" and failed["attempt"] == 1, failed
    assert failed["error"].startswith("the job's configuration is invalid"), failed["error"]
    assert "characters cut" in failed["error"] and len(failed["error"]) <= MAX_ERROR_CHARS


def test_readyz_sees_the_worker(api: Api) -> None:
    deadline = time.monotonic() + 10  # a test before may have emptied Redis: a beat is 1 s away
    while (response := api.client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.2)
    assert response.json()["workers"] >= 1


@pytest.mark.parametrize(
    ("args", "settings", "message"),
    [
        (["-P", "threads", "-c", "2"], {}, "solo pool"),
        ([], {"visibility_timeout": 200}, "LRSCHED_VISIBILITY_TIMEOUT"),
    ],
    ids=["threads-pool", "visibility-differs-from-the-api"],
)
def test_a_misconfigured_worker_refuses_to_start(
    api: Api, redis_url: str, args: list[str], settings: dict[str, Any], message: str
) -> None:
    env = stack_env(redis_url, service_url=api.url, **settings)
    command = [*worker_command("misfit@test"), *args]
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=90)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
