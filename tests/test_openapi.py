"""The published openapi.yaml is the app's own schema, and documents the contracts."""

from __future__ import annotations

from pathlib import Path

import yaml

from service.app import create_app

PUBLISHED = yaml.safe_load((Path(__file__).resolve().parents[1] / "openapi.yaml").read_text())


def test_openapi_yaml_matches_the_app() -> None:
    assert create_app().openapi() == PUBLISHED, "run: python scripts/export_openapi.py"


def test_evaluate_is_documented_with_its_errors_and_binary_answer() -> None:
    operation = PUBLISHED["paths"]["/schedules/evaluate"]["post"]
    assert {"200", "413", "422"} <= set(operation["responses"])
    assert "application/octet-stream" in operation["responses"]["200"]["content"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("EvaluateRequest")


def test_spec_union_has_a_discriminator_mapping_for_every_kind() -> None:
    from lrsched import SPEC_KINDS

    schema = PUBLISHED["components"]["schemas"]["EvaluateRequest"]["properties"]["schedule"]
    assert schema["discriminator"]["propertyName"] == "kind"
    assert set(schema["discriminator"]["mapping"]) == set(SPEC_KINDS)
