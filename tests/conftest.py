"""Project-wide pytest fixtures.

Rule for real components (mosquitto, Chromium, the 2025 CSV): when one is missing, a test skips on a
developer laptop but FAILS in CI (CI=true), so a green CI always means the real thing ran.
"""

from __future__ import annotations

import importlib
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_data() -> Path:
    """The unlicensed real samples (Bright Data records, 2026 ATS titles) that tests read but the repo
    must not commit: `$CAREEREDGE_SHARED_DATA`, else `../shared/data` beside the checkout, else beside
    the checkout this one was cloned from when that is a local path (a scratch clone in /tmp)."""
    if os.environ.get("CAREEREDGE_SHARED_DATA"):
        return Path(os.environ["CAREEREDGE_SHARED_DATA"])
    candidates = [REPO_ROOT.parent / "shared" / "data"]
    try:
        origin = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "remote", "get-url", "origin"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        origin = ""
    if origin and Path(origin).is_dir():  # a local path; URLs are never directories here
        candidates.append(Path(origin).resolve().parent / "shared" / "data")
    return next((c for c in candidates if c.is_dir()), candidates[0])


SHARED_DATA = find_shared_data()
KAGGLE_CSV = REPO_ROOT / "data" / "raw" / "jobs_2025_kaggle.csv"


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI, when a real component the test needs is missing."""
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required component missing in CI: {what}")
    pytest.skip(f"missing: {what}")


def require_module(name: str, what: str):
    """Import `name`, or skip locally / fail in CI like `require` (pytest.importorskip would skip in CI too).

    Usable at module level: a local skip then skips the whole module."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"required component missing in CI: {what} (module {name})")
        pytest.skip(f"missing: {what} (module {name})", allow_module_level=True)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def kaggle_csv() -> Path:
    return KAGGLE_CSV


@pytest.fixture(scope="session")
def shared_data() -> Path:
    require(
        SHARED_DATA.is_dir(),
        f"../shared/data beside the checkout or its local origin, or $CAREEREDGE_SHARED_DATA ({SHARED_DATA})",
    )
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
