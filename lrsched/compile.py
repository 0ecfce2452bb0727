"""Compile a spec to a pure JAX function of the step, once per *structure*.

A spec is lowered on the host into a *structure* (a hashable tree of primitive nodes: kinds,
flags and list lengths, with offsets into a parameter vector) and one float32 *parameter vector*
holding every number. The jitted function is cached by structure, so a spec with new numbers but
the same shape reuses the compiled code (DESIGN §3: about 40 ms of compiling saved per request).

The primitives follow the reference implementations operation by operation, so values agree to
float32 round-off with what the references compute eagerly. Every division goes through
:func:`lrsched._numerics.true_divide`: XLA rewrites division by a scalar into multiplication by its
reciprocal, which is what makes the references' polynomial decays NaN under ``jit``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from lrsched._numerics import opaque
from lrsched._numerics import true_divide as div
from lrsched.expression import compile_expression, parse_expression
from lrsched.specs import (
    Constant,
    ConstantSchedule,
    CosineDecaySchedule,
    CosineOnecycleSchedule,
    ExponentialDecay,
    Expression,
    InverseTimeDecay,
    JoinSchedules,
    LinearOnecycleSchedule,
    LinearSchedule,
    PiecewiseConstant,
    PiecewiseConstantSchedule,
    PiecewiseInterpolateSchedule,
    PolynomialDecay,
    PolynomialSchedule,
    SgdrSchedule,
    SpecModel,
    WarmupConstantSchedule,
    WarmupCosineDecayParams,
    WarmupExponentialDecaySchedule,
)

#: A hashable description of a lowered spec: primitive names, flags, lengths and offsets.
Structure = tuple[Any, ...]
#: A compiled schedule: (parameter vector, float32 steps) -> float32 values.
Executable = Callable[[ArrayLike, ArrayLike], Array]

#: Most distinct structures kept compiled at once (least recently used are dropped).
COMPILE_CACHE_SIZE = 256


class _Numbers:
    """Collects a spec's numbers into one vector; each node remembers where its own start."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, *values: float) -> int:
        offset = len(self.values)
        self.values.extend(float(value) for value in values)
        return offset


def lower(spec: SpecModel) -> tuple[Structure, np.ndarray]:
    """Split `spec` into its structure and its float32 parameter vector."""
    numbers = _Numbers()
    # A derived number may overflow float32 (alpha = end/peak with a tiny peak): it becomes inf,
    # as in the reference, and the evaluation reports the first step where it shows.
    with np.errstate(over="ignore"):
        structure = _lower(spec, numbers)
        return structure, np.asarray(numbers.values, dtype=np.float32)


