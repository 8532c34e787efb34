"""`careeredge-cloud distill-a` and the export of its student, on a tiny real teacher (needs torch).

The teacher is the 2-block test BERT from tests/support/tiny_model.py; the splits and the 2026 stream
are synthetic keyword postings. These tests check the mechanics and the gates, not Model A's figures.
"""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_cli
from shared.bundle import verify_bundle
from shared.errors import UserError
from shared.posting import make_posting
from tests.support.tiny_model import TINY_MAX_LENGTH, synthetic_postings, train_tiny_classifier

PARAMS = f"""
model: {{base: minilm, max_length: {TINY_MAX_LENGTH}}}
pseudo_label: {{eval_fraction: 0.3}}
distill: {{layers: [1], epochs: 2, learning_rate: 1.0e-3, seed: 3, max_accuracy_drop_pt: {{drop}},
           max_length: {{window}}}}
"""


def write_split(path, texts, labels):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "text", "label"])
        writer.writerows((f"p{i}", "t", text, label) for i, (text, label) in enumerate(zip(texts, labels)))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    teacher = root / "model_a"
    train_tiny_classifier(teacher / "hf", seed=4)
    (teacher / "train_log.json").write_text(json.dumps(
        {"config": {"max_length": TINY_MAX_LENGTH, "preprocessing": "clean", "base": "tiny"}}))
    splits = root / "splits"
    splits.mkdir()
    for name, count, seed in (("train", 48, 20), ("val", 24, 21), ("test", 30, 22)):
        write_split(splits / f"{name}.csv", *synthetic_postings(count, seed))
    texts, _ = synthetic_postings(60, 23)
    normalized = root / "normalized"
    normalized.mkdir()
    (normalized / "postings.jsonl").write_text("".join(
        json.dumps(make_posting("linkedin_uk_2026", f"77{i:06d}", "Engineer", text).to_record()) + "\n"
        for i, text in enumerate(texts)))
    return root, teacher


def run(*args, drop: float = 100.0, window: int | None = None, root=None):
    (root / "params.yaml").write_text(PARAMS.replace("{drop}", str(drop)).replace("{window}", str(window or "null")))
    return CliRunner().invoke(cloud_cli, [str(a) for a in args] + ["--params", str(root / "params.yaml")])


def distill(root, teacher, out, drop=100.0, window=None):
    return run("distill-a", "--model-a", teacher, "--splits", root / "splits", "--normalized", root / "normalized",
               "--out", out, "--threads", 1, drop=drop, window=window, root=root)


def test_a_student_with_every_block_is_the_teacher_and_fewer_blocks_are_copies(workspace):
    from cloud.training.distill import shallow_copy
    from cloud.training.finetune import encoder_layers
    from cloud.training.model_io import load_classifier

    root, teacher_dir = workspace
    teacher = load_classifier(teacher_dir)
    texts, _ = synthetic_postings(8, 30)
    same = shallow_copy(teacher.model, (0, 1))
    from cloud.training.distill import student_reader
    assert np.allclose(student_reader(same, teacher).predict_logits(texts), teacher.predict_logits(texts), atol=1e-5)

    top = shallow_copy(teacher.model, (1,))
    assert top.config.num_hidden_layers == 1 and len(encoder_layers(top)) == 1
    for (name, kept), (_, original) in zip(encoder_layers(top)[0].state_dict().items(),
                                          encoder_layers(teacher.model)[1].state_dict().items()):
        assert np.array_equal(kept.numpy(), original.numpy()), name
    assert len(encoder_layers(teacher.model)) == 2   # the teacher is untouched
    for bad in ((), (1, 0), (2,), (0, 0)):
        with pytest.raises(UserError, match="distill.layers"):
            shallow_copy(teacher.model, bad)


