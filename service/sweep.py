"""The API's background recovery (DESIGN §3: the service owns recovery).

Every ``sweep_seconds`` each API process:

1. re-queues the running jobs whose lease expired (their worker stopped reporting) as their next
   attempt, into the job store's outbox;
2. puts the outbox's due attempts on the broker, removing each only once the broker took it;
3. deletes the finished jobs kept longer than their retention (``finished_job_ttl_seconds``).

Leases get a grace period of ``grace`` seconds (the lease length) after this process starts and
after each sweep that could not reach Redis: while the API or Redis was down no worker could renew
its lease, so an expiry seen then says nothing about the worker. The grace lets the workers'
retried reports land before any lease is judged.

The loop never dies: a Redis or broker outage is a one-line warning and a retry at the next round;
anything else is logged with its traceback, and the next round runs all the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import anyio.to_thread
import redis

from service.queue import JobQueue, QueueUnavailable
from service.store import JobStore

log = logging.getLogger("lrsched.service")

#: Errors that mean "Redis or the broker is unavailable": a warning, not a traceback.
_OUTAGES = (redis.RedisError, QueueUnavailable)


class Sweeper:
    """One API process's lease sweep and outbox drain.

    Args:
        store: the job store.
        queue: where attempts are enqueued.
        grace: seconds after start, and after a sweep that could not reach Redis, before any lease
            may expire (the lease length).
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        store: JobStore,
        queue: JobQueue,
        *,
        grace: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.queue, self.grace, self.clock = store, queue, grace, clock
        self._expire_from: float | None = None

    @property
    def in_grace(self) -> bool:
        """Whether leases are still in their grace period (none may expire yet)."""
        return self._expire_from is None or self.clock() < self._expire_from

    def run_once(self) -> None:
        """One round: expire leases (unless in grace), drain the outbox, purge old jobs."""
        if self._expire_from is None:
            self._expire_from = self.clock() + self.grace
        if not self.in_grace:
            self._expire_leases()
        self._drain()
        self._purge()

    async def run(self, every: float) -> None:
        """Sweep every ``every`` seconds until cancelled."""
        while True:
            try:
                await anyio.to_thread.run_sync(self.run_once)
            except Exception:  # run_once logs its own; this is the last line of defence
                log.exception("lease sweep failed; it runs again in %g s", every)
            await asyncio.sleep(every)

    def _expire_leases(self) -> None:
        try:
            requeued = self.store.expire_leases()
        except redis.RedisError as error:
            # No worker could renew a lease meanwhile: judge none until they have had the chance.
            self._expire_from = self.clock() + self.grace
            log.warning(
                "lease sweep skipped (%s); no lease expires for the next %g s", error, self.grace
            )
            return
        except Exception:
            log.exception("lease sweep failed")
            return
        for requeue in requeued:
            log.warning(
                "job %s: its worker stopped reporting; queued again as attempt %d",
                requeue.job_id,
                requeue.attempt,
            )

    def _drain(self) -> None:
        try:
            for due in self.store.due_enqueues():
                self.queue.enqueue(due.job_id, due.attempt, due.config)
                self.store.enqueued(due.job_id, due.attempt)
        except _OUTAGES as error:
            log.warning("outbox not drained (%s); the jobs stay queued and are retried", error)
        except Exception:
            log.exception("outbox not drained; the jobs stay queued and are retried")

    def _purge(self) -> None:
        try:
            purged = self.store.purge_finished()
        except redis.RedisError as error:
            log.warning("old jobs not purged (%s); retried at the next round", error)
        except Exception:
            log.exception("old jobs not purged")
        else:
            if purged:
                log.info("deleted %d finished job(s) past their retention", purged)
