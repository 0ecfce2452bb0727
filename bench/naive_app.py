"""The naive baseline for bench/evaluate.py: build and jit the optax schedule on every request.

This is what a service without structure caching does: every new set of numbers is a new Python
closure, so ``jax.jit`` traces and compiles it again (about 40 ms here).
"""

from __future__ import annotations

import os

os.environ["JAX_PLATFORMS"] = "cpu"

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/schedules/evaluate")
async def evaluate(request: Request) -> Response:
    body = orjson.loads(await request.body())
    spec = dict(body["schedule"])
    schedule = getattr(optax, spec.pop("kind"))(**spec)
    steps = body["steps"]
    array = (
        jnp.arange(steps.get("start", 0), steps["stop"], steps.get("step", 1), dtype=jnp.int32)
        if isinstance(steps, dict)
        else jnp.asarray(steps, dtype=jnp.int32)
    )
    values = np.asarray(jax.jit(jax.vmap(schedule))(array), dtype=np.float32)
    if "application/octet-stream" in request.headers.get("accept", ""):
        return Response(values.tobytes(), media_type="application/octet-stream")
    return Response(orjson.dumps({"values": values}, option=orjson.OPT_SERIALIZE_NUMPY),
                    media_type="application/json")
