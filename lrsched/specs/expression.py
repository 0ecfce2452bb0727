"""The ``expression`` kind: a user-defined schedule, the tutorial's ``make_schedule`` over the wire."""

from __future__ import annotations

import ast
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from lrsched.expression import RESERVED, parse_expression
from lrsched.limits import MAX_EXPRESSION_LENGTH, MAX_LIST_LENGTH
from lrsched.specs._base import Real, SpecModel

ParamName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class Expression(SpecModel):
    """``expression``: a formula of ``step`` and named ``params``, compiled to jnp (never eval'd).

    Arithmetic ``+ - * / // % **``, unary minus, comparisons, the functions where, minimum, maximum,
    exp, log, sqrt, sin, cos, floor, ceil, abs, clip, the constant ``pi``, ``step`` and the params.
    Values are float32; a step where the formula is not finite is reported.

    Example: ``{"kind": "expression", "expr": "init_lr / 3 ** step", "params": {"init_lr": 1e-4}}``.
    """

    source = "jax.example_libraries.optimizers.make_schedule(callable)"
    formula = "expr, evaluated in float32 at each step"
    example = {"kind": "expression", "expr": "init_lr / 3 ** step", "params": {"init_lr": 1e-4}}

    kind: Literal["expression"]
    params: Annotated[dict[ParamName, Real], Field(max_length=MAX_LIST_LENGTH)] = {}
    expr: Annotated[str, Field(max_length=MAX_EXPRESSION_LENGTH)]

    @field_validator("params")
    @classmethod
    def _not_reserved(cls, params: dict[str, float]) -> dict[str, float]:
        taken = sorted(RESERVED.intersection(params))
        if taken:
            raise ValueError(
                f"parameter names {taken} are reserved (step, pi and the function names); rename them"
            )
        return params

    @field_validator("expr")
    @classmethod
    def _parses(cls, expr: str, info: ValidationInfo) -> str:
        params = info.data.get("params")
        if params is not None:  # otherwise params already failed and says why
            parse_expression(expr, tuple(params))
        return expr

    @property
    def tree(self) -> ast.expr:
        """The checked syntax tree of ``expr``."""
        return parse_expression(self.expr, tuple(self.params))