def _lower(spec: SpecModel, n: _Numbers) -> Structure:
    match spec:
        case Constant(step_size=value) | ConstantSchedule(value=value):
            return ("const", n.add(value))
        case ExponentialDecay():
            end = spec.end_value
            offset = n.add(
                spec.initial, spec.length, spec.decay_rate, spec.transition_begin, end or 0.0
            )
            return ("exp", spec.staircase, end is not None, offset)
        case InverseTimeDecay():
            offset = n.add(spec.step_size, spec.decay_steps, spec.decay_rate)
            return ("invtime", spec.staircase, offset)
        case PolynomialDecay():
            return _poly(n, spec.step_size, spec.final_step_size, spec.power, spec.decay_steps, 0)
        case PolynomialSchedule():
            return _poly(
                n,
                spec.init_value,
                spec.end_value,
                spec.power,
                spec.transition_steps,
                spec.transition_begin,
            )
        case LinearSchedule():
            return _poly(
                n,
                spec.init_value,
                spec.end_value,
                1.0,
                spec.transition_steps,
                spec.transition_begin,
            )
        case CosineDecaySchedule():
            return ("cosine", n.add(spec.init_value, spec.decay_steps, spec.alpha, spec.exponent))
        case WarmupConstantSchedule():
            return _poly(n, spec.init_value, spec.peak_value, 1.0, spec.warmup_steps, 0)
        case SgdrSchedule():
            cycles = [_warmup_cosine(cycle, n) for cycle in spec.cosine_kwargs]
            ends = np.cumsum([cycle.decay_steps for cycle in spec.cosine_kwargs])
            return _join(cycles, [int(end) for end in ends[:-1]], n)
        case WarmupCosineDecayParams():
            return _warmup_cosine(spec, n)
        case WarmupExponentialDecaySchedule():
            warmup = _warmup(spec.init_value, spec.peak_value, spec.warmup_steps, n)
            end = spec.end_value
            offset = n.add(
                spec.peak_value,
                spec.transition_steps,
                spec.decay_rate,
                spec.transition_begin,
                end or 0.0,
            )
            return _join(
                [warmup, ("exp", spec.staircase, end is not None, offset)], [spec.warmup_steps], n
            )
        case PiecewiseConstant():
            offset = n.add(*spec.boundaries, *spec.values)
            return ("pw_after", len(spec.boundaries), offset)
        case PiecewiseConstantSchedule():
            boundaries, scales = _sorted_items(spec.boundaries_and_scales)
            # optax multiplies in float32, scale by scale in boundary order: do the same here.
            table = [np.float32(spec.init_value)]
            for scale in scales:
                table.append(np.float32(scale) * table[-1])
            return ("pw_at", len(boundaries), n.add(*boundaries, *(float(v) for v in table)))
        case PiecewiseInterpolateSchedule():
            boundaries, scales = _sorted_items(spec.boundaries_and_scales)
            return _interpolate(spec.interpolate_type, spec.init_value, boundaries, scales, n)
        case LinearOnecycleSchedule():
            steps, peak, factor = spec.transition_steps, spec.peak_value, spec.div_factor
            return _interpolate(
                "linear",
                peak / factor,
                [int(spec.pct_start * steps), int(spec.pct_final * steps), steps],
                [factor, 1.0 / factor, 1.0 / spec.final_div_factor],
                n,
            )
        case CosineOnecycleSchedule():
            steps, peak, factor = spec.transition_steps, spec.peak_value, spec.div_factor
            return _interpolate(
                "cosine",
                peak / factor,
                [int(spec.pct_start * steps), steps],
                [factor, 1.0 / (factor * spec.final_div_factor)],
                n,
            )
        case JoinSchedules():
            return _join([_lower(child, n) for child in spec.schedules], spec.boundaries, n)
        case Expression():
            names = tuple(spec.params)
            return ("expr", spec.expr, names, n.add(*spec.params.values()))
    raise TypeError(f"no lowering for {type(spec).__name__}")  # pragma: no cover


def _poly(
    n: _Numbers, init: float, end: float, power: float, steps: float, begin: float
) -> Structure:
    # power 1 is the linear schedule: optax computes frac ** 1 exactly, so must we (no pow call).
    return ("poly", power == 1.0, n.add(init, end, power, steps, begin))


def _warmup(init: float, peak: float, warmup_steps: int, n: _Numbers) -> Structure:
    # optax's linear_schedule with 0 steps is the constant init; join never reaches it anyway.
    if warmup_steps == 0:
        return ("const", n.add(init))
    return _poly(n, init, peak, 1.0, warmup_steps, 0)


def _warmup_cosine(spec: WarmupCosineDecayParams, n: _Numbers) -> Structure:
    alpha = 0.0 if spec.peak_value == 0.0 else spec.end_value / spec.peak_value
    warmup = _warmup(spec.init_value, spec.peak_value, spec.warmup_steps, n)
    cosine = (
        "cosine",
        n.add(spec.peak_value, spec.decay_steps - spec.warmup_steps, alpha, spec.exponent),
    )
    return _join([warmup, cosine], [spec.warmup_steps], n)


def _join(children: Sequence[Structure], boundaries: Sequence[int], n: _Numbers) -> Structure:
    if not boundaries:
        return children[0]
    return ("join", tuple(children), n.add(*boundaries))


def _interpolate(
    kind: str, init: float, boundaries: Sequence[float], scales: Sequence[float], n: _Numbers
) -> Structure:
    knots = np.cumprod(np.asarray([init, *scales], dtype=np.float32), dtype=np.float32)
    offset = n.add(0, *boundaries, *knots.tolist())
    return ("interp", kind, len(boundaries), offset)


def _sorted_items(mapping: dict[int, float] | None) -> tuple[list[float], list[float]]:
    items = sorted((mapping or {}).items())
    return [float(step) for step, _ in items], [scale for _, scale in items]


# -- building jnp functions from structures ------------------------------------------------------

_Fn = Callable[[Array, Array], Array]


