"""Shared building blocks of the spec models: the base class and the constrained number types."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from lrsched.limits import FLOAT32_MAX, MAX_LIST_LENGTH


def _fits_float32(value: float) -> float:
    if abs(value) > FLOAT32_MAX:
        raise ValueError(
            f"{value!r} overflows float32 (largest magnitude about 3.4e38); send a smaller number"
        )
    return value


#: A finite number that float32 can hold (NaN, Infinity and 1e400 are refused).
Real = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_fits_float32)]
#: A positive, finite number.
PositiveReal = Annotated[Real, Field(gt=0)]
#: A non-negative, finite number.
NonNegativeReal = Annotated[Real, Field(ge=0)]


def _not_a_bool(value: object) -> object:
    # JSON true/false would otherwise pass as 1/0: a step count is a number.
    if isinstance(value, bool):
        raise ValueError("expected a whole number of steps, not true/false")
    return value


#: A step count that must be at least one (step counts beyond int32 are allowed).
StepCount = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=1, le=2**62)]
#: A step offset that may be zero.
StepOffset = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=0, le=2**62)]
#: A bounded list of numbers.
RealList = Annotated[list[Real], Field(max_length=MAX_LIST_LENGTH)]


class SpecModel(BaseModel):
    """Base of every schedule spec: immutable, and unknown fields are errors, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The reference function this kind reproduces, as a dotted path.
    source: ClassVar[str]
    #: The formula, in plain text, with its boundary behaviour.
    formula: ClassVar[str]
    #: A valid example spec of this kind (without defaults filled in).
    example: ClassVar[dict[str, Any]]


def check_strictly_increasing(values: list[Any], name: str) -> None:
    """Raise a ValueError naming the first pair of `values` that is out of order."""
    for index in range(1, len(values)):
        if not values[index - 1] < values[index]:
            raise ValueError(
                f"{name} must be strictly increasing, but {name}[{index - 1}] = "
                f"{values[index - 1]!r} is not below {name}[{index}] = {values[index]!r}; "
                "sort them and drop duplicates"
            )
