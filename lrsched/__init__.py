"""lrsched: learning-rate schedules for JAX, exact to the libraries they come from.

The package root is the public API; ``lrsched.specs`` holds one model per kind.
"""

from lrsched.catalog import kinds_catalog as kinds_catalog
from lrsched.catalog import published_limits as published_limits
from lrsched.compile import compile_schedule as compile_schedule
from lrsched.evaluate import StepRangeError as StepRangeError
from lrsched.evaluate import evaluate as evaluate
from lrsched.evaluate import first_nonfinite as first_nonfinite
from lrsched.evaluate import step_range as step_range
from lrsched.expression import ExpressionError as ExpressionError
from lrsched.limits import MAX_STEP as MAX_STEP
from lrsched.limits import MAX_STEPS_PER_REQUEST as MAX_STEPS_PER_REQUEST
from lrsched.specs import SPEC_KINDS as SPEC_KINDS
from lrsched.specs import ScheduleSpec as ScheduleSpec
from lrsched.specs import SpecModel as SpecModel
from lrsched.specs import parse_spec as parse_spec

__all__ = [
    "MAX_STEP",
    "MAX_STEPS_PER_REQUEST",
    "SPEC_KINDS",
    "ExpressionError",
    "ScheduleSpec",
    "SpecModel",
    "StepRangeError",
    "compile_schedule",
    "evaluate",
    "first_nonfinite",
    "kinds_catalog",
    "parse_spec",
    "published_limits",
    "step_range",
]
