"""The model bundle: the one unit the cloud produces and the device consumes.

A bundle is a directory::

    model.onnx       INT8 classifier (inputs input_ids / attention_mask / token_type_ids, output logits)
    tokenizer.json   the fast tokenizer the model was trained with
    golden.jsonl     a few postings with the label the FP32 model gave them (OTA health check)
    manifest.json    name, version, labels, max_length, windows, files {name: sha256}, metrics,
                     base_model, training_data_hash, created_at, and `signature` once signed for OTA

Every file the manifest lists is verified by sha256 before a device loads it, so a truncated copy
or a tampered model is refused with the file's name instead of producing wrong answers. This module
is stdlib-only: the device imports it on every start.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.errors import UserError
from shared.files import sha256_file
from shared.reading import check_windows

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
GOLDEN_FILE = "golden.jsonl"
HAILO_FILE = "model.hef"

REQUIRED_FILES = (MODEL_FILE, TOKENIZER_FILE)
REQUIRED_KEYS = ("name", "version", "labels", "max_length", "files", "created_at")
FORMAT_VERSION = 1


class BundleError(UserError):
    """A bundle that is missing, unreadable, incomplete or does not match its manifest."""


def read_manifest(bundle_dir: str | Path) -> dict[str, Any]:
    """Parse `manifest.json` and check it has the keys every consumer relies on (no hashing)."""
    bundle_dir = Path(bundle_dir)
    manifest_path = bundle_dir / MANIFEST_FILE
    try:
        is_dir, has_manifest = bundle_dir.is_dir(), manifest_path.is_file()
    except (OSError, ValueError) as exc:  # a path the OS refuses outright: too long, a NUL byte
        raise BundleError(f"cannot read bundle {bundle_dir}: {exc}") from None
    if not is_dir:
        raise BundleError(f"model bundle not found: {bundle_dir} is not a directory")
    if not has_manifest:
        raise BundleError(f"model bundle {bundle_dir} has no {MANIFEST_FILE}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"corrupt bundle manifest {manifest_path}: {exc}") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"corrupt bundle manifest {manifest_path}: not a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"bundle manifest {manifest_path} lacks {', '.join(missing)}")
    if not isinstance(manifest["files"], dict):
        raise BundleError(f"bundle manifest {manifest_path}: 'files' must map file names to sha256")
    absent = [name for name in REQUIRED_FILES if name not in manifest["files"]]
    if absent:
        raise BundleError(f"bundle manifest {manifest_path} does not list {', '.join(absent)}")
    try:
        reading_windows(manifest)
    except ValueError as exc:
        raise BundleError(f"bundle manifest {manifest_path}: {exc}") from None
    return manifest


def verify_bundle(bundle_dir: str | Path, skip: Iterable[str] = ()) -> dict[str, Any]:
    """Read the manifest and check every listed file against its sha256. Returns the manifest.

    `skip` names optional accelerator files (model.hef) that their backend checks itself, so that a
    corrupt one costs the accelerator, not the whole bundle: the CPU still serves it."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    skipped = set(skip) - set(REQUIRED_FILES)
    for name, expected in sorted(manifest["files"].items()):
        if name in skipped:
            continue
        path = _member_path(bundle_dir, name)
        if not path.is_file():
            raise BundleError(f"model bundle {bundle_dir} is missing {name}")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(
                f"sha256 mismatch for {path}: manifest says {str(expected)[:12]}..., file is "
                f"{actual[:12]}... (corrupt or tampered bundle; re-install it)"
            )
    return manifest


def write_bundle(
    bundle_dir: str | Path,
    *,
    name: str,
    version: str,
    labels: dict[int, str],
    max_length: int,
    metrics: dict[str, Any] | None = None,
    base_model: str = "",
    training_data_hash: str = "",
    preprocessing: str = "clean",
    windows: int = 1,
    files: Iterable[str] | None = None,
    extra: dict[str, Any] | None = None,
    created_at: str | None = None,
) -> dict[str, Any]:
    """Hash the bundle's files (all of them unless `files` is given) and write `manifest.json`.

    The files must already be in `bundle_dir`; the manifest is written last so a reader never sees
    a manifest that describes files still being copied.
    """
    bundle_dir = Path(bundle_dir)
    names = (
        sorted(files)
        if files is not None
        else sorted(p.name for p in bundle_dir.iterdir() if p.is_file() and p.name != MANIFEST_FILE)
    )
    for required in REQUIRED_FILES:
        if required not in names:
            raise BundleError(f"cannot write bundle {bundle_dir}: {required} is missing")
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "name": name,
        "version": str(version),
        "labels": {str(k): v for k, v in sorted(labels.items())},
        "max_length": int(max_length),
        "preprocessing": preprocessing,  # shared.text.model_input style the model was trained with
        "windows": check_windows(windows),  # max_length windows read per posting (shared.reading)
        "files": {n: sha256_file(_member_path(bundle_dir, n)) for n in names},
        "metrics": metrics or {},
        "base_model": base_model,
        "training_data_hash": training_data_hash,
        "created_at": created_at or datetime.now(UTC).isoformat(timespec="seconds"),
    }
    manifest.update(extra or {})
    save_manifest(bundle_dir, manifest)
    return manifest


def save_manifest(bundle_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write `manifest` as `manifest.json` (used again when the publisher adds a signature)."""
    path = Path(bundle_dir) / MANIFEST_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def reading_windows(manifest: dict[str, Any]) -> int:
    """How many max_length windows of a posting the model reads (`shared.reading`); 1 when the
    manifest predates the field. ValueError when it is not a positive integer."""
    return check_windows(manifest.get("windows", 1))


def label_names(manifest: dict[str, Any]) -> dict[int, str]:
    return {int(k): v for k, v in manifest["labels"].items()}


def read_golden(bundle_dir: str | Path) -> list[dict[str, Any]]:
    """The bundle's golden examples: [{"text", "label", "p1"}], empty when the bundle has none."""
    path = Path(bundle_dir) / GOLDEN_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _member_path(bundle_dir: Path, name: str) -> Path:
    # A manifest names files inside the bundle only; "../x" or absolute paths would let a crafted
    # manifest make the device hash (and later load) files outside it.
    if not name or Path(name).name != name:
        raise BundleError(f"bundle manifest in {bundle_dir} names an invalid file: {name!r}")
    return bundle_dir / name
