"""Path options that several `careeredge-cloud` commands and scripts share, declared once.

They keep the pipeline's default locations (the ones dvc.yaml passes) in one place; a command may give
its own help text where the input means something particular to it. The MQTT flags are in
`cloud.broker_options`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

Decorator = Callable[[Callable], Callable]


def _path_option(*names: str, default: str, help: str | None) -> Decorator:  # noqa: A002 - click's own name
    return click.option(*names, type=click.Path(path_type=Path), default=Path(default), show_default=True, help=help)


def splits_option(help: str | None = None) -> Decorator:  # noqa: A002
    """`--splits`: the 2025 split CSVs (train/val/test) the `label` stage writes."""
    return _path_option("--splits", default="data/processed/splits", help=help)


def normalized_option(help: str | None = None) -> Decorator:  # noqa: A002
    """`--normalized`: the normalised 2026 postings (`normalize` stage)."""
    return _path_option("--normalized", default="data/normalized", help=help)


def pseudo_labels_option(help: str | None = None) -> Decorator:  # noqa: A002
    """`--pseudo-labels` (parameter `pseudo_dir`): the `pseudo-label` stage's output."""
    return _path_option("--pseudo-labels", "pseudo_dir", default="data/pseudo_labels", help=help)


def model_a_option(help: str | None = "Model A's directory (hf/ + train_log.json).") -> Decorator:  # noqa: A002
    """`--model-a`: Model A's directory (`train_a` stage)."""
    return _path_option("--model-a", default="artifacts/model_a_v1", help=help)


def params_option(help: str | None = None) -> Decorator:  # noqa: A002
    """`--params` (parameter `params_path`): the pipeline's params.yaml."""
    return _path_option("--params", "params_path", default="params.yaml", help=help)
