"""Bad input to POST /schedules/evaluate: each gets its status, its field path and a reason.

Runs against a real uvicorn server with no Redis reachable (evaluation must not need it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

C = {"kind": "constant", "step_size": 0.1}
S = ["body", "schedule"]


def body(schedule: Any = C, steps: Any = (0, 1)) -> dict[str, Any]:
    return {"schedule": schedule, "steps": list(steps) if isinstance(steps, tuple) else steps}


def raw(text: str) -> bytes:
    return text.encode()


def nested(depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = C
    for _ in range(depth):
        spec = {"kind": "join_schedules", "schedules": [spec], "boundaries": []}
    return spec


def kind(name: str, **params: Any) -> dict[str, Any]:
    return {"kind": name, **params}


def expr(text: str, **params: float) -> dict[str, Any]:
    return {"kind": "expression", "expr": text, "params": params}


EXP = "exponential_decay"
LIN = {"kind": "linear_schedule", "init_value": 1.0, "end_value": 0.0, "transition_steps": 10}
CYCLE = {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 5, "decay_steps": 20}
E = [*S, "expression", "expr"]

# (id, request body (dict or raw bytes), status, expected loc, expected error type)
INVALID: list[tuple[str, Any, int, list[Any], str]] = [
    ("missing schedule", {"steps": [0]}, 422, ["body", "schedule"], "missing"),
    ("missing steps", {"schedule": C}, 422, ["body", "steps"], "missing"),
    ("extra top-level field", {**body(), "extra": 1}, 422, ["body", "extra"], "extra_forbidden"),
    ("unknown kind", body(kind("cosine")), 422, S, "union_tag_invalid"),
    ("missing kind", body({"step_size": 0.1}), 422, S, "union_tag_not_found"),
    ("schedule is a string", body("constant"), 422, S, "model_attributes_type"),
    ("missing parameter", body(kind("constant")), 422, [*S, "constant", "step_size"], "missing"),
    (
        "misspelt parameter",
        body(kind("constant", stepsize=0.1)),
        422,
        [*S, "constant", "step_size"],
        "missing",
    ),
    (
        "extra parameter",
        body(kind("constant", step_size=0.1, decay=1)),
        422,
        [*S, "constant", "decay"],
        "extra_forbidden",
    ),
    (
        "string for a number",
        body(kind("constant", step_size="abc")),
        422,
        [*S, "constant", "step_size"],
        "float_parsing",
    ),
    (
        "NaN",
        raw('{"schedule": {"kind": "constant", "step_size": NaN}, "steps": [0]}'),
        422,
        [*S, "constant", "step_size"],
        "finite_number",
    ),
    (
        "Infinity",
        raw('{"schedule": {"kind": "constant", "step_size": -Infinity}, "steps": [0]}'),
        422,
        [*S, "constant", "step_size"],
        "finite_number",
    ),
    (
        "1e400",
        raw('{"schedule": {"kind": "constant", "step_size": 1e400}, "steps": [0]}'),
        422,
        [*S, "constant", "step_size"],
        "finite_number",
    ),
    (
        "overflows float32",
        body(kind("constant", step_size=1e39)),
        422,
        [*S, "constant", "step_size"],
        "value_error",
    ),
    (
        "decay_rate 0 (optax would make it constant)",
        body(kind(EXP, init_value=1.0, transition_steps=10, decay_rate=0.0)),
        422,
        [*S, EXP, "decay_rate"],
        "greater_than",
    ),
    (
        "negative decay_rate",
        body(kind(EXP, step_size=1.0, decay_steps=10, decay_rate=-0.5)),
        422,
        [*S, EXP, "decay_rate"],
        "greater_than",
    ),
    (
        "zero decay_steps",
        body(kind(EXP, step_size=1.0, decay_steps=0, decay_rate=0.5)),
        422,
        [*S, EXP, "decay_steps"],
        "greater_than",
    ),
    (
        "both spellings",
        body(kind(EXP, step_size=1.0, init_value=1.0, decay_steps=10, decay_rate=0.5)),
        422,
        [*S, EXP],
        "value_error",
    ),
    (
        "no initial value",
        body(kind(EXP, decay_steps=10, decay_rate=0.5)),
        422,
        [*S, EXP],
        "value_error",
    ),
    (
        "zero transition_steps (optax would make it constant)",
        body(kind(EXP, init_value=1.0, transition_steps=0, decay_rate=0.5)),
        422,
        [*S, EXP, "transition_steps"],
        "greater_than_equal",
    ),
    (
        "negative transition_begin (optax would use 0)",
        body(kind(EXP, init_value=1.0, transition_steps=5, decay_rate=0.5, transition_begin=-1)),
        422,
        [*S, EXP, "transition_begin"],
        "greater_than_equal",
    ),
    (
        "negative inverse-time decay_steps",
        body(kind("inverse_time_decay", step_size=1.0, decay_steps=-1, decay_rate=0.5)),
        422,
        [*S, "inverse_time_decay", "decay_steps"],
        "greater_than",
    ),
    (
        "zero polynomial decay_steps",
        body(kind("polynomial_decay", step_size=1.0, decay_steps=0, final_step_size=0.1)),
        422,
        [*S, "polynomial_decay", "decay_steps"],
        "greater_than",
    ),
    (
        "unsorted boundaries",
        body(kind("piecewise_constant", boundaries=[4, 1], values=[1, 2, 3])),
        422,
        [*S, "piecewise_constant", "boundaries"],
        "value_error",
    ),
    (
        "duplicate boundaries",
        body(kind("piecewise_constant", boundaries=[1, 1], values=[1, 2, 3])),
        422,
        [*S, "piecewise_constant", "boundaries"],
        "value_error",
    ),
    (
        "values not one longer",
        body(kind("piecewise_constant", boundaries=[1, 4], values=[1, 2])),
        422,
        [*S, "piecewise_constant", "values"],
        "value_error",
    ),
    (
        "empty values",
        body(kind("piecewise_constant", boundaries=[], values=[])),
        422,
        [*S, "piecewise_constant", "values"],
        "too_short",
    ),
    (
        "zero transition_steps (linear)",
        body({**LIN, "transition_steps": 0}),
        422,
        [*S, "linear_schedule", "transition_steps"],
        "greater_than_equal",
    ),
    (
        "fractional step count",
        body({**LIN, "transition_steps": 2.5}),
        422,
        [*S, "linear_schedule", "transition_steps"],
        "int_from_float",
    ),
    (
        "zero cosine decay_steps",
        body(kind("cosine_decay_schedule", init_value=1.0, decay_steps=0)),
        422,
        [*S, "cosine_decay_schedule", "decay_steps"],
        "greater_than_equal",
    ),
    (
        "zero warmup_steps",
        body(kind("warmup_constant_schedule", init_value=0.0, peak_value=1.0, warmup_steps=0)),
        422,
        [*S, "warmup_constant_schedule", "warmup_steps"],
        "greater_than_equal",
    ),
    (
        "decay_steps not above warmup",
        body(
            kind(
                "warmup_cosine_decay_schedule",
                init_value=0.0,
                peak_value=1.0,
                warmup_steps=10,
                decay_steps=10,
            )
        ),
        422,
        [*S, "warmup_cosine_decay_schedule", "decay_steps"],
        "value_error",
    ),
    (
        "negative scale",
        body(
            kind("piecewise_constant_schedule", init_value=1.0, boundaries_and_scales={"100": -0.1})
        ),
        422,
        [*S, "piecewise_constant_schedule", "boundaries_and_scales", "100"],
        "greater_than_equal",
    ),
    (
        "non-integer boundary key",
        body(
            kind("piecewise_constant_schedule", init_value=1.0, boundaries_and_scales={"abc": 0.1})
        ),
        422,
        [*S, "piecewise_constant_schedule", "boundaries_and_scales", "abc", "[key]"],
        "int_parsing",
    ),
    (
        "unknown interpolate_type",
        body(kind("piecewise_interpolate_schedule", interpolate_type="quadratic", init_value=1.0)),
        422,
        [*S, "piecewise_interpolate_schedule", "interpolate_type"],
        "literal_error",
    ),
    (
        "join boundaries wrong length",
        body(kind("join_schedules", schedules=[C, C], boundaries=[])),
        422,
        [*S, "join_schedules", "boundaries"],
        "value_error",
    ),
    (
        "join boundaries unsorted",
        body(kind("join_schedules", schedules=[C, C, C], boundaries=[10, 5])),
        422,
        [*S, "join_schedules", "boundaries"],
        "value_error",
    ),
    (
        "join of nothing",
        body(kind("join_schedules", schedules=[], boundaries=[])),
        422,
        [*S, "join_schedules", "schedules"],
        "too_short",
    ),
    (
        "bad nested spec",
        body(
            kind("join_schedules", schedules=[C, {**LIN, "transition_steps": -3}], boundaries=[5])
        ),
        422,
        [*S, "join_schedules", "schedules", 1, "linear_schedule", "transition_steps"],
        "greater_than_equal",
    ),
    ("nesting bomb", body(nested(50)), 422, S, "value_error"),
    (
        "node bomb",
        body(kind("join_schedules", schedules=[C] * 300, boundaries=list(range(1, 300)))),
        422,
        S,
        "value_error",
    ),
    (
        "too many schedules to compile quickly",
        body(kind("join_schedules", schedules=[C] * 33, boundaries=list(range(1, 33)))),
        422,
        S,
        "value_error",
    ),
    (
        "sgdr cycle bomb",
        body(kind("sgdr_schedule", cosine_kwargs=[CYCLE] * 10_000)),
        422,
        S,
        "value_error",
    ),
    (
        "sgdr over the cycle limit",
        body(kind("sgdr_schedule", cosine_kwargs=[CYCLE] * 16)),
        422,
        S,
        "value_error",
    ),
    (
        "onecycle phases out of order",
        body(
            kind(
                "linear_onecycle_schedule",
                transition_steps=100,
                peak_value=1.0,
                pct_start=0.9,
                pct_final=0.5,
            )
        ),
        422,
        [*S, "linear_onecycle_schedule", "pct_final"],
        "value_error",
    ),
    (
        "onecycle too short",
        body(kind("linear_onecycle_schedule", transition_steps=1, peak_value=1.0)),
        422,
        [*S, "linear_onecycle_schedule", "pct_final"],
        "value_error",
    ),
    (
        "onecycle zero div_factor",
        body(kind("cosine_onecycle_schedule", transition_steps=100, peak_value=1.0, div_factor=0)),
        422,
        [*S, "cosine_onecycle_schedule", "div_factor"],
        "greater_than",
    ),
    (
        "sgdr without cycles",
        body(kind("sgdr_schedule", cosine_kwargs=[])),
        422,
        [*S, "sgdr_schedule", "cosine_kwargs"],
        "too_short",
    ),
    (
        "sgdr cycle with extra field",
        body(kind("sgdr_schedule", cosine_kwargs=[{**CYCLE, "kind": "x"}])),
        422,
        [*S, "sgdr_schedule", "cosine_kwargs", 0, "kind"],
        "extra_forbidden",
    ),
    ("expression attribute", body(expr("step.real")), 422, E, "value_error"),
    ("expression subscript", body(expr("lr[0]", lr=1.0)), 422, E, "value_error"),
    ("expression import", body(expr("__import__('os').system('true')")), 422, E, "value_error"),
    ("expression lambda", body(expr("(lambda: 1)()")), 422, E, "value_error"),
    ("expression comprehension", body(expr("sum([x for x in range(3)])")), 422, E, "value_error"),
    ("expression string", body(expr("'0.1'")), 422, E, "value_error"),
    ("expression unknown name", body(expr("foo * step")), 422, E, "value_error"),
    ("expression unknown function", body(expr("eval('1')")), 422, E, "value_error"),
    (
        "expression dunder walk",
        body(expr("().__class__.__bases__[0].__subclasses__()")),
        422,
        E,
        "value_error",
    ),
    ("expression keyword argument", body(expr("clip(step, 0, a_max=1)")), 422, E, "value_error"),
    ("expression wrong arity", body(expr("exp(1, 2)")), 422, E, "value_error"),
    ("expression syntax error", body(expr("1 +")), 422, E, "value_error"),
    ("expression statement", body(expr("import os")), 422, E, "value_error"),
    ("expression too long", body(expr("1+" * 600 + "1")), 422, E, "string_too_long"),
    (
        "expression too deep",
        body(expr("(" * 40 + "step" + ")" * 40 + "+" + "-(" * 40 + "1" + ")" * 40)),
        422,
        E,
        "value_error",
    ),
    ("expression infinite literal", body(expr("1e999 * step")), 422, E, "value_error"),
    (
        "expression reserved param",
        body(expr("step * 2", step=1.0)),
        422,
        [*S, "expression", "params"],
        "value_error",
    ),
    (
        "expression bad param name",
        body(expr("step", **{"1x": 1.0})),
        422,
        [*S, "expression", "params", "1x", "[key]"],
        "string_pattern_mismatch",
    ),
    ("negative step", body(steps=(0, -1)), 422, ["body", "steps", "list", 1], "greater_than_equal"),
    ("fractional step", body(steps=(0, 1.5)), 422, ["body", "steps", "list", 1], "int_type"),
    ("step as string", body(steps=("1",)), 422, ["body", "steps", "list", 0], "int_type"),
    (
        "step beyond 2**53",
        body(steps=(2**53,)),
        422,
        ["body", "steps", "list", 0],
        "less_than_equal",
    ),
    ("steps neither list nor range", body(steps="0:10"), 422, ["body", "steps"], "steps_type"),
    (
        "range over the step limit",
        body(steps={"start": 0, "stop": 1_000_001}),
        422,
        ["body", "steps", "range"],
        "value_error",
    ),
    (
        "range with step 0",
        body(steps={"stop": 10, "step": 0}),
        422,
        ["body", "steps", "range", "step"],
        "greater_than_equal",
    ),
    (
        "range without stop",
        body(steps={"start": 0}),
        422,
        ["body", "steps", "range", "stop"],
        "missing",
    ),
    (
        "range extra field",
        body(steps={"stop": 10, "end": 5}),
        422,
        ["body", "steps", "range", "end"],
        "extra_forbidden",
    ),
    (
        "list over the step limit",
        body(steps=[0] * 1_000_001),
        422,
        ["body", "steps", "list"],
        "too_long",
    ),
    ("body not JSON", raw('{"schedule": '), 422, ["body"], "json_invalid"),
    ("body a JSON array", raw("[1, 2]"), 422, ["body"], "model_attributes_type"),
    ("JSON nesting bomb", raw("[" * 100_000), 422, ["body"], "json_invalid"),
    (
        "5000-digit integer",
        raw('{"schedule": {"kind": "constant", "step_size": ' + "9" * 5000 + '}, "steps": [0]}'),
        422,
        ["body"],
        "json_invalid",
    ),
    (
        "non-finite at a step (expression)",
        body(expr("1 / (step - 3)"), steps=(0, 1, 2, 3, 4)),
        422,
        S,
        "non_finite_value",
    ),
    (
        "non-finite at a step (inverse time)",
        body(
            kind("inverse_time_decay", step_size=1.0, decay_steps=10, decay_rate=-1.0),
            steps={"stop": 20},
        ),
        422,
        S,
        "non_finite_value",
    ),
    (
        "overflow at a huge step",
        body(expr("2 ** step"), steps=(1, 10, 1000)),
        422,
        S,
        "non_finite_value",
    ),
    (
        "range stop as a boolean",
        body(steps={"stop": False}),
        422,
        ["body", "steps", "range", "stop"],
        "int_type",
    ),
    (
        "step count as a boolean",
        body({**LIN, "transition_steps": True}),
        422,
        [*S, "linear_schedule", "transition_steps"],
        "value_error",
    ),
]


def post(client: httpx.Client, payload: Any) -> httpx.Response:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        "/schedules/evaluate", content=content, headers={"content-type": "application/json"}
    )


def test_table_is_large() -> None:
    assert len(INVALID) >= 40


@pytest.mark.parametrize(
    ("case", "payload", "status", "loc", "error_type"), INVALID, ids=[row[0] for row in INVALID]
)
def test_invalid_request(
    client: httpx.Client, case: str, payload: Any, status: int, loc: list[Any], error_type: str
) -> None:
    response = post(client, payload)
    assert response.status_code == status, response.text
    errors = response.json()["detail"]
    first = errors[0]
    assert first["loc"][: len(loc)] == loc, errors
    assert first["type"] == error_type, errors
    assert len(first["msg"]) > 10  # a sentence, not a code


def test_non_finite_names_the_first_bad_step(client: httpx.Client) -> None:
    response = post(client, body(expr("1 / (step - 3)"), steps=(0, 5, 3, 4)))
    assert "at step 3" in response.json()["detail"][0]["msg"]


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    response = client.post(
        "/schedules/evaluate",
        content=b" " * (16 * 1024 * 1024 + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "at most" in response.json()["detail"]


def test_chunked_body_over_the_limit_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(17):
            yield b" " * (1024 * 1024)

    response = client.post(
        "/schedules/evaluate", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_expression_errors_say_where(client: httpx.Client) -> None:
    message = post(client, body(expr("0.1 * foo"))).json()["detail"][0]["msg"]
    assert "unknown name 'foo'" in message and "column 7" in message


def test_a_first_compile_does_not_stall_other_requests(client: httpx.Client) -> None:
    # The largest spec allowed compiles for a second or more; meanwhile the server must answer.
    import threading
    import time

    heavy = kind(
        "join_schedules",
        schedules=[
            kind("cosine_onecycle_schedule", transition_steps=100 + i, peak_value=1.0)
            for i in range(31)
        ],
        boundaries=list(range(1, 31)),
    )
    done: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: done.append(post(client, body(heavy, steps=(0, 5)))))
    worker.start()
    time.sleep(0.2)
    slowest = 0.0
    while worker.is_alive():
        began = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        slowest = max(slowest, time.perf_counter() - began)
        time.sleep(0.05)
    worker.join()
    assert done[0].status_code == 200
    assert slowest < 0.5, f"/healthz waited {slowest:.2f} s behind a compile"


def test_server_survives_the_table(client: httpx.Client) -> None:
    response = post(client, body(C, steps=(0,)))
    assert response.status_code == 200 and response.json() == {"values": [0.1]}
