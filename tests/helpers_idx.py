"""Test helpers for the dataset tests: tiny IDX datasets and a loopback file server.

The server is a real HTTP server on 127.0.0.1 (a thread in the test process). Each path it serves
has a behaviour: the whole body, a body cut off halfway (the connection closes early, after a
Content-Length promising all of it), other bytes than the published file, or 404.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import numpy as np

from lrsched.fetch import IdxDataset, RemoteFile
from lrsched.idx import write_idx

Behaviour = Literal["full", "half", "garbage", "missing"]


@dataclass
class TinyIdx:
    """Four gzip IDX files (train 60, eval 20 images of 28x28) as bytes, and their spec."""

    files: dict[str, bytes]
    arrays: dict[str, np.ndarray]

    def spec(self, mirrors: tuple[str, ...] = ()) -> IdxDataset:
        def remote(name: str) -> RemoteFile:
            raw = self.files[name]
            return RemoteFile(name, hashlib.sha256(raw).hexdigest(), len(raw))

        return IdxDataset(
            name="tiny",
            title="Tiny-IDX",
            train_images=remote("train-images-idx3-ubyte.gz"),
            train_labels=remote("train-labels-idx1-ubyte.gz"),
            eval_images=remote("t10k-images-idx3-ubyte.gz"),
            eval_labels=remote("t10k-labels-idx1-ubyte.gz"),
            mirrors=mirrors,
        )

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, raw in self.files.items():
            (folder / name).write_bytes(raw)
        return folder


def tiny_idx(tmp: Path, seed: int = 0) -> TinyIdx:
    """A small, valid IDX dataset with random pixels and labels."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (60, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 60, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 20, dtype=np.uint8),
    }
    files = {}
    for name, array in arrays.items():
        path = tmp / f".build-{name}"
        write_idx(path, array)
        files[name] = path.read_bytes()
        path.unlink()
    return TinyIdx(files, arrays)


@dataclass
class FileServer:
    """What the loopback server serves: ``routes[path] = (body, behaviour)``; ``hits`` counts GETs."""

    url: str
    routes: dict[str, tuple[bytes, Behaviour]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def serve(self, prefix: str, files: dict[str, bytes], behaviour: Behaviour = "full") -> str:
        """Serve `files` under ``/<prefix>/``; return that mirror's base URL."""
        for name, raw in files.items():
            self.routes[f"/{prefix}/{name}"] = (raw, behaviour)
        return f"{self.url}/{prefix}/"


@contextmanager
def file_server() -> Iterator[FileServer]:
    """A loopback HTTP server for the duration of the block."""
    state = FileServer(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            body, behaviour = state.routes.get(self.path, (b"", "missing"))
            if behaviour == "missing":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if behaviour == "garbage":
                body = bytes(len(body))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if behaviour == "half":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
