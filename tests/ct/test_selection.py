"""The pseudo-label selection rule, the class-balance guard, and the 2026 evaluation split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_cli
from cloud.training.pseudo_label import arm_candidates, balance_guard, select_arms
from cloud.training.stream_split import eval_bucket, split_stream
from shared.posting import make_posting

SWE_TITLES = ["Backend Software Engineer", "Platform Engineer", "Frontend Developer", "Data Engineer"]
DS_TITLES = ["Data Scientist", "Data Analyst", "Senior Statistician", "Applied Scientist"]


def posting(i, title, batch="week1", source="linkedin_uk_2026"):
    p = make_posting(source, f"{i:06d}", title, f"posting {i} description text")
    p.extra["batch"] = batch
    return p


def test_threshold_is_strict_and_uses_the_given_probabilities():
    pool = [posting(i, t) for i, t in enumerate(["Data Scientist", "Software Engineer", "Chef", "Data Analyst"])]
    probs = np.array([[0.05, 0.95], [0.90, 0.10], [0.97, 0.03], [0.60, 0.40]])
    model_a = arm_candidates("model_a", pool, probs, threshold=0.90)
    assert [(c.posting.title, c.label) for c in model_a] == [("Data Scientist", 1), ("Chef", 0)]  # 0.90 is not > 0.90
    taxonomy = arm_candidates("taxonomy", pool, None, threshold=0.90)
    assert [(c.posting.title, c.label) for c in taxonomy] == [
        ("Data Scientist", 1),
        ("Software Engineer", 0),
        ("Data Analyst", 1),
    ]
    agreement = arm_candidates("agreement", pool, probs, threshold=0.90)
    assert [c.posting.title for c in agreement] == ["Data Scientist"]  # "Chef" has no taxonomy label


def test_guard_caps_the_majority_and_keeps_the_most_confident():
    pool = [posting(i, "Software Engineer") for i in range(10)] + [posting(100 + i, "Data Scientist") for i in range(2)]
    probs = np.array([[0.91 + i * 0.008, 0.09 - i * 0.008] for i in range(10)] + [[0.02, 0.98]] * 2)
    kept, report = balance_guard(arm_candidates("model_a", pool, probs, 0.9), max_class_ratio=3.0)
    swe = [c for c in kept if c.label == 0]
    assert len(swe) == 6 and len(kept) == 8
    assert min(c.confidence for c in swe) > 0.93  # the 4 least confident went
    assert report["week1"]["before"] == {"Software Engineering": 10, "Data Science": 2}
    assert report["week1"]["kept"] == {"Software Engineering": 6, "Data Science": 2}


def test_guard_skips_a_one_class_batch_but_keeps_the_others():
    pool = [posting(i, "Software Engineer", batch="all-swe") for i in range(5)] + [
        posting(10 + i, t, batch="mixed") for i, t in enumerate(["Data Scientist", "Frontend Developer"])
    ]
    kept, report = balance_guard(arm_candidates("taxonomy", pool, None, 0.9), max_class_ratio=3.0)
    assert report["all-swe"]["note"] == "one-class batch: skipped"
    assert {c.batch for c in kept} == {"mixed"}


def test_one_class_stream_marks_every_arm_unusable():
    pool = [posting(i, "Software Engineer") for i in range(6)]
    probs = np.array([[0.99, 0.01]] * 6)
    selections, report = select_arms(pool, probs, probs, ["model_a", "taxonomy", "agreement"], 0.9, 3.0)
    assert not any(selections.values())
    assert all(not r["usable"] for r in report.values())


def test_report_counts_per_class_and_uncalibrated_contrast():
    pool = [posting(i, t) for i, t in enumerate(SWE_TITLES + DS_TITLES)]
    raw = np.array([[0.99, 0.01]] * 4 + [[0.95, 0.05]] * 2 + [[0.01, 0.99]] * 2)  # two DS titles called SWE
    calibrated = np.array([[0.95, 0.05]] * 4 + [[0.7, 0.3]] * 2 + [[0.05, 0.95]] * 2)
    _, report = select_arms(pool, calibrated, raw, ["model_a"], 0.9, 3.0)
    arm = report["model_a"]
    assert arm["kept_per_class"] == {"Software Engineering": 4, "Data Science": 2}
    assert arm["taxonomy_agreement"]["rate"] == 1.0
    assert arm["uncalibrated"]["candidates"] == 8
    assert arm["uncalibrated"]["taxonomy_agreement"]["rate"] == 0.75


# -- the 2026 evaluation split ----------------------------------------------------------------------


def test_split_is_stable_disjoint_and_about_the_asked_fraction():
    titles = SWE_TITLES + DS_TITLES + ["Chef"]
    postings = [posting(i, titles[i % len(titles)]) for i in range(3000)]
    first = split_stream(postings, 0.3)
    eval_ids = {p.source_id for p in first.evaluation}
    pool_ids = {p.source_id for p in first.pool}
    assert not eval_ids & pool_ids
    held_out = len(first.evaluation) + first.eval_unlabelled
    assert 0.27 < held_out / 3000 < 0.33
    assert first.eval_unlabelled > 0  # "Chef": held out, counted, not guessed
    # Same ids, other company and order: every posting stays on its side.
    second = split_stream(
        list(reversed(postings[:1000])) + [posting(9000 + i, "Data Scientist") for i in range(50)], 0.3
    )
    assert {p.source_id for p in second.evaluation} - eval_ids <= {f"{9000 + i:06d}" for i in range(50)}
    assert eval_bucket("4422190905") == eval_bucket("4422190905")


def test_split_excludes_2025_rows_and_labels_by_taxonomy():
    postings = [posting(i, "Data Scientist", source="kaggle_2025") for i in range(50)] + [
        posting(100 + i, "Data Scientist") for i in range(200)
    ]
    split = split_stream(postings, 0.5)
    assert all(p.source != "kaggle_2025" for p in split.pool + split.evaluation)
    assert set(split.eval_labels) == {1}
    with pytest.raises(ValueError):
        split_stream(postings, 1.0)


def test_cli_refuses_a_one_class_stream_and_writes_nothing(tmp_path):
    normalized = tmp_path / "normalized"
    normalized.mkdir()
    rows = [posting(i, "Software Engineer").to_record() for i in range(40)]
    (normalized / "postings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "val.csv").write_text("id,title,text,label\n1,Data Scientist,stats,1\n")
    params = tmp_path / "params.yaml"
    params.write_text("pseudo_label:\n  arms: [taxonomy]\n")
    out = tmp_path / "pseudo"
    result = CliRunner().invoke(
        cloud_cli,
        [
            "pseudo-label",
            "--normalized",
            str(normalized),
            "--splits",
            str(splits),
            "--out",
            str(out),
            "--params",
            str(params),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "one-class stream" in result.output and "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".pseudo*"))


def test_train_b_row_caps_keep_class_mix_and_confidence(tmp_path):
    from cloud.training.train_b import read_pseudo_labels, replay_sample

    path = tmp_path / "model_a.csv"
    rows = [f"{i},t,text {i},{int(i < 30)},{0.91 + (i % 10) / 100:.2f},w,s" for i in range(100)]
    path.write_text("id,title,text,label,confidence,batch,source\n" + "\n".join(rows) + "\n")
    texts, labels = read_pseudo_labels(path, max_rows=20)
    assert len(labels) == 20 and labels.count(1) == 6  # 30% DS before and after the cap
    assert all(int(t.split()[1]) % 10 >= 6 for t in texts)  # only the most confident rows
    replay_texts, replay_labels = replay_sample([str(i) for i in range(90)], [i % 3 == 0 for i in range(90)], 30, 1)
    assert len(replay_labels) == 30 and sum(replay_labels) == 10
    assert replay_sample(["a"], [0], None, 1) == (["a"], [0])


def test_train_b_settings_are_read_once_typed_and_bad_values_name_their_key():
    from cloud.training.train_b import TrainBSettings
    from shared.errors import UserError

    params = {"train_b": {"version": 3, "epochs": 2, "max_rows_per_arm": "all", "replay_2025": 50, "windows": 1}}
    settings = TrainBSettings.from_params(params)
    assert (settings.epochs, settings.max_rows_per_arm, settings.replay_2025) == (2, None, 50)
    assert (settings.learning_rate, settings.freeze_layers, settings.seed) == (None, None, 2026)  # unset: defaults
    # a study-b setting's values arrive as text and win over params.yaml
    study = TrainBSettings.from_params(params, epochs="3", learning_rate="2e-5", pseudo_weight="confidence")
    assert (study.epochs, study.learning_rate, study.pseudo_weight) == (3, 2e-5, "confidence")
    config = study.fine_tune_config({"train": {"learning_rate": 1e-4}}, "base", {"max_length": 128}, threads=1)
    assert (config.epochs, config.learning_rate, config.max_length, config.seed) == (3, 2e-5, 128, 2026)
    for key, value in (("epochs", "two"), ("replay_2025", "some"), ("pseudo_weight", "heavy"), ("windows", 0)):
        with pytest.raises(UserError, match=f"train_b.{key}"):
            TrainBSettings.from_params({"train_b": {key: value}})


def test_dev_slices_from_successive_starts_are_folds_of_the_pool():
    """study-b --dev-start: three slices cover every pool posting exactly once, none of the evaluation split."""
    from cloud.training.study_b import dev_slice
    from shared.errors import UserError

    titles = SWE_TITLES + DS_TITLES
    stream = split_stream([posting(i, titles[i % len(titles)]) for i in range(600)], 0.3)
    starts = [(0.3, 0.2333333), (0.5333333, 0.2333334), (0.7666667, 0.2333333)]
    folds = [dev_slice(stream.pool, 0.3, width, start) for start, width in starts]
    ids = [fold[0] for fold in folds]
    assert all(ids) and sum(len(f) for f in ids) == len(stream.pool)
    assert set().union(*ids) == {p.source_id for p in stream.pool}
    assert dev_slice(stream.pool, 0.3, 0.2333333)[0] == ids[0]  # the default start is the first fold
    assert [len(fold[1]) for fold in folds] == [len(fold[2]) for fold in folds]  # every title placeable here
    with pytest.raises(UserError, match="--dev-start must be in"):
        dev_slice(stream.pool, 0.3, 0.1, 0.2)  # would overlap the evaluation split
    with pytest.raises(UserError, match="--dev-fraction must be in"):
        dev_slice(stream.pool, 0.3, 0.5, 0.7)
