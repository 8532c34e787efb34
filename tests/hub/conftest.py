"""One tiny real INT8 bundle per session for the Hub-facing tests (the Space and Model B's push)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    from tests.support.tiny_model import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("hub") / "model_b_v4", name="model_b_v4", version="4")
