"""Request and response bodies of the schedule endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Self, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from lrsched import MAX_STEP, MAX_STEPS_PER_REQUEST, ScheduleSpec

Step = Annotated[int, Field(ge=0, le=MAX_STEP, strict=True)]


class StepRange(BaseModel):
    """The steps ``start, start + step, ...`` below ``stop`` (stop exclusive, like Python's range)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: Annotated[int, Field(ge=0, le=MAX_STEP, strict=True)] = 0
    stop: Annotated[int, Field(ge=0, le=MAX_STEP + 1, strict=True)]
    step: Annotated[int, Field(ge=1, le=MAX_STEP, strict=True)] = 1

    @model_validator(mode="after")
    def _within_limit(self) -> Self:
        if len(self) > MAX_STEPS_PER_REQUEST:
            raise ValueError(
                f"the range holds {len(self)} steps; at most {MAX_STEPS_PER_REQUEST} per request: "
                "split it into several requests or raise `step`"
            )
        return self

    def __len__(self) -> int:
        return len(range(self.start, self.stop, self.step))


def _steps_form(value: Any) -> str | None:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict | StepRange):
        return "range"
    return None


StepList = Annotated[list[Step], Field(max_length=MAX_STEPS_PER_REQUEST)]

#: Either a list of step numbers or a range object.
Steps = Annotated[
    Union[Annotated[StepList, Tag("list")], Annotated[StepRange, Tag("range")]],  # noqa: UP007
    Discriminator(
        _steps_form,
        custom_error_type="steps_type",
        custom_error_message=(
            "steps must be a list of non-negative integers or a range object "
            '{"start": 0, "stop": 100, "step": 1}'
        ),
    ),
]


class EvaluateRequest(BaseModel):
    """A schedule and the steps to evaluate it at."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "schedule": {
                        "kind": "exponential_decay",
                        "step_size": 1e-4,
                        "decay_steps": 10,
                        "decay_rate": 0.9,
                    },
                    "steps": [0, 1, 2],
                },
                {
                    "schedule": {
                        "kind": "cosine_decay_schedule",
                        "init_value": 0.1,
                        "decay_steps": 1000,
                    },
                    "steps": {"start": 0, "stop": 1000, "step": 1},
                },
            ]
        },
    )

    schedule: ScheduleSpec
    steps: Steps


class EvaluateResponse(BaseModel):
    """One float32 value per requested step, in order (shortest round-trip decimals)."""

    values: list[float]


class KindParameter(BaseModel):
    """One parameter of a kind."""

    name: str
    required: bool
    default: Any = None
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")


class KindInfo(BaseModel):
    """One entry of the catalog."""

    kind: str
    source: str
    summary: str
    formula: str
    parameters: list[KindParameter]
    example: dict[str, Any]


class Catalog(BaseModel):
    """Every kind the service evaluates, and the published limits."""

    kinds: list[KindInfo]
    limits: dict[str, int]
