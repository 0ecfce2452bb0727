"""The catalog of kinds: parameters, defaults, formula and an example for each."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from pydantic_core import PydanticUndefined

from lrsched import limits
from lrsched.specs import SPEC_KINDS


@functools.cache
def kinds_catalog() -> list[dict[str, Any]]:
    """One entry per kind, in a stable order (built once)."""
    entries = []
    for kind, model in SPEC_KINDS.items():
        schema = model.model_json_schema()
        properties = schema.get("properties", {})
        parameters = [
            {
                "name": name,
                "required": field.is_required(),
                "default": None if field.default is PydanticUndefined else field.default,
                "description": field.description,
                "schema": properties.get(name, {}),
            }
            for name, field in model.model_fields.items()
            if name != "kind"
        ]
        doc = inspect.getdoc(model) or ""
        entries.append(
            {
                "kind": kind,
                "source": model.source,
                "summary": doc.split("\n\n", 1)[0].replace("\n", " "),
                "formula": model.formula,
                "parameters": parameters,
                "example": model.example,
            }
        )
    return entries


def published_limits() -> dict[str, int]:
    """The limits on one request, by name."""
    return {
        "max_steps_per_request": limits.MAX_STEPS_PER_REQUEST,
        "max_step": limits.MAX_STEP,
        "max_spec_depth": limits.MAX_SPEC_DEPTH,
        "max_spec_nodes": limits.MAX_SPEC_NODES,
        "max_sgdr_cycles": limits.MAX_SGDR_CYCLES,
        "max_list_length": limits.MAX_LIST_LENGTH,
        "max_expression_length": limits.MAX_EXPRESSION_LENGTH,
        "max_expression_nodes": limits.MAX_EXPRESSION_NODES,
        "max_expression_depth": limits.MAX_EXPRESSION_DEPTH,
    }
