"""`careeredge predict` contract. Most cases run in-process (click's CliRunner, fast); the ones about
what a real user sees (exit codes, no traceback, stdin bytes) also run as real processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from device.predict_command import predict
from shared.bundle import MODEL_FILE

CONTRACT_KEYS = {"id", "label", "label_name", "probabilities", "model_version", "latency_ms"}
DS_TEXT = "Data scientist with statistics, pandas and regression for product experiments."
SWE_TEXT = "Backend engineer building Java microservices on Kubernetes with Docker."


@pytest.fixture
def run(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))

    def invoke(*args, input=None, bundle=tiny_bundle):
        return CliRunner().invoke(predict, ["--model", str(bundle), *args], input=input)

    return invoke


def run_cli(*args, input: bytes | None = None):
    return subprocess.run(
        [sys.executable, "-m", "device.cli", "predict", *args], input=input, capture_output=True, timeout=60
    )


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def test_json_output_has_the_contract_fields(run):
    result = run("--json", DS_TEXT, SWE_TEXT)
    assert result.exit_code == 0, result.output
    first, second = json_lines(result.stdout)
    assert first.keys() == second.keys() == CONTRACT_KEYS
    assert (first["id"], first["label"], first["label_name"]) == (1, 1, "Data Science")
    assert (second["id"], second["label"]) == (2, 0)
    assert sum(first["probabilities"]) == pytest.approx(1.0, abs=1e-5)


def test_human_output_shows_class_bar_and_driving_terms(run):
    result = run(DS_TEXT)
    assert result.exit_code == 0
    assert "Data Science" in result.stdout and "█" in result.stdout
    assert "driving terms (drop in p when removed):" in result.stdout
    assert "pandas" in result.stdout and "tiny_model@1" in result.stdout


def test_file_and_stdin(run, tmp_path):
    posting = tmp_path / "posting.txt"
    posting.write_text(SWE_TEXT)
    from_file = json_lines(run("--json", "--file", str(posting)).stdout)
    from_stdin = json_lines(run("--json", input=SWE_TEXT.encode()).stdout)
    assert from_file[0]["id"] == str(posting) and from_stdin[0]["id"] == "stdin"
    assert from_file[0]["label"] == from_stdin[0]["label"] == 0


def test_jsonl_bad_line_is_reported_and_the_others_still_predict(run, tmp_path):
    jsonl = tmp_path / "postings.jsonl"
    jsonl.write_text(
        "\n".join(
            [
                json.dumps({"id": "a", "text": DS_TEXT}),
                "{this is not json",
                json.dumps({"id": "b", "text": "   "}),
                json.dumps(["no", "object"]),
                json.dumps({"text": SWE_TEXT}),
            ]
        )
        + "\n"
    )
    result = run("--json", "--jsonl", str(jsonl))
    assert result.exit_code == 2
    assert [(r["id"], r["label"]) for r in json_lines(result.stdout)] == [("a", 1), (5, 0)]
    assert result.stderr.splitlines() == [
        f"Error: {jsonl} line 2: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        f"Error: {jsonl} line 3: whitespace-only text, nothing to classify",
        f'Error: {jsonl} line 4: expected an object with a "text" string',
    ]


def test_jsonl_batches_many_postings(run, tmp_path):
    jsonl = tmp_path / "many.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "text": (DS_TEXT, SWE_TEXT)[i % 2]}) + "\n" for i in range(300)))
    rows = json_lines(run("--json", "--jsonl", str(jsonl)).stdout)
    assert [r["id"] for r in rows] == list(range(300))
    assert [r["label"] for r in rows] == [1 - i % 2 for i in range(300)]


@pytest.mark.parametrize(
    "text, message", [("", "argument 1: empty text"), ("   \n ", "argument 1: whitespace-only text")]
)
def test_empty_inputs_exit_2_with_one_line(run, text, message):
    result = run(text)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == f"Error: {message}, nothing to classify\n"


def test_huge_text_is_truncated_predicted_and_noted(run):
    result = run("--json", input=b"pandas statistics " + b"x" * 5_000_000)
    assert result.exit_code == 2
    assert json_lines(result.stdout)[0]["label"] == 1
    assert result.stderr.startswith("Note: stdin: 5,000,018 characters, truncated to the first 100,000")


def test_invalid_utf8_is_replaced_predicted_and_noted(run):
    result = run("--json", input=b"pandas \xff\xfe statistics")
    assert result.exit_code == 2 and len(json_lines(result.stdout)) == 1
    assert result.stderr == "Note: stdin: invalid UTF-8 at byte 7; undecodable bytes were replaced with U+FFFD\n"


def test_real_process_bad_inputs_and_bundles_never_traceback(tiny_bundle, bundle_copy, tmp_path):
    cases = {
        "empty": run_cli("--model", str(tiny_bundle), ""),
        "whitespace stdin": run_cli("--model", str(tiny_bundle), input=b" \n\t"),
        "invalid utf-8 stdin": run_cli("--model", str(tiny_bundle), "--json", input=b"SQL \xc3\x28 pandas"),
        "missing bundle": run_cli("--model", str(tmp_path / "missing"), "text"),
        "missing file": run_cli("--model", str(tiny_bundle), "--file", str(tmp_path / "none.txt")),
    }
    (bundle_copy / MODEL_FILE).write_bytes((bundle_copy / MODEL_FILE).read_bytes()[:-10])
    cases["tampered bundle"] = run_cli("--model", str(bundle_copy), "text")
    for name, result in cases.items():
        stderr = result.stderr.decode()
        assert result.returncode == 2, name
        assert "Traceback" not in stderr, name
        assert stderr.strip(), name
    assert f"sha256 mismatch for {bundle_copy / MODEL_FILE}" in cases["tampered bundle"].stderr.decode()
    assert "not a directory" in cases["missing bundle"].stderr.decode()
    assert json.loads(cases["invalid utf-8 stdin"].stdout)["label"] in (0, 1)


def test_no_input_at_all_is_a_usage_error(run):
    # CliRunner's stdin is not a TTY, so "nothing" means empty stdin here.
    result = run(input=b"")
    assert result.exit_code == 2 and "stdin: empty text" in result.stderr


def test_reader_closing_the_pipe_is_not_a_traceback(tiny_bundle, tmp_path):
    """`careeredge predict --jsonl big.jsonl | head -1`."""
    jsonl = tmp_path / "big.jsonl"
    jsonl.write_text("".join(json.dumps({"text": DS_TEXT}) + "\n" for _ in range(2000)))
    process = subprocess.Popen(
        [sys.executable, "-m", "device.cli", "predict", "--json", "--model", str(tiny_bundle), "--jsonl", str(jsonl)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert json.loads(process.stdout.readline())["label"] == 1
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1 and "Traceback" not in stderr
