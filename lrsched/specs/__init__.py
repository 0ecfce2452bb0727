"""Schedule specs: one frozen pydantic model per kind, in one union discriminated on ``kind``.

Every kind is named after the reference function it reproduces and takes that function's parameter
names (DESIGN §2.1), so a call copied from the library validates as a spec.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BeforeValidator, Field, TypeAdapter

from lrsched.limits import MAX_SPEC_DEPTH, MAX_SPEC_NODES
from lrsched.specs._base import SpecModel
from lrsched.specs.composite import JoinSchedules
from lrsched.specs.expression import Expression
from lrsched.specs.jax_example import (
    Constant,
    ExponentialDecay,
    InverseTimeDecay,
    PiecewiseConstant,
    PolynomialDecay,
)
from lrsched.specs.optax_family import (
    ConstantSchedule,
    CosineDecaySchedule,
    CosineOnecycleSchedule,
    LinearOnecycleSchedule,
    LinearSchedule,
    PiecewiseConstantSchedule,
    PiecewiseInterpolateSchedule,
    PolynomialSchedule,
    SgdrSchedule,
    WarmupConstantSchedule,
    WarmupCosineDecayParams,
    WarmupCosineDecaySchedule,
    WarmupExponentialDecaySchedule,
)


def _check_nesting(value: Any) -> Any:
    """Refuse specs nested too deeply or too large before validating them (no recursion bombs)."""
    if not isinstance(value, dict):
        return value
    nodes, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_SPEC_DEPTH:
            raise ValueError(
                f"schedules nest more than {MAX_SPEC_DEPTH} levels deep; flatten the "
                "join_schedules into one with more pieces"
            )
        children = node.get("schedules")
        if isinstance(children, list):
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict))
        cycles = node.get("cosine_kwargs")
        if isinstance(cycles, list):
            nodes += 2 * len(cycles)  # each cycle compiles to a warmup and a cosine piece
        if nodes > MAX_SPEC_NODES:
            raise ValueError(
                f"the spec holds more than {MAX_SPEC_NODES} schedules (each sgdr cycle counts "
                "two); send a smaller one, or evaluate its pieces in separate requests"
            )
    return value


#: Any schedule spec; pydantic picks the model from ``kind``.
ScheduleSpec = Annotated[
    Union[  # noqa: UP007 (a discriminated union needs the Union form here)
        Constant,
        ExponentialDecay,
        InverseTimeDecay,
        PolynomialDecay,
        PiecewiseConstant,
        ConstantSchedule,
        LinearSchedule,
        PolynomialSchedule,
        CosineDecaySchedule,
        WarmupConstantSchedule,
        WarmupCosineDecaySchedule,
        WarmupExponentialDecaySchedule,
        PiecewiseConstantSchedule,
        PiecewiseInterpolateSchedule,
        JoinSchedules,
        LinearOnecycleSchedule,
        CosineOnecycleSchedule,
        SgdrSchedule,
        Expression,
    ],
    Field(discriminator="kind"),
    BeforeValidator(_check_nesting),
]

JoinSchedules.model_rebuild(_types_namespace={"ScheduleSpec": ScheduleSpec})

_ADAPTER: TypeAdapter[Any] = TypeAdapter(ScheduleSpec)

#: Every kind's name and model, in catalog order.
SPEC_KINDS: dict[str, type[SpecModel]] = {
    model.model_fields["kind"].annotation.__args__[0]: model
    for model in ScheduleSpec.__origin__.__args__  # type: ignore[attr-defined]
}


def parse_spec(value: Any) -> SpecModel:
    """Validate a JSON-like object as a schedule spec (raises pydantic.ValidationError)."""
    spec: SpecModel = _ADAPTER.validate_python(value)
    return spec


__all__ = [
    "SPEC_KINDS",
    "Constant",
    "ConstantSchedule",
    "CosineDecaySchedule",
    "CosineOnecycleSchedule",
    "ExponentialDecay",
    "Expression",
    "InverseTimeDecay",
    "JoinSchedules",
    "LinearOnecycleSchedule",
    "LinearSchedule",
    "PiecewiseConstant",
    "PiecewiseConstantSchedule",
    "PiecewiseInterpolateSchedule",
    "PolynomialDecay",
    "PolynomialSchedule",
    "ScheduleSpec",
    "SgdrSchedule",
    "SpecModel",
    "WarmupConstantSchedule",
    "WarmupCosineDecayParams",
    "WarmupCosineDecaySchedule",
    "WarmupExponentialDecaySchedule",
    "parse_spec",
]
