"""`careeredge-cloud push-hub`: publish a week's Model B to a Hugging Face model repo, in one commit.

Layout of the repo, one folder per version:

    model_b_vN/                  B's full-precision model (artifacts/model_b_vN/hf: model.safetensors, config, tokenizer)
    model_b_vN/bundle/           the INT8 bundle the devices run (manifest.json: sha256 of every file)
    model_b_vN/reports/          arms.json, evaluation.json, evaluation.md, train_log.json
    model_b_vN/README.md         the week's model card: A vs B on both splits, the bundle's gate, the data lineage
    README.md                    the latest week's card

The card ties the week to its data: the DVC hash of the raw snapshot (`data/ingest`, the `ingest` stage in
the week's dvc.lock, which `scripts/version_snapshot.sh` pushed to the DVC remote) and the sha256 of the
rows B trained on. Everything goes in one `create_commit`, so the repo never shows half a week. The token is
read from $HF_TOKEN only. `--next-version` prints N+1 for the highest model_b_vN in the repo (1 for an empty
or new repo), which the weekly job passes to `train-b --version`.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import yaml

from cloud.artifacts import read_json
from cloud.hub.api import hub_api, hub_errors
from shared.bundle import verify_bundle
from shared.errors import UserError

REPORTS = ("arms.json", "evaluation.json", "evaluation.md", "train_log.json")
_VERSION_PREFIX = re.compile(r"^model_b_v(\d+)/")
SNAPSHOT_STAGE, SNAPSHOT_PATH = "ingest", "data/ingest"


def next_version_from_files(files: list[str]) -> int:
    return max((int(m.group(1)) for f in files if (m := _VERSION_PREFIX.match(f))), default=0) + 1


def data_snapshot(dvc_lock: Path) -> dict:
    """The raw snapshot's DVC entry (md5 of the directory, size, file count) from the week's dvc.lock."""
    if not dvc_lock.is_file():
        raise UserError(f"{dvc_lock}: missing; run scripts/version_snapshot.sh after ingest (it records the snapshot)")
    try:
        lock = yaml.safe_load(dvc_lock.read_text(encoding="utf-8")) or {}
        outs = lock["stages"][SNAPSHOT_STAGE]["outs"]
        entry = next(out for out in outs if out.get("path") == SNAPSHOT_PATH)
    except (yaml.YAMLError, KeyError, TypeError, StopIteration):
        raise UserError(f"{dvc_lock}: no '{SNAPSHOT_PATH}' output under stage '{SNAPSHOT_STAGE}'") from None
    return {
        "stage": SNAPSHOT_STAGE,
        "path": SNAPSHOT_PATH,
        "md5": entry.get("md5"),
        "size": entry.get("size"),
        "nfiles": entry.get("nfiles"),
    }


def _accuracy(evaluation: dict, split: str, model: str) -> str:
    figures = evaluation.get(split, {}).get("overall", {}).get(model, {})
    accuracy, n = figures.get("accuracy"), figures.get("n")
    return "n/a" if accuracy is None else f"{accuracy:.3f} (n = {n})"


def model_card(name: str, manifest: dict, evaluation: dict, train_log: dict, snapshot: dict) -> str:
    metrics = manifest.get("metrics", {})
    quantization = metrics.get("quantization", {}) if isinstance(metrics.get("quantization"), dict) else {}
    scheme = quantization.get("scheme") or metrics.get("scheme") or "see bundle/manifest.json"
    rows = [
        f"| {label} | {_accuracy(evaluation, split, 'model_a')} | {_accuracy(evaluation, split, 'model_b')} |"
        for label, split in (("2025 test split", "test_2025"), ("2026 evaluation split", "eval_2026"))
    ]
    targets = evaluation.get("targets", {})
    return "\n".join(
        [
            "---",
            "license: apache-2.0",
            "language: en",
            "pipeline_tag: text-classification",
            "tags: [careeredge, job-postings, onnx, int8]",
            "---",
            "",
            f"# careeredge {name}",
            "",
            "Classifies a job posting as Software Engineering (0) or Data Science (1). Model B is retrained every",
            "week from Model A's weights on the 2025 postings plus newer, pseudo-labelled ones; Model A stays",
            "frozen on 2025 as the control. This folder holds the full-precision model (`model.safetensors`), the",
            "INT8 bundle the devices run (`bundle/`) and the week's reports (`reports/`).",
            "",
            f"Created {manifest.get('created_at', 'n/a')}.",
            "",
            "| accuracy (FP32, `evaluate-b`) | Model A | Model B |",
            "|---|---|---|",
            *rows,
            "",
            f"No-regression gate on 2025 (A minus B <= {targets.get('loss_target', 'n/a')}): "
            f"{'met' if targets.get('loss_met') else 'NOT met'}.",
            f"INT8 bundle: `{manifest.get('name')}@{manifest.get('version')}`, quantization {scheme}, "
            f"{manifest.get('max_length')} word pieces; every file's sha256 is in `bundle/manifest.json`.",
            "",
            "## Data lineage",
            "",
            f"- Raw snapshot: `{snapshot['path']}`, DVC md5 `{snapshot['md5']}` ({snapshot['nfiles']} files, "
            f"{snapshot['size']} bytes): stage `{snapshot['stage']}` of the week's `dvc.lock`; "
            f"`dvc pull {snapshot['stage']}` with that lock restores it.",
            f"- Training rows: sha256 `{train_log.get('training_data_sha256', 'n/a')}`.",
            "",
        ]
    )


def commit_operations(name: str, bundle: Path, model_dir: Path, card: str) -> list:
    from huggingface_hub import CommitOperationAdd

    hf_dir = model_dir / "hf"
    if not (hf_dir / "model.safetensors").is_file():
        raise UserError(f"{hf_dir / 'model.safetensors'}: missing; train-b writes it")
    operations = [
        CommitOperationAdd(f"{name}/{path.name}", str(path)) for path in sorted(hf_dir.iterdir()) if path.is_file()
    ]
    operations += [
        CommitOperationAdd(f"{name}/bundle/{path.relative_to(bundle).as_posix()}", str(path))
        for path in sorted(bundle.rglob("*"))
        if path.is_file()
    ]
    operations += [
        CommitOperationAdd(f"{name}/reports/{report}", str(model_dir / report))
        for report in REPORTS
        if (model_dir / report).is_file()
    ]
    card_bytes = card.encode("utf-8")
    operations += [CommitOperationAdd(f"{name}/README.md", card_bytes), CommitOperationAdd("README.md", card_bytes)]
    return operations


def push_model_b(api, repo: str, bundle: Path, model_dir: Path, dvc_lock: Path) -> str:
    if not (bundle / "manifest.json").is_file():
        raise UserError(f"{bundle}: not a model bundle (no manifest.json); run export-b first")
    manifest = verify_bundle(bundle)  # never upload a tampered or half-written bundle
    name = bundle.name
    evaluation = read_json(model_dir / "evaluation.json", "run `careeredge-cloud evaluate-b` first")
    train_log = read_json(model_dir / "train_log.json", "run `careeredge-cloud train-b` first")
    card = model_card(name, manifest, evaluation, train_log, data_snapshot(dvc_lock))
    operations = commit_operations(name, bundle, model_dir, card)
    with hub_errors(repo):
        api.create_repo(repo, repo_type="model", private=True, exist_ok=True)
        info = api.create_commit(repo_id=repo, operations=operations, commit_message=f"{name}: weekly retrain")
    return info.commit_url


@click.command("push-hub")
@click.argument("bundle", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--repo", envvar="HF_REPO", required=True, help="Hub model repo id (env HF_REPO).")
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="B's model directory (hf/, reports) [default: artifacts/<bundle name>].",
)
@click.option(
    "--dvc-lock", type=click.Path(dir_okay=False, path_type=Path), default=Path("dvc.lock"), show_default=True
)
@click.option("--next-version", is_flag=True, help="Only print the next free model_b version number.")
def push_hub_command(
    bundle: Path | None, repo: str, model_dir: Path | None, dvc_lock: Path, next_version: bool
) -> None:
    """Upload Model B (safetensors, INT8 BUNDLE, reports, model card) to <repo>/<bundle name>/ in one commit."""
    api = hub_api("push-hub")
    if next_version:
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            with hub_errors(repo):
                files = api.list_repo_files(repo)
        except RepositoryNotFoundError:
            files = []
        click.echo(next_version_from_files(files))
        return
    if bundle is None:
        raise UserError("give the bundle to push, e.g. artifacts/bundles/model_b_v4")
    url = push_model_b(api, repo, bundle, model_dir or Path("artifacts") / bundle.name, dvc_lock)
    click.echo(f"push-hub: {bundle} -> {url}")
