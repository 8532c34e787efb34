"""`careeredge predict` buffers every prediction in the same SQLite store as the web page and TUI."""

from __future__ import annotations

import json
import sqlite3

from click.testing import CliRunner

from device.cli import main as cli


def test_cli_predictions_are_stored_with_source_cli(tiny_bundle, isolated_device_state):
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            "--model",
            str(tiny_bundle),
            "--json",
            "Python, pandas and A/B testing for product analytics",
            "Build Kubernetes microservices in Go",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.output.splitlines()]
    rows = (
        sqlite3.connect(isolated_device_state / "predictions.db")
        .execute("SELECT source, label, model_version, synced_at FROM predictions ORDER BY created_at")
        .fetchall()
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("cli", p["label"], p["model_version"], None) for p in printed]


def test_an_unwritable_store_costs_a_note_not_the_prediction(tiny_bundle, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    monkeypatch.setenv("CAREEREDGE_STORE_PATH", str(blocker / "predictions.db"))
    result = CliRunner().invoke(
        cli, ["predict", "--model", str(tiny_bundle), "--json", "Data scientist: statistics and SQL"]
    )
    assert json.loads(result.stdout)["label"] in (0, 1)
    assert result.exit_code == 2
    assert "Note: predictions not stored" in result.stderr and "Traceback" not in result.stderr
