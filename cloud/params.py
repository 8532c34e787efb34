"""Reads `params.yaml`, the one place the pipeline's knobs live (DVC tracks it per stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared.errors import UserError

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: Path = DEFAULT_PARAMS) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"params file not found: {path} (run from the repository root)")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(params, dict):
        raise UserError(f"{path} must be a mapping of sections")
    return params
