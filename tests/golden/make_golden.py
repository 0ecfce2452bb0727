"""Regenerate ``schedules.json``: golden values from the reference libraries themselves.

Run: ``python tests/golden/make_golden.py``. Each row is a spec, the steps that matter for it (0,
every boundary and one step either side, the end, past the end, a huge step) and the reference's
values there (eager, int32 step: the value the library intends; see tests/oracles.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oracles import reference_values

HUGE = 2**31 - 1  # optax's int32 count saturates here
LOOSE_KINDS = {  # pow, exp or cos involved: rtol 1e-5; everything else 1e-6
    "exponential_decay", "polynomial_decay", "polynomial_schedule", "cosine_decay_schedule",
    "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule", "cosine_onecycle_schedule",
    "sgdr_schedule", "expression", "join_schedules", "piecewise_interpolate_schedule",
}


def around(*points: int) -> list[int]:
    """0, each point and one step either side, then past the end and a huge step."""
    steps = {0, HUGE, 2 * max(points) + 7}
    for point in points:
        steps.update({point - 1, point, point + 1})
    return sorted(step for step in steps if step >= 0)


CASES: list[tuple[str, dict[str, Any], list[int]]] = [
    ("jax constant", {"kind": "constant", "step_size": 1e-3}, around(1)),
    ("jax exponential (tutorial)", {"kind": "exponential_decay", "step_size": 1e-4, "decay_steps": 10, "decay_rate": 0.9}, around(10, 20, 100)),
    ("jax exponential per step", {"kind": "exponential_decay", "step_size": 1e-4, "decay_steps": 2360, "decay_rate": 0.99}, around(1, 2359, 2360)),
    ("jax inverse time", {"kind": "inverse_time_decay", "step_size": 1e-4, "decay_steps": 10, "decay_rate": 0.8}, around(5, 10, 100)),
    ("jax inverse time staircase", {"kind": "inverse_time_decay", "step_size": 1e-4, "decay_steps": 10, "decay_rate": 0.8, "staircase": True}, around(10, 20, 100)),
    ("jax polynomial (tutorial, power 0.3)", {"kind": "polynomial_decay", "step_size": 1e-4, "decay_steps": 10, "final_step_size": 1e-5, "power": 0.3}, around(5, 10)),
    ("jax polynomial 100 steps", {"kind": "polynomial_decay", "step_size": 1e-4, "decay_steps": 100, "final_step_size": 1e-5, "power": 0.3}, around(50, 100)),
    ("jax polynomial linear to 0", {"kind": "polynomial_decay", "step_size": 0.1, "decay_steps": 50, "final_step_size": 0.0}, around(25, 50)),
    ("jax piecewise (tutorial)", {"kind": "piecewise_constant", "boundaries": [1, 4, 7], "values": [3e-4, 2e-4, 1e-4, 1e-5]}, around(1, 4, 7)),
    ("optax constant", {"kind": "constant_schedule", "value": 0.001}, around(1)),
    ("optax linear with begin", {"kind": "linear_schedule", "init_value": 1.0, "end_value": 0.1, "transition_steps": 10, "transition_begin": 5}, around(5, 10, 15)),
    ("optax linear to 0", {"kind": "linear_schedule", "init_value": 1.0, "end_value": 0.0, "transition_steps": 100}, around(50, 100)),
    ("optax polynomial power 2", {"kind": "polynomial_schedule", "init_value": 1.0, "end_value": 0.01, "power": 2, "transition_steps": 100}, around(50, 100)),
    ("optax polynomial power 0.5", {"kind": "polynomial_schedule", "init_value": 1.0, "end_value": 0.01, "power": 0.5, "transition_steps": 10, "transition_begin": 3}, around(3, 8, 13)),
    ("optax exponential", {"kind": "exponential_decay", "init_value": 1e-4, "transition_steps": 10, "decay_rate": 0.9}, around(1, 5, 10, 100)),
    ("optax exponential staircase floor", {"kind": "exponential_decay", "init_value": 1.0, "transition_steps": 10, "decay_rate": 0.5, "transition_begin": 5, "staircase": True, "end_value": 0.2}, around(5, 15, 25, 35)),
    ("optax exponential growth ceiling", {"kind": "exponential_decay", "init_value": 1.0, "transition_steps": 10, "decay_rate": 2.0, "end_value": 3.0}, around(10, 15, 16)),
    ("optax exponential 1e10 steps", {"kind": "exponential_decay", "init_value": 1.0, "transition_steps": 10**10, "decay_rate": 0.5}, around(1000, 10**6)),
    ("optax cosine alpha", {"kind": "cosine_decay_schedule", "init_value": 1.0, "decay_steps": 100, "alpha": 0.1}, around(25, 50, 100)),
    ("optax cosine exponent 2", {"kind": "cosine_decay_schedule", "init_value": 1.0, "decay_steps": 100, "exponent": 2.0}, around(25, 50, 100)),
    ("optax cosine 1e10 steps", {"kind": "cosine_decay_schedule", "init_value": 1.0, "decay_steps": 10**10}, around(10**6, 10**9)),
    ("optax warmup constant", {"kind": "warmup_constant_schedule", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10}, around(5, 10)),
    ("optax warmup cosine", {"kind": "warmup_cosine_decay_schedule", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10, "decay_steps": 110, "end_value": 0.1}, around(5, 10, 60, 110)),
    ("optax warmup cosine zero peak", {"kind": "warmup_cosine_decay_schedule", "init_value": 0.5, "peak_value": 0.0, "warmup_steps": 4, "decay_steps": 20}, around(4, 20)),
    ("optax warmup cosine no warmup", {"kind": "warmup_cosine_decay_schedule", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 0, "decay_steps": 50, "exponent": 1.5}, around(25, 50)),
    ("optax warmup exponential", {"kind": "warmup_exponential_decay_schedule", "init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10, "transition_steps": 20, "decay_rate": 0.5}, around(10, 20, 30)),
    ("optax warmup exponential staircase", {"kind": "warmup_exponential_decay_schedule", "init_value": 0.1, "peak_value": 1.0, "warmup_steps": 10, "transition_steps": 5, "decay_rate": 0.5, "transition_begin": 3, "staircase": True, "end_value": 0.1}, around(10, 13, 18, 23)),
    ("optax piecewise constant", {"kind": "piecewise_constant_schedule", "init_value": 1.0, "boundaries_and_scales": {"100": 0.1, "200": 0.01}}, around(100, 200)),
    ("optax piecewise constant no boundaries", {"kind": "piecewise_constant_schedule", "init_value": 0.3}, around(1)),
    ("optax piecewise constant many", {"kind": "piecewise_constant_schedule", "init_value": 0.7, "boundaries_and_scales": {"3": 0.9, "7": 0.9, "8": 1.7, "30": 0.3, "31": 0.31}}, around(3, 7, 8, 30, 31)),
    ("optax interpolate linear", {"kind": "piecewise_interpolate_schedule", "interpolate_type": "linear", "init_value": 1.0, "boundaries_and_scales": {"4": 0.1, "8": 0.01}}, around(2, 4, 6, 8)),
    ("optax interpolate cosine", {"kind": "piecewise_interpolate_schedule", "interpolate_type": "cosine", "init_value": 1.0, "boundaries_and_scales": {"4": 0.1, "8": 0.01}}, around(2, 4, 6, 8)),
    ("optax interpolate boundary at 0", {"kind": "piecewise_interpolate_schedule", "interpolate_type": "linear", "init_value": 2.0, "boundaries_and_scales": {"0": 0.5, "10": 3.0}}, around(5, 10)),
    ("optax join constant then linear", {"kind": "join_schedules", "schedules": [{"kind": "constant_schedule", "value": 1.0}, {"kind": "linear_schedule", "init_value": 1.0, "end_value": 0.0, "transition_steps": 10}], "boundaries": [5]}, around(5, 10, 15)),
    ("optax join nested", {"kind": "join_schedules", "schedules": [{"kind": "linear_schedule", "init_value": 0.0, "end_value": 0.1, "transition_steps": 10}, {"kind": "join_schedules", "schedules": [{"kind": "constant_schedule", "value": 0.1}, {"kind": "cosine_decay_schedule", "init_value": 0.1, "decay_steps": 40}], "boundaries": [20]}, {"kind": "constant_schedule", "value": 0.001}], "boundaries": [10, 100]}, around(10, 30, 70, 100)),
    ("optax linear onecycle", {"kind": "linear_onecycle_schedule", "transition_steps": 100, "peak_value": 1.0}, around(15, 30, 57, 85, 100)),
    ("optax cosine onecycle", {"kind": "cosine_onecycle_schedule", "transition_steps": 100, "peak_value": 1.0}, around(30, 65, 100)),
    ("optax cosine onecycle custom", {"kind": "cosine_onecycle_schedule", "transition_steps": 1000, "peak_value": 0.3, "pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0}, around(250, 1000)),
    ("optax sgdr", {"kind": "sgdr_schedule", "cosine_kwargs": [{"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 20}, {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 20}]}, around(5, 19, 20, 25, 40)),
    ("optax sgdr uneven", {"kind": "sgdr_schedule", "cosine_kwargs": [{"init_value": 0.1, "peak_value": 1.0, "warmup_steps": 2, "decay_steps": 10, "end_value": 0.05}, {"init_value": 0.05, "peak_value": 0.5, "warmup_steps": 0, "decay_steps": 30, "exponent": 2.0}]}, around(2, 10, 40)),
    ("expression (tutorial custom)", {"kind": "expression", "expr": "init_lr / 3 ** step", "params": {"init_lr": 1e-4}}, list(range(0, 21))),
    ("expression where", {"kind": "expression", "expr": "where(step < warm, base * (step + 1) / warm, base * 0.5 ** ((step - warm) // 10))", "params": {"warm": 5, "base": 0.1}}, around(4, 5, 15, 25)),
    ("expression functions", {"kind": "expression", "expr": "clip(lr * cos(pi * step / 100) + abs(-0.001) + sqrt(step) * 1e-5 + exp(-step) * 1e-3 + log(step + 1) * 1e-6 + floor(step / 7) * 1e-7 - ceil(step / 9) * 1e-7, 0.0, lr)", "params": {"lr": 0.1}}, around(7, 9, 50, 100)[:-1]),
    ("expression comparisons", {"kind": "expression", "expr": "0.1 * (step >= 10) + 0.01 * (5 <= step < 10) + minimum(maximum(step, 1), 2) * 1e-3 + (step % 3 == 0) * 1e-4 + (step != 4) * 1e-5", "params": {}}, around(4, 5, 9, 10)[:-1]),
]


def main() -> None:
    rows = []
    for name, spec, steps in CASES:
        values = reference_values(spec, steps)
        rows.append(
            {
                "id": name,
                "spec": spec,
                "steps": steps,
                "expected": [float(v) for v in values],
                "rtol": 1e-5 if spec["kind"] in LOOSE_KINDS else 1e-6,
            }
        )
    out = Path(__file__).with_name("schedules.json")
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
