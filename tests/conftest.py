"""Project-wide pytest fixtures.

Rule for real components (mosquitto, Chromium, the 2025 CSV): when one is missing, a test skips on a
developer laptop but FAILS in CI (CI=true), so a green CI always means the real thing ran.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
KAGGLE_CSV = REPO_ROOT / "data" / "raw" / "jobs_2025_kaggle.csv"


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI, when a real component the test needs is missing."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required component missing in CI: {what}")
    pytest.skip(f"missing: {what}")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def kaggle_csv() -> Path:
    return KAGGLE_CSV


@pytest.fixture(scope="session")
def shared_data() -> Path:
    require(SHARED_DATA.is_dir(), f"../shared/data beside the checkout ({SHARED_DATA})")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def isolated_device_state(tmp_path_factory, monkeypatch):
    """No test writes to the real ~/.local/share/careeredge or reads ~/.config/careeredge: the XDG base
    directories point into a per-test temporary directory. (XDG, not CAREEREDGE_* variables: those
    would override the config files that tests write on purpose.)"""
    root = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "config"))
    monkeypatch.delenv("CAREEREDGE_CONFIG", raising=False)
    return root / "data" / "careeredge"
