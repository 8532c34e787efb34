"""pseudo-label -> train-b -> evaluate-b end to end on a tiny real model (seconds, not minutes).

Model A here is the 2-layer test BERT from tests/support/tiny_model.py, trained on synthetic
keyword postings; the 2026 stream is synthetic postings with taxonomy-placeable titles. The test
checks the mechanics and contracts (files, versions, every arm reported, bundle verifies, nothing
half-written on failure), not the study's figures, which need the real Model A.
"""

from __future__ import annotations

import csv
import json
import random

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_cli
from shared.bundle import verify_bundle
from shared.posting import make_posting
from tests.support.tiny_model import synthetic_postings, train_tiny_classifier

pytestmark = pytest.mark.slow

SWE_TITLES = ["Backend Software Engineer", "Frontend Developer", "Platform Engineer", "DevOps Engineer"]
DS_TITLES = ["Data Scientist", "Data Analyst", "Statistician", "Senior Data Scientist"]
PARAMS = """
model: {base: minilm, max_length: 64}
train: {epochs: 1, batch_size: 16, learning_rate: 1.0e-3, seed: 1, freeze_layers: 1}
pseudo_label: {threshold: 0.6, max_class_ratio: 3.0, eval_fraction: 0.3}
train_b: {epochs: 1, init: model_a, learning_rate: 1.0e-3}
"""


def write_split(path, texts, labels):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "title", "text", "label"])
        writer.writerows((i, "t", text, label) for i, (text, label) in enumerate(zip(texts, labels)))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline_b")
    model_a = root / "model_a"
    train_tiny_classifier(model_a / "hf", seed=3)
    (model_a / "train_log.json").write_text(json.dumps({"config": {"max_length": 64, "preprocessing": "clean"}}))
    splits = root / "splits"
    splits.mkdir()
    for name, count, seed in (("train", 48, 10), ("val", 24, 11), ("test", 24, 12)):
        write_split(splits / f"{name}.csv", *synthetic_postings(count, seed))
    rng = random.Random(5)
    texts, labels = synthetic_postings(160, 13)
    postings = []
    for i, (text, label) in enumerate(zip(texts, labels)):
        extra = " We also use LangChain and RAG." if i % 7 == 0 else ""
        posting = make_posting(
            "linkedin_uk_2026", f"44{i:08d}", rng.choice(DS_TITLES if label else SWE_TITLES), text + extra
        )
        posting.extra["batch"] = "week-a" if i % 3 else "week-b"
        postings.append(posting.to_record())
    normalized = root / "normalized"
    normalized.mkdir()
    (normalized / "postings.jsonl").write_text("".join(json.dumps(p) + "\n" for p in postings))
    (root / "params.yaml").write_text(PARAMS)
    return root, model_a


def ensure_pseudo_labels(root, model_a):
    if not (root / "pseudo" / "report.json").is_file():
        run(
            "pseudo-label",
            "--params",
            root / "params.yaml",
            "--normalized",
            root / "normalized",
            "--splits",
            root / "splits",
            "--model-a",
            model_a,
            "--out",
            root / "pseudo",
            "--threads",
            1,
        )


def ensure_model_b(root, model_a):
    """Train model_b_v1 (no export) unless an earlier test did; returns the artifacts directory."""
    artifacts = root / "artifacts"
    if not (artifacts / "model_b_v1").is_dir():
        run(
            "train-b",
            "--params",
            root / "params.yaml",
            "--normalized",
            root / "normalized",
            "--splits",
            root / "splits",
            "--model-a",
            model_a,
            "--pseudo-labels",
            root / "pseudo",
            "--artifacts",
            artifacts,
            "--threads",
            1,
            "--no-export",
        )
    return artifacts


