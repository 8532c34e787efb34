"""`careeredge-cloud push-hub`: upload a Model B bundle (+ its reports) to a Hugging Face model repo.

The weekly workflow and the systemd trainer both call this, so the hub layout is defined once:
`<repo>/model_b_vN/` holds the bundle, `<repo>/model_b_vN/reports/` the evaluation and arm reports.
The token comes from $HF_TOKEN only. `--next-version` prints N+1 for the highest model_b_vN in the
repo (1 for an empty or new repo), which the workflow passes to `train-b --version`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from shared.errors import UserError

REPORTS = ("arms.json", "evaluation.json", "evaluation.md", "MODEL_CARD.md", "train_log.json")
_VERSION_PREFIX = re.compile(r"^model_b_v(\d+)/")


def next_version_from_files(files: list[str]) -> int:
    return max((int(m.group(1)) for f in files if (m := _VERSION_PREFIX.match(f))), default=0) + 1


def _api():
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise UserError("HF_TOKEN is not set: the Hub upload needs a write token (a CI secret, never a repo file)")
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise UserError("push-hub needs huggingface_hub: pip install huggingface_hub") from None
    return HfApi(token=token)


@click.command("push-hub")
@click.argument("bundle", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--repo", envvar="HF_REPO", required=True, help="Hub model repo id (env HF_REPO).")
@click.option(
    "--reports",
    "reports_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Model directory with the reports (default: artifacts/<bundle name>).",
)
@click.option("--next-version", is_flag=True, help="Only print the next free model_b version number.")
def push_hub_command(bundle: Path | None, repo: str, reports_dir: Path | None, next_version: bool) -> None:
    """Upload BUNDLE to the Hub under <repo>/<bundle name>/."""
    api = _api()
    if next_version:
        from huggingface_hub.utils import RepositoryNotFoundError

        try:
            files = api.list_repo_files(repo)
        except RepositoryNotFoundError:
            files = []
        click.echo(next_version_from_files(files))
        return
    if bundle is None or not (bundle / "manifest.json").is_file():
        raise UserError(f"{bundle}: not a model bundle (no manifest.json); run train-b / export first")
    from shared.bundle import verify_bundle

    verify_bundle(bundle)  # never upload a tampered or half-written bundle
    name = bundle.name
    reports_dir = reports_dir or Path("artifacts") / name
    api.create_repo(repo, repo_type="model", private=True, exist_ok=True)
    api.upload_folder(
        repo_id=repo, folder_path=str(bundle), path_in_repo=name, commit_message=f"{name}: weekly retrain"
    )
    for report in REPORTS:
        if (reports_dir / report).is_file():
            api.upload_file(
                repo_id=repo,
                path_or_fileobj=str(reports_dir / report),
                path_in_repo=f"{name}/reports/{report}",
                commit_message=f"{name}: {report}",
            )
    click.echo(f"push-hub: {bundle} -> https://huggingface.co/{repo}/tree/main/{name}")


if __name__ == "__main__":  # until the lead registers "push-hub" in cloud/cli.py
    push_hub_command()
