"""`careeredge-cloud space build` and `space push`: Model A's Hugging Face Space as a folder, then on the Hub.

`build` assembles a folder that runs as is (`python app.py`), with no checkout of this repository:

    app.py               entry point named in README.md's front matter (calls cloud.space.app)
    README.md            Space front matter (Gradio SDK and version) and what the Space does
    requirements.txt     onnxruntime, tokenizers, paho-mqtt, ...: never torch or transformers
    cloud/space/         the app and its prediction log
    device/              the device runtime, explanation and advice (the same code the Pi runs)
    shared/              what those import
    model/               the INT8 bundle, verified (sha256 of every file) before and after the copy

`push` uploads that folder to a Space repo with huggingface_hub, the token from $HF_TOKEN only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from cloud.artifacts import atomic_directory
from cloud.hub.api import hub_api, hub_errors
from shared.bundle import verify_bundle
from shared.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
SPACE_DIR = Path(__file__).resolve().parent
# Source files the Space runs, relative to the repository root; a directory means all of its .py/.json/.md.
SPACE_SOURCES = (
    "cloud/__init__.py",
    "cloud/space/__init__.py",
    "cloud/space/app.py",
    "cloud/space/prediction_log.py",
    "device/__init__.py",
    "device/runtime",
    "device/advice.py",
    "device/explain.py",
    "shared",
)
SOURCE_SUFFIXES = {".py", ".json", ".md"}
ENTRY_POINT = '''"""Hugging Face Space entry point (README.md: app_file). The app is cloud/space/app.py."""

from cloud.space.app import main

main()
'''


def build_space(bundle: Path, out: Path) -> Path:
    """Write the Space folder to `out` (replaced in one rename); returns `out`."""
    if not (bundle / "manifest.json").is_file():
        raise UserError(f"{bundle}: not a model bundle (no manifest.json); run `careeredge-cloud export` first")
    verify_bundle(bundle)
    with atomic_directory(out) as staging:
        for source in SPACE_SOURCES:
            _copy_source(REPO_ROOT / source, staging / source)
        for name in ("README.md", "requirements.txt"):
            shutil.copyfile(SPACE_DIR / name, staging / name)
        (staging / "app.py").write_text(ENTRY_POINT, encoding="utf-8")
        shutil.copytree(bundle, staging / "model")
        verify_bundle(staging / "model")
    return out


def _copy_source(source: Path, target: Path) -> None:
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.suffix in SOURCE_SUFFIXES)
    for path in files:
        if "__pycache__" in path.parts:
            continue
        destination = target if source.is_file() else target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)


@click.group("space")
def space_group() -> None:
    """Model A's Hugging Face Space: build the folder, push it."""


@space_group.command("build")
@click.option(
    "--bundle",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("artifacts/bundles/model_a_v1"),
    show_default=True,
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts/space"), show_default=True
)
def build_command(bundle: Path, out: Path) -> None:
    """Assemble a ready-to-push Space folder around --bundle (Model A's INT8 bundle)."""
    build_space(bundle, out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    click.echo(f"space build: {out} ({size / 1e6:.1f} MB); try it: cd {out} && python app.py")


@space_group.command("push")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts/space"))
@click.option(
    "--repo", envvar="HF_SPACE_REPO", required=True, help="Space repo id, e.g. org/careeredge (env HF_SPACE_REPO)."
)
def push_command(folder: Path, repo: str) -> None:
    """Upload a built Space FOLDER to the Hub (token: $HF_TOKEN)."""
    if not (folder / "app.py").is_file() or not (folder / "model" / "manifest.json").is_file():
        raise UserError(f"{folder}: not a built Space (no app.py or model/); run `careeredge-cloud space build` first")
    api = hub_api("space push")
    verify_bundle(folder / "model")
    with hub_errors(repo):
        api.create_repo(repo, repo_type="space", space_sdk="gradio", exist_ok=True)
        info = api.upload_folder(
            repo_id=repo, repo_type="space", folder_path=str(folder), commit_message="careeredge Space: Model A"
        )
    click.echo(f"space push: {folder} -> {info.commit_url}")