def run(*args):
    result = CliRunner().invoke(cloud_cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_pseudo_label_train_b_evaluate_b(workspace):
    root, model_a = workspace
    params, pseudo, artifacts = root / "params.yaml", root / "pseudo", root / "artifacts"
    common = ["--params", params, "--normalized", root / "normalized", "--splits", root / "splits"]
    run("pseudo-label", *common, "--model-a", model_a, "--out", pseudo, "--threads", 1)
    report = json.loads((pseudo / "report.json").read_text())
    assert report["calibration"]["temperature"] > 0
    assert set(report["arms"]) == {"model_a", "taxonomy", "agreement"}
    for arm, entry in report["arms"].items():
        rows = list(csv.DictReader((pseudo / f"{arm}.csv").open()))
        assert len(rows) == entry["kept"]
        assert sum(entry["kept_per_class"].values()) == entry["kept"]
    eval_ids = {
        p["source_id"] for p in map(json.loads, (root / "normalized" / "postings.jsonl").read_text().splitlines())
    } - {
        r["id"] for arm in ("model_a", "taxonomy", "agreement") for r in csv.DictReader((pseudo / f"{arm}.csv").open())
    }
    assert eval_ids  # the hold-out never reaches a training CSV

    run("train-b", *common, "--model-a", model_a, "--pseudo-labels", pseudo, "--artifacts", artifacts, "--threads", 1)
    model_b = artifacts / "model_b_v1"
    arms = json.loads((model_b / "arms.json").read_text())
    assert arms["default_arm"] in arms["arms"] and len(arms["arms"]) == 3
    best = max(arms["arms"].values(), key=lambda a: a["eval_2026_accuracy"])["eval_2026_accuracy"]
    assert arms["arms"][arms["default_arm"]]["eval_2026_accuracy"] == best
    assert (model_b / "hf" / "model.safetensors").is_file() and (model_b / "model_b_v1.pth").is_file()
    # B's training is seeded by train_b.seed (default 2026), not by A's train.seed (1 here)
    assert json.loads((model_b / "train_log.json").read_text())["config"]["seed"] == 2026
    manifest = verify_bundle(artifacts / "bundles" / "model_b_v1")
    assert manifest["name"] == "model_b_v1" and manifest["version"] == "1"

    result = run("evaluate-b", *common, "--model-a", model_a, "--artifacts", artifacts, "--threads", 1)
    evaluation = json.loads((model_b / "evaluation.json").read_text())
    for split in ("test_2025", "eval_2026"):
        assert set(evaluation[split]["overall"]) == {"model_a", "model_b"}
    assert "LangChain" in evaluation["eval_2026"]["slices"]
    by_source = evaluation["eval_2026"]["sources"]["linkedin_uk_2026"]  # the stream's one source
    assert by_source == evaluation["eval_2026"]["overall"] and "| linkedin_uk_2026 |" in result.output
    assert {"gain_met", "loss_met"} <= set(evaluation["targets"])
    assert "B - A on the 2026 eval split" in result.output

    # Next week: a new version, the previous one untouched.
    run(
        "train-b",
        *common,
        "--model-a",
        model_a,
        "--pseudo-labels",
        pseudo,
        "--artifacts",
        artifacts,
        "--threads",
        1,
        "--arm",
        "taxonomy",
        "--no-export",
    )
    assert (artifacts / "model_b_v2" / "arms.json").is_file() and (
        artifacts / "model_b_v1" / "evaluation.json"
    ).is_file()


def test_b_reading_several_windows_reaches_the_bundle_and_the_report(workspace, tmp_path):
    """train_b.windows is recorded in B's train log and arms.json, shipped in the bundle manifest (whose
    parity gate reads that many windows) and shown by evaluate-b; a bad value is one clear line."""
    root, model_a = workspace
    ensure_pseudo_labels(root, model_a)
    params, artifacts = tmp_path / "params.yaml", tmp_path / "artifacts"
    params.write_text(
        PARAMS.replace(
            "train_b: {epochs: 1, init: model_a, learning_rate: 1.0e-3}",
            "train_b: {epochs: 1, init: model_a, learning_rate: 1.0e-3, windows: 2}",
        )
    )
    assert "windows: 2" in params.read_text()
    common = [
        "--params",
        params,
        "--normalized",
        root / "normalized",
        "--splits",
        root / "splits",
        "--model-a",
        model_a,
        "--threads",
        1,
    ]
    run("train-b", *common, "--pseudo-labels", root / "pseudo", "--artifacts", artifacts, "--arm", "taxonomy")
    model_b = artifacts / "model_b_v1"
    assert json.loads((model_b / "train_log.json").read_text())["config"]["windows"] == 2
    assert json.loads((model_b / "arms.json").read_text())["windows"] == 2
    assert verify_bundle(artifacts / "bundles" / "model_b_v1")["windows"] == 2
    result = run("evaluate-b", *common, "--artifacts", artifacts)
    assert json.loads((model_b / "evaluation.json").read_text())["windows"] == {"model_a": 1, "model_b": 2}
    assert "Model A reads 1 and B 2 window(s)" in result.output

    params.write_text(params.read_text().replace("windows: 2", "windows: 0"))
    bad = CliRunner().invoke(
        cloud_cli,
        ["train-b", *map(str, common), "--pseudo-labels", str(root / "pseudo"), "--artifacts", str(tmp_path / "bad")],
    )
    assert bad.exit_code == 2 and "train_b.windows: windows must be a positive integer" in bad.output
    assert not (tmp_path / "bad" / "model_b_v1").exists()


def test_train_b_without_usable_labels_leaves_no_model(workspace, tmp_path):
    root, model_a = workspace
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for arm in ("model_a", "taxonomy", "agreement"):
        (pseudo / f"{arm}.csv").write_text("id,title,text,label,confidence,batch,source\n1,x,java api,0,1,w,s\n")
    result = CliRunner().invoke(
        cloud_cli,
        [
            "train-b",
            "--params",
            str(root / "params.yaml"),
            "--normalized",
            str(root / "normalized"),
            "--splits",
            str(root / "splits"),
            "--model-a",
            str(model_a),
            "--pseudo-labels",
            str(pseudo),
            "--artifacts",
            str(tmp_path / "artifacts"),
        ],
    )
    assert result.exit_code == 2 and "no pseudo-label arm is usable" in result.output
    assert not list((tmp_path / "artifacts").glob("*model_b*")) if (tmp_path / "artifacts").exists() else True


def test_evaluate_b_shared_bottom_matches_separate_models(workspace):
    """B trained from A with A's bottom frozen: evaluate-b runs that bottom once for both models, and
    the predictions equal those of running each model whole."""
    from cloud.data.splits import read_split
    from cloud.training.evaluate_b import predict_all, shared_bottom_layers
    from cloud.training.model_io import load_classifier

    root, model_a = workspace
    ensure_pseudo_labels(root, model_a)
    artifacts = ensure_model_b(root, model_a)
    model_b = artifacts / "model_b_v1"
    classifiers = {"model_a": load_classifier(model_a), "model_b": load_classifier(model_b)}
    assert shared_bottom_layers(model_a, model_b, classifiers) == 1
    assert shared_bottom_layers(model_a, model_a.parent / "splits", classifiers) == 0  # no B train log
    data = {"test_2025": read_split(root / "splits" / "test.csv")}
    shared, separate = predict_all(classifiers, data, 1), predict_all(classifiers, data, 0)
    for name in classifiers:
        assert list(shared["test_2025"][name]) == list(separate["test_2025"][name])


def test_study_b_scores_settings_on_dev_without_training_on_it(workspace, tmp_path):
    from cloud.ingest.normalized import load_postings
    from cloud.training.stream_split import split_stream
    from cloud.training.study_b import dev_slice

    root, model_a = workspace
    ensure_pseudo_labels(root, model_a)
    out = tmp_path / "study.json"
    result = run(
        "study-b",
        "--params",
        root / "params.yaml",
        "--normalized",
        root / "normalized",
        "--splits",
        root / "splits",
        "--model-a",
        model_a,
        "--pseudo-labels",
        root / "pseudo",
        "--out",
        out,
        "--threads",
        1,
        "--dev-fraction",
        "0.2",
        "--interpolate",
        "0",
        "--interpolate",
        "0.5",
        "--windows",
        "2",
        "--soup",
        "--setting",
        "tax:arm=taxonomy,replay_2025=all",
        "--setting",
        "agree_w:arm=agreement,pseudo_weight=confidence,epochs=2,learning_rate=5e-4,seed=7",
    )
    study = json.loads(out.read_text())
    rows = {"tax", "agree_w", "tax@0", "tax@0.5", "agree_w@0", "agree_w@0.5", "soup"}
    assert set(study["settings"]) == rows | {f"{row}/w2" for row in rows}
    assert study["recommended"] in study["settings"]
    for name in ("tax@0", "agree_w@0"):  # alpha 0 is Model A's weights: A's scores exactly
        assert {s: study["settings"][name][s] for s in study["model_a"]} == study["model_a"]
        assert {s: study["settings"][f"{name}/w2"][s] for s in study["model_a/w2"]} == study["model_a/w2"]
    assert study["settings"]["tax/w2"]["values"]["windows"] == 2
    assert study["settings"]["soup"]["values"]["soup"] == ["tax", "agree_w"]
    assert study["settings"]["tax"]["rows_2025"] == 48 and study["settings"]["agree_w"]["values"]["epochs"] == "2"
    assert study["settings"]["agree_w"]["values"]["seed"] == "7"
    for entry in list(study["settings"].values()) + [study["model_a"]]:
        assert all(0.0 <= entry[s] <= 1.0 for s in ("val_2025", "dev_2026", "eval_2026", "test_2025"))
    assert "| Model A |" in result.output and "(recommended)" in result.output
    # the dev slice: stable, disjoint from the evaluation split, and none of it trained on
    stream = split_stream(load_postings(root / "normalized"), 0.3)
    dev_ids, dev_texts, _ = dev_slice(stream.pool, 0.3, 0.2)
    assert dev_ids and dev_ids == dev_slice(stream.pool, 0.3, 0.2)[0]
    assert not dev_ids & {p.source_id for p in stream.evaluation}
    assert study["sizes"]["dev_2026"] == len(dev_texts)
    bad = CliRunner().invoke(cloud_cli, ["study-b", "--params", str(root / "params.yaml"), "--setting", "x:colour=red"])
    assert bad.exit_code == 2 and "key=value" in bad.output


def test_export_b_falls_back_to_the_next_scheme_under_the_same_gate(workspace, tmp_path, monkeypatch):
    """A scheme that fails the parity gate is not shipped: the next one is tried with the same gate."""
    from cloud.export.builder import export_bundle
    from cloud.export.export_b import export_b
    from cloud.export.parity import ParityError
    from cloud.ingest.normalized import load_postings
    from cloud.training.stream_split import split_stream

    root, model_a = workspace
    ensure_pseudo_labels(root, model_a)
    artifacts = ensure_model_b(root, model_a)
    tried = []

    from cloud.export import builder

    graph_exports = []
    real_graphs = builder.export_fp32_graphs
    monkeypatch.setattr(builder, "export_fp32_graphs", lambda *a, **k: graph_exports.append(1) or real_graphs(*a, **k))

    def per_token_fails(*args, scheme, **kwargs):
        tried.append(scheme)
        if scheme == "per_token":  # the real export held to an impossible gate: as if INT8 flipped postings
            kwargs = {**kwargs, "min_agreement": 1.01}
        return export_bundle(*args, scheme=scheme, **kwargs)

    bundle = tmp_path / "bundle"
    stream = split_stream(load_postings(root / "normalized"), 0.3)
    export_b(artifacts / "model_b_v1", bundle, root / "splits", 64, 1, "tiny", stream, export=per_token_fails)
    assert tried == ["per_token", "blockwise"]
    assert len(graph_exports) == 1, "the FP32 graphs are built once, not once per scheme"
    manifest = verify_bundle(bundle)
    assert manifest["metrics"]["quantization"]["scheme"] == "blockwise"
    assert manifest["metrics"]["parity"]["agreement"] >= 0.99
    with pytest.raises(ParityError):
        export_b(
            artifacts / "model_b_v1",
            tmp_path / "none",
            root / "splits",
            64,
            1,
            "tiny",
            stream,
            schemes=("per_token",),
            export=per_token_fails,
        )
    assert not (tmp_path / "none").exists()

    result = run(
        "export-b",
        "--model-dir",
        artifacts / "model_b_v1",
        "--out",
        tmp_path / "cli_bundle",
        "--splits",
        root / "splits",
        "--params",
        root / "params.yaml",
        "--normalized",
        root / "normalized",
    )
    assert "INT8 of model_b_v1, accuracy on the 2025 test split" in result.output
    manifest = verify_bundle(tmp_path / "cli_bundle")
    assert manifest["name"] == "model_b_v1"
    # the gate ran on the 2025 test split and the 2026 evaluation split together; "parity" stays the test's
    test_rows = sum(1 for _ in csv.DictReader((root / "splits" / "test.csv").open(encoding="utf-8")))
    gate = manifest["metrics"]["parity_gate"]
    assert gate["postings"] == "test split + 2026 evaluation split"
    assert gate["examples"] == test_rows + len(stream.evaluation) > test_rows
    assert manifest["metrics"]["parity"]["examples"] == test_rows
    missing = CliRunner().invoke(
        cloud_cli,
        [
            "export-b",
            "--model-dir",
            str(artifacts / "model_b_v1"),
            "--out",
            str(tmp_path / "no_stream"),
            "--splits",
            str(root / "splits"),
            "--normalized",
            str(tmp_path / "nowhere"),
        ],
    )
    assert missing.exit_code == 2 and "postings.jsonl not found" in missing.output
    assert not (tmp_path / "no_stream").exists()
