"""The API's sweep (service.sweep) against a real redis-server: requeues, the outbox, the grace.

The broker is the seam here: a recording queue stands in for Celery and can be made to refuse, as a
broker that is down would. The job store is the real one, on the session's Redis, with a clock the
test moves by hand (the sweep shares it, for its grace period).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
import redis

from lrsched.config import TrainConfig
from lrsched.jobs import JobStatus
from service.app import create_app
from service.deps import get_queue
from service.queue import QueueUnavailable
from service.settings import ServiceSettings
from service.store import JobStore, Keys
from service.sweep import Sweeper

CONFIG = TrainConfig.model_validate(
    {"schedule": {"kind": "constant", "step_size": 0.01}, "epochs": 2, "dataset": "synthetic"}
)
LEASE = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """Records what is enqueued; while ``down``, refuses as an unreachable broker does."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.down = False
        self.fail_after: int | None = None

    def enqueue(self, job_id: str, attempt: int, config: dict[str, Any]) -> None:
        if self.down or (self.fail_after is not None and len(self.sent) >= self.fail_after):
            raise QueueUnavailable("Error 111 connecting to the broker. Connection refused.")
        TrainConfig.model_validate(config)
        self.sent.append((job_id, attempt))


class FlakyStore:
    """The real store, whose lease check can be made to fail as Redis down (or a bug) makes it."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.failure: Exception | None = None
        self.lease_checks = 0

    def expire_leases(self) -> Any:
        self.lease_checks += 1
        if self.failure is not None:
            raise self.failure
        return self.store.expire_leases()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis_client: redis.Redis, clock: Clock) -> JobStore:
    return JobStore(redis_client, Keys("t"), lease_seconds=LEASE, max_attempts=3, clock=clock)


@pytest.fixture
def broker() -> Broker:
    return Broker()


def running_job(store: JobStore) -> str:
    """A job whose attempt 1 is running (its first message was delivered and claimed)."""
    job, _ = store.create("local", CONFIG)
    store.enqueued(job.id, 1)
    store.claim(job.id, 1, "w1", "n1")
    return job.id


def sweeper(store: Any, broker: Broker, clock: Clock) -> Sweeper:
    sweep = Sweeper(store, broker, grace=LEASE, clock=clock)
    sweep.run_once()  # the first round starts the grace period
    clock.now += LEASE
    return sweep


def test_a_requeue_the_broker_refuses_is_enqueued_once_it_is_back_and_then_runs(
    store: JobStore, broker: Broker, clock: Clock
) -> None:
    ids = [running_job(store) for _ in range(3)]
    sweep = sweeper(store, broker, clock)
    clock.now += LEASE + 1  # every worker is gone
    broker.fail_after = 1  # the broker goes down after the first of the batch
    sweep.run_once()
    assert len(broker.sent) == 1
    for job_id in ids:  # all three are queued again, none is lost
        job = store.get("local", job_id)
        assert (job.status, job.attempt) == (JobStatus.QUEUED, 2)
    broker.fail_after, broker.down = None, True
    sweep.run_once()  # still down: nothing is dropped
    assert len(broker.sent) == 1
    broker.down = False
    sweep.run_once()
    assert sorted(broker.sent) == sorted((job_id, 2) for job_id in ids)  # each exactly once
    sweep.run_once()
    assert len(broker.sent) == 3
    claim = store.claim(ids[0], 2, "w2", "n2")  # the job runs: attempt 2 is claimed
    assert claim.attempt == 2


def test_a_job_whose_submit_died_before_enqueueing_is_enqueued_by_the_sweep(
    store: JobStore, broker: Broker, clock: Clock
) -> None:
    job, _ = store.create("local", CONFIG)  # ... and the request died here
    sweep = sweeper(store, broker, clock)
    assert broker.sent == []  # not before the route had its chance
    sweep.run_once()
    assert broker.sent == [(job.id, 1)]
    sweep.run_once()
    assert broker.sent == [(job.id, 1)]


def test_a_submit_whose_enqueue_fails_is_accepted_and_enqueued_by_the_sweep(
    redis_url: str, redis_client: redis.Redis, broker: Broker, clock: Clock
) -> None:
    settings = ServiceSettings(
        redis_url=redis_url, key_prefix="t", sweep_seconds=3600, job_max_seconds=100
    )
    app = create_app(settings)
    broker.down = True
    app.dependency_overrides[get_queue] = lambda: broker

    async def submit() -> httpx.Response:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client,
        ):
            return await client.post("/jobs", json=CONFIG.model_dump(mode="json"))

    response = asyncio.run(submit())
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued" and broker.sent == []
    store = JobStore(redis_client, Keys("t"), clock=clock)
    clock.now = store.get("local", job_id).created_at.timestamp() + store.outbox_delay + 1
    broker.down = False
    Sweeper(store, broker, grace=LEASE, clock=clock).run_once()
    assert broker.sent == [(job_id, 1)]


def test_after_start_no_lease_expires_within_the_grace_period(
    store: JobStore, broker: Broker, clock: Clock
) -> None:
    job_id = running_job(store)
    clock.now += LEASE + 5  # the API was down longer than the lease
    sweep = Sweeper(store, broker, grace=LEASE, clock=clock)
    sweep.run_once()
    assert sweep.in_grace and store.get("local", job_id).status is JobStatus.RUNNING
    clock.now += LEASE / 2
    store.progress(job_id, 1, 3, 10)  # the worker's retried report lands
    clock.now += LEASE / 2
    sweep.run_once()
    assert not sweep.in_grace
    job = store.get("local", job_id)
    assert (job.status, job.attempt) == (JobStatus.RUNNING, 1)
    clock.now += LEASE + 1  # this time the worker is really gone
    sweep.run_once()
    assert store.get("local", job_id).attempt == 2 and broker.sent == [(job_id, 2)]


def test_after_a_sweep_that_could_not_reach_redis_leases_get_a_grace_period(
    store: JobStore, broker: Broker, clock: Clock
) -> None:
    job_id = running_job(store)
    flaky = FlakyStore(store)
    sweep = sweeper(flaky, broker, clock)
    flaky.failure = redis.ConnectionError("Error 111 connecting to redis. Connection refused.")
    clock.now += LEASE + 5  # Redis was down longer than the lease: no report got through
    sweep.run_once()
    assert sweep.in_grace
    flaky.failure = None
    clock.now += LEASE - 1
    sweep.run_once()
    checks = flaky.lease_checks
    assert store.get("local", job_id).status is JobStatus.RUNNING
    store.progress(job_id, 1, 3, 10)  # the worker's retry lands within the grace
    clock.now += 2
    sweep.run_once()
    assert flaky.lease_checks == checks + 1  # leases are checked again, and this one is fine
    assert store.get("local", job_id).attempt == 1 and broker.sent == []


def test_a_record_that_breaks_the_sweep_is_logged_and_the_other_jobs_still_recover(
    store: JobStore,
    broker: Broker,
    clock: Clock,
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    job_id = running_job(store)
    redis_client.hset(store.keys.job("corrupt"), mapping={"id": "corrupt", "status": "sleeping"})
    redis_client.zadd(store.keys.leases, {"corrupt": 0})
    sweep = sweeper(store, broker, clock)
    clock.now += LEASE + 1
    with caplog.at_level(logging.ERROR, logger="lrsched.service"):
        sweep.run_once()
    assert broker.sent == [(job_id, 2)]
    (record,) = [r for r in caplog.records if "corrupt" in r.getMessage()]
    assert record.exc_info is not None  # with its traceback


def test_the_sweep_loop_survives_any_error_and_keeps_sweeping(
    store: JobStore, broker: Broker, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyStore(store)
    flaky.failure = TypeError("a bug")
    sweep = Sweeper(flaky, broker, grace=0, clock=clock)

    async def sweep_a_while() -> None:
        task = asyncio.create_task(sweep.run(every=0.01))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.ERROR, logger="lrsched.service"):
        asyncio.run(sweep_a_while())
    assert flaky.lease_checks >= 3  # every round ran, though each failed
    assert all(r.exc_info for r in caplog.records if "lease sweep failed" in r.getMessage())
    assert [r for r in caplog.records if "lease sweep failed" in r.getMessage()]


def test_the_sweep_deletes_finished_jobs_past_their_retention(
    redis_client: redis.Redis, broker: Broker, clock: Clock
) -> None:
    store = JobStore(redis_client, Keys("t"), lease_seconds=LEASE, finished_ttl=60, clock=clock)
    job, _ = store.create("local", CONFIG)
    store.cancel("local", job.id)
    sweep = sweeper(store, broker, clock)
    assert store.get("local", job.id).status is JobStatus.CANCELLED
    clock.now += 60
    sweep.run_once()
    assert store.page("local").items == [] and not redis_client.exists(store.keys.job(job.id))
