"""`replay-weeks` on the real dated stream, two weeks, through the real chain with a tiny Model A.

Model A is the 2-layer test BERT (tests/support/tiny_model.py); the 2025 splits are built from the
committed CSV with the pipeline's prepare and label steps; the 2026 evaluation split is the committed
UK stream, ingested and normalized by the pipeline's own code. Training settings are tiny (64 tokens,
one epoch) but go through the same functions as the weekly job. The figures are not the study's:
the test checks the chain, the per-week entries and that nothing from the stream lands in the repo.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_cli
from cloud.data.prepare import run_label, run_prepare
from tests.support.tiny_model import train_tiny_classifier

pytestmark = pytest.mark.slow

PARAMS = """
split: {train: 0.70, val: 0.15, test: 0.15, seed: 2025}
model: {base: minilm, max_length: 64}
train: {epochs: 1, batch_size: 16, learning_rate: 1.0e-3, seed: 1, freeze_layers: 1}
pseudo_label: {threshold: 0.6, max_class_ratio: 3.0, eval_fraction: 0.3}
train_b: {epochs: 1, init: model_a, learning_rate: 1.0e-3, max_rows_per_arm: 80, replay_2025: 80, seed: 3}
monitoring: {min_count: 3}
"""


def run(*args):
    result = CliRunner().invoke(cloud_cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, kaggle_csv, repo_root):
    root = tmp_path_factory.mktemp("replay")
    (root / "params.yaml").write_text(PARAMS)
    run_prepare(kaggle_csv, root / "interim")
    run_label(root / "interim" / "postings_2025.jsonl", root / "processed", (0.7, 0.15, 0.15), 2025)
    model_a = root / "model_a"
    train_tiny_classifier(model_a / "hf", seed=3)
    (model_a / "train_log.json").write_text(json.dumps({"config": {"max_length": 64, "preprocessing": "clean"}}))
    stream = repo_root / "data" / "stream_2026"
    run(
        "ingest", "--out", root / "ingest", "--file", stream / "linkedin_jobs.csv", "--file", stream / "adzuna_jobs.csv"
    )
    run("normalize", "--ingest-dir", root / "ingest", "--out", root / "normalized")
    return root, model_a


def test_two_weeks_of_the_dated_stream(workspace, shared_data, repo_root):
    root, model_a = workspace
    stream = shared_data / "remote_apis_2026_EGG-ZERO_da-job-radar" / "tech_jobs_sample.jsonl"
    out = root / "weekly.json"
    result = run(
        "replay-weeks", "--stream", stream, "--model-a", model_a, "--splits", root / "processed" / "splits",
        "--eval-normalized", root / "normalized", "--params", root / "params.yaml", "--work", root / "work",
        "--out", out, "--weeks", 2, "--threads", 1,
    )  # fmt: skip
    document = json.loads(out.read_text())
    weeks = document["weeks"]
    assert [w["week"] for w in weeks] == ["2026-W27", "2026-W28"]
    assert "2026-W27:" in result.output and "2026-W28:" in result.output  # one table line per week
    for week in weeks:
        assert week["arrived"] > 0 and week["normalize"]["non_english"] > 0  # German went to quarantine
        assert week["quarantined_by_reason"].get("non-English", 0) == week["normalize"]["non_english"]
        for split in ("eval_2026", "test_2025"):
            assert {"model_a", "model_b"} <= set(week["evaluation"][split])
            assert week["evaluation"][split]["model_a"]["n"] > 0
        assert week["model_b"]["arm"] in week["model_b"]["arms"]
        assert week["cost"]["wall_s"] > 0 and set(week["cost"]["steps"]) >= {"normalize", "pseudo_label", "train_b"}
        assert week["monitoring"]["skew"]["summary"]["features"] > 100
    assert weeks[0]["monitoring"]["drift"] is None and weeks[1]["monitoring"]["drift"] is not None
    assert weeks[1]["drops"] == 2  # the second week's job sees both weeks' drops
    assert set(document["hypotheses"]["counts"]) == {"a_wrong_b_right", "b_wrong_a_right"}
    # The stream has no licence: nothing of it may end up inside the repository.
    assert not str(out).startswith(str(repo_root)) and not str(root).startswith(str(repo_root))

    report = run("report", "--weekly", out, "--monitor", root / "absent.json", "--out", root / "reports")
    assert "weekly" in report.output
    merged = json.loads((root / "reports" / "monitoring.json").read_text())
    assert merged["replay"]["weeks"][1]["week"] == "2026-W28"
    assert (root / "reports" / "accuracy_by_week.png").stat().st_size > 5000
    html = (root / "reports" / "report.html").read_text()
    assert "<link" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "2026-W28" in html


def test_a_missing_stream_is_one_line(tmp_path):
    result = CliRunner().invoke(cloud_cli, ["replay-weeks", "--stream", str(tmp_path / "absent.jsonl")])
    assert result.exit_code == 0
    assert result.output.count("\n") == 1 and "no dated stream" in result.output
