"""Load the golden table and compare values the way every golden test does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN = json.loads((Path(__file__).parent / "golden" / "schedules.json").read_text())


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [row["id"] for row in rows]


def assert_close(actual: Any, row: dict[str, Any]) -> None:
    """float32 values within the row's rtol of the reference (an expected 0 must be exactly 0)."""
    actual = np.asarray(actual, dtype=np.float32)
    expected = np.asarray(row["expected"], dtype=np.float32)
    assert actual.shape == expected.shape
    error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    allowed = row["rtol"] * np.abs(expected.astype(np.float64))
    bad = ~(error <= allowed)
    assert not bad.any(), {
        "steps": np.asarray(row["steps"])[bad].tolist(),
        "ours": actual[bad].tolist(),
        "reference": expected[bad].tolist(),
    }
