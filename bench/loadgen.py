"""A small HTTP/1.1 keep-alive load generator on asyncio streams (loopback only).

httpx costs more CPU per request than the server under test on a 2-core machine; this client only
writes a prepared request and reads the Content-Length body, so the server is what gets measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    wall: float = 0.0


def request_bytes(path: str, body: bytes, accept: str = "application/json") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Accept: {accept}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return status, await reader.readexactly(length)


async def _client(
    port: int, make: Callable[[int], bytes], count: int, start: int, result: Result,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index in range(start, start + count):
            payload = make(index)
            begin = time.perf_counter()
            writer.write(payload)
            await writer.drain()
            status, _ = await _read_response(reader)
            result.latencies.append(time.perf_counter() - begin)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status != 200:
                result.errors += 1
    finally:
        writer.close()


def run(port: int, make: Callable[[int], bytes], total: int, concurrency: int, timeout: float = 300.0) -> Result:
    """Send `total` requests from `concurrency` keep-alive connections; bounded by `timeout`."""
    result = Result()
    per_client = total // concurrency

    async def main() -> None:
        begin = time.perf_counter()
        tasks = [_client(port, make, per_client, i * per_client, result) for i in range(concurrency)]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
        result.wall = time.perf_counter() - begin

    asyncio.run(main())
    return result


async def one(port: int, payload: bytes) -> tuple[int, bytes, float]:
    """One request on a fresh connection: (status, body, seconds)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        begin = time.perf_counter()
        writer.write(payload)
        await writer.drain()
        status, body = await _read_response(reader)
        return status, body, time.perf_counter() - begin
    finally:
        writer.close()
