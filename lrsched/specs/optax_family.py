"""Kinds from ``optax.schedules``, with optax's names, parameters and defaults.

Step ``t`` counts from 0. Where optax quietly coerces a bad argument (a non-positive step count or a
negative ``transition_begin`` becomes a constant or 0, with only a log line), these models refuse it
and say what to send instead.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from lrsched.limits import MAX_LIST_LENGTH, MAX_SGDR_CYCLES
from lrsched.specs._base import (
    NonNegativeReal,
    PositiveReal,
    Real,
    SpecModel,
    StepCount,
    StepOffset,
)

#: ``{"100": 0.5, "200": 0.1}``: JSON object keys are the step numbers, values the scales.
BoundariesAndScales = Annotated[
    dict[StepOffset, NonNegativeReal], Field(max_length=MAX_LIST_LENGTH)
]


class ConstantSchedule(SpecModel):
    """``constant_schedule(value)``: ``value`` at every step.

    Example: ``{"kind": "constant_schedule", "value": 0.001}``.
    """

    source = "optax.constant_schedule"
    formula = "value"
    example = {"kind": "constant_schedule", "value": 0.001}

    kind: Literal["constant_schedule"]
    value: Real


class PolynomialSchedule(SpecModel):
    """``polynomial_schedule``: from ``init_value`` to ``end_value`` over ``transition_steps``.

    ``c = clip(t - B, 0, T)``; ``(I - E) * (1 - c/T) ** power + E``: ``I`` until ``B``, ``E`` from
    ``B + T`` on (exactly, also under ``jit``, where optax's own can give NaN).

    Example: ``{"kind": "polynomial_schedule", "init_value": 1.0, "end_value": 0.01, "power": 2,
    "transition_steps": 100}``.
    """

    source = "optax.polynomial_schedule"
    formula = (
        "c = clip(t - transition_begin, 0, transition_steps); "
        "(init_value - end_value) * (1 - c / transition_steps) ** power + end_value"
    )
    example = {
        "kind": "polynomial_schedule",
        "init_value": 1.0,
        "end_value": 0.01,
        "power": 2,
        "transition_steps": 100,
    }

    kind: Literal["polynomial_schedule"]
    init_value: Real
    end_value: Real
    power: Real
    transition_steps: StepCount
    transition_begin: StepOffset = 0


class LinearSchedule(SpecModel):
    """``linear_schedule``: ``polynomial_schedule`` with ``power = 1``.

    ``I`` until ``B``, then a straight line to ``E`` at ``B + T``, then ``E`` (exactly: a ramp to 0
    never goes slightly negative).

    Example: ``{"kind": "linear_schedule", "init_value": 1.0, "end_value": 0.1,
    "transition_steps": 10, "transition_begin": 5}``.
    """

    source = "optax.linear_schedule"
    formula = (
        "c = clip(t - transition_begin, 0, transition_steps); "
        "init_value + (end_value - init_value) * c / transition_steps"
    )
    example = {
        "kind": "linear_schedule",
        "init_value": 1.0,
        "end_value": 0.1,
        "transition_steps": 10,
        "transition_begin": 5,
    }

    kind: Literal["linear_schedule"]
    init_value: Real
    end_value: Real
    transition_steps: StepCount
    transition_begin: StepOffset = 0


class CosineDecaySchedule(SpecModel):
    """``cosine_decay_schedule``: half a cosine from ``init_value`` down to ``alpha * init_value``.

    ``c = min(t, D)``; ``I * ((1 - alpha) * (0.5 * (1 + cos(pi * c / D))) ** exponent + alpha)``;
    held at ``alpha * I`` from ``D`` on. ``alpha`` is a fraction of ``init_value``.

    Example: ``{"kind": "cosine_decay_schedule", "init_value": 1.0, "decay_steps": 100, "alpha": 0.1}``.
    """

    source = "optax.cosine_decay_schedule"
    formula = (
        "c = min(t, decay_steps); init_value * ((1 - alpha) * "
        "(0.5 * (1 + cos(pi * c / decay_steps))) ** exponent + alpha)"
    )
    example = {"kind": "cosine_decay_schedule", "init_value": 1.0, "decay_steps": 100, "alpha": 0.1}

    kind: Literal["cosine_decay_schedule"]
    init_value: Real
    decay_steps: StepCount
    alpha: Real = 0.0
    exponent: Real = 1.0


class WarmupConstantSchedule(SpecModel):
    """``warmup_constant_schedule``: linear from ``init_value`` to ``peak_value`` over
    ``warmup_steps``, then ``peak_value``.

    Example: ``{"kind": "warmup_constant_schedule", "init_value": 0.0, "peak_value": 1.0,
    "warmup_steps": 10}``.
    """

    source = "optax.warmup_constant_schedule"
    formula = "init_value + (peak_value - init_value) * min(t, warmup_steps) / warmup_steps"
    example = {
        "kind": "warmup_constant_schedule",
        "init_value": 0.0,
        "peak_value": 1.0,
        "warmup_steps": 10,
    }

    kind: Literal["warmup_constant_schedule"]
    init_value: Real
    peak_value: Real
    warmup_steps: Annotated[
        StepCount,
        Field(
            description="At least 1 (optax turns 0 into a constant init_value); "
            "for no warmup use constant_schedule."
        ),
    ]


class WarmupCosineDecayParams(SpecModel):
    """The parameters of ``warmup_cosine_decay_schedule``: also one cycle of ``sgdr_schedule``."""

    source = "optax.warmup_cosine_decay_schedule"
    formula = (
        "t < warmup_steps: init_value + (peak_value - init_value) * t / warmup_steps; else "
        "cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha=end_value/peak_value, "
        "exponent)(t - warmup_steps)"
    )
    example = {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 10, "decay_steps": 110}

    init_value: Real
    peak_value: Real
    warmup_steps: StepOffset
    decay_steps: Annotated[
        StepCount, Field(description="The whole length, warmup included; above warmup_steps.")
    ]
    end_value: Real = 0.0
    exponent: Real = 1.0

    @field_validator("decay_steps")
    @classmethod
    def _longer_than_warmup(cls, decay_steps: int, info: ValidationInfo) -> int:
        warmup = info.data.get("warmup_steps")
        if warmup is not None and decay_steps <= warmup:
            raise ValueError(
                f"decay_steps counts the warmup too, so it must exceed warmup_steps ({warmup}); "
                f"got {decay_steps}. For {warmup} warmup steps and N decay steps send "
                f"decay_steps = {warmup} + N"
            )
        return decay_steps


class WarmupCosineDecaySchedule(WarmupCosineDecayParams):
    """``warmup_cosine_decay_schedule``: linear warmup to ``peak_value``, then cosine to ``end_value``.

    ``decay_steps`` is the whole length, warmup included. Exactly ``peak_value`` at
    ``warmup_steps``, ``end_value`` from ``decay_steps`` on.

    Example: ``{"kind": "warmup_cosine_decay_schedule", "init_value": 0.0, "peak_value": 1.0,
    "warmup_steps": 10, "decay_steps": 110, "end_value": 0.1}``.
    """

    example = {
        "kind": "warmup_cosine_decay_schedule",
        "init_value": 0.0,
        "peak_value": 1.0,
        "warmup_steps": 10,
        "decay_steps": 110,
        "end_value": 0.1,
    }

    kind: Literal["warmup_cosine_decay_schedule"]


class WarmupExponentialDecaySchedule(SpecModel):
    """``warmup_exponential_decay_schedule``: linear warmup, then ``exponential_decay`` from the peak.

    ``transition_begin`` counts from the end of the warmup.

    Example: ``{"kind": "warmup_exponential_decay_schedule", "init_value": 0.0, "peak_value": 1.0,
    "warmup_steps": 10, "transition_steps": 20, "decay_rate": 0.5}``.
    """

    source = "optax.warmup_exponential_decay_schedule"
    formula = (
        "t < warmup_steps: linear from init_value to peak_value; else exponential_decay(peak_value, "
        "transition_steps, decay_rate, transition_begin, staircase, end_value)(t - warmup_steps)"
    )
    example = {
        "kind": "warmup_exponential_decay_schedule",
        "init_value": 0.0,
        "peak_value": 1.0,
        "warmup_steps": 10,
        "transition_steps": 20,
        "decay_rate": 0.5,
    }

    kind: Literal["warmup_exponential_decay_schedule"]
    init_value: Real
    peak_value: Real
    warmup_steps: StepOffset
    transition_steps: StepCount
    decay_rate: PositiveReal
    transition_begin: StepOffset = 0
    staircase: bool = False
    end_value: Real | None = None


class PiecewiseConstantSchedule(SpecModel):
    """``piecewise_constant_schedule``: ``init_value`` times every scale whose boundary is <= t.

    Scales multiply cumulatively, and the switch comes *at* a boundary (jax.example_libraries'
    ``piecewise_constant`` switches after it). Keys are step numbers: ``{"100": 0.1}``.

    Example: ``{"kind": "piecewise_constant_schedule", "init_value": 1.0,
    "boundaries_and_scales": {"100": 0.1, "200": 0.1}}``.
    """

    source = "optax.piecewise_constant_schedule"
    formula = (
        "init_value * product(scale for boundary, scale in boundaries_and_scales if boundary <= t)"
    )
    example = {
        "kind": "piecewise_constant_schedule",
        "init_value": 1.0,
        "boundaries_and_scales": {"100": 0.1, "200": 0.1},
    }

    kind: Literal["piecewise_constant_schedule"]
    init_value: Real
    boundaries_and_scales: BoundariesAndScales | None = None


class PiecewiseInterpolateSchedule(SpecModel):
    """``piecewise_interpolate_schedule``: linear or cosine interpolation between cumulative products.

    Knots ``(0, I), (b1, I*s1), (b2, I*s1*s2), ...``; the last value is held after the last
    boundary. Keys are step numbers: ``{"4": 0.1}``.

    Example: ``{"kind": "piecewise_interpolate_schedule", "interpolate_type": "linear",
    "init_value": 1.0, "boundaries_and_scales": {"4": 0.1, "8": 0.01}}``.
    """

    source = "optax.piecewise_interpolate_schedule"
    formula = (
        "knots (0, init_value), (b_k, init_value * s_1 * ... * s_k); between knots linear "
        "a + (b - a) * pct or cosine b + (a - b) * (1 + cos(pi * pct)) / 2, "
        "pct = (t - b_k) / max(b_k+1 - b_k, 1); the last knot's value after it"
    )
    example = {
        "kind": "piecewise_interpolate_schedule",
        "interpolate_type": "linear",
        "init_value": 1.0,
        "boundaries_and_scales": {"4": 0.1, "8": 0.01},
    }

    kind: Literal["piecewise_interpolate_schedule"]
    interpolate_type: Literal["linear", "cosine"]
    init_value: Real
    boundaries_and_scales: BoundariesAndScales | None = None


class LinearOnecycleSchedule(SpecModel):
    """``linear_onecycle_schedule``: up from ``peak/div`` to ``peak``, back down, then to the floor.

    Linear through ``(0, P/div)``, ``(int(pct_start*T), P)``, ``(int(pct_final*T), P/div)`` and
    ``(T, P/(div*final_div))``; held after ``T``.

    Example: ``{"kind": "linear_onecycle_schedule", "transition_steps": 100, "peak_value": 1.0}``.
    """

    source = "optax.linear_onecycle_schedule"
    formula = (
        "linear through (0, peak/div), (int(pct_start*T), peak), (int(pct_final*T), peak/div), "
        "(T, peak/(div*final_div_factor)); held after T"
    )
    example = {"kind": "linear_onecycle_schedule", "transition_steps": 100, "peak_value": 1.0}

    kind: Literal["linear_onecycle_schedule"]
    transition_steps: StepCount
    peak_value: Real
    pct_start: Annotated[Real, Field(ge=0, le=1)] = 0.3
    pct_final: Annotated[Real, Field(ge=0, le=1, validate_default=True)] = 0.85
    div_factor: PositiveReal = 25.0
    final_div_factor: PositiveReal = 1e4

    @field_validator("pct_final")
    @classmethod
    def _phases_in_order(cls, pct_final: float, info: ValidationInfo) -> float:
        steps, pct_start = info.data.get("transition_steps"), info.data.get("pct_start")
        if steps is None or pct_start is None:
            return pct_final
        peak, back = int(pct_start * steps), int(pct_final * steps)
        if not peak < back < steps:
            raise ValueError(
                f"the three phases must have room: int(pct_start*transition_steps) = {peak}, "
                f"int(pct_final*transition_steps) = {back} and transition_steps = {steps} must "
                "be strictly increasing; raise transition_steps or spread pct_start and pct_final"
            )
        return pct_final


class CosineOnecycleSchedule(SpecModel):
    """``cosine_onecycle_schedule``: cosine up from ``peak/div`` to ``peak``, then down to the floor.

    Cosine through ``(0, P/div)``, ``(int(pct_start*T), P)`` and ``(T, P/(div*final_div))``; held
    after ``T``.

    Example: ``{"kind": "cosine_onecycle_schedule", "transition_steps": 100, "peak_value": 1.0}``.
    """

    source = "optax.cosine_onecycle_schedule"
    formula = (
        "cosine through (0, peak/div), (int(pct_start*T), peak), "
        "(T, peak/(div*final_div_factor)); held after T"
    )
    example = {"kind": "cosine_onecycle_schedule", "transition_steps": 100, "peak_value": 1.0}

    kind: Literal["cosine_onecycle_schedule"]
    transition_steps: StepCount
    peak_value: Real
    pct_start: Annotated[Real, Field(ge=0, le=1, validate_default=True)] = 0.3
    div_factor: PositiveReal = 25.0
    final_div_factor: PositiveReal = 1e4

    @field_validator("pct_start")
    @classmethod
    def _peak_before_end(cls, pct_start: float, info: ValidationInfo) -> float:
        steps = info.data.get("transition_steps")
        if steps is not None and not int(pct_start * steps) < steps:
            raise ValueError(
                f"the peak int(pct_start*transition_steps) = {int(pct_start * steps)} must come "
                f"before transition_steps = {steps}; lower pct_start below 1"
            )
        return pct_start


class SgdrSchedule(SpecModel):
    """``sgdr_schedule``: warm restarts, one ``warmup_cosine_decay_schedule`` cycle after another.

    Each cycle lasts its own ``decay_steps`` and restarts its step count at 0; the last cycle's end
    value is held after it.

    Example: ``{"kind": "sgdr_schedule", "cosine_kwargs": [{"init_value": 0.0, "peak_value": 1.0,
    "warmup_steps": 5, "decay_steps": 20}, {"init_value": 0.0, "peak_value": 1.0,
    "warmup_steps": 5, "decay_steps": 20}]}``.
    """

    source = "optax.sgdr_schedule"
    formula = (
        "join_schedules([warmup_cosine_decay_schedule(**kw) for kw in cosine_kwargs], "
        "boundaries = running sums of decay_steps)"
    )
    example = {
        "kind": "sgdr_schedule",
        "cosine_kwargs": [
            {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 20},
            {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 20},
        ],
    }

    kind: Literal["sgdr_schedule"]
    cosine_kwargs: Annotated[
        list[WarmupCosineDecayParams], Field(min_length=1, max_length=MAX_SGDR_CYCLES)
    ]
