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


@pytest.fixture(scope="module")
def replayed(workspace, shared_data):
    """The first two weeks replayed once for the module: (workspace root, weekly.json, command output)."""
    root, model_a = workspace
    stream = shared_data / "remote_apis_2026_EGG-ZERO_da-job-radar" / "tech_jobs_sample.jsonl"
    out = root / "weekly.json"
    result = run(
        "replay-weeks", "--stream", stream, "--model-a", model_a, "--splits", root / "processed" / "splits",
        "--eval-normalized", root / "normalized", "--params", root / "params.yaml", "--work", root / "work",
        "--out", out, "--weeks", 2, "--threads", 1,
    )  # fmt: skip
    return root, out, result.output


def test_two_weeks_of_the_dated_stream(replayed, repo_root):
    root, out, output = replayed
    document = json.loads(out.read_text())
    weeks = document["weeks"]
    assert [w["week"] for w in weeks] == ["2026-W27", "2026-W28"]
    assert "2026-W27:" in output and "2026-W28:" in output  # one table line per week
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


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def dashboard(replayed, kaggle_csv, repo_root, tmp_path):
    """`careeredge-cloud dashboard` (waitress, a real port) over a report of the two replayed weeks and
    of field traffic from a collector store."""
    import socket
    import subprocess
    import sys
    import time

    import requests

    from cloud.collector.collector import Collector
    from cloud.collector.storage import open_storage
    from shared.mqtt.client import BrokerSettings
    from tests.monitoring.fleet_traffic import batches, postings

    root, weekly, _ = replayed
    store = tmp_path / "collector.sqlite"
    storage = open_storage(str(store))
    storage.open()
    collector = Collector(storage, BrokerSettings(host="127.0.0.1", port=1))
    for topic, payload in batches(postings(kaggle_csv, 40)):
        collector.handle(topic, payload)
    storage.close()
    run("monitor", "--store", store, "--splits", root / "processed" / "splits", "--out", tmp_path / "field.json",
        "--cache", tmp_path / "cache.npz", "--params", root / "params.yaml")  # fmt: skip
    run("report", "--weekly", weekly, "--monitor", tmp_path / "field.json", "--out", tmp_path / "reports")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "cloud.cli", "dashboard", "--monitoring", str(tmp_path / "reports" / "monitoring.json"),
               "--store", str(store), "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(command, cwd=repo_root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url + "/api/monitoring.json", timeout=2).raise_for_status()
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError("the dashboard did not start: " + process.stderr.read().decode()[-2000:]) from None
            time.sleep(0.3)
    yield url, requests.get(url + "/api/monitoring.json", timeout=5).json()
    process.terminate()
    process.wait(timeout=10)


def test_every_dashboard_page_shows_the_numbers_of_the_monitoring_json(dashboard, tmp_path):
    import shutil

    from tests.conftest import require

    require(shutil.which("chromium") is not None, f"Debian chromium at {CHROMIUM}")
    from playwright import sync_api

    url, document = dashboard
    weeks = {w["week"]: w for w in document["replay"]["weeks"]}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url + "/")
        rows = page.locator("#weeks tr[data-week]")
        assert rows.count() == 2
        for i in range(rows.count()):
            row = rows.nth(i)
            week = weeks[row.get_attribute("data-week")]
            for cell in row.locator("td[data-json]").all():
                split, model = cell.get_attribute("data-json").split(".")
                expected = week["evaluation"][split][model]["accuracy"]
                assert cell.inner_text() == ("n/a" if expected is None else f"{expected:.3f}")
        assert page.locator("svg.chart polyline").count() >= 2  # the accuracy lines, drawn server-side
        last = document["replay"]["weeks"][-1]["evaluation"]
        card = page.locator('[data-json="headline.eval_2026.model_b.accuracy"]')
        assert card.inner_text() == f"{last['eval_2026']['model_b']['accuracy']:.3f}"
        assert page.inner_text("#live-predictions") == "40"
        page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

        page.goto(url + "/skew")
        cells = page.locator("#skew td[data-feature]")
        assert cells.count() > 10
        for cell in cells.all()[:60]:
            features = {
                f["feature"]: f for f in weeks[cell.get_attribute("data-week")]["monitoring"]["skew"]["features"]
            }
            value = features[cell.get_attribute("data-feature")]["value"]
            assert cell.inner_text() == ("–" if value is None else f"{value:.3f}")
            assert ("alert" in (cell.get_attribute("class") or "")) == (
                value is not None and value >= features[cell.get_attribute("data-feature")]["threshold"]
            )
        page.goto(url + "/skills")
        assert page.locator("svg.chart").count() == 1 or not document["replay"]["movement_2026"]["rising"]
        page.goto(url + "/hypotheses")
        for kind in ("a_wrong_b_right", "b_wrong_a_right"):
            shown = page.inner_text(f'[data-json="hypotheses.counts.{kind}"]')
            assert shown == str(document["replay"]["hypotheses"]["counts"][kind])
        page.goto(url + "/field")
        field = document["monitor"]["field"]
        assert page.inner_text('[data-json="monitor.field.predictions"]') == str(field["predictions"])
        assert page.inner_text('[data-json="monitor.field.shadow.agreement"]') == f"{field['shadow']['agreement']:.3f}"
        assert page.locator("#field-weeks tr").count() == 1 + len(field["windows"])
        missing = browser.new_page()
        response = missing.goto(url + "/no-such-page")
        assert response.status == 404 and "Not found" in missing.inner_text("body")
        browser.close()
    assert (tmp_path / "overview.png").stat().st_size > 20_000
