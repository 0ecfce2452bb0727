"""Property tests: random valid parameters, checked against the reference functions themselves."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrsched import evaluate, parse_spec
from tests.oracles import reference_values


def f32(low: float, high: float) -> st.SearchStrategy[float]:
    """float32 numbers in [low, high] (bounds rounded to float32)."""
    return st.floats(float(np.float32(low)), float(np.float32(high)), allow_nan=False, width=32)


# CI runs a fixed, derandomized sample; LRSCHED_HYPOTHESIS_EXAMPLES=300 explores afresh.
_EXAMPLES = os.environ.get("LRSCHED_HYPOTHESIS_EXAMPLES")
PROFILE = settings(
    max_examples=int(_EXAMPLES or 25),
    derandomize=_EXAMPLES is None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

value = f32(-10, 10)
positive = f32(1e-3, 10)
rate = f32(0.05, 3.0)
count = st.integers(1, 5000)
begin = st.integers(0, 500)


def steps_for(*points: int) -> list[int]:
    steps = {0, 1, 2**31 - 1}
    for point in points:
        steps.update({max(point - 1, 0), point, point + 1, 2 * point + 3})
    return sorted(steps)


def check(spec: dict[str, Any], steps: list[int], rtol: float, atol: float = 1e-30) -> None:
    ours = evaluate(parse_spec(spec), steps).astype(np.float64)
    theirs = reference_values(spec, steps).astype(np.float64)
    finite = np.isfinite(theirs)
    assert np.array_equal(np.isfinite(ours), finite), (ours, theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=rtol, atol=atol)


@PROFILE
@given(value, count, rate, begin, st.booleans(), st.one_of(st.none(), value))
def test_optax_exponential_decay(init: float, steps: int, decay: float, start: int, stair: bool, end: float | None) -> None:
    spec = {"kind": "exponential_decay", "init_value": init, "transition_steps": steps, "decay_rate": decay,
            "transition_begin": start, "staircase": stair, "end_value": end}
    check(spec, steps_for(start, start + steps, start + 3 * steps), 1e-5)


@PROFILE
@given(value, positive, rate)
def test_jax_exponential_decay(size: float, steps: float, decay: float) -> None:
    spec = {"kind": "exponential_decay", "step_size": size, "decay_steps": steps, "decay_rate": decay}
    check(spec, steps_for(int(steps), 100), 1e-5)


@PROFILE
@given(value, value, f32(0.1, 4), count, begin)
def test_polynomial_schedule(init: float, end: float, power: float, steps: int, start: int) -> None:
    spec = {"kind": "polynomial_schedule", "init_value": init, "end_value": end, "power": power,
            "transition_steps": steps, "transition_begin": start}
    # (I - E) * frac ** power + E cancels when E dominates: allow float32 round-off of E itself.
    check(spec, steps_for(start, start + steps // 2, start + steps), 1e-5, 2e-7 * max(abs(init), abs(end)))


@PROFILE
@given(value, value, count, begin)
def test_linear_schedule(init: float, end: float, steps: int, start: int) -> None:
    spec = {"kind": "linear_schedule", "init_value": init, "end_value": end, "transition_steps": steps,
            "transition_begin": start}
    # Closed form; the absolute slack covers the last-ulp cancellation of (I - E) * frac + E.
    ours = evaluate(parse_spec(spec), steps_for(start, start + steps))
    theirs = reference_values(spec, steps_for(start, start + steps))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=4e-7 * max(abs(init), abs(end)))


@PROFILE
@given(value, count, f32(0, 1), f32(0.5, 3))
def test_cosine_decay(init: float, steps: int, alpha: float, exponent: float) -> None:
    spec = {"kind": "cosine_decay_schedule", "init_value": init, "decay_steps": steps, "alpha": alpha,
            "exponent": exponent}
    values = steps_for(steps // 3, steps)
    ours = evaluate(parse_spec(spec), values)
    theirs = reference_values(spec, values)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * abs(init))


@PROFILE
@given(st.lists(st.integers(0, 3000), min_size=1, max_size=6, unique=True), value,
       st.lists(f32(0, 3), min_size=6, max_size=6))
def test_piecewise_constant_schedule(bounds: list[int], init: float, scales: list[float]) -> None:
    mapping = {str(b): s for b, s in zip(bounds, scales, strict=False)}
    spec = {"kind": "piecewise_constant_schedule", "init_value": init, "boundaries_and_scales": mapping}
    check(spec, steps_for(*bounds), 1e-6)


@PROFILE
@given(st.lists(st.integers(0, 3000), min_size=1, max_size=5, unique=True), st.data())
def test_piecewise_constant(bounds: list[int], data: st.DataObject) -> None:
    values = data.draw(st.lists(value, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    spec = {"kind": "piecewise_constant", "boundaries": sorted(bounds), "values": values}
    check(spec, steps_for(*bounds), 1e-6)


@PROFILE
@given(st.sampled_from(["linear", "cosine"]), positive,
       st.lists(st.integers(0, 3000), min_size=1, max_size=4, unique=True),
       st.lists(f32(0.1, 3), min_size=4, max_size=4))
def test_piecewise_interpolate(kind: str, init: float, bounds: list[int], scales: list[float]) -> None:
    mapping = {str(b): s for b, s in zip(bounds, scales, strict=False)}
    spec = {"kind": "piecewise_interpolate_schedule", "interpolate_type": kind, "init_value": init,
            "boundaries_and_scales": mapping}
    check(spec, steps_for(*bounds, *(b // 2 for b in bounds)), 1e-5)


@PROFILE
@given(value, value, st.integers(0, 300), st.integers(1, 3000), value, f32(0.5, 2))
def test_warmup_cosine(init: float, peak: float, warmup: int, extra: int, end: float, exponent: float) -> None:
    spec = {"kind": "warmup_cosine_decay_schedule", "init_value": init, "peak_value": peak,
            "warmup_steps": warmup, "decay_steps": warmup + extra, "end_value": end, "exponent": exponent}
    values = steps_for(warmup, warmup + extra // 2, warmup + extra)
    ours = evaluate(parse_spec(spec), values)
    theirs = reference_values(spec, values)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * max(abs(peak), abs(end), abs(init)))


@PROFILE
@given(st.integers(10, 5000), positive, f32(0.05, 0.45), f32(0.55, 0.95),
       f32(1.5, 100), f32(1.5, 1e4))
def test_linear_onecycle(steps: int, peak: float, start: float, final: float, div: float, fdiv: float) -> None:
    spec = {"kind": "linear_onecycle_schedule", "transition_steps": steps, "peak_value": peak,
            "pct_start": start, "pct_final": final, "div_factor": div, "final_div_factor": fdiv}
    # Interpolating from peak/div down to the floor cancels; XLA fuses the multiply-add (one rounding
    # where the eager reference has two), so allow round-off relative to the peak.
    check(spec, steps_for(int(start * steps), int(final * steps), steps), 1e-5, 1e-6 * peak)


@PROFILE
@given(st.integers(1, 5000), f32(0.0, 0.9), positive)
def test_cosine_onecycle(steps: int, start: float, peak: float) -> None:
    spec = {"kind": "cosine_onecycle_schedule", "transition_steps": steps, "peak_value": peak, "pct_start": start}
    values = steps_for(int(start * steps), steps)
    ours = evaluate(parse_spec(spec), values)
    theirs = reference_values(spec, values)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * peak)


@PROFILE
@given(value, positive, value, st.booleans())
def test_inverse_time_decay(size: float, steps: float, decay: float, stair: bool) -> None:
    spec = {"kind": "inverse_time_decay", "step_size": size, "decay_steps": steps, "decay_rate": abs(decay),
            "staircase": stair}
    check(spec, steps_for(int(steps), int(10 * steps)), 1e-6)


@PROFILE
@given(st.lists(st.integers(1, 2000), min_size=1, max_size=3, unique=True), value, value, st.integers(1, 500))
def test_join_schedules(bounds: list[int], first: float, second: float, ramp: int) -> None:
    bounds = sorted(bounds)
    pieces = [{"kind": "constant_schedule", "value": first}] + [
        {"kind": "linear_schedule", "init_value": second, "end_value": first, "transition_steps": ramp}
        for _ in bounds
    ]
    spec = {"kind": "join_schedules", "schedules": pieces, "boundaries": bounds}
    values = steps_for(*bounds, *(b + ramp for b in bounds))
    ours = evaluate(parse_spec(spec), values)
    theirs = reference_values(spec, values)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=4e-7 * max(abs(first), abs(second)))
