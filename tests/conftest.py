"""Shared test configuration: strict JAX numerics, cheap compiles; and the real job stack.

The job fixtures run the real thing (DESIGN §3): a private redis-server per session on a free port,
the API under uvicorn in a subprocess, and Celery workers in subprocesses, all on loopback. Each is a
factory that closes what it built at teardown (arq's style).
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")

import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402

from service.cli import free_port, start_redis, stop, wait_for_redis  # noqa: E402
from tests.servers import Api, Proc, launch_api, launch_worker  # noqa: E402


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server for the whole session (no persistence: tests flush it)."""
    port = free_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis"), persist=False)
    try:
        wait_for_redis(port, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the session's Redis, emptied before each test.

    Kombu's own keys stay: a running producer declared its queue binding once and would lose its
    messages without it.
    """
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stale = [key for key in client.scan_iter(count=1000) if not str(key).startswith("_kombu.")]
    if stale:
        client.delete(*stale)
    yield client
    client.close()


@pytest.fixture(scope="session")
def evaluate_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A real API server with no Redis anywhere (evaluation must not need it), shared by the
    evaluate suites."""
    api = launch_api(f"redis://127.0.0.1:{free_port()}/0", tmp_path_factory.mktemp("evaluate-api"))
    try:
        with httpx.Client(base_url=api.url, timeout=60) as http:
            yield http
    finally:
        api.close()


@pytest.fixture
def client(evaluate_client: httpx.Client) -> httpx.Client:
    """The evaluate suites' client (job suites define their own `client`)."""
    return evaluate_client


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JAX compilation cache shared by the worker processes (a second worker compiles nothing)."""
    return tmp_path_factory.mktemp("jax-cache")


@pytest.fixture
def start_api(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Factory: ``start_api(**settings)`` runs an API; all are stopped at teardown."""
    started: list[Api] = []

    def start(**settings: object) -> Api:
        started.append(launch_api(redis_url, tmp_path, **settings))
        return started[-1]

    yield start
    for api in started:
        api.close()


@pytest.fixture
def start_worker(
    redis_url: str, tmp_path: Path, compile_cache: Path
) -> Iterator[Callable[..., Proc]]:
    """Factory: ``start_worker(api, name, **settings)``; every worker is killed at teardown."""
    started: list[Proc] = []

    def start(api: Api, name: str = "w1", **settings: object) -> Proc:
        started.append(launch_worker(redis_url, tmp_path, api, name, compile_cache, **settings))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


def finished(job: dict[str, Any]) -> bool:
    """Whether a job (as ``GET /jobs/{id}`` answers it) is in a final state."""
    return job["status"] in {"succeeded", "failed", "cancelled"}


def poll_job(
    api: Api, job_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 120.0
) -> dict[str, Any]:
    """GET the job until ``until(job)`` holds; fail with the last record after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not get there in {timeout:g} s: {job}")
        time.sleep(0.1)
