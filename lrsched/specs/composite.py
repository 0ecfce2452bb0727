"""``join_schedules``: the one kind that holds other specs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from lrsched.limits import MAX_LIST_LENGTH
from lrsched.specs._base import SpecModel, StepOffset, check_strictly_increasing

if TYPE_CHECKING:
    from lrsched.specs import ScheduleSpec


class JoinSchedules(SpecModel):
    """``join_schedules``: ``schedules[i]`` from ``boundaries[i-1]`` on, with its step restarted at 0.

    Piece ``i`` sees ``t - boundaries[i-1]``; the switch is at the boundary (inclusive).

    Example: ``{"kind": "join_schedules", "schedules": [{"kind": "constant_schedule", "value": 1.0},
    {"kind": "linear_schedule", "init_value": 1.0, "end_value": 0.0, "transition_steps": 10}],
    "boundaries": [5]}``.
    """

    source = "optax.join_schedules"
    formula = "schedules[i](t - boundaries[i-1]) for boundaries[i-1] <= t < boundaries[i]"
    example = {
        "kind": "join_schedules",
        "schedules": [
            {"kind": "constant_schedule", "value": 1.0},
            {
                "kind": "linear_schedule",
                "init_value": 1.0,
                "end_value": 0.0,
                "transition_steps": 10,
            },
        ],
        "boundaries": [5],
    }

    kind: Literal["join_schedules"]
    schedules: Annotated[list[ScheduleSpec], Field(min_length=1, max_length=MAX_LIST_LENGTH)]
    boundaries: Annotated[list[StepOffset], Field(max_length=MAX_LIST_LENGTH)]

    @field_validator("boundaries")
    @classmethod
    def _one_per_switch(cls, boundaries: list[int], info: ValidationInfo) -> list[int]:
        schedules = info.data.get("schedules")
        if schedules is not None and len(boundaries) != len(schedules) - 1:
            raise ValueError(
                f"boundaries must be one shorter than schedules (one switch between each pair): "
                f"got {len(schedules)} schedules and {len(boundaries)} boundaries"
            )
        check_strictly_increasing(boundaries, "boundaries")
        return boundaries
