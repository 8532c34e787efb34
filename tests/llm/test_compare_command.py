"""`careeredge-cloud compare-llm` end to end: real postings, a real INT8 bundle, a real HTTP endpoint."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from cloud.llm.command import compare_llm_command
from tests.llm.conftest import write_splits_and_stream
from tests.support.fake_chat_api import FakeChatApi, keyword_label

ENV_NAMES = ("CAREEREDGE_LLM_BASE_URL", "CAREEREDGE_LLM_MODEL", "CAREEREDGE_LLM_API_KEY")


@pytest.fixture
def inputs(tmp_path, repo_root, monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    splits, normalized = write_splits_and_stream(tmp_path)
    return [
        "--splits", str(splits), "--normalized", str(normalized), "--params", str(repo_root / "params.yaml"),
    ]  # fmt: skip


def run(args, env=None):
    return CliRunner().invoke(compare_llm_command, args, env=env, catch_exceptions=False)


def test_without_an_endpoint_the_llm_is_not_measured_but_tokens_and_small_models_are(inputs, tiny_bundle, tmp_path):
    out = tmp_path / "compare.json"
    result = run([*inputs, "--bundle", str(tiny_bundle), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["llm"]["status"] == "not measured" and "accuracy" not in json.dumps(report["llm"])
    assert "LLM: not measured" in result.output
    test_n, eval_n = report["splits"]["test_2025"]["postings"], report["splits"]["eval_2026"]["postings"]
    assert test_n == 12 and 5 <= eval_n <= 35  # ~30 % of 60 stream postings are held out
    small = report["small_models"][0]
    assert small["name"] == "tiny_model@1"
    assert small["splits"]["test_2025"]["postings"] == test_n and small["splits"]["eval_2026"]["latency_ms_p50"] > 0
    for model_id in ("gpt-4o-mini", "gpt-4.1-mini", "claude-haiku-4-5"):
        counts = report["token_counts"][model_id]["splits"]["eval_2026"]["prompt_tokens"]
        assert len(counts) == eval_n and min(counts) > 150
    assert report["token_counts"]["claude-haiku-4-5"]["estimate"] is True
    assert report["token_counts"]["gpt-4o-mini"]["method"] == "tokenizer o200k_base"


def test_with_an_endpoint_every_posting_is_scored_and_priced(inputs, tmp_path):
    out = tmp_path / "compare.json"
    with FakeChatApi() as api:
        env = {"CAREEREDGE_LLM_API_KEY": "sk-test"}
        result = run([*inputs, "--base-url", api.base_url, "--model", "gpt-4o-mini", "--out", str(out)], env)
        sent = [r["body"]["messages"][-1]["content"] for r in api.requests]
    assert result.exit_code == 0, result.output
    llm = json.loads(out.read_text())["llm"]
    assert llm["status"] == "measured" and llm["price_id"] == "gpt-4o-mini"
    test_run = llm["splits"]["test_2025"]
    summary = test_run["summary"]
    assert summary["sent"] == 12 and summary["answered"] == 12 and summary["cost_usd"] > 0
    # the fake endpoint answers by keyword, so its accuracy is known from the split itself
    rows = list(csv.DictReader((tmp_path / "splits" / "test.csv").open(encoding="utf-8")))
    expected = sum(keyword_label({"messages": [{"content": r["text"]}]}) == int(r["label"]) for r in rows)
    assert summary["correct"] == expected and summary["accuracy"] == pytest.approx(expected / 12)
    assert len(sent) == 12 + llm["splits"]["eval_2026"]["summary"]["sent"]


def test_a_half_configured_endpoint_is_an_error_not_a_skip(inputs, tmp_path):
    result = CliRunner().invoke(compare_llm_command, [*inputs, "--base-url", "http://127.0.0.1:9/v1", "--model", "m"])
    assert result.exit_code == 2 and "CAREEREDGE_LLM_API_KEY is not set" in result.output
    result = CliRunner().invoke(
        compare_llm_command,
        [*inputs, "--base-url", "http://127.0.0.1:9/v1", "--model", "unpriced"],
        env={"CAREEREDGE_LLM_API_KEY": "k"},
    )
    assert result.exit_code == 2 and "'unpriced' has no row" in result.output
