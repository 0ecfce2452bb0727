"""Evaluate a schedule spec at many steps: float32 values, as JAX computes them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lrsched.compile import executable, lower
from lrsched.limits import MAX_STEP
from lrsched.specs import SpecModel

#: Step arrays are padded to one of these lengths, so each structure compiles a few times at most.
_MIN_BUCKET = 64
_MAX_BUCKET = 1 << 20


class StepRangeError(ValueError):
    """A step outside ``0 .. MAX_STEP``."""


#: (structure, bucket) pairs already compiled in this process; a bounded record, cleared when full.
_COMPILED: set[tuple[object, int]] = set()
_COMPILED_LIMIT = 4096


def is_compiled(spec: SpecModel, count: int) -> bool:
    """Whether evaluating `spec` at `count` steps will reuse compiled code (no compile wait).

    A service uses it to move first-time evaluations, which compile for up to a second or two,
    off its event loop.
    """
    structure, _ = lower(spec)
    return all(
        (structure, _bucket(chunk)) in _COMPILED
        for chunk in {min(count, _MAX_BUCKET), count % _MAX_BUCKET or _MAX_BUCKET}
    )


def _bucket(length: int) -> int:
    return max(_MIN_BUCKET, 1 << (max(length, 1) - 1).bit_length())


def step_range(start: int, stop: int, step: int = 1) -> np.ndarray:
    """The steps ``start, start + step, ...`` below `stop`, as int64 (like Python's ``range``)."""
    return np.arange(start, stop, step, dtype=np.int64)


def evaluate(spec: SpecModel, steps: Sequence[int] | np.ndarray) -> np.ndarray:
    """The value of `spec` at each of `steps` (non-negative integers), as a float32 array.

    Values are not checked: a schedule may be NaN or infinite at some step (see
    :func:`first_nonfinite`).
    """
    steps = np.asarray(steps)
    if steps.ndim != 1:
        steps = steps.reshape(-1)
    if steps.size and (steps.min() < 0 or steps.max() > MAX_STEP):
        raise StepRangeError(f"steps must lie in 0 .. {MAX_STEP}")
    structure, params = lower(spec)
    run = executable(structure)
    out = np.empty(steps.shape[0], dtype=np.float32)
    for begin in range(0, steps.shape[0], _MAX_BUCKET):
        chunk = steps[begin : begin + _MAX_BUCKET]
        bucket = _bucket(chunk.shape[0])
        padded = np.zeros(bucket, dtype=np.float32)
        padded[: chunk.shape[0]] = chunk
        out[begin : begin + chunk.shape[0]] = np.asarray(run(params, padded))[: chunk.shape[0]]
        if len(_COMPILED) >= _COMPILED_LIMIT:
            _COMPILED.clear()
        _COMPILED.add((structure, bucket))
    return out


def first_nonfinite(values: np.ndarray) -> int | None:
    """The index of the first NaN or infinite value, or None when all are finite."""
    bad = ~np.isfinite(values)
    return int(np.argmax(bad)) if bad.any() else None
