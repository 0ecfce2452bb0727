"""Real servers for tests: the API under uvicorn and Celery workers, in subprocesses on loopback.

This is the one launcher the tests use (the fixtures in ``conftest.py`` wrap it). It starts the same
commands as ``lrsched serve`` / ``lrsched worker`` (``service.cli``), each in its own process group
with its output in a log file, and waits until the server answers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from service.cli import api_command, free_port, stop
from service.cli import worker_command as cli_worker_command

REPO = Path(__file__).absolute().parents[1]
WORKER_TOKEN = "test-worker-token"


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


def spawn(name: str, command: list[str], env: dict[str, str], folder: Path) -> Proc:
    log = folder / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Proc(name, process, log)


def wait_until(proc: Proc, ready: Callable[[], bool], what: str, timeout: float) -> None:
    """Wait for ``ready()``; fail with the process's log if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.name}: {what} not within {timeout:g} s:\n{proc.tail()}")
        time.sleep(0.1)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Api:
    """A running API (``uvicorn service.app:app``); it can be stopped and started on its port."""

    url: str
    port: int
    env: dict[str, str]
    folder: Path
    proc: Proc | None = None
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def start(self) -> None:
        command = [*api_command("127.0.0.1", self.port), "--log-level", "warning"]
        self.proc = spawn(f"api-{self.port}", command, self.env, self.folder)
        wait_until(self.proc, lambda: _healthy(self.url), "/healthz", 60)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def restart(self, *, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def close(self) -> None:
        self.client.close()
        self.stop()


def launch_api(redis_url: str, folder: Path, **settings: object) -> Api:
    """Run the API with ``settings`` (on top of the tests' defaults) and wait until it answers."""
    settings = {"sweep_seconds": 0.5, "worker_alive_seconds": 5, **settings}
    port = free_port()
    api = Api(f"http://127.0.0.1:{port}", port, stack_env(redis_url, **settings), folder)
    api.start()
    return api


def worker_command(name: str) -> list[str]:
    """``lrsched worker``'s command, without Celery's broker heartbeats (the tests kill workers)."""
    return [*cli_worker_command(name), "--without-heartbeat"]


def launch_worker(
    redis_url: str,
    folder: Path,
    api: Api,
    name: str,
    cache: Path,
    *,
    wait: bool = True,
    **settings: object,
) -> Proc:
    """Run a real Celery worker reporting to ``api``; with ``wait``, until it is ready."""
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
    proc = spawn(f"worker-{name}", worker_command(f"{name}@test"), env, folder)
    if wait:
        try:
            wait_until(proc, lambda: " ready." in proc.tail(200), "ready", 90)
        except BaseException:
            proc.kill()
            raise
    return proc
