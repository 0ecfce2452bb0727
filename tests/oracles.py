"""The reference functions, called the way their users call them: the test-time oracles.

``reference(spec)`` builds the optax / jax.example_libraries schedule a spec names, with the spec's
own parameters; ``reference_values`` evaluates it eagerly, step by step, with an int32 step (optax's
``count`` dtype), which is the value the library intends (no ``jit`` rewrites).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
import optax
from jax.example_libraries import optimizers as jopt

Schedule = Callable[[Any], Any]
_TAKES_SCALES = {"piecewise_constant_schedule", "piecewise_interpolate_schedule"}


def _scales(mapping: dict[str, float] | None) -> dict[int, float] | None:
    return None if mapping is None else {int(k): v for k, v in mapping.items()}


def reference(spec: dict[str, Any]) -> Schedule:
    """The reference schedule that `spec` reproduces."""
    kind = spec["kind"]
    # Step counts beyond int32 go in as Python floats, as optax's own tests pass them (1e10).
    args = {
        k: float(v) if isinstance(v, int) and not isinstance(v, bool) and v >= 2**31 else v
        for k, v in spec.items()
        if k != "kind"
    }
    if kind in _TAKES_SCALES:
        args["boundaries_and_scales"] = _scales(args.get("boundaries_and_scales"))
    if kind == "exponential_decay" and "step_size" in args:
        return jopt.exponential_decay(**args)
    if kind in ("constant", "inverse_time_decay", "polynomial_decay", "piecewise_constant"):
        return getattr(jopt, kind)(**args)
    if kind == "join_schedules":
        return optax.join_schedules([reference(s) for s in args["schedules"]], args["boundaries"])
    if kind == "expression":
        return _python_expression(spec)
    return getattr(optax, kind)(**args)


def _python_expression(spec: dict[str, Any]) -> Schedule:
    # The tutorial's make_schedule: a plain Python function of the step, in float64.
    names = {"step": 0, "pi": math.pi, **spec.get("params", {})}
    functions = {
        "where": lambda c, a, b: a if c else b,
        "minimum": min,
        "maximum": max,
        "exp": math.exp,
        "log": math.log,
        "sqrt": math.sqrt,
        "sin": math.sin,
        "cos": math.cos,
        "floor": math.floor,
        "ceil": math.ceil,
        "abs": abs,
        "clip": lambda x, lo, hi: min(max(x, lo), hi),
    }
    code = compile(spec["expr"], "<expression>", "eval")

    def schedule(step: Any) -> float:
        scope = {**functions, **names, "step": float(step)}
        return float(eval(code, {"__builtins__": {}}, scope))  # test oracle only, trusted text

    return schedule


def reference_values(spec: dict[str, Any], steps: Sequence[int]) -> np.ndarray:
    """The reference's value at each step, eagerly, as float32."""
    schedule = reference(spec)
    python_step = spec["kind"] == "expression"
    return np.asarray(
        [np.float32(schedule(step if python_step else jnp.int32(step))) for step in steps],
        dtype=np.float32,
    )


def jitted_reference_values(spec: dict[str, Any], steps: Sequence[int]) -> np.ndarray:
    """The reference under ``jax.jit`` with an int32 step: what a jitted train step sees."""
    import jax

    schedule = jax.jit(reference(spec))
    return np.asarray([np.float32(schedule(jnp.int32(step))) for step in steps], dtype=np.float32)
