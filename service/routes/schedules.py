"""``/schedules``: evaluate a spec at many steps, and the catalog of kinds."""

from __future__ import annotations

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from lrsched import (
    evaluate,
    first_nonfinite,
    is_compiled,
    kinds_catalog,
    published_limits,
    step_range,
)
from service.errors import ERROR_RESPONSES, unprocessable
from service.json_route import OrjsonRoute
from service.schemas import Catalog, EvaluateRequest, EvaluateResponse, StepRange

router = APIRouter(prefix="/schedules", tags=["schedules"], route_class=OrjsonRoute)

#: Above this many steps the evaluation runs in a worker thread, so it never stalls small requests.
_INLINE_STEPS = 20_000
_OCTET = "application/octet-stream"


def _wants_octets(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return _OCTET in accept and "application/json" not in accept


@router.post(
    "/evaluate",
    operation_id="evaluate_schedule",
    response_model=EvaluateResponse,
    responses={
        200: {
            "description": "One value per step: JSON, or raw little-endian float32 when the "
            "request sends `Accept: application/octet-stream`.",
            "content": {_OCTET: {"schema": {"type": "string", "format": "binary"}}},
        },
        **ERROR_RESPONSES,
    },
)
async def evaluate_schedule(body: EvaluateRequest, request: Request) -> Response:
    """Evaluate `schedule` at each of `steps`, in float32, as the reference library computes it.

    A step where the schedule is NaN or infinite gets a 422 naming the first such step.
    """
    steps = (
        step_range(body.steps.start, body.steps.stop, body.steps.step)
        if isinstance(body.steps, StepRange)
        else np.asarray(body.steps, dtype=np.int64)
    )
    if steps.shape[0] > _INLINE_STEPS or not is_compiled(body.schedule, steps.shape[0]):
        # A long evaluation, or a first one that must compile: never on the event loop.
        values = await run_in_threadpool(evaluate, body.schedule, steps)
    else:
        values = evaluate(body.schedule, steps)
    bad = first_nonfinite(values)
    if bad is not None:
        step = int(steps[bad])
        return unprocessable(
            [
                {
                    "loc": ["body", "schedule"],
                    "msg": f"the schedule is {values[bad]} at step {step} (the first step where it "
                    "is not a finite number); change its parameters or ask for other steps",
                    "type": "non_finite_value",
                }
            ]
        )
    if _wants_octets(request):
        return Response(values.astype("<f4").tobytes(), media_type=_OCTET)
    return Response(
        orjson.dumps({"values": values}, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
    )


@router.get("/kinds", operation_id="list_schedule_kinds", response_model=Catalog)
def list_kinds() -> Response:
    """Every kind, with its parameters, defaults, formula and an example; and the limits."""
    return Response(
        orjson.dumps({"kinds": kinds_catalog(), "limits": published_limits()}),
        media_type="application/json",
    )
