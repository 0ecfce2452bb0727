"""The job store against a real redis-server: records, listings, claims, leases, idempotency."""

from __future__ import annotations

import hashlib

import pytest
import redis

from lrsched.config import TrainConfig
from lrsched.jobs import JobStatus
from lrsched.metrics import EpochMetrics
from service.store import (
    IdempotencyMismatch,
    IdempotencyPending,
    JobFinished,
    JobNotFound,
    JobStore,
    Keys,
    ReportRefused,
    decode_cursor,
)

CONFIG = TrainConfig.model_validate(
    {
        "schedule": {"kind": "constant", "step_size": 0.01},
        "epochs": 2,
        "dataset": "synthetic",
        "batch_size": 32,
        "max_train_examples": 64,
        "max_eval_examples": 32,
    }
)


class Clock:
    """A clock the test moves by hand, so leases expire without waiting."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(redis_client: redis.Redis, clock: Clock) -> JobStore:
    return JobStore(redis_client, Keys("t"), lease_seconds=10, max_attempts=2, clock=clock)


def metrics(epoch: int, lr: float = 0.01) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch, train_loss=1.0, val_loss=1.0, val_accuracy=0.5, lr=lr, seconds=0.1
    )


def test_a_new_job_is_queued_with_its_config_and_survives_a_new_store(
    store: JobStore, redis_client: redis.Redis, clock: Clock
) -> None:
    job, created = store.create("local", CONFIG)
    assert created
    assert (job.status, job.attempt, job.owner) == (JobStatus.QUEUED, 1, "local")
    assert job.progress.epochs == 2 and job.metrics == [] and job.error is None
    assert job.created_at.timestamp() == clock.now
    again = JobStore(redis_client, Keys("t")).get("local", job.id)  # as after a restart
    assert again == job
    assert again.config == CONFIG


def test_a_job_is_invisible_to_another_owner(store: JobStore) -> None:
    job, _ = store.create("local", CONFIG)
    with pytest.raises(JobNotFound):
        store.get("someone-else", job.id)
    with pytest.raises(JobNotFound):
        store.cancel("someone-else", job.id)
    assert store.page("someone-else").items == []
    with pytest.raises(JobNotFound):
        store.get("local", "no-such-id")


def test_listing_is_newest_first_paginated_and_filtered_by_status(store: JobStore) -> None:
    ids = [store.create("local", CONFIG)[0].id for _ in range(5)]
    store.cancel("local", ids[1])
    first = store.page("local", limit=2)
    assert [job.id for job in first.items] == [ids[4], ids[3]]
    assert first.next_cursor is not None
    second = store.page("local", limit=2, cursor=first.next_cursor)
    assert [job.id for job in second.items] == [ids[2], ids[1]]
    last = store.page("local", limit=2, cursor=second.next_cursor)
    assert [job.id for job in last.items] == [ids[0]] and last.next_cursor is None
    queued = store.page("local", statuses=[JobStatus.QUEUED])
    assert [job.id for job in queued.items] == [ids[4], ids[3], ids[2], ids[0]]
    both = store.page("local", statuses=[JobStatus.CANCELLED, JobStatus.QUEUED], limit=3)
    assert [job.id for job in both.items] == [ids[4], ids[3], ids[2]]
    rest = store.page(
        "local", statuses=[JobStatus.CANCELLED, JobStatus.QUEUED], cursor=both.next_cursor
    )
    assert [job.id for job in rest.items] == [ids[1], ids[0]]


def test_a_cursor_not_issued_by_the_store_is_refused() -> None:
    with pytest.raises(ValueError, match="next_cursor"):
        decode_cursor("garbage!")


def test_an_idempotency_key_returns_the_same_job_and_refuses_another_body(
    store: JobStore, redis_client: redis.Redis
) -> None:
    job, created = store.create("local", CONFIG, idempotency_key="k1")
    replay, created_again = store.create("local", CONFIG, idempotency_key="k1")
    assert created and not created_again and replay.id == job.id
    other = CONFIG.model_copy(update={"epochs": 3})
    with pytest.raises(IdempotencyMismatch):
        store.create("local", other, idempotency_key="k1")
    assert store.create("other-owner", CONFIG, idempotency_key="k1")[0].id != job.id
    assert len(store.page("local").items) == 1
    assert 3600 < redis_client.ttl(store.keys.idempotency("local", "k1")) <= 24 * 3600


def test_an_idempotency_key_whose_first_request_is_in_flight_answers_pending(
    store: JobStore, redis_client: redis.Redis
) -> None:
    fingerprint = hashlib.sha256(CONFIG.model_dump_json().encode()).hexdigest()
    key = store.keys.idempotency("local", "k2")
    redis_client.set(key, f"not-created-yet {fingerprint}", ex=30)  # as if mid-request
    with pytest.raises(IdempotencyPending):
        store.create("local", CONFIG, idempotency_key="k2")
    redis_client.delete(key)  # the pending hold expired: the key is free again
    assert store.create("local", CONFIG, idempotency_key="k2")[1]


def test_claim_runs_the_attempt_and_refuses_stale_or_duplicate_deliveries(
    store: JobStore,
) -> None:
    job, _ = store.create("local", CONFIG)
    claim = store.claim(job.id, 1, "w1", "n1")
    assert (claim.attempt, claim.lease_seconds) == (1, 10)
    assert store.claim(job.id, 1, "w1", "n1") == claim  # a retried claim is the same claim
    with pytest.raises(ReportRefused, match="already running on w1"):
        store.claim(job.id, 1, "w2", "n2")  # the same attempt redelivered elsewhere
    with pytest.raises(ReportRefused, match="stale"):
        store.claim(job.id, 2, "w2", "n2")
    running = store.get("local", job.id)
    assert running.status is JobStatus.RUNNING and running.started_at is not None
    assert [j.id for j in store.page("local", statuses=[JobStatus.RUNNING]).items] == [job.id]


def test_epoch_records_are_keyed_by_attempt_and_epoch(store: JobStore) -> None:
    job, _ = store.create("local", CONFIG)
    store.claim(job.id, 1, "w1", "n1")
    store.record_epoch(job.id, 1, metrics(0))
    store.record_epoch(job.id, 1, metrics(0))  # a retried post overwrites itself
    store.record_epoch(job.id, 1, metrics(1))
    store.progress(job.id, 1, 4, 4)
    got = store.get("local", job.id)
    assert [m.epoch for m in got.metrics] == [0, 1]
    assert (got.progress.epoch, got.progress.step, got.progress.steps) == (2, 4, 4)
    reply = store.finish(job.id, 1, "succeeded")
    assert reply.status is JobStatus.SUCCEEDED
    assert store.finish(job.id, 1, "succeeded") == store.finish(job.id, 1, "succeeded")
    with pytest.raises(ReportRefused, match="already succeeded"):
        store.record_epoch(job.id, 1, metrics(1))
    done = store.get("local", job.id)
    assert done.status is JobStatus.SUCCEEDED and done.finished_at is not None


def test_cancel_a_queued_job_at_once_a_running_one_through_its_worker(store: JobStore) -> None:
    queued, _ = store.create("local", CONFIG)
    cancelled = store.cancel("local", queued.id)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at is not None
    with pytest.raises(ReportRefused, match="already cancelled"):
        store.claim(queued.id, 1, "w1", "n1")  # its message, delivered later, does not run
    with pytest.raises(JobFinished, match="already cancelled"):
        store.cancel("local", queued.id)

    running, _ = store.create("local", CONFIG)
    store.claim(running.id, 1, "w1", "n1")
    assert not store.progress(running.id, 1, 1, 4).cancel
    asked = store.cancel("local", running.id)
    assert asked.status is JobStatus.RUNNING and asked.cancel_requested_at is not None
    assert store.cancel("local", running.id).status is JobStatus.RUNNING  # asking twice is fine
    assert store.progress(running.id, 1, 2, 4).cancel
    store.finish(running.id, 1, "cancelled")
    assert store.get("local", running.id).status is JobStatus.CANCELLED


def test_an_expired_lease_requeues_the_next_attempt_with_a_fresh_record(
    store: JobStore, clock: Clock, redis_client: redis.Redis
) -> None:
    job, _ = store.create("local", CONFIG)
    store.claim(job.id, 1, "w1", "n1")
    store.record_epoch(job.id, 1, metrics(0))
    clock.now += 5
    store.progress(job.id, 1, 2, 4)  # renews the lease to now + 10
    clock.now += 9
    assert store.expire_leases() == []
    clock.now += 2
    (requeue,) = store.expire_leases()
    assert (requeue.job_id, requeue.attempt) == (job.id, 2)
    assert TrainConfig.model_validate(requeue.config) == CONFIG
    again = store.get("local", job.id)
    assert (again.status, again.attempt, again.metrics, again.progress.step) == (
        JobStatus.QUEUED,
        2,
        [],
        0,
    )
    assert redis_client.hkeys(store.keys.metrics(job.id)) == []  # gone, not merely hidden
    with pytest.raises(ReportRefused, match="stale"):
        store.record_epoch(job.id, 1, metrics(1))  # the lost worker, back from the dead
    with pytest.raises(ReportRefused, match="stale"):
        store.claim(job.id, 1, "w1", "n1")  # Celery's own redelivery of attempt 1
    store.claim(job.id, 2, "w2", "n2")
    store.record_epoch(job.id, 2, metrics(0))
    assert [m.epoch for m in store.get("local", job.id).metrics] == [0]
    assert redis_client.hkeys(store.keys.metrics(job.id)) == ["2:0"]


def test_lease_expiry_after_the_last_attempt_fails_and_after_a_cancel_cancels(
    store: JobStore, clock: Clock
) -> None:
    job, _ = store.create("local", CONFIG)
    for attempt in (1, 2):
        store.claim(job.id, attempt, "w", f"n{attempt}")
        clock.now += 11
        store.expire_leases()
    failed = store.get("local", job.id)
    assert failed.status is JobStatus.FAILED and "stopped reporting" in (failed.error or "")

    asked, _ = store.create("local", CONFIG)
    store.claim(asked.id, 1, "w", "n")
    store.cancel("local", asked.id)
    clock.now += 11
    assert store.expire_leases() == []
    assert store.get("local", asked.id).status is JobStatus.CANCELLED


def test_workers_count_as_live_while_they_beat(store: JobStore, clock: Clock) -> None:
    assert store.live_workers(5) == 0
    store.worker_seen("w1", {"device": "cpu:0", "pid": 1, "job_id": ""})
    assert store.live_workers(5) == 1
    clock.now += 6
    assert store.live_workers(5) == 0


def outbox(redis_client: redis.Redis, store: JobStore) -> list[str]:
    return [str(member) for member in redis_client.zrange(store.keys.outbox, 0, -1)]


def test_a_new_job_is_in_the_outbox_until_enqueued_and_due_only_after_the_route_had_its_chance(
    store: JobStore, redis_client: redis.Redis, clock: Clock
) -> None:
    job, _ = store.create("local", CONFIG)
    assert outbox(redis_client, store) == [f"{job.id}:1"]  # written in the create's MULTI
    assert store.due_enqueues() == []  # the route enqueues it itself first
    clock.now += store.outbox_delay
    (due,) = store.due_enqueues()  # the route never got there: the sweep will
    assert (due.job_id, due.attempt) == (job.id, 1)
    assert TrainConfig.model_validate(due.config) == CONFIG
    store.enqueued(job.id, 1)
    assert outbox(redis_client, store) == [] and store.due_enqueues() == []


def test_an_expired_lease_puts_the_next_attempt_in_the_outbox_in_the_same_transaction(
    store: JobStore, redis_client: redis.Redis, clock: Clock
) -> None:
    job, _ = store.create("local", CONFIG)
    store.enqueued(job.id, 1)
    store.claim(job.id, 1, "w1", "n1")
    clock.now += 11
    (requeue,) = store.expire_leases()
    assert outbox(redis_client, store) == [f"{job.id}:2"]
    (due,) = store.due_enqueues()  # due at once: no one else enqueues a requeue
    assert (due.job_id, due.attempt) == (job.id, 2) == (requeue.job_id, requeue.attempt)


def test_outbox_entries_that_need_no_message_any_more_are_dropped(
    store: JobStore, redis_client: redis.Redis, clock: Clock
) -> None:
    cancelled, _ = store.create("local", CONFIG)
    store.cancel("local", cancelled.id)
    claimed, _ = store.create("local", CONFIG)
    store.claim(claimed.id, 1, "w1", "n1")  # its message was delivered after all
    waiting, _ = store.create("local", CONFIG)
    redis_client.zadd(store.keys.outbox, {"deleted-job:1": 0})
    clock.now += store.outbox_delay
    assert [(due.job_id, due.attempt) for due in store.due_enqueues()] == [(waiting.id, 1)]
    assert outbox(redis_client, store) == [f"{waiting.id}:1"]


def test_a_run_that_succeeds_after_a_cancel_was_asked_ends_cancelled_with_its_metrics(
    store: JobStore,
) -> None:
    job, _ = store.create("local", CONFIG)
    store.claim(job.id, 1, "w1", "n1")
    store.record_epoch(job.id, 1, metrics(0))
    store.record_epoch(job.id, 1, metrics(1))  # the last report: the cancel comes after it
    store.cancel("local", job.id)
    reply = store.finish(job.id, 1, "succeeded", step=4, steps=4)
    assert reply.status is JobStatus.CANCELLED
    assert store.finish(job.id, 1, "succeeded", step=4, steps=4) == reply  # a retry: the same
    done = store.get("local", job.id)
    assert done.status is JobStatus.CANCELLED and done.finished_at is not None
    assert [m.epoch for m in done.metrics] == [0, 1] and done.progress.step == 4

    failing, _ = store.create("local", CONFIG)
    store.claim(failing.id, 1, "w1", "n2")
    store.cancel("local", failing.id)
    assert store.finish(failing.id, 1, "failed", "boom").status is JobStatus.FAILED


def test_a_listing_over_several_statuses_reads_them_atomically_and_lists_a_job_once(
    store: JobStore, redis_client: redis.Redis
) -> None:
    ids = [store.create("local", CONFIG)[0].id for _ in range(3)]
    # As if read half-way through a move: the job in both its old and its new status's set.
    redis_client.zadd(store.keys.owner_status("local", JobStatus.RUNNING), {ids[1]: 2})

    def transactions() -> int:
        stats = redis_client.info("commandstats")
        return int(stats.get("cmdstat_multi", {}).get("calls", 0))

    before = transactions()
    both = store.page("local", statuses=[JobStatus.QUEUED, JobStatus.RUNNING], limit=3)
    assert transactions() == before + 1  # the sets are read in one MULTI/EXEC
    assert [job.id for job in both.items] == [ids[2], ids[1], ids[0]]  # each once


def test_a_listing_holds_summaries_without_the_metrics(store: JobStore) -> None:
    job, _ = store.create("local", CONFIG)
    store.claim(job.id, 1, "w1", "n1")
    store.record_epoch(job.id, 1, metrics(0))
    store.record_epoch(job.id, 1, metrics(1))
    (summary,) = store.page("local").items
    assert not hasattr(summary, "metrics")
    assert summary.progress.epoch == 2 and summary.config == CONFIG
    assert summary.model_dump() == {
        name: value
        for name, value in store.get("local", job.id).model_dump().items()
        if name != "metrics"
    }


def test_a_finished_job_is_deleted_after_its_retention_and_an_unfinished_one_never(
    redis_client: redis.Redis, clock: Clock
) -> None:
    store = JobStore(redis_client, Keys("t"), lease_seconds=10, finished_ttl=100, clock=clock)
    done, _ = store.create("local", CONFIG, idempotency_key="k")
    store.claim(done.id, 1, "w1", "n1")
    store.record_epoch(done.id, 1, metrics(0))
    store.finish(done.id, 1, "succeeded")
    waiting, _ = store.create("local", CONFIG)
    clock.now += 99
    assert store.purge_finished() == 0
    clock.now += 2
    assert store.purge_finished() == 1
    with pytest.raises(JobNotFound):
        store.get("local", done.id)
    assert [job.id for job in store.page("local").items] == [waiting.id]
    left = {str(key) for key in redis_client.scan_iter("t:*")}
    assert not [key for key in left if done.id in key], left
    assert store.keys.idempotency("local", "k") not in left  # the key is free for a new job
    assert store.create("local", CONFIG, idempotency_key="k")[1]
    clock.now += 10**9
    store.purge_finished()
    assert store.get("local", waiting.id).status is JobStatus.QUEUED