def test_distill_writes_a_student_that_export_holds_to_the_teacher(workspace, tmp_path):
    root, teacher = workspace
    student = tmp_path / "model_a_edge"
    result = distill(root, teacher, student)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "distill-a: 1 of A's blocks [1] on" in result.output

    log = json.loads((student / "train_log.json").read_text())
    d = log["distillation"]
    assert (d["teacher"], d["layers"], d["train_2025"], d["test_postings"]) == ("model_a", [1], 48, 30)
    assert 0 < d["pool_2026"] < 60                      # the held-out 2026 evaluation share is not used
    assert log["config"]["max_length"] == TINY_MAX_LENGTH and log["config"]["preprocessing"] == "clean"
    assert len(log["history"]) == 2 and 1 <= log["best_epoch"] <= 2
    assert json.loads((student / "hf" / "config.json").read_text())["num_hidden_layers"] == 1
    assert (student / "hf" / "tokenizer.json").is_file() and (student / "model_a_edge.pth").is_file()

    bundle = tmp_path / "bundle"
    exported = run("export", "--model-dir", student / "hf", "--splits", root / "splits", "--name", "model_a_v1",
                   "--out", bundle, "--work-dir", tmp_path / "work", root=root)
    assert exported.exit_code == 0, exported.output + repr(exported.exception)
    assert "vs the teacher model_a" in exported.stdout
    manifest = verify_bundle(bundle)
    assert manifest["base_model"].startswith("model_a, distilled to 1 blocks")
    recorded = manifest["metrics"]["distillation"]
    assert recorded["teacher_accuracy"] == d["teacher_accuracy"]
    assert recorded["int8_accuracy_drop_vs_teacher_pt"] == pytest.approx(
        (d["teacher_accuracy"] - manifest["metrics"]["accuracy_int8"]) * 100, abs=1e-3)

    # The teacher's accuracy was measured on this exact test split; another one cannot vouch for it.
    other = tmp_path / "other_splits"
    other.mkdir()
    for name in ("train", "val"):
        (other / f"{name}.csv").write_bytes((root / "splits" / f"{name}.csv").read_bytes())
    write_split(other / "test.csv", *synthetic_postings(30, 99))
    mismatch = run("export", "--model-dir", student / "hf", "--splits", other, "--out", tmp_path / "b2",
                   "--work-dir", tmp_path / "work2", root=root)
    assert mismatch.exit_code == 2 and "re-run `careeredge-cloud distill-a`" in mismatch.output
    assert not (tmp_path / "b2").exists()


def test_a_student_with_a_shorter_window_reads_and_ships_that_window(workspace, tmp_path):
    from cloud.training.distill import student_reader

    root, teacher_dir = workspace
    window = TINY_MAX_LENGTH // 2
    long_text = " ".join(["python sql pandas"] * TINY_MAX_LENGTH)
    from cloud.training.model_io import load_classifier
    teacher = load_classifier(teacher_dir)
    reader = student_reader(teacher.model, teacher, window)
    assert len(reader.tokenizer.encode(long_text).ids) == window
    assert len(teacher.tokenizer.encode(long_text).ids) == TINY_MAX_LENGTH   # the teacher's own tokenizer is untouched
    for bad in (4, TINY_MAX_LENGTH + 1):
        with pytest.raises(UserError, match="distill.max_length"):
            student_reader(teacher.model, teacher, bad)

    student = tmp_path / "short"
    result = distill(root, teacher_dir, student, window=window)
    assert result.exit_code == 0, result.output + repr(result.exception)
    log = json.loads((student / "train_log.json").read_text())
    assert log["config"]["max_length"] == window
    assert (log["distillation"]["max_length"], log["distillation"]["teacher_max_length"]) == (window, TINY_MAX_LENGTH)
    exported = run("export", "--model-dir", student / "hf", "--splits", root / "splits", "--name", "model_a_v1",
                   "--out", tmp_path / "bundle", "--work-dir", tmp_path / "work", window=window, root=root)
    assert exported.exit_code == 0, exported.output + repr(exported.exception)
    assert verify_bundle(tmp_path / "bundle")["max_length"] == window   # the device truncates where the student read


def test_a_student_below_the_accuracy_floor_writes_nothing(workspace, tmp_path):
    root, teacher = workspace
    out = tmp_path / "refused"
    # A floor no student can reach (101 pt better than the teacher) makes the gate fire for sure.
    result = distill(root, teacher, out, drop=-101)
    assert result.exit_code == 2
    assert "below Model A's" in result.output and "nothing written" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_missing_stream_is_one_clear_line(workspace, tmp_path):
    root, teacher = workspace
    result = run("distill-a", "--model-a", teacher, "--splits", root / "splits", "--normalized", tmp_path / "none",
                 "--out", tmp_path / "out", root=root)
    assert result.exit_code == 2 and "postings.jsonl not found" in result.output


def test_teacher_floor_gate():
    from cloud.export.parity import ParityError, compare, enforce_teacher_floor

    report = compare([0, 1, 1, 0], [0, 1, 1, 1], [0, 1, 1, 0], [0.1, 0.9, 0.8, 0.4], [0.1, 0.9, 0.8, 0.6])
    assert enforce_teacher_floor(report, "A", 0.75) == pytest.approx(0.0)
    with pytest.raises(ParityError, match="below the teacher A's 80.00%"):
        enforce_teacher_floor(report, "A", 0.80, max_accuracy_drop_pt=0.5)
