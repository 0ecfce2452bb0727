"""The golden rows through real HTTP: JSON and octet-stream, steps as lists and as ranges."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from lrsched import SPEC_KINDS, evaluate, parse_spec
from tests.golden_table import GOLDEN, assert_close, ids


def post(client: httpx.Client, spec: dict[str, Any], steps: Any, octets: bool = False) -> httpx.Response:
    headers = {"accept": "application/octet-stream"} if octets else {}
    return client.post("/schedules/evaluate", json={"schedule": spec, "steps": steps}, headers=headers)


@pytest.mark.parametrize("row", GOLDEN, ids=ids(GOLDEN))
def test_golden_as_json_list(client: httpx.Client, row: dict[str, Any]) -> None:
    response = post(client, row["spec"], row["steps"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert_close(response.json()["values"], row)


@pytest.mark.parametrize("row", GOLDEN, ids=ids(GOLDEN))
def test_golden_as_octets(client: httpx.Client, row: dict[str, Any]) -> None:
    response = post(client, row["spec"], row["steps"], octets=True)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert_close(np.frombuffer(response.content, dtype="<f4"), row)


@pytest.mark.parametrize("row", GOLDEN, ids=ids(GOLDEN))
def test_range_equals_list(client: httpx.Client, row: dict[str, Any]) -> None:
    # Every step from 0 to just past the last interesting one (huge steps left out), as a range.
    stop = max(step for step in row["steps"] if step < 100_000) + 2
    as_range = post(client, row["spec"], {"start": 0, "stop": stop, "step": 1}, octets=True)
    as_list = post(client, row["spec"], list(range(stop)), octets=True)
    assert as_range.status_code == as_list.status_code == 200
    assert as_range.content == as_list.content
    wanted = [i for i, step in enumerate(row["steps"]) if step < stop]
    ranged = np.frombuffer(as_range.content, dtype="<f4")
    assert_close(ranged[np.asarray(row["steps"])[wanted]], {**row, "expected": [row["expected"][i] for i in wanted]})


def test_range_with_start_and_stride(client: httpx.Client) -> None:
    spec = {"kind": "exponential_decay", "step_size": 1e-4, "decay_steps": 10, "decay_rate": 0.9}
    response = post(client, spec, {"start": 5, "stop": 50, "step": 7})
    expected = evaluate(parse_spec(spec), list(range(5, 50, 7)))
    assert np.asarray(response.json()["values"], dtype=np.float32).tobytes() == expected.tobytes()


def test_json_floats_are_shortest_float32_decimals(client: httpx.Client) -> None:
    body = post(client, {"kind": "constant", "step_size": 1e-4}, [0]).text
    assert body == '{"values":[0.0001]}'
    body = post(client, {"kind": "piecewise_constant", "boundaries": [1], "values": [0.1, 1 / 3]}, [0, 2]).text
    assert body == '{"values":[0.1,0.33333334]}'


def test_octets_are_little_endian_float32(client: httpx.Client) -> None:
    content = post(client, {"kind": "constant", "step_size": 0.1}, [0, 1], octets=True).content
    assert content == np.asarray([0.1, 0.1], dtype="<f4").tobytes()


def test_a_million_steps_as_a_range(client: httpx.Client) -> None:
    spec = {"kind": "warmup_cosine_decay_schedule", "init_value": 0.0, "peak_value": 0.1,
            "warmup_steps": 1000, "decay_steps": 1_000_000}
    response = post(client, spec, {"stop": 1_000_000}, octets=True)
    values = np.frombuffer(response.content, dtype="<f4")
    assert values.shape == (1_000_000,)
    assert values[1000] == np.float32(0.1) and values[0] == 0
    as_json = post(client, spec, {"stop": 1_000_000}).json()["values"]
    assert np.asarray(as_json, dtype=np.float32).tobytes() == values.tobytes()


def test_empty_steps(client: httpx.Client) -> None:
    assert post(client, {"kind": "constant", "step_size": 1.0}, []).json() == {"values": []}
    assert post(client, {"kind": "constant", "step_size": 1.0}, {"start": 5, "stop": 5}).json() == {"values": []}


def test_catalog_lists_every_kind_with_a_working_example(client: httpx.Client) -> None:
    catalog = client.get("/schedules/kinds").json()
    assert [entry["kind"] for entry in catalog["kinds"]] == list(SPEC_KINDS)
    assert catalog["limits"]["max_steps_per_request"] >= 1_000_000
    for entry in catalog["kinds"]:
        assert entry["formula"] and entry["source"] and entry["summary"]
        assert entry["kind"] == entry["example"]["kind"]
        response = post(client, entry["example"], [0, 1, 10])
        assert response.status_code == 200, (entry["kind"], response.text)
    exp = next(entry for entry in catalog["kinds"] if entry["kind"] == "exponential_decay")
    params = {p["name"]: p for p in exp["parameters"]}
    assert params["decay_rate"]["required"] and params["staircase"]["default"] is False


def test_healthz(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
