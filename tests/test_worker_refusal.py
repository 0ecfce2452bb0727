"""A worker whose broker settings differ from the API's never runs a job, even if it started while
the API was unreachable (so the check at start could not refuse it).

The claim carries the worker's visibility timeout and the service refuses a mismatch; the worker
then hands the message back to the queue and shuts down; a well-configured worker runs the job.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import finished, poll_job
from tests.servers import Api, Proc

TINY = {
    "schedule": {"kind": "constant", "step_size": 0.01},
    "epochs": 1,
    "batch_size": 16,
    "dataset": "synthetic",
    "max_train_examples": 32,
    "max_eval_examples": 16,
}


def test_a_misconfigured_worker_that_started_while_the_api_was_down_never_runs_a_job(
    start_api: Callable[..., Api], start_worker: Callable[..., Proc]
) -> None:
    api = start_api()
    job_id = api.client.post("/jobs", json=TINY).json()["id"]
    api.stop()
    misfit = start_worker(api, "misfit", visibility_timeout=200)  # the API's is 150
    assert "service not reachable yet" in misfit.tail(200)  # the start check could not refuse it
    api.start()
    misfit.process.wait(timeout=60)  # it shuts itself down ...
    log = misfit.tail(400)
    assert "lrsched worker shutting down: the service refuses this worker" in log, log
    assert "LRSCHED_VISIBILITY_TIMEOUT" in log
    job = api.client.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["attempt"], job["started_at"]) == ("queued", 1, None)  # never ran
    start_worker(api, "fitting")  # ... and the message it took went back on the queue
    done = poll_job(api, job_id, finished, timeout=60)
    assert done["status"] == "succeeded" and done["attempt"] == 1, done
