"""Kinds from ``jax.example_libraries.optimizers``: the tutorial's schedules, under their names.

Step ``t`` counts from 0. These functions extrapolate: nothing clamps except where a formula says so.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from lrsched.specs._base import (
    PositiveReal,
    Real,
    RealList,
    SpecModel,
    StepCount,
    StepOffset,
    check_strictly_increasing,
)


class Constant(SpecModel):
    """``constant(step_size)``: the same value at every step.

    Example: ``{"kind": "constant", "step_size": 1e-4}``.
    """

    source = "jax.example_libraries.optimizers.constant"
    formula = "step_size"
    example = {"kind": "constant", "step_size": 1e-4}

    kind: Literal["constant"]
    step_size: Real


class ExponentialDecay(SpecModel):
    """``exponential_decay``: jax.example_libraries' and optax's, one function under two spellings.

    jax.example_libraries: ``step_size * decay_rate ** (t / decay_steps)``. optax spells the same
    ``init_value``/``transition_steps`` and adds ``transition_begin`` B (the value is held at
    ``init_value`` until B), ``staircase`` (floor the exponent, so it drops at B + k*T) and
    ``end_value`` (a floor when ``decay_rate < 1``, a ceiling otherwise). Unlike optax, a
    ``decay_rate`` of 0 or a non-positive step count is refused rather than turned into a constant.

    Example: ``{"kind": "exponential_decay", "step_size": 1e-4, "decay_steps": 10, "decay_rate": 0.9}``.
    """

    source = "jax.example_libraries.optimizers.exponential_decay = optax.exponential_decay"
    formula = (
        "d = t - transition_begin; p = d / transition_steps (floored if staircase); "
        "init_value if d <= 0 else init_value * decay_rate ** p; then clipped by end_value "
        "(floor if decay_rate < 1, else ceiling). step_size/decay_steps are the "
        "jax.example_libraries names of init_value/transition_steps."
    )
    example = {"kind": "exponential_decay", "step_size": 1e-4, "decay_steps": 10, "decay_rate": 0.9}

    kind: Literal["exponential_decay"]
    step_size: Real | None = Field(default=None, description="jax.example_libraries' init_value.")
    decay_steps: PositiveReal | None = Field(
        default=None, description="jax.example_libraries' transition_steps."
    )
    init_value: Real | None = None
    transition_steps: StepCount | None = None
    decay_rate: PositiveReal
    transition_begin: StepOffset = 0
    staircase: bool = False
    end_value: Real | None = None

    @model_validator(mode="after")
    def _one_spelling(self) -> Self:
        if (self.step_size is None) == (self.init_value is None):
            raise ValueError(
                "give the initial value once: either step_size (jax.example_libraries) "
                "or init_value (optax)"
            )
        if (self.decay_steps is None) == (self.transition_steps is None):
            raise ValueError(
                "give the decay length once: either decay_steps (jax.example_libraries) "
                "or transition_steps (optax)"
            )
        return self

    @property
    def initial(self) -> float:
        """The value at the start, whichever spelling was used."""
        return self.step_size if self.step_size is not None else float(self.init_value or 0.0)

    @property
    def length(self) -> float:
        """The decay length, whichever spelling was used."""
        return (
            self.decay_steps if self.decay_steps is not None else float(self.transition_steps or 1)
        )


class InverseTimeDecay(SpecModel):
    """``inverse_time_decay``: ``step_size / (1 + decay_rate * t / decay_steps)``.

    With ``staircase`` the ratio is floored, so the first drop is at ``t = decay_steps``.

    Example: ``{"kind": "inverse_time_decay", "step_size": 1e-4, "decay_steps": 10, "decay_rate": 0.8}``.
    """

    source = "jax.example_libraries.optimizers.inverse_time_decay"
    formula = (
        "step_size / (1 + decay_rate * t / decay_steps); "
        "staircase: step_size / (1 + decay_rate * floor(t / decay_steps))"
    )
    example = {
        "kind": "inverse_time_decay",
        "step_size": 1e-4,
        "decay_steps": 10,
        "decay_rate": 0.8,
    }

    kind: Literal["inverse_time_decay"]
    step_size: Real
    decay_steps: PositiveReal
    decay_rate: Real
    staircase: bool = False


class PolynomialDecay(SpecModel):
    """``polynomial_decay``: from ``step_size`` to ``final_step_size`` over ``decay_steps``.

    ``(1 - min(t, D)/D) ** power * (step_size - final_step_size) + final_step_size``; holds
    ``final_step_size`` from ``t = D`` on. Under ``jit`` the reference gives NaN there for a
    fractional power (XLA turns ``t/D`` into ``t*(1/D)``); this gives the intended value.

    Example: ``{"kind": "polynomial_decay", "step_size": 1e-4, "decay_steps": 10,
    "final_step_size": 1e-5, "power": 0.3}``.
    """

    source = "jax.example_libraries.optimizers.polynomial_decay"
    formula = (
        "(1 - min(t, decay_steps) / decay_steps) ** power * (step_size - final_step_size) "
        "+ final_step_size; final_step_size for t >= decay_steps"
    )
    example = {
        "kind": "polynomial_decay",
        "step_size": 1e-4,
        "decay_steps": 10,
        "final_step_size": 1e-5,
        "power": 0.3,
    }

    kind: Literal["polynomial_decay"]
    step_size: Real
    decay_steps: PositiveReal
    final_step_size: Real
    power: Real = 1.0


class PiecewiseConstant(SpecModel):
    """``piecewise_constant``: ``values[number of boundaries strictly below t]``.

    The switch comes *after* a boundary: at ``t == boundaries[i]`` the value is still ``values[i]``
    (optax's ``piecewise_constant_schedule`` switches *at* it).

    Example: ``{"kind": "piecewise_constant", "boundaries": [1, 4, 7],
    "values": [3e-4, 2e-4, 1e-4, 1e-5]}``.
    """

    source = "jax.example_libraries.optimizers.piecewise_constant"
    formula = (
        "values[sum(t > boundaries)]: values[0] up to boundaries[0], values[i] up to boundaries[i]"
    )
    example = {
        "kind": "piecewise_constant",
        "boundaries": [1, 4, 7],
        "values": [3e-4, 2e-4, 1e-4, 1e-5],
    }

    kind: Literal["piecewise_constant"]
    boundaries: RealList
    values: RealList = Field(min_length=1)

    @field_validator("boundaries")
    @classmethod
    def _sorted(cls, boundaries: list[float]) -> list[float]:
        check_strictly_increasing(boundaries, "boundaries")
        return boundaries

    @field_validator("values")
    @classmethod
    def _one_longer(cls, values: list[float], info: ValidationInfo) -> list[float]:
        boundaries = info.data.get("boundaries")
        if boundaries is not None and len(values) != len(boundaries) + 1:
            raise ValueError(
                "values must be one longer than boundaries (one value before the first boundary "
                f"and one after each): got {len(boundaries)} boundaries and {len(values)} values"
            )
        return values
