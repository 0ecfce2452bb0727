"""Where the references misbehave under jit, we give the value they intend (DESIGN §2.1).

XLA rewrites ``t / T`` as ``t * (1/T)``, so ``1 - T/T`` is about -1.5e-8: a fractional power of it
is NaN, and a linear ramp to 0 ends slightly negative.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lrsched import compile_schedule, evaluate, parse_spec
from tests.oracles import jitted_reference_values

TUTORIAL_POLY = {
    "kind": "polynomial_decay", "step_size": 1e-4, "decay_steps": 10, "final_step_size": 1e-5, "power": 0.3,
}
RAMP_TO_ZERO = {
    "kind": "join_schedules",
    "schedules": [
        {"kind": "constant_schedule", "value": 1.0},
        {"kind": "linear_schedule", "init_value": 1.0, "end_value": 0.0, "transition_steps": 10},
    ],
    "boundaries": [5],
}


def test_reference_polynomial_is_nan_under_jit() -> None:
    # The premise: if this starts passing, the reference was fixed and the note can go.
    assert np.isnan(jitted_reference_values(TUTORIAL_POLY, [10, 11, 100])).all()


def test_polynomial_gives_final_value_from_decay_steps_on() -> None:
    steps = [*range(10, 40), 10**6, 2**31 - 1]
    spec = parse_spec(TUTORIAL_POLY)
    assert (evaluate(spec, steps) == np.float32(1e-5)).all()
    assert (np.asarray(jax.jit(compile_schedule(spec))(jnp.asarray(steps))) == np.float32(1e-5)).all()


def test_reference_ramp_goes_negative_under_jit() -> None:
    assert jitted_reference_values(RAMP_TO_ZERO, [15])[0] < 0


def test_ramp_to_zero_never_goes_negative() -> None:
    steps = list(range(0, 40))
    spec = parse_spec(RAMP_TO_ZERO)
    for values in (evaluate(spec, steps), np.asarray(jax.jit(compile_schedule(spec))(jnp.asarray(steps)))):
        assert (values >= 0).all()
        assert (values[15:] == 0).all()


def test_inverse_time_with_traced_scalar_divisor_is_exact() -> None:
    # 1 + (-1 * 10) / 10 is exactly 0: the schedule is infinite there, not -6.7e7.
    spec = parse_spec({"kind": "inverse_time_decay", "step_size": 1.0, "decay_steps": 10, "decay_rate": -1.0})
    assert np.isinf(evaluate(spec, [10])[0])


def test_fractional_powers_stay_finite_near_the_end() -> None:
    for steps in (3, 7, 10, 100, 1000, 2360):
        spec = parse_spec({
            "kind": "polynomial_schedule", "init_value": 1.0, "end_value": 0.01, "power": 0.5,
            "transition_steps": steps,
        })
        values = evaluate(spec, [steps - 1, steps, steps + 1])
        assert np.isfinite(values).all() and values[1] == values[2] == np.float32(0.01)
