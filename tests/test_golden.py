"""Every kind against golden values produced by the reference libraries (tests/golden/)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lrsched import compile_schedule, evaluate, parse_spec
from tests.golden_table import GOLDEN, assert_close, ids
from tests.oracles import reference_values


@pytest.mark.parametrize("row", GOLDEN, ids=ids(GOLDEN))
def test_evaluate_matches_reference(row: dict[str, Any]) -> None:
    assert_close(evaluate(parse_spec(row["spec"]), row["steps"]), row)


@pytest.mark.parametrize("row", GOLDEN, ids=ids(GOLDEN))
def test_compiled_schedule_inside_user_jit(row: dict[str, Any]) -> None:
    # What a training step sees: the schedule traced inside the caller's own jit.
    schedule = compile_schedule(parse_spec(row["spec"]))
    values = jax.jit(schedule)(jnp.asarray(row["steps"], jnp.float32))
    assert_close(values, row)


def test_every_kind_has_golden_rows() -> None:
    from lrsched import SPEC_KINDS

    assert {row["spec"]["kind"] for row in GOLDEN} == set(SPEC_KINDS)


@pytest.mark.parametrize("row", GOLDEN[:12], ids=ids(GOLDEN[:12]))
def test_golden_file_is_current(row: dict[str, Any]) -> None:
    # The committed table still matches the installed references (regenerate with make_golden.py).
    np.testing.assert_array_equal(reference_values(row["spec"], row["steps"]), row["expected"])
