"""Benchmark the job API on the real stack: a private redis-server, the API under uvicorn, a worker.

Measures submit latency (p50/p99), status-poll latency, 500 submits back to back (time, errors) and
queue-to-start (submit to the worker's claim) with an idle worker. ``GET /healthz`` on the same
server, measured in the same run, is the floor: what any request costs here before the job code
does anything. Prints a markdown table (copy it into BENCHMARKS.md).

    python bench/jobs.py              # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.cli import (  # noqa: E402
    api_command,
    free_port,
    start_redis,
    stop,
    wait_for_http,
    wait_for_redis,
    worker_command,
)

JOB = {
    "schedule": {
        "kind": "exponential_decay",
        "step_size": 0.01,
        "decay_steps": 5,
        "decay_rate": 0.9,
    },
    "schedule_unit": "step",
    "epochs": 2,
    "batch_size": 16,
    "dataset": "synthetic",
    "max_train_examples": 32,
    "max_eval_examples": 16,
}


def timed(call: Callable[[], httpx.Response], expect: int) -> tuple[float, bool]:
    started = time.perf_counter()
    try:
        ok = call().status_code == expect
    except httpx.HTTPError:
        ok = False
    return (time.perf_counter() - started) * 1000, ok


def latencies(call: Callable[[], httpx.Response], expect: int, n: int) -> tuple[np.ndarray, int]:
    results = [timed(call, expect) for _ in range(n)]
    return np.array([ms for ms, _ in results]), sum(not ok for _, ok in results)


def wait_ready(client: httpx.Client, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not come up")
        time.sleep(0.2)


def run_job(client: httpx.Client) -> dict[str, object]:
    job_id = client.post("/jobs", json=JOB).json()["id"]
    while (job := client.get(f"/jobs/{job_id}").json())["status"] in {"queued", "running"}:
        time.sleep(0.01)
    if job["status"] != "succeeded":
        raise SystemExit(f"a benchmark job did not succeed: {job}")
    return dict(job)


def seconds_between(job: dict[str, object], start: str, end: str) -> float:
    return (
        datetime.fromisoformat(str(job[end])) - datetime.fromisoformat(str(job[start]))
    ).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=300, help="submits timed one by one")
    parser.add_argument("--burst", type=int, default=500, help="submits back to back")
    parser.add_argument("--polls", type=int, default=500)
    parser.add_argument("--runs", type=int, default=10, help="jobs timed from queue to start")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="lrsched-bench-"))
    redis_port, api_port = free_port(), free_port()
    url = f"http://127.0.0.1:{api_port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "LRSCHED_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "LRSCHED_SERVICE_URL": url,
        "LRSCHED_WORKER_TOKEN": secrets.token_urlsafe(16),
        "LRSCHED_HEARTBEAT_SECONDS": "1",
    }
    children: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        store = start_redis(redis_port, folder / "redis", persist=False)
        children.append((store, signal.SIGTERM))
        wait_for_redis(redis_port, store)
        command = [*api_command("127.0.0.1", api_port), "--log-level", "warning", "--no-access-log"]
        api = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
        children.append((api, signal.SIGTERM))
        wait_for_http(f"{url}/healthz", api)
        with httpx.Client(base_url=url, timeout=30) as client:
            latencies(lambda: client.post("/jobs", json=JOB), 202, 30)  # warm: compile, connect
            floor, _ = latencies(lambda: client.get("/healthz"), 200, args.polls)
            submit, submit_errors = latencies(
                lambda: client.post("/jobs", json=JOB), 202, args.submits
            )
            started = time.perf_counter()
            _, burst_errors = latencies(lambda: client.post("/jobs", json=JOB), 202, args.burst)
            burst_seconds = time.perf_counter() - started
            job_id = client.get("/jobs", params={"limit": 1}).json()["items"][0]["id"]
            poll, poll_errors = latencies(lambda: client.get(f"/jobs/{job_id}"), 200, args.polls)
            # Nobody will run those: drop their messages before a worker starts.
            redis.Redis(port=redis_port).delete("gpu")

            worker = subprocess.Popen(
                worker_command("bench@%h", "warning"), env=env, cwd=ROOT, start_new_session=True
            )
            children.append((worker, signal.SIGQUIT))
            wait_ready(client)
            run_job(client)  # warm: the train step compiles on the first job
            jobs = [run_job(client) for _ in range(args.runs)]
            to_start = np.array([seconds_between(j, "created_at", "started_at") for j in jobs])
            total = np.array([seconds_between(j, "created_at", "finished_at") for j in jobs])
            done_poll, done_errors = latencies(
                lambda: client.get(f"/jobs/{jobs[-1]['id']}"), 200, args.polls
            )

        p50 = lambda a: float(np.percentile(a, 50))  # noqa: E731
        p99 = lambda a: float(np.percentile(a, 99))  # noqa: E731
        rows = [
            ("`GET /healthz` p50 (the floor)", f"{p50(floor):.2f} ms"),
            (
                f"`POST /jobs` submit p50 / p99 ({args.submits} one by one)",
                f"{p50(submit):.2f} / {p99(submit):.2f} ms ({p50(submit) / p50(floor):.1f}x floor)"
                f", {submit_errors} errors",
            ),
            (
                f"{args.burst} submits back to back",
                f"{burst_seconds:.2f} s ({args.burst / burst_seconds:.0f} jobs/s), "
                f"{burst_errors} errors",
            ),
            (
                f"`GET /jobs/{{id}}` poll p50, queued job ({args.polls})",
                f"{p50(poll):.2f} ms ({p50(poll) / p50(floor):.1f}x floor), {poll_errors} errors",
            ),
            (
                f"`GET /jobs/{{id}}` poll p50, finished job with {len(jobs[-1]['metrics'])} "
                "epoch records",
                f"{p50(done_poll):.2f} ms, {done_errors} errors",
            ),
            (
                f"queue to start p50 / max ({args.runs} jobs, idle worker)",
                f"{p50(to_start) * 1000:.0f} / {to_start.max() * 1000:.0f} ms",
            ),
            (
                "submit to finished p50 (tiny synthetic job, 2 epochs)",
                f"{p50(total) * 1000:.0f} ms",
            ),
        ]
        print("| measure | result |\n|---|---|")
        for name, value in rows:
            print(f"| {name} | {value} |")
    finally:
        for child, sig in reversed(children):
            stop(child, sig)


if __name__ == "__main__":
    main()
