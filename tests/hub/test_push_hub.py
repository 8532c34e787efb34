"""push-hub through huggingface_hub's real client against a loopback server that plays the Hub's API:
one commit with the safetensors, the INT8 bundle, the reports and a model card naming the data snapshot."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

from cloud.hub.push import next_version_from_files, push_hub_command
from tests.support.fake_hub import FakeHub

SNAPSHOT_MD5 = "3f1c0ffee0d5a9b7c6e4f2a1b0c9d8e7.dir"


def test_next_version_from_repo_files():
    assert next_version_from_files([]) == 1
    files = ["README.md", "model_b_v1/model.onnx", "model_b_v3/manifest.json", "model_b_v10x/other", "model_a_v1/x"]
    assert next_version_from_files(files) == 4


@pytest.fixture
def week(tmp_path, tiny_bundle):
    """A week's outputs laid out as the pipeline writes them: artifacts/model_b_v4/{hf,reports}, the bundle,
    and a dvc.lock whose `ingest` stage records the raw snapshot."""
    import numpy as np
    from safetensors.numpy import save_file

    model_dir = tmp_path / "artifacts" / "model_b_v4"
    (model_dir / "hf").mkdir(parents=True)
    save_file(
        {"classifier.weight": np.arange(6, dtype=np.float32).reshape(2, 3)}, model_dir / "hf" / "model.safetensors"
    )
    (model_dir / "hf" / "config.json").write_text('{"model_type": "bert"}')
    evaluation = {
        "test_2025": {"overall": {"model_a": {"accuracy": 0.9355, "n": 93}, "model_b": {"accuracy": 0.9462, "n": 93}}},
        "eval_2026": {
            "overall": {"model_a": {"accuracy": 0.8465, "n": 404}, "model_b": {"accuracy": 0.8911, "n": 404}}
        },
        "targets": {"loss_met": True, "loss_target": 0.02},
    }
    (model_dir / "evaluation.json").write_text(json.dumps(evaluation))
    (model_dir / "train_log.json").write_text(json.dumps({"training_data_sha256": "ab" * 32}))
    (model_dir / "arms.json").write_text("{}")
    bundle = tmp_path / "artifacts" / "bundles" / "model_b_v4"
    shutil.copytree(tiny_bundle, bundle)
    lock = {"schema": "2.0", "stages": {"ingest": {"cmd": "careeredge-cloud ingest", "outs": [
        {"path": "data/ingest", "hash": "md5", "md5": SNAPSHOT_MD5, "size": 123456, "nfiles": 3}]}}}  # fmt: skip
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    return tmp_path, bundle, model_dir


def push(args, env):
    return CliRunner().invoke(push_hub_command, args, env=env, catch_exceptions=False)


def test_push_hub_commits_the_whole_week_once(week):
    root, bundle, model_dir = week
    with FakeHub() as hub:
        env = {"HF_TOKEN": "hf_test", "HF_ENDPOINT": hub.endpoint}
        args = [
            "--repo",
            "org/model-b",
            str(bundle),
            "--model-dir",
            str(model_dir),
            "--dvc-lock",
            str(root / "dvc.lock"),
        ]
        result = push(args, env)
        assert result.exit_code == 0, result.output
        repo = hub.repos["org/model-b"]
        assert repo.private is True and len(repo.commits) == 1  # one commit: never half a week
        files = repo.files
        assert files["model_b_v4/model.safetensors"] == (model_dir / "hf" / "model.safetensors").read_bytes()
        for path in bundle.iterdir():
            assert files[f"model_b_v4/bundle/{path.name}"] == path.read_bytes()
        assert {"model_b_v4/reports/evaluation.json", "model_b_v4/reports/arms.json"} <= set(files)
        card = files["model_b_v4/README.md"].decode()
        assert files["README.md"].decode() == card
        assert SNAPSHOT_MD5 in card and "ab" * 32 in card
        assert "| 2026 evaluation split | 0.847 (n = 404) | 0.891 (n = 404) |" in card

        next_version = push(["--repo", "org/model-b", "--next-version"], env)
        assert next_version.output.strip() == "5"
        new_repo = push(["--repo", "org/never-pushed", "--next-version"], env)
        assert new_repo.output.strip() == "1"


def test_push_hub_refuses_bad_inputs_with_one_line(week):
    root, bundle, model_dir = week
    result = CliRunner().invoke(push_hub_command, ["--repo", "org/model-b", str(bundle)], env={"HF_TOKEN": ""})
    assert result.exit_code == 2 and "HF_TOKEN is not set" in result.output
    with FakeHub() as hub:
        base = ["--repo", "org/model-b", str(bundle), "--model-dir", str(model_dir)]
        env = {"HF_TOKEN": "hf_test", "HF_ENDPOINT": hub.endpoint}
        no_lock = CliRunner().invoke(push_hub_command, [*base, "--dvc-lock", str(root / "missing.lock")], env=env)
        assert no_lock.exit_code == 2 and "version_snapshot.sh" in no_lock.output
        (bundle / "model.onnx").write_bytes(b"tampered")
        tampered = CliRunner().invoke(push_hub_command, [*base, "--dvc-lock", str(root / "dvc.lock")], env=env)
        assert tampered.exit_code == 2 and "sha256 mismatch" in tampered.output
        wrong_token = {"HF_TOKEN": "hf_wrong", "HF_ENDPOINT": hub.endpoint}
        refused = CliRunner().invoke(push_hub_command, ["--repo", "org/model-b", "--next-version"], env=wrong_token)
        assert refused.exit_code == 2 and "HTTP 401" in refused.output
        assert hub.repos == {}
