"""The expression language: what it computes, and what it refuses (never eval)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrsched import ExpressionError, evaluate, parse_spec
from lrsched.expression import FUNCTIONS, parse_expression


def values(expr: str, steps: list[int], **params: float) -> list[float]:
    spec = parse_spec({"kind": "expression", "expr": expr, "params": params})
    return evaluate(spec, steps).tolist()


@pytest.mark.parametrize(
    ("expr", "steps", "expected"),
    [
        ("0.5", [0, 7], [0.5, 0.5]),
        ("step", [0, 3], [0.0, 3.0]),
        ("-step + +2", [1], [1.0]),
        ("7 // 2 + 7 % 4 - 2 ** 3 * 1 / 4", [0], [3 + 3 - 2]),
        ("-7 // 2", [0], [-4.0]),  # floor division, as in Python
        ("-7 % 3", [0], [2.0]),  # the remainder takes the divisor's sign, as in Python
        ("2 ** -1", [0], [0.5]),
        ("(step > 2) + (step >= 2) + (step < 2) + (step <= 2) + (step == 2) + (step != 2)", [1, 2, 3], [3.0, 3.0, 3.0]),
        ("1 < step < 4", [1, 2, 3, 4], [0.0, 1.0, 1.0, 0.0]),
        ("where(step < 3, 1.0, 2.0)", [2, 3], [1.0, 2.0]),
        ("minimum(step, 2) + maximum(step, 2)", [1, 5], [3.0, 7.0]),
        ("clip(step, 1, 3)", [0, 2, 9], [1.0, 2.0, 3.0]),
        ("floor(step / 3) + ceil(step / 3)", [4], [3.0]),
        ("abs(1 - step)", [3], [2.0]),
        ("cos(pi * step)", [1], [-1.0]),
    ],
)
def test_semantics(expr: str, steps: list[int], expected: list[float]) -> None:
    assert values(expr, steps) == pytest.approx(expected, rel=1e-6)


def test_tutorial_custom_schedule() -> None:
    got = values("init_lr / 3 ** step", list(range(10)), init_lr=1e-4)
    np.testing.assert_allclose(got, [1e-4 / 3**k for k in range(10)], rtol=1e-6)


def test_transcendental_functions() -> None:
    got = values("exp(step) + log(step) + sqrt(step) + sin(step)", [2])
    assert got == pytest.approx([math.exp(2) + math.log(2) + math.sqrt(2) + math.sin(2)], rel=1e-6)


def test_every_listed_function_is_callable() -> None:
    for name, (arity, _) in FUNCTIONS.items():
        args = ", ".join(["step + 1"] * arity)
        assert len(values(f"{name}({args})", [1])) == 1


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("step.real", "attribute access"),
        ("lr[0]", "subscripts"),
        ("(lambda: 1)()", "calling"),
        ("[1, 2]", "lists"),
        ("(1, 2)", "tuples"),
        ("{1: 2}", "dicts"),
        ("'a'", "only real numbers"),
        ("True", "only real numbers"),
        ("1j", "only real numbers"),
        ("x", "unknown name 'x'"),
        ("open('f')", "calling 'open'"),
        ("exp(x=1)", "positional arguments only"),
        ("exp(*[1])", "positional arguments only"),
        ("step if step else 1", "use where"),
        ("step and 1", "combine conditions"),
        ("(y := 1)", "assignment"),
        ("step @ step", "MatMult"),
        ("~step", "Invert"),
        ("step in (1, 2)", "In"),
        ("step is 1", "Is"),
        ("1e999", "overflows float32"),
        ("9" * 50, "overflows float32"),
        ("", "empty"),
        ("1 +", "not a valid expression"),
        ("x = 1", "not a valid expression"),
        ("f'{step}'", "strings"),
    ],
)
def test_refused(expr: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match=None) as info:
        parse_expression(expr, ("lr",))
    assert fragment in str(info.value)


def test_limits() -> None:
    with pytest.raises(ExpressionError, match="characters long"):
        parse_expression("1+" * 600 + "1", ())
    with pytest.raises(ExpressionError, match="nests deeper"):
        parse_expression("-" * 40 + "1", ())
    def balanced(leaves: int) -> str:
        return "s" if leaves == 1 else f"({balanced(leaves // 2)}+{balanced(leaves - leaves // 2)})"

    parse_expression(balanced(64), ("s",))  # 127 parts, 7 deep: fine
    with pytest.raises(ExpressionError, match="more than 200 parts"):
        parse_expression(balanced(128), ("s",))


def test_never_runs_python() -> None:
    # A payload that would have a side effect if it were ever evaluated by Python.
    with pytest.raises(ExpressionError):
        parse_expression("__import__('os').system('touch /tmp/lrsched-pwned')", ())
    import os

    assert not os.path.exists("/tmp/lrsched-pwned")
