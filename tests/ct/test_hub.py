"""push-hub: version numbering from the repo listing, and a clear error without a token."""

from __future__ import annotations

from click.testing import CliRunner

from cloud.training.hub import next_version_from_files, push_hub_command


def test_next_version_from_repo_files():
    assert next_version_from_files([]) == 1
    assert (
        next_version_from_files(
            [
                "README.md",
                "model_b_v1/model.onnx",
                "model_b_v3/manifest.json",
                "model_b_v10x/other",
                "model_a_v1/model.onnx",
            ]
        )
        == 4
    )


def test_missing_token_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(push_hub_command, ["--repo", "org/model-b", str(tmp_path)], env={"HF_TOKEN": ""})
    assert result.exit_code == 2 and "HF_TOKEN is not set" in result.output
