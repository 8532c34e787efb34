"""`careeredge-cloud distill-a` / `distill-b` and the export of their students, on tiny real teachers
(needs torch).

The teachers are 2-block test BERTs from tests/support/tiny_model.py; the splits and the 2026 stream
are synthetic keyword postings. These tests check the mechanics and the gates, not Model A's figures.
"""

from __future__ import annotations

import csv
import json
import shutil

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
distill_b: {{epochs: 1}}
"""
TITLES = {0: "Software Engineer", 1: "Data Scientist"}  # what the title taxonomy labels the 2026 split by


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
    (teacher / "train_log.json").write_text(
        json.dumps({"config": {"max_length": TINY_MAX_LENGTH, "preprocessing": "clean", "base": "tiny"}})
    )
    splits = root / "splits"
    splits.mkdir()
    for name, count, seed in (("train", 48, 20), ("val", 24, 21), ("test", 30, 22)):
        write_split(splits / f"{name}.csv", *synthetic_postings(count, seed))
    texts, labels = synthetic_postings(60, 23)
    normalized = root / "normalized"
    normalized.mkdir()
    (normalized / "postings.jsonl").write_text(
        "".join(
            json.dumps(make_posting("linkedin_uk_2026", f"77{i:06d}", TITLES[label], text).to_record()) + "\n"
            for i, (text, label) in enumerate(zip(texts, labels))
        )
    )
    return root, teacher


def run(*args, drop: float = 100.0, window: int | None = None, root=None):
    (root / "params.yaml").write_text(PARAMS.replace("{drop}", str(drop)).replace("{window}", str(window or "null")))
    return CliRunner().invoke(cloud_cli, [str(a) for a in args] + ["--params", str(root / "params.yaml")])


def distill(root, teacher, out, drop=100.0, window=None):
    return run(
        "distill-a",
        "--model-a",
        teacher,
        "--splits",
        root / "splits",
        "--normalized",
        root / "normalized",
        "--out",
        out,
        "--threads",
        1,
        drop=drop,
        window=window,
        root=root,
    )


def test_a_student_with_every_block_is_the_teacher_and_fewer_blocks_are_copies(workspace):
    from cloud.training.encoder_anatomy import encoder_layers, shallow_copy
    from cloud.training.model_io import load_classifier

    root, teacher_dir = workspace
    teacher = load_classifier(teacher_dir)
    texts, _ = synthetic_postings(8, 30)
    same = shallow_copy(teacher.model, (0, 1))
    from cloud.training.distill import student_reader

    assert np.allclose(student_reader(same, teacher).predict_logits(texts), teacher.predict_logits(texts), atol=1e-5)

    top = shallow_copy(teacher.model, (1,))
    assert top.config.num_hidden_layers == 1 and len(encoder_layers(top)) == 1
    for (name, kept), (_, original) in zip(
        encoder_layers(top)[0].state_dict().items(), encoder_layers(teacher.model)[1].state_dict().items()
    ):
        assert np.array_equal(kept.numpy(), original.numpy()), name
    assert len(encoder_layers(teacher.model)) == 2  # the teacher is untouched
    for bad in ((), (1, 0), (2,), (0, 0)):
        with pytest.raises(UserError, match="distill.layers"):
            shallow_copy(teacher.model, bad)


def test_distill_writes_a_student_that_export_holds_to_the_teacher(workspace, tmp_path):
    root, teacher = workspace
    student = tmp_path / "model_a_edge"
    result = distill(root, teacher, student)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "distill-a: 1 blocks on" in result.output and "vs the teacher's" in result.output

    log = json.loads((student / "train_log.json").read_text())
    d = log["distillation"]
    assert (d["teacher"], d["layers"], d["train_2025"], d["test_postings"]) == ("model_a", [1], 48, 30)
    assert 0 < d["pool_2026"] < 60  # the held-out 2026 evaluation share is not used
    assert log["config"]["max_length"] == TINY_MAX_LENGTH and log["config"]["preprocessing"] == "clean"
    assert len(log["history"]) == 2 and 1 <= log["best_epoch"] <= 2
    assert json.loads((student / "hf" / "config.json").read_text())["num_hidden_layers"] == 1
    assert (student / "hf" / "tokenizer.json").is_file() and (student / "model_a_edge.pth").is_file()

    bundle = tmp_path / "bundle"
    exported = run(
        "export",
        "--model-dir",
        student / "hf",
        "--splits",
        root / "splits",
        "--name",
        "model_a_v1",
        "--out",
        bundle,
        "--work-dir",
        tmp_path / "work",
        root=root,
    )
    assert exported.exit_code == 0, exported.output + repr(exported.exception)
    assert "vs the teacher model_a" in exported.stdout
    manifest = verify_bundle(bundle)
    assert manifest["base_model"].startswith("model_a, distilled to 1 blocks")
    recorded = manifest["metrics"]["distillation"]
    assert recorded["teacher_accuracy"] == d["teacher_accuracy"]
    assert recorded["int8_accuracy_drop_vs_teacher_pt"] == pytest.approx(
        (d["teacher_accuracy"] - manifest["metrics"]["accuracy_int8"]) * 100, abs=1e-3
    )

    # The teacher's accuracy was measured on this exact test split; another one cannot vouch for it.
    other = tmp_path / "other_splits"
    other.mkdir()
    for name in ("train", "val"):
        (other / f"{name}.csv").write_bytes((root / "splits" / f"{name}.csv").read_bytes())
    write_split(other / "test.csv", *synthetic_postings(30, 99))
    mismatch = run(
        "export",
        "--model-dir",
        student / "hf",
        "--splits",
        other,
        "--out",
        tmp_path / "b2",
        "--work-dir",
        tmp_path / "work2",
        root=root,
    )
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
    assert len(teacher.tokenizer.encode(long_text).ids) == TINY_MAX_LENGTH  # the teacher's own tokenizer is untouched
    for bad in (4, TINY_MAX_LENGTH + 1):
        with pytest.raises(UserError, match="distill.max_length"):
            student_reader(teacher.model, teacher, bad)

    student = tmp_path / "short"
    result = distill(root, teacher_dir, student, window=window)
    assert result.exit_code == 0, result.output + repr(result.exception)
    log = json.loads((student / "train_log.json").read_text())
    assert log["config"]["max_length"] == window
    assert (log["distillation"]["max_length"], log["distillation"]["teacher_max_length"]) == (window, TINY_MAX_LENGTH)
    exported = run(
        "export",
        "--model-dir",
        student / "hf",
        "--splits",
        root / "splits",
        "--name",
        "model_a_v1",
        "--out",
        tmp_path / "bundle",
        "--work-dir",
        tmp_path / "work",
        window=window,
        root=root,
    )
    assert exported.exit_code == 0, exported.output + repr(exported.exception)
    assert verify_bundle(tmp_path / "bundle")["max_length"] == window  # the device truncates where the student read


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
    result = run(
        "distill-a",
        "--model-a",
        teacher,
        "--splits",
        root / "splits",
        "--normalized",
        tmp_path / "none",
        "--out",
        tmp_path / "out",
        root=root,
    )
    assert result.exit_code == 2 and "postings.jsonl not found" in result.output


def test_teacher_floor_gate():
    from cloud.export.parity import ParityError, compare, enforce_teacher_floor

    report = compare([0, 1, 1, 0], [0, 1, 1, 1], [0, 1, 1, 0], [0.1, 0.9, 0.8, 0.4], [0.1, 0.9, 0.8, 0.6])
    assert enforce_teacher_floor(report, "A", 0.75) == pytest.approx(0.0)
    with pytest.raises(ParityError, match="below the teacher A's 80.00%"):
        enforce_teacher_floor(report, "A", 0.80, max_accuracy_drop_pt=0.5)


@pytest.fixture(scope="module")
def model_b(workspace, tmp_path_factory):
    """A second tiny classifier as `model_b_v1` (the layout train-b writes) and A's student (distill-a)."""
    root, teacher = workspace
    artifacts = tmp_path_factory.mktemp("artifacts_b")
    model_b = artifacts / "model_b_v1"
    train_tiny_classifier(model_b / "hf", seed=5)
    (model_b / "train_log.json").write_text(
        json.dumps(
            {
                "config": {
                    "max_length": TINY_MAX_LENGTH,
                    "preprocessing": "clean",
                    "base": str(teacher / "hf"),
                    "windows": 1,
                },
                "training_data_sha256": "0" * 64,
            }
        )
    )
    a_student = artifacts / "model_a_v1_edge"
    result = distill(root, teacher, a_student, window=TINY_MAX_LENGTH // 2)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return model_b, a_student


def distill_b(root, *args, drop=100.0):
    return run(
        "distill-b",
        "--splits",
        root / "splits",
        "--normalized",
        root / "normalized",
        "--threads",
        1,
        *args,
        drop=drop,
        root=root,
    )


def reversed_classifier(classifier):
    """`classifier` (a TrainedClassifier) with its two output rows swapped: every decision reversed."""
    import copy

    import torch

    reversed_ = copy.copy(classifier)
    reversed_.model = copy.deepcopy(classifier.model)
    with torch.no_grad():
        reversed_.model.classifier.weight.copy_(classifier.model.classifier.weight.flip(0))
        reversed_.model.classifier.bias.copy_(classifier.model.classifier.bias.flip(0))
    return reversed_


def test_b_student_starts_from_the_device_model_and_leaves_it_untouched(workspace, model_b):
    from cloud.training.distill import DistillConfig
    from cloud.training.distill import distill as run_distillation
    from cloud.training.model_io import load_classifier

    init = load_classifier(model_b[1])
    teacher = reversed_classifier(load_classifier(model_b[0]))  # a teacher far from the init
    texts, _ = synthetic_postings(24, 31)
    before = init.predict_logits(texts)

    def config(rate):
        return DistillConfig(
            layers=(1,),
            epochs=10,
            batch_size=8,
            learning_rate=rate,
            max_length=init.max_length,
            progress=False,
        )

    # With a zero learning rate the student never moves: what comes out is the starting point.
    still = run_distillation(teacher, texts, texts, config(0.0), init=init.model)
    assert np.allclose(still.reader.predict_logits(texts), before, atol=1e-5)
    trained = run_distillation(teacher, texts, texts, config(1e-2), init=init.model)
    target = teacher.predict_logits(texts)
    assert (trained.reader.predict_logits(texts).argmax(1) == target.argmax(1)).mean() >= 0.9
    assert (before.argmax(1) == target.argmax(1)).mean() <= 0.1  # it did move, towards B
    assert np.array_equal(init.predict_logits(texts), before)  # the init itself is a copy
    assert trained.reader.max_length == init.max_length


def test_a_frozen_bottom_block_is_kept_and_the_student_is_an_ordinary_model_afterwards(workspace, model_b):
    from cloud.training.distill import DistillConfig
    from cloud.training.distill import distill as run_distillation
    from cloud.training.encoder_anatomy import encoder_layers
    from cloud.training.model_io import load_classifier

    root, teacher_a = workspace
    init = load_classifier(teacher_a)  # two blocks: one to freeze, one to train
    teacher = reversed_classifier(load_classifier(model_b[0]))
    texts, _ = synthetic_postings(24, 33)
    config = DistillConfig(layers=(0, 1), epochs=6, batch_size=8, learning_rate=1e-2, freeze_layers=1, progress=False)
    trained = run_distillation(teacher, texts, texts, config, init=init.model)
    before, after = (encoder_layers(m) for m in (init.model, trained.student))
    for (name, kept), (_, start) in zip(after[0].state_dict().items(), before[0].state_dict().items()):
        assert np.array_equal(kept.numpy(), start.numpy()), name  # the frozen block never moved
    assert any(
        not np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(after[1].state_dict().values(), before[1].state_dict().values())
    )
    # Training ran the top block on cached states; what comes out is the whole model again, and it learnt.
    assert len(after) == 2
    assert (trained.reader.predict_logits(texts).argmax(1) == teacher.predict_logits(texts).argmax(1)).mean() >= 0.9
    with pytest.raises(UserError, match="freeze_layers must leave a block to train"):
        run_distillation(
            teacher, texts, texts, DistillConfig(layers=(0, 1), freeze_layers=2, progress=False), init=init.model
        )


def test_distill_b_writes_a_student_that_export_b_ships_under_b_name(workspace, model_b, tmp_path):
    root, _ = workspace
    b_dir, a_student = model_b
    result = distill_b(root, "--model-b", b_dir, "--init", a_student)
    assert result.exit_code == 0, result.output + repr(result.exception)
    out = b_dir.with_name("model_b_v1_edge")  # the default: beside B
    assert "distill-b: 2026 evaluation split accuracy" in result.output
    log = json.loads((out / "train_log.json").read_text())
    d = log["distillation"]
    assert (d["teacher"], d["init"], d["layers"]) == ("model_b_v1", "model_a_v1_edge", [1])
    assert log["config"]["max_length"] == TINY_MAX_LENGTH // 2  # A's student's window, not B's
    assert log["config"]["distill"]["epochs"] == 1  # distill_b.epochs over distill.epochs
    assert 0 < d["eval_2026_postings"] < 60
    assert d["eval_2026_student_accuracy"] >= d["eval_2026_replaced_accuracy"]  # the gate it passed
    assert "model_a_v1_edge" in (out / "MODEL_CARD.md").read_text()

    bundle = tmp_path / "bundle"
    exported = run(
        "export-b",
        "--model-dir",
        b_dir,
        "--student",
        out,
        "--splits",
        root / "splits",
        "--normalized",
        root / "normalized",
        "--out",
        bundle,
        root=root,
    )
    assert exported.exit_code == 0, exported.output + repr(exported.exception)
    assert "of model_b_v1_edge" in exported.stdout
    manifest = verify_bundle(bundle)
    assert (manifest["name"], manifest["max_length"]) == ("model_b_v1", TINY_MAX_LENGTH // 2)
    assert manifest["base_model"].startswith("model_b_v1, distilled to 1 blocks")
    assert manifest["metrics"]["distillation"]["teacher_accuracy"] == d["teacher_accuracy"]
    gate = manifest["metrics"]["parity_gate"]  # the 2026 evaluation split joined the 2025 test split
    assert gate["examples"] == manifest["metrics"]["parity"]["examples"] + d["eval_2026_postings"]

    # A student that no INT8 scheme gets through the gate: B itself ships, under the same name. (Its
    # record claims a teacher accuracy no model reaches, so the export's teacher floor refuses it.)
    hopeless = tmp_path / "hopeless_edge"
    shutil.copytree(out, hopeless)
    record = json.loads((hopeless / "train_log.json").read_text())
    record["distillation"]["teacher_accuracy"] = 1.5
    (hopeless / "train_log.json").write_text(json.dumps(record))
    fallback = run(
        "export-b",
        "--model-dir",
        b_dir,
        "--student",
        hopeless,
        "--splits",
        root / "splits",
        "--normalized",
        root / "normalized",
        "--out",
        tmp_path / "fallback",
        root=root,
    )
    assert fallback.exit_code == 0, fallback.output + repr(fallback.exception)
    assert "no INT8 scheme of hopeless_edge passes the gate" in fallback.output
    assert "INT8 of model_b_v1," in fallback.stdout
    shipped = verify_bundle(tmp_path / "fallback")
    assert (shipped["name"], shipped["max_length"]) == ("model_b_v1", TINY_MAX_LENGTH)
    assert "distilled" not in shipped["base_model"] and "distillation" not in shipped["metrics"]

    # A student of another model cannot ship as this B.
    wrong = run(
        "export-b",
        "--model-dir",
        b_dir,
        "--student",
        a_student,
        "--splits",
        root / "splits",
        "--normalized",
        root / "normalized",
        "--out",
        tmp_path / "wrong",
        root=root,
    )
    assert wrong.exit_code == 2 and "is not a student of model_b_v1" in wrong.output
    assert not (tmp_path / "wrong").exists()


def test_a_b_student_that_loses_the_2026_gain_is_refused(workspace, model_b):
    from cloud.training.distill import DistillationError, stream_gate
    from cloud.training.model_io import load_classifier

    teacher = load_classifier(model_b[0])
    texts, labels = synthetic_postings(30, 32)
    worse = reversed_classifier(teacher)
    with pytest.raises(
        DistillationError, match=r"below model_a_v1_edge's 100.00% \(the device model it would replace\)"
    ):
        stream_gate(teacher, worse, teacher, texts, labels, "model_a_v1_edge")
    report = stream_gate(teacher, teacher, worse, texts, labels, "model_a_v1_edge")
    assert report["eval_2026_student_accuracy"] == report["eval_2026_teacher_accuracy"] > 0.5
    assert report["eval_2026_agreement"] == 1.0


def test_distill_b_bad_inputs_are_one_line_and_write_nothing(workspace, model_b, tmp_path):
    root, teacher_a = workspace
    b_dir, a_student = model_b
    out = tmp_path / "student"
    refused = distill_b(root, "--model-b", b_dir, "--init", a_student, "--out", out, drop=-101)
    assert refused.exit_code == 2 and "below model_b_v1's" in refused.output and "nothing written" in refused.output
    not_a_student = distill_b(root, "--model-b", b_dir, "--init", teacher_a, "--out", out)
    assert not_a_student.exit_code == 2 and "is not a distilled student" in not_a_student.output
    no_stream = run(
        "distill-b",
        "--model-b",
        b_dir,
        "--init",
        a_student,
        "--splits",
        root / "splits",
        "--normalized",
        tmp_path / "none",
        "--out",
        out,
        root=root,
    )
    assert no_stream.exit_code == 2 and "postings.jsonl not found" in no_stream.output
    assert "Traceback" not in refused.output  # (after the training's progress bars)
    for result in (not_a_student, no_stream):
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()
