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

import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402

from service.cli import api_command, free_port, start_redis, stop, wait_for_redis  # noqa: E402
from service.cli import worker_command as cli_worker_command  # noqa: E402

REPO = Path(__file__).absolute().parents[1]
WORKER_TOKEN = "test-worker-token"


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
def compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JAX compilation cache shared by the worker processes (a second worker compiles nothing)."""
    return tmp_path_factory.mktemp("jax-cache")


def stack_env(redis_url: str, **settings: object) -> dict[str, str]:
    """The environment of an API or worker process: ``LRSCHED_*`` from ``settings``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "JAX_PLATFORMS": "cpu",
        "LRSCHED_REDIS_URL": redis_url,
        "LRSCHED_WORKER_TOKEN": WORKER_TOKEN,
        "LRSCHED_JOB_MAX_SECONDS": "120",
        "LRSCHED_VISIBILITY_TIMEOUT": "150",
        "LRSCHED_UNACKED_RESTORE_INTERVAL": "1",
    }
    env.update({f"LRSCHED_{name.upper()}": str(value) for name, value in settings.items()})
    return env


@dataclass
class Proc:
    """A server subprocess in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole process group: nothing gets to clean up."""
        stop(self.process, signal.SIGKILL, grace=5)

    def stop(self) -> None:
        stop(self.process, signal.SIGTERM, grace=10)


def _spawn(name: str, command: list[str], env: dict[str, str], folder: Path) -> Proc:
    log = folder / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Proc(name, process, log)


def _wait(proc: Proc, ready: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.name}: {what} not within {timeout:g} s:\n{proc.tail()}")
        time.sleep(0.1)


@dataclass
class Api:
    """A running API; ``restart()`` brings it back on the same port."""

    url: str
    port: int
    env: dict[str, str]
    folder: Path
    proc: Proc
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def close(self) -> None:
        self.client.close()
        self.proc.stop()

    def restart(self, *, down_for: float = 0.0) -> None:
        self.proc.stop()
        time.sleep(down_for)
        self.proc = _start_api_process(self.port, self.env, self.folder)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def _start_api_process(port: int, env: dict[str, str], folder: Path) -> Proc:
    command = [*api_command("127.0.0.1", port), "--log-level", "warning"]
    proc = _spawn(f"api-{port}", command, env, folder)
    _wait(proc, lambda: _healthy(f"http://127.0.0.1:{port}"), "/healthz", 60)
    return proc


def launch_api(redis_url: str, folder: Path, **settings: object) -> Api:
    """Run ``uvicorn service.app:app`` with ``settings`` (on top of the tests' defaults)."""
    settings = {"sweep_seconds": 0.5, "worker_alive_seconds": 5, **settings}
    port = free_port()
    env = stack_env(redis_url, **settings)
    return Api(f"http://127.0.0.1:{port}", port, env, folder, _start_api_process(port, env, folder))


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


def launch_worker(
    redis_url: str, folder: Path, api: Api, name: str, cache: Path, **settings: object
) -> Proc:
    """Run a real Celery worker (``lrsched worker``'s command) reporting to ``api``; wait for it."""
    settings = {
        "service_url": api.url,
        "heartbeat_seconds": 1,
        "progress_seconds": 0.5,
        "report_retry_seconds": 60,
        **settings,
    }
    env = {
        **stack_env(redis_url, **settings),
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    command = [*cli_worker_command(f"{name}@test"), "--without-heartbeat"]
    proc = _spawn(f"worker-{name}", command, env, folder)
    try:
        _wait(proc, lambda: " ready." in proc.tail(200), "ready", 90)
    except BaseException:
        proc.kill()
        raise
    return proc


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


def poll_job(
    api: Api, job_id: str, until: Callable[[dict[str, object]], bool], timeout: float = 120.0
) -> dict[str, object]:
    """GET the job until ``until(job)`` holds; fail with the last record after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.client.get(f"/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, object] = response.json()
        if until(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not get there in {timeout:g} s: {job}")
        time.sleep(0.1)