def _build(node: Structure) -> _Fn:
    name = node[0]
    if name == "const":
        (o,) = node[1:]
        return lambda p, t: jnp.broadcast_to(p[o], t.shape)
    if name == "poly":
        linear, o = node[1:]

        def poly(p: Array, t: Array) -> Array:
            init, end, power, steps, begin = p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4]
            count = jnp.clip(t - begin, 0, steps)
            # Exactly 0 at the end even where XLA computes count/steps as count*(1/steps), which
            # leaves 1 - T/T slightly negative (NaN under a fractional power).
            frac = jnp.where(count >= steps, 0.0, jnp.maximum(1 - div(count, steps), 0.0))
            return (init - end) * (frac if linear else frac**power) + end

        return poly
    if name == "exp":
        staircase, clipped, o = node[1:]

        def exp(p: Array, t: Array) -> Array:
            init, steps, rate, begin, end = p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4]
            decreased = t - begin
            exponent = div(decreased, steps)
            if staircase:
                exponent = jnp.floor(exponent)
            value = jnp.where(decreased <= 0, init, init * jnp.power(rate, exponent))
            if clipped:
                value = jnp.where(rate < 1.0, jnp.maximum(value, end), jnp.minimum(value, end))
            return value

        return exp
    if name == "invtime":
        staircase, o = node[1:]

        def invtime(p: Array, t: Array) -> Array:
            size, steps, rate = p[o], p[o + 1], p[o + 2]
            if staircase:
                return div(size, 1 + rate * jnp.floor(div(t, steps)))
            return div(size, 1 + div(rate * t, steps))

        return invtime
    if name == "cosine":
        (o,) = node[1:]

        def cosine(p: Array, t: Array) -> Array:
            init, steps, alpha, exponent = p[o], p[o + 1], p[o + 2], p[o + 3]
            count = jnp.minimum(t, steps)
            decay = 0.5 * (1 + jnp.cos(div(jnp.pi * count, steps)))
            return init * ((1 - alpha) * decay**exponent + alpha)

        return cosine
    if name in ("pw_after", "pw_at"):
        size, o = node[1:]
        # jax.example_libraries switches after a boundary (t > b), optax at it (t >= b).
        side = "left" if name == "pw_after" else "right"

        def piecewise(p: Array, t: Array) -> Array:
            boundaries, values = p[o : o + size], p[o + size : o + 2 * size + 1]
            return values[jnp.searchsorted(boundaries, t, side=side)]

        return piecewise
    if name == "interp":
        kind, size, o = node[1:]

        def interpolate(p: Array, t: Array) -> Array:
            bounds, knots = p[o : o + size + 1], p[o + size + 1 : o + 2 * size + 2]
            if size == 0:
                return jnp.broadcast_to(knots[0], t.shape)
            k = jnp.clip(jnp.searchsorted(bounds, t, side="right") - 1, 0, size - 1)
            start, end = knots[k], knots[k + 1]
            pct = div(t - bounds[k], jnp.maximum(bounds[k + 1] - bounds[k], 1))
            if kind == "linear":
                inside = (end - start) * pct + start
            else:
                inside = end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)
            return jnp.where(t >= bounds[size], knots[size], inside)

        return interpolate
    if name == "join":
        children, o = node[1:]
        pieces = [_build(child) for child in children]

        def join(p: Array, t: Array) -> Array:
            out = pieces[0](p, t)
            for index, piece in enumerate(pieces[1:]):
                boundary = p[o + index]
                out = jnp.where(t < boundary, out, piece(p, t - boundary))
            return out

        return join
    if name == "expr":
        text, names, o = node[1:]
        formula = compile_expression(parse_expression(text, names))
        return lambda p, t: formula({key: p[o + i] for i, key in enumerate(names)}, t)
    raise ValueError(f"unknown primitive {name!r}")  # pragma: no cover


@functools.lru_cache(maxsize=COMPILE_CACHE_SIZE)
def executable(structure: Structure) -> Executable:
    """The jitted function of one structure (compiled per step-array length on first call)."""
    fn = _build(structure)
    return jax.jit(lambda params, steps: fn(params, steps).astype(jnp.float32))


def compile_schedule(spec: SpecModel) -> Callable[[Array], Array]:
    """A pure jnp function ``steps -> values`` for `spec`, usable inside ``jit``."""
    structure, params = lower(spec)
    fn, vector = _build(structure), jnp.asarray(params)

    def schedule(steps: Array) -> Array:
        # Inside a caller's jit the numbers would be constants, and XLA rewrites division by a
        # constant into multiplication by its reciprocal: the barrier keeps them opaque values.
        return fn(opaque(vector), jnp.asarray(steps, jnp.float32)).astype(jnp.float32)

    return schedule
