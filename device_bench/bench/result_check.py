"""A result JSON the app wrote, checked against bench_result.schema.json before it is kept."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema

from mobilize.bench import app_contract
from mobilize.device.errors import AppError


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(app_contract.RESULT_SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def schema_errors(result: object) -> list[str]:
    """Every way `result` breaks bench_result.schema.json (empty when it conforms)."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in _validator().iter_errors(result)
    ]


def check_result(result: object, serial: str) -> dict[str, Any]:
    errors = schema_errors(result)
    if errors:
        raise AppError(
            "the benchmark result does not match bench_result.schema.json:\n  "
            + "\n  ".join(errors[:10]),
            hint="the app and this mobilize disagree on the result format: install the app "
            "that ships with this version (--apk)",
            serial=serial,
        )
    assert isinstance(result, dict)
    return result
