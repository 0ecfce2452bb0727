"""The job store: job records in Redis, written by the service alone (DESIGN §1).

Each job is one Redis hash; its epoch metrics are a second hash whose fields are
``"{attempt}:{epoch}"``, so a record is keyed by (job, attempt, epoch) and a retried or redelivered
report overwrites itself instead of adding a row (DESIGN §2.4). Listings are sorted sets scored by a
creation sequence number, one per owner and one per (owner, status). Leases are a sorted set scored
by expiry. A finished job is kept for ``finished_ttl`` seconds, then the sweep deletes it (its
hashes, its listing entries and its Idempotency-Key): the ``finished`` sorted set holds when each
is due. Every key name is built by :class:`Keys`.

A job attempt that must be put on the broker is first written to the *outbox* (a sorted set of
``"{job_id}:{attempt}"`` scored by when it is due), in the same transaction that makes the attempt
queued; the service's sweep enqueues what is due and only then removes it. So a broker that refuses
a message, or an API that dies between the two steps, delays a job but never loses it. Enqueuing an
attempt twice is harmless: the claim refuses the second delivery.

Every change of a job is one optimistic transaction (WATCH the hash, decide, MULTI/EXEC), so
concurrent reports, cancels and the lease sweep of several API processes never interleave badly.

Errors, all :class:`StoreError`::

    StoreError
     +-- JobNotFound          no such job (for this owner)
     +-- JobFinished          a client asked to change a finished job
     +-- IdempotencyMismatch  an Idempotency-Key reused with another request
     +-- IdempotencyPending   an Idempotency-Key whose first request is still in flight
     +-- ReportRefused        a worker's report or claim is stale, duplicate or too late
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import redis
from redis.client import Pipeline
from redis.typing import EncodableT

from lrsched import (
    Claim,
    EpochMetrics,
    FinalStatus,
    Job,
    JobPage,
    JobProgress,
    JobStatus,
    JobSummary,
    ReportReply,
    TrainConfig,
)

T = TypeVar("T")

log = logging.getLogger("lrsched.service")

#: How long an Idempotency-Key is held for a request still creating its job.
_PENDING_SECONDS = 30


class Keys:
    """Every Redis key the service uses, in one place."""

    def __init__(self, prefix: str = "lrsched") -> None:
        self.prefix = prefix
        #: Counter that orders jobs by creation.
        self.seq = f"{prefix}:seq"
        #: Sorted set: running job id -> lease expiry (Unix seconds).
        self.leases = f"{prefix}:leases"
        #: Sorted set: worker name -> last heartbeat (Unix seconds).
        self.workers = f"{prefix}:workers"
        #: Sorted set: ``"{job_id}:{attempt}"`` to put on the broker -> when it is due (Unix s).
        self.outbox = f"{prefix}:outbox"
        #: Sorted set: finished job id -> when it is deleted (Unix seconds).
        self.finished = f"{prefix}:finished"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def metrics(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:metrics"

    def owner_jobs(self, owner: str) -> str:
        return f"{self.prefix}:owner:{owner}:jobs"

    def owner_status(self, owner: str, status: JobStatus) -> str:
        return f"{self.prefix}:owner:{owner}:status:{status.value}"

    def idempotency(self, owner: str, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.prefix}:owner:{owner}:idempotency:{digest}"

    def worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"


class StoreError(Exception):
    """Base of the job store's errors; ``str()`` is a sentence for the client."""


class JobNotFound(StoreError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}; list yours with GET /jobs")
        self.job_id = job_id


class JobFinished(StoreError):
    def __init__(self, job_id: str, status: JobStatus) -> None:
        super().__init__(
            f"job {job_id} is already {status.value}; only a queued or running job can be cancelled"
        )
        self.job_id = job_id
        self.status = status


class IdempotencyMismatch(StoreError):
    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was already used with a different job configuration; "
            "send a new key for a new job, or resend the original body"
        )


class IdempotencyPending(StoreError):
    def __init__(self) -> None:
        super().__init__(
            "a request with this Idempotency-Key is still being processed; retry in a moment"
        )


class ReportRefused(StoreError):
    """The worker must stop this delivery: another attempt owns the job, or it has finished."""

    def __init__(self, message: str, status: JobStatus) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Enqueue:
    """A job attempt to put on the broker, with the config it runs."""

    job_id: str
    attempt: int
    config: dict[str, Any]


def _outbox_member(job_id: str, attempt: int) -> str:
    return f"{job_id}:{attempt}"


