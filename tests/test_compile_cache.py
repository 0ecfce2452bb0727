"""A spec compiles once per structure: new numbers in the same shape reuse the compiled code."""

from __future__ import annotations

from collections.abc import Iterator

import jax
import numpy as np
import pytest

from lrsched import evaluate, parse_spec
from lrsched.compile import lower

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@pytest.fixture
def compilations() -> Iterator[list[str]]:
    seen: list[str] = []

    def listener(event: str, duration: float, **kwargs: object) -> None:
        if event == COMPILE_EVENT:
            seen.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    yield seen
    jax.monitoring.unregister_event_duration_listener(listener)


def random_spec(rng: np.random.Generator) -> dict[str, object]:
    boundaries = sorted(rng.choice(np.arange(1, 10_000), size=3, replace=False).tolist())
    return {
        "kind": "join_schedules",
        "schedules": [
            {
                "kind": "linear_schedule",
                "init_value": float(rng.uniform(0, 1e-3)),
                "end_value": float(rng.uniform(1e-3, 1)),
                "transition_steps": int(rng.integers(1, 10**6)),
            },
            {
                "kind": "cosine_decay_schedule",
                "init_value": float(rng.uniform(0, 1)),
                "decay_steps": int(rng.integers(1, 10**6)),
                "alpha": float(rng.uniform(0, 1)),
            },
            {
                "kind": "piecewise_constant",
                "boundaries": boundaries,
                "values": rng.uniform(0, 1, size=4).tolist(),
            },
            {
                "kind": "expression",
                "expr": "a * b ** step",
                "params": {"a": float(rng.uniform()), "b": 0.9},
            },
        ],
        "boundaries": sorted(rng.choice(np.arange(1, 10**6), size=3, replace=False).tolist()),
    }


def test_fifty_specs_of_one_structure_compile_once(compilations: list[str]) -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(1000)
    results = [evaluate(parse_spec(random_spec(rng)), steps) for _ in range(50)]
    assert len(compilations) == 1
    assert len({values.tobytes() for values in results}) == 50  # the numbers really differ


def test_a_new_structure_compiles_again(compilations: list[str]) -> None:
    evaluate(parse_spec({"kind": "constant", "step_size": 0.5}), [0, 1])
    evaluate(parse_spec({"kind": "constant", "step_size": 0.25}), [0, 1])
    first = len(compilations)
    evaluate(
        parse_spec({"kind": "piecewise_constant", "boundaries": [1, 2], "values": [1, 2, 3]}),
        [0, 1],
    )
    assert first <= 1 and len(compilations) == first + 1


def test_structure_ignores_numbers_but_not_shape() -> None:
    a = lower(parse_spec({"kind": "piecewise_constant", "boundaries": [1], "values": [1, 2]}))
    b = lower(parse_spec({"kind": "piecewise_constant", "boundaries": [7], "values": [3, 4]}))
    c = lower(parse_spec({"kind": "piecewise_constant", "boundaries": [1, 2], "values": [1, 2, 3]}))
    assert a[0] == b[0] != c[0]
    assert a[1].tolist() != b[1].tolist()


def test_is_compiled_tells_a_cold_structure_from_a_warm_one() -> None:
    from lrsched import is_compiled

    spec = parse_spec(
        {
            "kind": "inverse_time_decay",
            "step_size": 0.3,
            "decay_steps": 7,
            "decay_rate": 0.3,
            "staircase": True,
        }
    )
    assert not is_compiled(spec, 10)
    evaluate(spec, list(range(10)))
    assert is_compiled(spec, 10) and is_compiled(spec, 64)  # same bucket
    assert not is_compiled(spec, 65)  # the next bucket compiles again


def test_compile_cache_is_bounded() -> None:
    from lrsched.compile import COMPILE_CACHE_SIZE, executable

    assert executable.cache_info().maxsize == COMPILE_CACHE_SIZE
