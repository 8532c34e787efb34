"""Edge fixtures: one tiny real INT8 bundle per session (needs torch: it trains and exports it),
and cheap per-test copies for tests that tamper with files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """Built with the default (blockwise) quantization scheme."""
    from tests.support.tiny_model import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("edge") / "tiny_bundle")


@pytest.fixture(scope="session")
def tiny_dynamic_bundle(tmp_path_factory) -> Path:
    """The dynamic U8S8 scheme, whose export also prunes unreachable embedding rows."""
    from tests.support.tiny_model import build_tiny_bundle

    return build_tiny_bundle(tmp_path_factory.mktemp("edge") / "tiny_dynamic_bundle", scheme="dynamic")


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    return copy


@pytest.fixture(scope="session")
def backend(tiny_bundle):
    from device.runtime import load_backend

    return load_backend(tiny_bundle, threads=1)