@dataclass(frozen=True)
class _Record:
    """A job hash, parsed."""

    fields: Mapping[str, str]

    def __getitem__(self, name: str) -> str:
        return self.fields[name]

    @property
    def status(self) -> JobStatus:
        return JobStatus(self.fields["status"])

    @property
    def attempt(self) -> int:
        return int(self.fields["attempt"])

    @property
    def seq(self) -> int:
        return int(self.fields["seq"])

    @property
    def owner(self) -> str:
        return self.fields["owner"]

    def time(self, name: str) -> float | None:
        value = self.fields.get(name, "")
        return float(value) if value else None


def _encodable(fields: Mapping[str, str]) -> dict[EncodableT, EncodableT]:
    return {key: value for key, value in fields.items()}


def _timestamp(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The creation sequence number a cursor stands for.

    Raises:
        ValueError: the cursor did not come from a ``next_cursor``.
    """
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("s"):
            raise ValueError(cursor)
        return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(
            f"cursor {cursor!r} is not one this service issued; pass a next_cursor from GET /jobs"
        ) from None


class JobStore:
    """The service's job records in Redis.

    Args:
        client: a Redis client with ``decode_responses=True``.
        keys: the key names (their prefix).
        lease_seconds: how long a claim or report keeps a running job's lease.
        max_attempts: attempts before a job whose workers keep dying fails.
        idempotency_ttl: seconds an Idempotency-Key is remembered.
        outbox_delay: how long after a submit the sweep enqueues the job itself, in case the
            request that created it died before it could (the route enqueues at once).
        finished_ttl: seconds a finished job is kept before :meth:`purge_finished` deletes it.
        clock: Unix time now (tests pass a fake one to expire leases without waiting).
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys | None = None,
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        idempotency_ttl: int = 24 * 3600,
        outbox_delay: float = 10.0,
        finished_ttl: float = 30 * 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.keys = keys or Keys()
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.idempotency_ttl = idempotency_ttl
        self.outbox_delay = outbox_delay
        self.finished_ttl = finished_ttl
        self.clock = clock

    # -- clients' side ------------------------------------------------------------------------

    def create(
        self, owner: str, config: TrainConfig, *, idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """Record a new queued job; with a key already used for the same config, return that job.

        The job is in the outbox, due ``outbox_delay`` from now: the caller enqueues it and then
        calls :meth:`enqueued`; if it never gets there, the sweep enqueues it.

        Returns:
            The job, and whether it was created now (False: an idempotent replay).

        Raises:
            IdempotencyMismatch: the key was used with another config.
        """
        config_json = config.model_dump_json()
        job_id = str(uuid.uuid4())
        if idempotency_key is not None:
            fingerprint = hashlib.sha256(config_json.encode()).hexdigest()
            key = self.keys.idempotency(owner, idempotency_key)
            # Held briefly until the job exists, so a request that dies half-way frees the key.
            if not self.redis.set(key, f"{job_id} {fingerprint}", nx=True, ex=_PENDING_SECONDS):
                existing_id, _, existing_fingerprint = str(self.redis.get(key) or "").partition(" ")
                if existing_fingerprint != fingerprint:
                    raise IdempotencyMismatch() if existing_fingerprint else IdempotencyPending()
                try:
                    return self.get(owner, existing_id), False
                except JobNotFound:
                    raise IdempotencyPending() from None
        now = self.clock()
        seq = int(self.redis.incr(self.keys.seq))
        fields: dict[str, str] = {
            "id": job_id,
            "owner": owner,
            "seq": str(seq),
            "status": JobStatus.QUEUED.value,
            "attempt": "1",
            "max_attempts": str(self.max_attempts),
            "epochs": str(config.epochs),
            "created_at": repr(now),
            "updated_at": repr(now),
            "step": "0",
            "config": config_json,
        }
        if idempotency_key is not None:  # deleted with the job
            fields["idempotency"] = self.keys.idempotency(owner, idempotency_key)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.job(job_id), mapping=_encodable(fields))
            pipe.zadd(self.keys.owner_jobs(owner), {job_id: seq})
            pipe.zadd(self.keys.owner_status(owner, JobStatus.QUEUED), {job_id: seq})
            pipe.zadd(self.keys.outbox, {_outbox_member(job_id, 1): now + self.outbox_delay})
            if idempotency_key is not None:
                pipe.expire(self.keys.idempotency(owner, idempotency_key), self.idempotency_ttl)
            pipe.execute()
        return self._job(_Record(fields), {}, config), True

    def get(self, owner: str | None, job_id: str) -> Job:
        """The job, if it exists and (when ``owner`` is given) belongs to ``owner``."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.job(job_id))
            pipe.hgetall(self.keys.metrics(job_id))
            fields, metrics = pipe.execute()
        if not fields or (owner is not None and fields["owner"] != owner):
            raise JobNotFound(job_id)
        return self._job(_Record(fields), metrics)

    def page(
        self,
        owner: str,
        *,
        statuses: Iterable[JobStatus] = (),
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """The owner's jobs, newest first, optionally only those in ``statuses``.

        Raises:
            ValueError: a cursor that this store did not issue.
        """
        below = f"({decode_cursor(cursor)}" if cursor else "+inf"
        wanted = sorted(set(statuses), key=lambda status: status.value)
        sets = (
            [self.keys.owner_status(owner, status) for status in wanted]
            if wanted
            else [self.keys.owner_jobs(owner)]
        )
        # Several sets in one MULTI: a job that changes status meanwhile is in exactly one of
        # them. (One set needs none, and so still reads while Redis refuses writes: OOM.)
        with self.redis.pipeline(transaction=len(sets) > 1) as pipe:
            for key in sets:
                pipe.zrevrangebyscore(key, below, "-inf", start=0, num=limit + 1, withscores=True)
            found = {item[0]: item for page in pipe.execute() for item in page}  # and no twice
            ranked = sorted(found.values(), key=lambda item: item[1], reverse=True)
        page = [str(job_id) for job_id, _ in ranked[:limit]]
        jobs = self._summaries(page)
        next_cursor = encode_cursor(int(ranked[limit - 1][1])) if len(ranked) > limit else None
        return JobPage(items=jobs, next_cursor=next_cursor)

    def cancel(self, owner: str, job_id: str) -> Job:
        """Cancel a queued job at once; ask a running one's worker to stop.

        Raises:
            JobNotFound: no such job for this owner.
            JobFinished: the job has already finished.
        """

        def decide(pipe: Pipeline, record: _Record, now: float) -> None:
            if record.owner != owner:
                raise JobNotFound(job_id)
            if record.status.finished:
                raise JobFinished(job_id, record.status)
            changes = {"updated_at": repr(now)}
            if not record.time("cancel_requested_at"):
                changes["cancel_requested_at"] = repr(now)
            pipe.multi()
            if record.status is JobStatus.QUEUED:
                self._move(pipe, record, JobStatus.CANCELLED, now)
            pipe.hset(self.keys.job(job_id), mapping=_encodable(changes))

        self._transact(job_id, decide)
        return self.get(owner, job_id)

    # -- workers' side ------------------------------------------------------------------------

    def claim(self, job_id: str, attempt: int, worker: str, nonce: str) -> Claim:
        """Move a queued job to running for ``attempt`` and grant a lease.

        A retry of the same claim (same ``nonce``) is granted again; any other delivery of a job
        that is running, finished, or queued for another attempt is refused.

        Raises:
            ReportRefused: this delivery must not run.
            JobNotFound: no such job.
        """

        def decide(pipe: Pipeline, record: _Record, now: float) -> Claim:
            status = record.status
            if status.finished:
                raise ReportRefused(f"job {job_id} is already {status.value}", status)
            if attempt != record.attempt:
                raise ReportRefused(
                    f"attempt {attempt} of job {job_id} is stale: the job is on attempt "
                    f"{record.attempt}",
                    status,
                )
            if status is JobStatus.RUNNING and record.fields.get("nonce") != nonce:
                raise ReportRefused(
                    f"attempt {attempt} of job {job_id} is already running on "
                    f"{record.fields.get('worker', '?')}",
                    status,
                )
            pipe.multi()
            if status is JobStatus.QUEUED:
                self._move(pipe, record, JobStatus.RUNNING, now)
                pipe.hset(
                    self.keys.job(job_id),
                    mapping={"started_at": repr(now), "worker": worker, "nonce": nonce},
                )
            self._renew(pipe, job_id, now)
            return Claim(job_id=job_id, attempt=attempt, lease_seconds=self.lease_seconds)

        return self._transact(job_id, decide)

    def progress(
        self, job_id: str, attempt: int, step: int | None, steps: int | None
    ) -> ReportReply:
        """Record how far the attempt got and renew its lease."""

        def decide(pipe: Pipeline, record: _Record, now: float) -> ReportReply:
            self._check_current(record, attempt)
            pipe.multi()
            self._steps(pipe, job_id, step, steps)
            self._renew(pipe, job_id, now)
            return self._reply(record)

        return self._transact(job_id, decide)

    def record_epoch(
        self,
        job_id: str,
        attempt: int,
        metrics: EpochMetrics,
        step: int | None = None,
        steps: int | None = None,
    ) -> ReportReply:
        """Upsert one epoch's metrics (keyed by job, attempt and epoch) and renew the lease."""

        def decide(pipe: Pipeline, record: _Record, now: float) -> ReportReply:
            self._check_current(record, attempt)
            pipe.multi()
            pipe.hset(
                self.keys.metrics(job_id),
                f"{attempt}:{metrics.epoch}",
                metrics.model_dump_json(),
            )
            self._steps(pipe, job_id, step, steps)
            self._renew(pipe, job_id, now)
            return self._reply(record)

        return self._transact(job_id, decide)

    def finish(
        self,
        job_id: str,
        attempt: int,
        status: FinalStatus,
        error: str | None = None,
        step: int | None = None,
        steps: int | None = None,
    ) -> ReportReply:
        """End the attempt (and the job). Repeating the same result is a no-op.

        A run that succeeded after a client asked to cancel it (the cancel came after its last
        report, so the worker never heard) ends ``cancelled``, with its metrics: the client was
        told it would stop, and a cancel is never lost. A failure stays a failure.
        """
        reported = JobStatus(status)

        def decide(pipe: Pipeline, record: _Record, now: float) -> ReportReply:
            final = reported
            if final is JobStatus.SUCCEEDED and record.time("cancel_requested_at"):
                final = JobStatus.CANCELLED
            if record.status is final and record.attempt == attempt:
                return self._reply(record)  # a retried post of a result already recorded
            self._check_current(record, attempt)
            pipe.multi()
            self._steps(pipe, job_id, step, steps)
            self._move(pipe, record, final, now, error=error if final is JobStatus.FAILED else None)
            return ReportReply(
                status=final,
                cancel=bool(record.time("cancel_requested_at")),
                lease_seconds=self.lease_seconds,
            )

        return self._transact(job_id, decide)

    def expire_leases(self) -> list[Enqueue]:
        """Deal with every running job whose worker stopped reporting (the service owns recovery).

        A job with attempts left goes back to the queue as the next attempt (its metrics so far are
        dropped, so the record ends with one set) and into the outbox, due now; one whose cancel
        was asked ends cancelled; one with no attempts left fails. A record that cannot be read
        is logged and skipped, so it cannot stop the recovery of the others.

        Returns:
            The attempts it queued (the outbox has them; :meth:`due_enqueues` hands them out).
        """
        now = self.clock()
        requeues: list[Enqueue] = []
        for member in self.redis.zrangebyscore(self.keys.leases, "-inf", now):
            job_id = str(member)

            def decide(pipe: Pipeline, record: _Record, now: float) -> Enqueue | None:
                lease = record.time("lease_expires_at") or 0.0
                if record.status is not JobStatus.RUNNING:
                    pipe.multi()
                    pipe.zrem(self.keys.leases, record["id"])
                    return None
                if lease > now:
                    return None
                pipe.multi()
                if record.time("cancel_requested_at"):
                    self._move(pipe, record, JobStatus.CANCELLED, now)
                    return None
                if record.attempt >= int(record["max_attempts"]):
                    self._move(
                        pipe,
                        record,
                        JobStatus.FAILED,
                        now,
                        error=(
                            f"the worker running attempt {record.attempt} of "
                            f"{record['max_attempts']} stopped reporting (no report for "
                            f"{self.lease_seconds:g} s); it was probably killed, e.g. out of "
                            "memory: check the worker's log, then submit the job again"
                        ),
                    )
                    return None
                self._move(pipe, record, JobStatus.QUEUED, now)
                key = self.keys.job(record["id"])
                pipe.hset(key, mapping={"attempt": str(record.attempt + 1), "step": "0"})
                pipe.hdel(key, "started_at", "worker", "nonce", "steps", "lease_expires_at")
                pipe.delete(self.keys.metrics(record["id"]))
                pipe.zadd(self.keys.outbox, {_outbox_member(record["id"], record.attempt + 1): now})
                return Enqueue(record["id"], record.attempt + 1, json.loads(record["config"]))

            try:
                requeue = self._transact(job_id, decide, now=now)
            except JobNotFound:
                self.redis.zrem(self.keys.leases, job_id)
                continue
            except redis.RedisError:
                raise
            except Exception:
                log.exception("job %s: its lease could not be checked; skipped", job_id)
                continue
            if requeue is not None:
                requeues.append(requeue)
        return requeues

    def due_enqueues(self, limit: int = 100) -> list[Enqueue]:
        """The outbox's attempts that are due, oldest first, each still queued on that attempt.

        An entry whose job was cancelled, claimed, moved on to another attempt or deleted needs no
        message any more: it is removed here. One whose record cannot be read is logged, left.
        """
        now = self.clock()
        due: list[Enqueue] = []
        for raw in self.redis.zrangebyscore(self.keys.outbox, "-inf", now, start=0, num=limit):
            member = str(raw)
            job_id, _, attempt_text = member.rpartition(":")
            try:
                fields = cast("dict[str, str]", self.redis.hgetall(self.keys.job(job_id)))
                record = _Record(fields) if fields else None
                if (
                    record is None
                    or record.status is not JobStatus.QUEUED
                    or str(record.attempt) != attempt_text
                ):
                    self.redis.zrem(self.keys.outbox, member)
                    continue
                due.append(Enqueue(job_id, record.attempt, json.loads(record["config"])))
            except redis.RedisError:
                raise
            except Exception:
                log.exception("job %s: its outbox entry %r could not be read; left", job_id, member)
        return due

    def enqueued(self, job_id: str, attempt: int) -> None:
        """The broker took ``attempt`` of the job: take it out of the outbox."""
        self.redis.zrem(self.keys.outbox, _outbox_member(job_id, attempt))

    def purge_finished(self, limit: int = 100) -> int:
        """Delete the finished jobs kept longer than ``finished_ttl``: their records, metrics,
        listing entries and Idempotency-Key.

        Returns:
            How many jobs it deleted.
        """
        now = self.clock()
        purged = 0
        for member in self.redis.zrangebyscore(self.keys.finished, "-inf", now, start=0, num=limit):
            job_id = str(member)

            try:
                purged += self._transact(job_id, self._purge, now=now)
            except JobNotFound:
                self.redis.zrem(self.keys.finished, job_id)
            except redis.RedisError:
                raise
            except Exception:
                log.exception("job %s: could not be purged; skipped", job_id)
        return purged

    def _purge(self, pipe: Pipeline, record: _Record, now: float) -> bool:
        job_id = record["id"]
        pipe.multi()
        pipe.zrem(self.keys.finished, job_id)
        if not record.status.finished:
            return False  # never happens: only a finish schedules a purge
        pipe.delete(self.keys.job(job_id), self.keys.metrics(job_id))
        if record.fields.get("idempotency"):
            pipe.delete(record["idempotency"])
        pipe.zrem(self.keys.owner_jobs(record.owner), job_id)
        pipe.zrem(self.keys.owner_status(record.owner, record.status), job_id)
        pipe.zrem(self.keys.leases, job_id)
        return True

    def worker_seen(self, name: str, info: Mapping[str, str]) -> None:
        """Note that a worker is alive (``/readyz`` counts recent ones)."""
        now = self.clock()
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.workers, {name: now})
            pipe.hset(self.keys.worker(name), mapping=_encodable({**info, "seen_at": repr(now)}))
            pipe.expire(self.keys.worker(name), 24 * 3600)
            pipe.execute()

    def worker_gone(self, name: str) -> None:
        """A worker said goodbye: it no longer counts as alive."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.keys.workers, name)
            pipe.delete(self.keys.worker(name))
            pipe.execute()

    def live_workers(self, within_seconds: float) -> int:
        """How many workers sent a heartbeat in the last ``within_seconds``."""
        now = self.clock()
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.keys.workers, "-inf", now - 24 * 3600)
            pipe.zcount(self.keys.workers, now - within_seconds, "+inf")
            _, count = pipe.execute()
        return int(count)

    def ping(self) -> bool:
        return bool(self.redis.ping())

    # -- helpers ------------------------------------------------------------------------------

    def _transact(
        self,
        job_id: str,
        decide: Callable[[Pipeline, _Record, float], T],
        *,
        now: float | None = None,
    ) -> T:
        """Run ``decide`` on the job's current record inside WATCH/MULTI/EXEC, retrying on races.

        ``decide`` reads the record, raises to refuse, or calls ``pipe.multi()`` and queues writes.
        """
        key = self.keys.job(job_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    fields = cast("dict[str, str]", pipe.hgetall(key))
                    if not fields:
                        raise JobNotFound(job_id)
                    result = decide(pipe, _Record(fields), self.clock() if now is None else now)
                    if pipe.explicit_transaction:
                        pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def _move(
        self,
        pipe: Pipeline,
        record: _Record,
        status: JobStatus,
        now: float,
        *,
        error: str | None = None,
    ) -> None:
        """Queue the writes that move a job to ``status``, keeping the listings in step."""
        job_id, owner = record["id"], record.owner
        changes = {"status": status.value, "updated_at": repr(now)}
        if status.finished:
            changes["finished_at"] = repr(now)
            pipe.zadd(self.keys.finished, {job_id: now + self.finished_ttl})
        if error is not None:
            changes["error"] = error
        pipe.hset(self.keys.job(job_id), mapping=_encodable(changes))
        pipe.zrem(self.keys.owner_status(owner, record.status), job_id)
        pipe.zadd(self.keys.owner_status(owner, status), {job_id: record.seq})
        if status is not JobStatus.RUNNING:
            pipe.zrem(self.keys.leases, job_id)

    def _steps(self, pipe: Pipeline, job_id: str, step: int | None, steps: int | None) -> None:
        changes = {
            name: str(value)
            for name, value in (("step", step), ("steps", steps))
            if value is not None
        }
        if changes:
            pipe.hset(self.keys.job(job_id), mapping=_encodable(changes))

    def _renew(self, pipe: Pipeline, job_id: str, now: float) -> None:
        expires = now + self.lease_seconds
        pipe.hset(
            self.keys.job(job_id),
            mapping={"lease_expires_at": repr(expires), "updated_at": repr(now)},
        )
        pipe.zadd(self.keys.leases, {job_id: expires})

    def _check_current(self, record: _Record, attempt: int) -> None:
        job_id = record["id"]
        if record.status.finished:
            raise ReportRefused(f"job {job_id} is already {record.status.value}", record.status)
        if attempt != record.attempt or record.status is not JobStatus.RUNNING:
            raise ReportRefused(
                f"attempt {attempt} of job {job_id} is stale: the job is {record.status.value} "
                f"on attempt {record.attempt}",
                record.status,
            )

    def _reply(self, record: _Record) -> ReportReply:
        return ReportReply(
            status=record.status,
            cancel=bool(record.time("cancel_requested_at")),
            lease_seconds=self.lease_seconds,
        )

    def _summaries(self, job_ids: list[str]) -> list[JobSummary]:
        """The jobs without their metrics: only the names of the metrics fields are read, to count
        the current attempt's epochs."""
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self.keys.job(job_id))
                pipe.hkeys(self.keys.metrics(job_id))
            replies = pipe.execute()
        summaries = []
        for fields, names in zip(replies[::2], replies[1::2], strict=True):
            if not fields:
                continue  # purged since the listing was read
            record = _Record(fields)
            prefix = f"{record.attempt}:"
            epochs = sum(1 for name in names if str(name).startswith(prefix))
            summaries.append(JobSummary(**self._summary_fields(record, epochs)))
        return summaries

    def _job(
        self, record: _Record, metrics: Mapping[str, str], config: TrainConfig | None = None
    ) -> Job:
        prefix = f"{record.attempt}:"
        epochs = sorted(
            (
                EpochMetrics.model_validate_json(value)
                for key, value in metrics.items()
                if key.startswith(prefix)
            ),
            key=lambda m: m.epoch,
        )
        return Job(**self._summary_fields(record, len(epochs), config), metrics=epochs)

    def _summary_fields(
        self, record: _Record, epochs_done: int, config: TrainConfig | None = None
    ) -> dict[str, Any]:
        steps = record.fields.get("steps")
        return {
            "id": record["id"],
            "owner": record.owner,
            "status": record.status,
            "attempt": record.attempt,
            "max_attempts": int(record["max_attempts"]),
            "created_at": _timestamp(record.time("created_at")) or datetime.now(UTC),
            "updated_at": _timestamp(record.time("updated_at")) or datetime.now(UTC),
            "started_at": _timestamp(record.time("started_at")),
            "finished_at": _timestamp(record.time("finished_at")),
            "cancel_requested_at": _timestamp(record.time("cancel_requested_at")),
            "progress": JobProgress(
                epoch=epochs_done,
                epochs=int(record["epochs"]),
                step=int(record.fields.get("step", "0")),
                steps=int(steps) if steps else None,
            ),
            "error": record.fields.get("error") or None,
            "config": config or TrainConfig.model_validate_json(record["config"]),
        }
