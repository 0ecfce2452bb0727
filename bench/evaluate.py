"""Benchmark POST /schedules/evaluate: ours against a naive endpoint, side by side in one run.

Both servers run under uvicorn (one worker each) on loopback; requests alternate between them so
machine noise hits both alike. Prints a markdown table (copy it into BENCHMARKS.md).

    python bench/evaluate.py            # about two minutes on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(app: str, app_dir: Path) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "LRSCHED_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--app-dir", str(app_dir), "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env=env,
    )
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def spec(rng: np.random.Generator) -> dict[str, object]:
    warmup = int(rng.integers(1, 500))
    return {
        "kind": "warmup_cosine_decay_schedule",
        "init_value": float(rng.uniform(0, 1e-4)),
        "peak_value": float(rng.uniform(1e-3, 1e-1)),
        "warmup_steps": warmup,
        "decay_steps": warmup + int(rng.integers(1, 10**6)),
        "end_value": float(rng.uniform(0, 1e-5)),
    }


def body(rng: np.random.Generator, steps: object) -> bytes:
    return orjson.dumps({"schedule": spec(rng), "steps": steps})


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


async def alternate(ports: dict[str, int], make: dict[str, object], rounds: int) -> dict[str, list[float]]:
    """Sequential requests on keep-alive connections, alternating between the servers."""
    streams = {name: await asyncio.open_connection("127.0.0.1", port) for name, port in ports.items()}
    times: dict[str, list[float]] = {name: [] for name in ports}
    try:
        for index in range(rounds):
            for name, (reader, writer) in streams.items():
                payload = make[name](index)  # type: ignore[operator]
                begin = time.perf_counter()
                writer.write(payload)
                await writer.drain()
                status, _ = await loadgen._read_response(reader)
                times[name].append(time.perf_counter() - begin)
                assert status == 200, (name, status)
    finally:
        for _, writer in streams.values():
            writer.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=100, help="latency samples per server")
    parser.add_argument("--load", type=int, default=6400, help="requests in the concurrency test")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    steps_1k = list(range(1000))
    rows: list[tuple[str, str, str, str]] = []
    with server("service.app:app", ROOT) as ours, server("naive_app:app", ROOT / "bench") as naive:
        ports = {"ours": ours, "naive": naive}
        path = "/schedules/evaluate"
        json_1k = {n: (lambda i: loadgen.request_bytes(path, body(rng, steps_1k))) for n in ports}
        asyncio.run(alternate(ports, json_1k, 3))  # warm up: first compilations
        t = asyncio.run(alternate(ports, json_1k, args.rounds))
        rows.append((
            "1,000 steps (list), new numbers every request: p50 / p99 ms",
            f"{pct(t['ours'], 50):.2f} / {pct(t['ours'], 99):.2f}",
            f"{pct(t['naive'], 50):.1f} / {pct(t['naive'], 99):.1f}",
            f"{pct(t['naive'], 50) / pct(t['ours'], 50):.0f}x faster",
        ))
        for accept, label in (("application/json", "JSON"), ("application/octet-stream", "octet-stream")):
            million = {n: (lambda i, a=accept: loadgen.request_bytes(path, body(rng, {"stop": 1_000_000}), a)) for n in ports}
            asyncio.run(alternate(ports, million, 2))
            t = asyncio.run(alternate(ports, million, 15))
            rows.append((
                f"1,000,000 steps (range) as {label}: p50 / p99 ms",
                f"{pct(t['ours'], 50):.1f} / {pct(t['ours'], 99):.1f}",
                f"{pct(t['naive'], 50):.1f} / {pct(t['naive'], 99):.1f}",
                f"{pct(t['naive'], 50) / pct(t['ours'], 50):.1f}x faster",
            ))
        small = [loadgen.request_bytes(path, body(rng, list(range(100)))) for _ in range(512)]
        results = {}
        for name, port, total in (("ours", ours, args.load), ("naive", naive, 320)):
            loadgen.run(port, lambda i: small[i % 512], 64, 32)  # warm up
            results[name] = loadgen.run(port, lambda i: small[i % 512], total, 32)
        o, n = results["ours"], results["naive"]
        rows.append((
            "100 steps, 32 concurrent clients: requests/s",
            f"{len(o.latencies) / o.wall:.0f}",
            f"{len(n.latencies) / n.wall:.0f}",
            f"{(len(o.latencies) / o.wall) / (len(n.latencies) / n.wall):.0f}x more",
        ))
        rows.append((
            "  same: p50 / p99 ms, errors",
            f"{pct(o.latencies, 50):.1f} / {pct(o.latencies, 99):.1f}, {o.errors} errors of {len(o.latencies)}",
            f"{pct(n.latencies, 50):.0f} / {pct(n.latencies, 99):.0f}, {n.errors} errors of {len(n.latencies)}",
            "",
        ))
    print(f"\nmachine: {os.cpu_count()} cores; uvicorn, one worker per server; python {sys.version.split()[0]}\n")
    print("| measurement | lrsched | naive (optax, jit per request) | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
