"""scripts/study_ceiling.py: the supervised bound is only a bound if no posting is scored by a learner
that trained on it. Run on postings of the committed 2025 CSV, labelled by the title taxonomy."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cloud.data.kaggle import read_kaggle_csv
from shared.labels import classify_title
from shared.text import model_input

REPO = Path(__file__).resolve().parents[2]


def _study():
    spec = importlib.util.spec_from_file_location("study_ceiling", REPO / "scripts" / "study_ceiling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def postings():
    placed = [(p, classify_title(p.title)) for p in read_kaggle_csv(REPO / "data" / "raw" / "jobs_2025_kaggle.csv")]
    unique = {}  # one per description: the test tells postings apart by text
    for p, label in placed:
        if label is not None:
            unique.setdefault(p.description, (p, label))
    placed = list(unique.values())[:160]
    ids = [p.source_id for p, _ in placed]
    texts = [model_input(p.description, "skills_first") for p, _ in placed]
    return ids, texts, np.array([label for _, label in placed])


def test_every_posting_is_scored_once_by_a_learner_that_never_trained_on_it(postings, monkeypatch):
    study = _study()
    ids, texts, labels = postings
    replay = (texts[:40], list(labels[:40]))  # stands in for the 2025 train split
    ids, texts, labels = ids[40:], texts[40:], labels[40:]
    calls, real_fit = [], study.fit_predict

    def recording_fit(train_texts, train_labels, test_texts, cut):
        calls.append((set(train_texts[len(replay[0]) :]), list(test_texts)))
        return real_fit(train_texts, train_labels, test_texts, cut)

    monkeypatch.setattr(study, "fit_predict", recording_fit)
    predicted = study.cross_fitted(ids, texts, labels, replay, folds=4, repeat=0, cut=0)

    assert len(calls) == 4
    scored = [text for _, tests in calls for text in tests]
    assert sorted(scored) == sorted(texts)  # every posting once
    for trained, tests in calls:
        assert trained.isdisjoint(tests)  # never by a learner that saw it
    assert predicted.shape == labels.shape and set(predicted) <= {0, 1}
    assert (predicted == labels).mean() > 0.6  # a real learner, not a constant


def test_fold_cuts_differ_by_repeat_and_the_learning_curve_subsets_nest(postings):
    study = _study()
    ids = postings[0]
    cut_0 = [study.fold_of(i, 5, 0) for i in ids]
    assert cut_0 == [study.fold_of(i, 5, 0) for i in ids]  # stable
    assert cut_0 != [study.fold_of(i, 5, 1) for i in ids]  # another repeat, another cut
    kept = {share: {i for i in ids if study.keep_share(i, share)} for share in study.CURVE_SHARES}
    assert kept[0.25] <= kept[0.5] <= kept[0.75] <= kept[1.0] == set(ids)
    assert len(kept[0.25]) < len(kept[0.75])


def test_the_paired_interval_brackets_the_observed_gap():
    study = _study()
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.85
    b = a | (rng.random(300) < 0.4)  # b right wherever a is, and more
    low, high = study.paired_interval(a, b)
    observed = (b.mean() - a.mean()) * 100
    assert 0 <= low <= observed <= high
    assert study.paired_interval(a, a) == [0.0, 0.0]
