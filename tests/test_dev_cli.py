"""``lrsched dev``: the README's first command brings up the whole stack and Ctrl-C takes it down.

Run as a user would (``python -m service.cli dev``, which is what the ``lrsched`` script calls):
submit a job on the synthetic dataset, poll it, read its metrics; Ctrl-C; no process is left; a
second start finds the job again (Redis's append-only file is in the data dir).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from service.cli import free_port
from tests.servers import REPO

JOB = {
    "schedule": {"kind": "constant", "step_size": 0.01},
    "epochs": 2,
    "batch_size": 16,
    "dataset": "synthetic",
    "max_train_examples": 32,
    "max_eval_examples": 16,
}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line or environment mentions ``text`` (the data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@contextmanager
def dev(port: int, data_dir: Path, log: Path, cache: Path) -> Iterator[list[int]]:
    """Run ``lrsched dev`` until it serves jobs; yield the pids it started; Ctrl-C it after."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    seen = log.read_text() if log.exists() else ""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "dev", "--port", str(port),
             "--data-dir", str(data_dir)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            started = re.search(r"lrsched dev: (.*pid.*)\n", log.read_text()[len(seen) :])
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                ready = False
            if started and ready:
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        pids = [int(pid) for pid in re.findall(r"pid (\d+)", started.group(1))]
        assert len(pids) == 3 and all(alive(pid) for pid in pids), log.read_text()
        yield pids
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert code == 0, log.read_text()


def test_dev_runs_a_job_then_ctrl_c_leaves_no_process_and_a_restart_keeps_the_job(
    tmp_path: Path, compile_cache: Path
) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "dev.log", free_port()
    url = f"http://127.0.0.1:{port}"
    with dev(port, data_dir, log, compile_cache) as pids:
        submitted = httpx.post(f"{url}/jobs", json=JOB, timeout=30)
        assert submitted.status_code == 202, submitted.text
        location = submitted.headers["Location"]
        deadline = time.monotonic() + 120
        while (job := httpx.get(f"{url}{location}", timeout=10).json())["status"] in {
            "queued", "running",
        }:  # fmt: skip
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["status"] == "succeeded", job
        assert [record["epoch"] for record in job["metrics"]] == [0, 1]
        busy = httpx.post(f"{url}/jobs", json={**JOB, "epochs": 1000}, timeout=30).json()["id"]
        while httpx.get(f"{url}/jobs/{busy}", timeout=10).json()["progress"]["step"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        stopping = time.monotonic()  # Ctrl-C with a job running: no waiting for it to end
    assert time.monotonic() - stopping < 20
    assert not [pid for pid in pids if alive(pid)], log.read_text()
    assert processes_mentioning(str(data_dir)) == []
    assert (data_dir / "redis").is_dir()

    with dev(port, data_dir, log, compile_cache) as pids:
        again = httpx.get(f"{url}{location}", timeout=10).json()
        assert again["status"] == "succeeded" and again["metrics"] == job["metrics"]
    assert not [pid for pid in pids if alive(pid)]
    assert processes_mentioning(str(data_dir)) == []
