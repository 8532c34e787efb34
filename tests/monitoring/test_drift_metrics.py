"""The drift metrics: properties every distance must have, and agreement with independent code."""

from __future__ import annotations

import numpy as np
import pytest

from shared.monitoring.drift import (
    Profile,
    Thresholds,
    bucket_edges,
    compare,
    compare_profiles,
    histogram,
    jensen_shannon,
    l_infinity,
    psi,
)
from shared.monitoring.features import FeatureTable, categorical_features, project

RNG = np.random.default_rng(17)


def random_distributions(count: int, size: int):
    for _ in range(count):
        p, q = RNG.dirichlet(np.ones(size)), RNG.dirichlet(np.ones(size))
        if RNG.random() < 0.3:  # empty buckets are where naive code divides by zero
            p[RNG.integers(size)] = 0
            p /= p.sum()
        yield p, q


@pytest.mark.parametrize("metric", [l_infinity, jensen_shannon, psi])
def test_identical_distributions_are_at_distance_zero(metric):
    for p, _ in random_distributions(50, 7):
        assert metric(p, p) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("metric", [l_infinity, jensen_shannon, psi])
def test_metrics_are_symmetric(metric):
    for p, q in random_distributions(50, 5):
        assert metric(p, q) == pytest.approx(metric(q, p), abs=1e-12)


def test_bounds_and_disjoint_supports():
    for p, q in random_distributions(200, 6):
        assert 0.0 <= l_infinity(p, q) <= 1.0
        assert 0.0 <= jensen_shannon(p, q) <= 1.0
        assert psi(p, q) >= 0.0
    disjoint = ([1.0, 0.0], [0.0, 1.0])
    assert l_infinity(*disjoint) == 1.0
    assert jensen_shannon(*disjoint) == pytest.approx(1.0, abs=1e-12)  # base 2: the maximum
    assert np.isfinite(psi(*disjoint))  # floored, never inf


def test_jensen_shannon_agrees_with_scipy_to_1e9():
    from scipy.spatial.distance import jensenshannon

    for p, q in random_distributions(500, 12):
        assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-9)


def test_psi_agrees_with_a_direct_formula():
    for p, q in random_distributions(200, 8):
        pf, qf = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        expected = sum((b - a) * np.log(b / a) for a, b in zip(pf, qf))
        assert psi(p, q) == pytest.approx(expected, abs=1e-9)


def test_bad_distributions_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="sum to 1"):
        l_infinity([0.5, 0.6], [0.5, 0.5])
    with pytest.raises(ValueError, match="one length"):
        jensen_shannon([1.0], [0.5, 0.5])


def test_histogram_buckets_by_reference_quantiles():
    reference = np.arange(100, dtype=float)
    edges = bucket_edges(reference)
    assert len(edges) == 9
    assert histogram(reference, edges) == pytest.approx(np.full(10, 0.1))
    assert histogram(np.array([np.nan]), edges) is None
    assert len(bucket_edges(np.full(20, 7.0))) == 1  # a constant reference: at or below it, above it


def _table(texts, labels, confidence=None) -> FeatureTable:
    return project(texts, labels, confidence, model="m", source="test", timestamp="2026-07-06T10:00:00Z")


def test_compare_reports_every_feature_and_flags_the_moved_ones():
    reference = _table(["We use Java and Spring Boot."] * 50 + ["pandas and SQL reports"] * 50, [0] * 50 + [1] * 50)
    window = _table(["Build RAG agents with LangChain and Python."] * 80 + ["SQL"] * 20, [0] * 80 + [1] * 20)
    drifts = {d.feature: d for d in compare(reference, window)}
    assert list(drifts) == categorical_features() + ["confidence", "text_length"]
    assert drifts["skill:LangChain"].value == pytest.approx(1.0 * 80 / 100)
    assert drifts["skill:LangChain"].alert
    assert drifts["skill:SQL"].value == pytest.approx(0.3)  # 50 of 100 before, 20 of 100 now
    assert drifts["predicted_class"].value == pytest.approx(0.3)  # 0.5 -> 0.8 of class 0
    assert drifts["predicted_class"].alert  # Vertex's default threshold 0.3, inclusive
    assert drifts["category:genai"].value == pytest.approx(0.8)


def test_empty_window_and_one_class_window_give_a_note_not_a_crash():
    reference = _table(["Python and SQL"] * 10, [1] * 10, [0.9] * 10)
    empty = compare(reference, FeatureTable.empty())
    assert all(d.value is None and not d.alert and "window" in d.note for d in empty)
    one_class = {d.feature: d for d in compare(reference, _table(["Java"] * 5, [0] * 5, [0.99] * 5))}
    assert one_class["predicted_class"].value == pytest.approx(1.0)
    assert one_class["confidence"].value is not None
    baseline_without_confidence = {d.feature: d for d in compare(_table(["Java"], [0]), reference)}
    assert baseline_without_confidence["confidence"].value is None
    assert baseline_without_confidence["confidence"].note == "no values in the reference"


def test_thresholds_per_feature_and_per_family():
    thresholds = Thresholds(0.3, {"confidence": 0.1, "skill:*": 0.05, "skill:LangChain": 0.5})
    assert thresholds.for_feature("text_length") == 0.3
    assert thresholds.for_feature("confidence") == 0.1
    assert thresholds.for_feature("skill:Python") == 0.05
    assert thresholds.for_feature("skill:LangChain") == 0.5
    with pytest.raises(ValueError, match="skill:Rust"):
        Thresholds(0.3, {"skill:Rust": 2})


def test_a_profile_survives_json_and_compares_like_the_rows():
    import json

    reference = _table(
        ["Python, SQL and Tableau dashboards"] * 30 + ["Java microservices on AWS"] * 30, [1] * 30 + [0] * 30
    )
    window = _table(["LLM agents with LangChain"] * 20 + ["Java on AWS"] * 10, [0] * 25 + [1] * 5, [0.9] * 30)
    shipped = Profile.from_json(json.loads(json.dumps(Profile.of(reference).to_json())))
    from_profile = compare_profiles(shipped, Profile.of(window, edges_from=shipped))
    from_rows = compare(reference, window)
    assert [(d.feature, d.value) for d in from_profile] == [(d.feature, d.value) for d in from_rows]
