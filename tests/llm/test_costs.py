"""The cost model: break-even volumes against a brute-force scan, the Pi 5 arithmetic, input provenance, and
`report-slm-llm` end to end on compare-llm's output for real postings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cloud.costs import model as cost_model
from cloud.costs.inputs import load_deployment
from cloud.costs.report import report_command
from cloud.llm.command import compare_llm_command
from shared.errors import UserError
from tests.llm.conftest import write_splits_and_stream
from tests.support.fake_chat_api import FakeChatApi


def scan_break_even(deployment, overhead, llm_per_call, llm_overhead=0.0):
    for volume in np.unique(np.round(np.logspace(0, 10, 200_000))):
        if deployment.monthly_usd(volume, overhead) <= llm_per_call * volume + llm_overhead:
            return volume
    return None


@pytest.mark.parametrize(
    ("fixed", "capacity", "variable", "overhead", "llm"),
    [
        (5.0, 1e7, 1e-6, 400.0, 2e-4),  # one device is enough
        (70.0, 2e5, 1e-6, 400.0, 6e-4),  # the break-even needs several devices
        (70.0, 2e5, 1e-6, 400.0, 3e-4),  # a busy device costs more than the calls it replaces: never
        (5.0, 1e7, 5e-4, 0.0, 2e-4),  # the LLM is cheaper per call: never
        (0.0, 1e9, 0.0, 0.0, 1e-4),  # nothing to earn back: from the first prediction
    ],
)
def test_break_even_matches_a_brute_force_scan(fixed, capacity, variable, overhead, llm):
    deployment = cost_model.Deployment("d", fixed, capacity, variable)
    closed = cost_model.break_even_volume(deployment, overhead, llm)
    scanned = scan_break_even(deployment, overhead, llm)
    if scanned is None:
        assert closed is None or closed > 1e10
    else:
        assert closed == pytest.approx(scanned, rel=2e-4, abs=1)


def test_pi5_costs_follow_from_the_stated_inputs():
    inputs = load_deployment()
    pi = cost_model.pi5_deployment(inputs, seconds_per_prediction=0.02, monitoring_usd=0.0)
    hardware = inputs["pi5.hardware_usd"].value / inputs["pi5.life_months"].value
    idle = inputs["pi5.watts_idle"].value * 730 / 1000 * inputs["electricity_usd_per_kwh"].value
    assert pi.fixed_usd_per_unit_month == pytest.approx(hardware + idle)
    assert pi.capacity_per_unit_month == pytest.approx(730 * 3600 / 0.02)
    extra_watts = inputs["pi5.watts_busy"].value - inputs["pi5.watts_idle"].value
    assert pi.variable_usd_per_prediction == pytest.approx(extra_watts * 0.02 / 3.6e6 * 0.30)
    assert all(i.kind in ("source", "assumed", "measured") and i.source for i in inputs.values())


def test_a_deployment_input_without_its_source_is_one_clear_error(tmp_path):
    path = tmp_path / "deployment.yaml"
    path.write_text("pi5:\n  hardware_usd:\n    value: 120\n    unit: USD\n    kind: assumed\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"pi5.hardware_usd: missing field 'source'"):
        load_deployment(path)
    path.write_text("grid:\n  value: 1\n  unit: x\n  kind: guessed\n  source: me\n", encoding="utf-8")
    with pytest.raises(UserError, match="kind must be one of"):
        load_deployment(path)


@pytest.fixture
def pipeline_outputs(tmp_path, tiny_bundle, repo_root, monkeypatch):
    """What the report reads: compare-llm's JSON (run for real), the two bench files, a snapshot directory."""
    for name in ("CAREEREDGE_LLM_BASE_URL", "CAREEREDGE_LLM_MODEL", "CAREEREDGE_LLM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    splits, normalized = write_splits_and_stream(tmp_path)
    common = ["--splits", str(splits), "--normalized", str(normalized), "--params", str(repo_root / "params.yaml")]
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "inference.json").write_text(
        json.dumps({"model": "model_a_v1", "ort_int8_p50_ms": 20.0, "threads": 2, "load_average_1m": [1.0, 1.2]})
    )
    (bench / "daemon.json").write_text(json.dumps({"model": "model_a_v1@1", "throughput_per_s": 60.0, "clients": 8}))
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "raw.json").write_bytes(b"x" * 2_000_000)
    report_args = [
        "--bench-inference", str(bench / "inference.json"), "--bench-daemon", str(bench / "daemon.json"),
        "--snapshot", str(snapshot), "--splits", str(splits), "--params", str(repo_root / "params.yaml"),
    ]  # fmt: skip
    return tmp_path, common, report_args


