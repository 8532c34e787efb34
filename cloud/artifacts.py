"""Safe writing of pipeline outputs: nothing half-written is ever left where the next step looks.

Every output is written to a temporary sibling and renamed into place, so a crash or a bad input
leaves the previous artifact (or nothing), never a truncated file a later stage would trust.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.errors import UserError
from shared.files import atomic_write_json, fsync_dir

MODEL_B_DIR = re.compile(r"^model_b_v(\d+)$")  # artifacts/model_b_vN: one directory per weekly Model B


def ensure_writable_dir(path: Path) -> Path:
    """Create `path` (and parents) and prove we can write there, or raise a one-line UserError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UserError(f"artifacts directory {path} is not writable: {exc.strerror or exc}") from None
    return path


def read_json(path: Path, missing_hint: str) -> dict:
    """A pipeline output written as JSON, or a one-line UserError naming the file (and, when it is
    missing, `missing_hint`: what produces it)."""
    if not path.is_file():
        raise UserError(f"{path}: missing; {missing_hint}")
    try:
        return json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None


def write_json_atomic(path: Path, payload: object) -> None:
    """`shared.files.atomic_write_json`, with an unwritable directory as a one-line UserError."""
    ensure_writable_dir(path.parent)
    atomic_write_json(path, payload)


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces `final` in one rename."""
    ensure_writable_dir(final.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        fsync_dir(final.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def next_version(artifacts: Path) -> int:
    """N for the next `model_b_vN` under `artifacts` (1 when there is none)."""
    versions = [int(m.group(1)) for p in artifacts.glob("model_b_v*") if (m := MODEL_B_DIR.match(p.name))]
    return max(versions, default=0) + 1


def latest_model_b(artifacts: Path) -> Path:
    """The newest `model_b_vN` directory under `artifacts`, or a UserError naming the step that makes one."""
    version = next_version(artifacts) - 1
    if version < 1:
        raise UserError(f"no model_b_vN under {artifacts}; run `careeredge-cloud train-b` first")
    return artifacts / f"model_b_v{version}"
