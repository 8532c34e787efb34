"""Driving terms: occlusion over the skill keywords the model actually read."""

from __future__ import annotations

from device.explain import driving_terms


def test_terms_are_skills_from_the_posting_ranked_by_effect(backend):
    text = "We want pandas and SQL for experiments, plus some Java and Kubernetes."
    terms = driving_terms(backend, text, top_k=3)
    assert 0 < len(terms) <= 3
    assert {name for name, _ in terms} <= {"pandas", "SQL", "Java", "Kubernetes"}
    magnitudes = [abs(score) for _, score in terms]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_no_skills_means_no_terms(backend):
    assert driving_terms(backend, "A friendly team in a sunny office.") == []


def test_mentions_beyond_max_length_are_not_candidates(backend):
    text = "team " * (backend.max_length * 2) + "pandas"
    assert driving_terms(backend, text) == []