def test_the_report_marks_unmeasured_llms_and_traces_every_cost(pipeline_outputs, tiny_bundle):
    root, common, report_args = pipeline_outputs
    compare = root / "compare.json"
    runner = CliRunner()
    assert (
        runner.invoke(compare_llm_command, [*common, "--bundle", str(tiny_bundle), "--out", str(compare)]).exit_code
        == 0
    )
    out = root / "report"
    result = runner.invoke(report_command, ["--compare", str(compare), *report_args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())

    assert all(
        row["accuracy"] == {"test_2025": "not measured", "eval_2026": "not measured"} for row in report["llm_rows"]
    )
    small = json.loads(compare.read_text())["small_models"][0]
    assert report["small_model_rows"][0]["accuracy"]["test_2025"] == small["splits"]["test_2025"]["accuracy"]
    kinds = {i["name"]: i["kind"] for i in report["inputs"]}
    assert kinds["seconds_per_prediction"] == kinds["daemon_predictions_per_second"] == "measured"
    assert kinds["snapshot_bytes_per_week"] == "measured" and kinds["engineer_hours_per_month"] == "assumed"

    # the LLM's cost per 1,000 is the mean over the real postings' token counts at the dated price
    compare_json = json.loads(compare.read_text())
    counts = compare_json["token_counts"]["gpt-4o-mini"]["splits"]
    prompt = counts["test_2025"]["prompt_tokens"] + counts["eval_2026"]["prompt_tokens"]
    completion = counts["test_2025"]["completion_tokens"] + counts["eval_2026"]["completion_tokens"]
    expected = 1000 * np.mean([(p * 0.15 + c * 0.60) / 1e6 for p, c in zip(prompt, completion)])
    row = next(r for r in report["llm_rows"] if r["model"] == "gpt-4o-mini")
    assert row["usd_per_1000"]["mean"] == pytest.approx(expected)
    claude = next(r for r in report["llm_rows"] if r["model"] == "claude-haiku-4-5")
    assert "(estimate)" in claude["tokens"]

    # the cloud row's compute cost is the stated $/h over the measured 60 predictions per second
    cloud = next(r for r in report["small_model_rows"] if r["deployment"].startswith("cloud"))
    monitoring = report["monitoring_usd_per_prediction"]
    assert cloud["usd_per_1000_compute_at_capacity"] == pytest.approx(1000 * (0.096 / 3600 / 60 + monitoring))
    by_hours = report["break_even_by_engineer_hours"]
    pi = "Raspberry Pi 5"
    assert (
        by_hours["0"]["claude-haiku-4-5"][pi]
        < by_hours["4"]["claude-haiku-4-5"][pi]
        < by_hours["16"]["claude-haiku-4-5"][pi]
    )
    assert row["break_even_volume_per_month"][pi] == pytest.approx(by_hours["4"]["gpt-4o-mini"][pi])
    for name in ("cost_vs_volume.png", "accuracy_vs_cost.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert "not measured" in page and "<script" not in page
    assert "| gpt-4o-mini |" in report["headline_markdown"]


def test_a_measured_llm_gets_its_accuracy_and_usage_based_cost(pipeline_outputs):
    root, common, report_args = pipeline_outputs
    compare = root / "compare.json"
    with FakeChatApi() as api:
        args = [*common, "--base-url", api.base_url, "--model", "gpt-4o-mini", "--out", str(compare)]
        assert CliRunner().invoke(compare_llm_command, args, env={"CAREEREDGE_LLM_API_KEY": "k"}).exit_code == 0
    out = root / "report"
    result = CliRunner().invoke(report_command, ["--compare", str(compare), *report_args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads((out / "report.json").read_text())["llm_rows"]}
    llm = json.loads(compare.read_text())["llm"]
    assert rows["gpt-4o-mini"]["accuracy"]["test_2025"] == llm["splits"]["test_2025"]["summary"]["accuracy"]
    assert rows["gpt-4o-mini"]["tokens"] == "API usage (measured calls)"
    # the fake API bills 1,200 prompt + 6 completion tokens per call
    assert rows["gpt-4o-mini"]["usd_per_1000"]["mean"] == pytest.approx(1000 * (1200 * 0.15 + 6 * 0.60) / 1e6)
    assert rows["gpt-4.1-mini"]["accuracy"]["eval_2026"] == "not measured"
