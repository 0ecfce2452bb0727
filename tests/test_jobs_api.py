"""The job endpoints over real HTTP (uvicorn), a real Redis and the real Celery producer.

No worker runs here: a submitted job stays queued and its message waits on the ``gpu`` list, which
the tests read back; the tests play the worker on the internal routes where they need one. The
end-to-end tests with a real worker are in ``test_jobs_e2e.py``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from lrsched.jobs import JOB_QUEUE, MAX_ERROR_CHARS, TRAIN_TASK
from service.cli import free_port, start_redis, stop, wait_for_redis
from service.queue import CeleryJobQueue
from service.settings import ServiceSettings
from tests.servers import REPO, WORKER_TOKEN, launch_api

CONFIG: dict[str, Any] = {
    "schedule": {
        "kind": "exponential_decay",
        "step_size": 0.01,
        "decay_steps": 10,
        "decay_rate": 0.9,
    },
    "schedule_unit": "step",
    "epochs": 2,
    "batch_size": 32,
    "dataset": "synthetic",
    "max_train_examples": 64,
    "max_eval_examples": 32,
}
WORKER = {"Authorization": f"Bearer {WORKER_TOKEN}"}
#: A worker's claim of attempt 1, with the stack's visibility timeout (tests/servers.py).
CLAIM = {"attempt": 1, "worker": "w", "nonce": "n", "visibility_timeout": 150}


@pytest.fixture(scope="module")
def api_url(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    api = launch_api(redis_url, tmp_path_factory.mktemp("api"))
    yield api.url
    api.close()


@pytest.fixture
def client(redis_client: redis.Redis, api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        yield client


def queued_messages(redis_client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in redis_client.lrange(JOB_QUEUE, 0, -1)]


def submit(client: httpx.Client, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return client.post("/jobs", json=CONFIG if body is None else body, headers=headers)


def test_submit_answers_202_with_location_and_queues_one_message(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    response = submit(client)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["Location"] == f"/jobs/{job['id']}"
    assert job["status"] == "queued" and job["attempt"] == 1 and job["owner"] == "local"
    assert job["progress"] == {"epoch": 0, "epochs": 2, "step": 0, "steps": None}
    assert job["metrics"] == [] and job["error"] is None
    assert job["config"]["schedule"]["kind"] == "exponential_decay"
    assert job["config"]["seed"] == 123  # defaults are filled in
    assert job["config"]["max_seconds"] == 120  # every job has a deadline: the service's cap
    (message,) = queued_messages(redis_client)
    assert message["headers"]["task"] == TRAIN_TASK
    assert message["headers"]["id"] == f"{job['id']}.1"
    assert client.get(f"/jobs/{job['id']}").json() == job


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"epochs": 0}, ["body", "epochs"]),
        ({"schedule": {"kind": "constant"}}, ["body", "schedule", "constant", "step_size"]),
        ({"schedule": {"kind": "no_such_kind", "step_size": 1}}, ["body", "schedule"]),
        ({"surprise": 1}, ["body", "surprise"]),
    ],
    ids=["epochs", "missing-param", "unknown-kind", "unknown-field"],
)
def test_an_invalid_config_is_refused_with_the_field_path(
    client: httpx.Client, redis_client: redis.Redis, change: dict[str, Any], loc: list[str]
) -> None:
    response = submit(client, {**CONFIG, **change})
    assert response.status_code == 422, response.text
    assert loc in [error["loc"] for error in response.json()["detail"]]
    assert queued_messages(redis_client) == []


def test_a_schedule_that_goes_negative_during_the_run_is_refused_before_queueing(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    falling = {"kind": "polynomial_decay", "step_size": 0.01, "decay_steps": 3,
               "final_step_size": -0.01}  # fmt: skip
    response = submit(client, {**CONFIG, "schedule": falling})
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "schedule"]
    assert "step 2" in error["msg"]  # the first step with a negative rate
    assert queued_messages(redis_client) == []


def test_a_deadline_beyond_the_service_limit_is_refused(client: httpx.Client) -> None:
    response = submit(client, {**CONFIG, "max_seconds": 10_000})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "max_seconds"] and "at most 120" in error["msg"]


def test_an_idempotency_key_makes_a_retried_submit_return_the_same_job(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    first = submit(client, **{"Idempotency-Key": "retry-me"})
    again = submit(client, **{"Idempotency-Key": "retry-me"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert len(queued_messages(redis_client)) == 1
    other = submit(client, {**CONFIG, "epochs": 3}, **{"Idempotency-Key": "retry-me"})
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert submit(client).json()["id"] != first.json()["id"]  # no key: a new job


def test_unknown_ids_answer_404_and_a_finished_job_cannot_be_cancelled(
    client: httpx.Client,
) -> None:
    for response in (client.get("/jobs/nope"), client.post("/jobs/nope/cancel")):
        assert response.status_code == 404
        assert "no job with id 'nope'" in response.json()["detail"]
    job = submit(client).json()
    cancelled = client.post(f"/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert again.json() == {
        "detail": f"job {job['id']} is already cancelled; only a queued or running job can be "
        "cancelled"
    }


def test_list_is_newest_first_paginated_and_filtered(client: httpx.Client) -> None:
    ids = [submit(client).json()["id"] for _ in range(3)]
    client.post(f"/jobs/{ids[0]}/cancel")
    page = client.get("/jobs", params={"limit": 2}).json()
    assert [job["id"] for job in page["items"]] == [ids[2], ids[1]]
    rest = client.get("/jobs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [job["id"] for job in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    cancelled = client.get("/jobs", params={"status": "cancelled"}).json()
    assert [job["id"] for job in cancelled["items"]] == [ids[0]]
    both = client.get("/jobs", params=[("status", "cancelled"), ("status", "queued")]).json()
    assert len(both["items"]) == 3
    for params, loc in (
        ({"limit": 0}, ["query", "limit"]),
        ({"status": "sleeping"}, ["query", "status", 0]),
        ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
    ):
        response = client.get("/jobs", params=params)
        assert response.status_code == 422, params
        assert response.json()["detail"][0]["loc"] == loc


#: What a client sends: the JSON headers, an Idempotency-Key, httpx's User-Agent; no worker token.
CLIENT_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "Idempotency-Key": "k-1",
    "User-Agent": f"python-httpx/{httpx.__version__}",
}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token"}, 403),
        (CLIENT_HEADERS, 401),  # a client's own request is not a worker's
        ({**CLIENT_HEADERS, "Authorization": "Bearer a-client-key"}, 403),
        ({"X-Worker-Token": WORKER_TOKEN}, 401),  # the right secret, in the wrong place
        (
            {"Authorization": "Basic " + base64.b64encode(f"w:{WORKER_TOKEN}".encode()).decode()},
            401,
        ),
    ],
    ids=["none", "wrong-token", "client-request", "client-bearer", "other-header", "basic-auth"],
)
def test_internal_routes_refuse_anyone_without_the_worker_token(
    client: httpx.Client, headers: dict[str, str], status: int
) -> None:
    job = submit(client).json()
    metrics = {"epoch": 0, "train_loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.5, "lr": 0.01,
               "seconds": 0.1}  # fmt: skip
    reports = [
        (f"/internal/jobs/{job['id']}/claim", CLAIM),
        (f"/internal/jobs/{job['id']}/progress", {"attempt": 1, "step": 1}),
        (f"/internal/jobs/{job['id']}/epochs", {"attempt": 1, "metrics": metrics}),
        (f"/internal/jobs/{job['id']}/result", {"attempt": 1, "status": "succeeded"}),
        ("/internal/workers/heartbeat",
         {"worker": "w", "device": "cpu:0", "pid": 1, "visibility_timeout": 150}),
    ]  # fmt: skip
    for path, body in reports:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert (
            "only workers" in response.json()["detail"]
            or "for workers" in response.json()["detail"]
        )
    for path, body in reports[:1] + reports[4:]:  # with the token in the query string: refused
        response = client.post(path, json=body, params={"token": WORKER_TOKEN})
        assert response.status_code == 401, (path, response.text)
    assert client.get(f"/jobs/{job['id']}").json()["status"] == "queued"
    assert client.get("/readyz").json()["workers"] == 0


def test_internal_routes_are_not_in_the_public_schema(client: httpx.Client) -> None:
    internal_models = {"Claim", "ClaimRequest", "ProgressReport", "EpochReport", "ResultReport",
                       "ReportReply", "WorkerHeartbeat"}  # fmt: skip
    published = yaml.safe_load((REPO / "openapi.yaml").read_text())
    for schema in (client.get("/openapi.json").json(), published):
        assert "/jobs" in schema["paths"] and "/readyz" in schema["paths"]
        assert not [path for path in schema["paths"] if path.startswith("/internal")]
        assert not internal_models & set(schema["components"]["schemas"])


def test_a_worker_report_is_answered_with_the_cancellation(client: httpx.Client) -> None:
    job = submit(client).json()
    claim = CLAIM
    assert client.post(f"/internal/jobs/{job['id']}/claim", json=claim, headers=WORKER).json() == {
        "job_id": job["id"], "attempt": 1, "lease_seconds": 60.0,
    }  # fmt: skip
    progress = {"attempt": 1, "step": 1, "steps": 4}
    reply = client.post(f"/internal/jobs/{job['id']}/progress", json=progress, headers=WORKER)
    assert reply.json() == {"status": "running", "cancel": False, "lease_seconds": 60.0}
    assert client.post(f"/jobs/{job['id']}/cancel").status_code == 202
    reply = client.post(f"/internal/jobs/{job['id']}/progress", json=progress, headers=WORKER)
    assert reply.json()["cancel"] is True
    stale = client.post(f"/internal/jobs/{job['id']}/claim", json={**claim, "nonce": "m"},
                        headers=WORKER)  # fmt: skip
    assert stale.status_code == 409 and "already running" in stale.json()["detail"]


def test_readyz_needs_redis_and_a_live_worker_and_refuses_a_mismatched_one(
    client: httpx.Client,
) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "redis": "ok", "workers": 0}
    beat = {"worker": "w1@host", "device": "cpu:0", "pid": 1, "visibility_timeout": 150}
    assert client.post("/internal/workers/heartbeat", json=beat, headers=WORKER).status_code == 204
    assert client.get("/readyz").json() == {"status": "ready", "redis": "ok", "workers": 1}
    wrong = client.post(
        "/internal/workers/heartbeat", json={**beat, "visibility_timeout": 10}, headers=WORKER
    )
    assert wrong.status_code == 409 and "LRSCHED_VISIBILITY_TIMEOUT" in wrong.json()["detail"]
    assert wrong.headers["Lrsched-Refusal"] == "worker-misconfigured"  # the worker stops on it


def test_a_claim_from_a_worker_with_another_visibility_timeout_is_refused(
    client: httpx.Client,
) -> None:
    job = submit(client).json()
    for other in (10, 200):
        claim = {**CLAIM, "visibility_timeout": other}
        refused = client.post(f"/internal/jobs/{job['id']}/claim", json=claim, headers=WORKER)
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"] == (
            f"worker w has visibility_timeout {other} s but the API has 150 s; set "
            "LRSCHED_VISIBILITY_TIMEOUT to the same value in the API and every worker"
        )
        assert refused.headers["Lrsched-Refusal"] == "worker-misconfigured"
    still = client.get(f"/jobs/{job['id']}").json()
    assert (still["status"], still["attempt"], still["started_at"]) == ("queued", 1, None)
    assert client.post(f"/internal/jobs/{job['id']}/claim", json=CLAIM, headers=WORKER).is_success


def test_with_redis_down_job_endpoints_answer_503_and_evaluation_still_works(
    tmp_path: Path,
) -> None:
    api = launch_api(f"redis://127.0.0.1:{free_port()}/0", tmp_path, redis_timeout_seconds=0.2)
    client = api.client
    with contextlib.closing(api):
        for response in (
            submit(client),
            client.get("/jobs"),
            client.get("/jobs/some-id"),
            client.post("/jobs/some-id/cancel"),
        ):
            assert response.status_code == 503, response.text
            assert "cannot be reached" in response.json()["detail"]
            assert "schedule evaluation still works" in response.json()["detail"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["redis"].startswith("unreachable")
        assert client.get("/healthz").status_code == 200
        evaluated = client.post(
            "/schedules/evaluate",
            json={"schedule": {"kind": "constant", "step_size": 0.5}, "steps": [0, 1]},
        )
        assert evaluated.status_code == 200 and evaluated.json()["values"] == [0.5, 0.5]


def test_settings_refuse_a_visibility_timeout_a_job_could_outlive() -> None:
    with pytest.raises(ValueError, match="visibility_timeout"):
        ServiceSettings(job_max_seconds=100, visibility_timeout=110)


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("lrsched.jobs", ("fastapi", "celery", "redis", "httpx", "starlette", "service", "worker")),
        ("service.app", ("worker",)),  # the service enqueues by task name
        ("worker.tasks", ("service", "fastapi")),  # the worker speaks HTTP to the service
    ],
)
def test_imports_point_one_way(module: str, forbidden: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    env = {**os.environ, "LRSCHED_WORKER_TOKEN": "t", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == ""


def test_the_api_and_the_worker_share_their_broker_defaults_and_options() -> None:
    from worker.celery_app import make_app
    from worker.settings import WorkerSettings

    service, worker = ServiceSettings(), WorkerSettings()
    for name in ("redis_url", "job_max_seconds", "visibility_timeout", "unacked_restore_interval"):
        assert getattr(service, name) == getattr(worker, name), name
    queue = CeleryJobQueue(
        service.redis_url,
        visibility_timeout=service.visibility_timeout,
        unacked_restore_interval=service.unacked_restore_interval,
    )
    try:
        expected = queue.app.conf.broker_transport_options
        assert make_app(worker).conf.broker_transport_options == expected
        assert expected["visibility_timeout"] == service.visibility_timeout
    finally:
        queue.close()


def test_an_over_long_error_is_recorded_shortened_not_refused(client: httpx.Client) -> None:
    job = submit(client).json()
    assert client.post(f"/internal/jobs/{job['id']}/claim", json=CLAIM, headers=WORKER).is_success
    error = "ValueError: the first line" + " and more" * 20_000 + " the last line"
    result = {"attempt": 1, "status": "failed", "error": error}
    response = client.post(f"/internal/jobs/{job['id']}/result", json=result, headers=WORKER)
    assert response.status_code == 200, response.text
    failed = client.get(f"/jobs/{job['id']}").json()
    assert failed["status"] == "failed" and len(failed["error"]) <= MAX_ERROR_CHARS
    assert failed["error"].startswith("ValueError: the first line")
    assert failed["error"].endswith("the last line")


def test_a_cancel_after_the_last_report_is_not_lost(client: httpx.Client) -> None:
    job = submit(client).json()
    assert client.post(f"/internal/jobs/{job['id']}/claim", json=CLAIM, headers=WORKER).is_success
    for epoch in (0, 1):
        record = {"epoch": epoch, "train_loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.5,
                  "lr": 0.01, "seconds": 0.1}  # fmt: skip
        reply = client.post(
            f"/internal/jobs/{job['id']}/epochs", json={"attempt": 1, "metrics": record},
            headers=WORKER,
        )  # fmt: skip
        assert reply.json()["cancel"] is False
    cancel = client.post(f"/jobs/{job['id']}/cancel")  # after the last report
    assert cancel.status_code == 202 and cancel.json()["status"] == "running"
    result = {"attempt": 1, "status": "succeeded", "step": 4, "steps": 4}
    reply = client.post(f"/internal/jobs/{job['id']}/result", json=result, headers=WORKER)
    assert reply.status_code == 200 and reply.json()["status"] == "cancelled"
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "cancelled" and [m["epoch"] for m in done["metrics"]] == [0, 1]


def test_a_redis_that_refuses_writes_answers_503_with_the_reason(tmp_path: Path) -> None:
    port = free_port()
    server = start_redis(port, tmp_path / "redis", persist=False)
    try:
        wait_for_redis(port, server)
        url = f"redis://127.0.0.1:{port}/0"
        full = redis.Redis.from_url(url)
        full.config_set("maxmemory", 1)  # every write is refused: "OOM command not allowed"
        api = launch_api(url, tmp_path)
        with contextlib.closing(api):
            response = submit(api.client)
            assert response.status_code == 503, response.text
            detail = response.json()["detail"]
            assert "refused the request (OutOfMemoryError: command not allowed" in detail, detail
            assert detail.endswith("schedule evaluation still works")
            assert response.headers["Retry-After"] == "5"
            assert api.client.get("/jobs").status_code == 200  # reads still work
        full.close()
    finally:
        stop(server)


def test_a_job_body_over_its_own_limit_is_refused_with_413_and_evaluation_keeps_its_own(
    client: httpx.Client, redis_client: redis.Redis
) -> None:
    big = {**CONFIG, "schedule": {"kind": "piecewise_constant", "boundaries": list(range(9_000)),
                                  "values": [0.01] * 9_001}}  # fmt: skip
    body = json.dumps(big).encode() + b" " * 300_000  # over 256 KiB
    for content in (body, iter([body])):  # with a Content-Length, and chunked without one
        response = client.post(
            "/jobs", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, response.text
        assert response.json()["detail"].startswith("the request body is ")
        assert "POST /jobs accepts at most 262144" in response.json()["detail"]
    assert queued_messages(redis_client) == []
    assert submit(client, big).status_code == 202  # the same config, without the padding
    steps = {"schedule": {"kind": "constant", "step_size": 0.1}, "steps": list(range(60_000))}
    evaluated = client.post("/schedules/evaluate", json=steps)  # about 400 KB: its limit is 16 MB
    assert evaluated.status_code == 200, evaluated.text[:200]


def test_a_listing_has_each_job_without_its_metrics(client: httpx.Client) -> None:
    job = submit(client).json()
    assert client.post(f"/internal/jobs/{job['id']}/claim", json=CLAIM, headers=WORKER).is_success
    record = {"epoch": 0, "train_loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.5, "lr": 0.01,
              "seconds": 0.1}  # fmt: skip
    reply = client.post(
        f"/internal/jobs/{job['id']}/epochs", json={"attempt": 1, "metrics": record},
        headers=WORKER,
    )  # fmt: skip
    assert reply.is_success, reply.text
    (item,) = client.get("/jobs").json()["items"]
    full = client.get(f"/jobs/{job['id']}").json()
    assert "metrics" not in item and len(full["metrics"]) == 1
    assert item["progress"]["epoch"] == 1
    assert item == {name: value for name, value in full.items() if name != "metrics"}


def test_a_body_that_is_not_utf8_json_is_a_422(client: httpx.Client) -> None:
    response = client.post(
        "/jobs", content=b"+\xff9\xfe\xfd", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
