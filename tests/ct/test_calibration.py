"""Temperature scaling: an over-confident model is brought back to honest confidences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cloud.training.calibration import LOG_T_RANGE, calibrate, fit_temperature, negative_log_likelihood
from cloud.training.metrics import expected_calibration_error
from shared.probabilities import softmax


def overconfident(n=4000, inflation=3.0, seed=0):
    """Labels drawn from true probabilities; the 'model' reports logits `inflation` times too sharp."""
    rng = np.random.default_rng(seed)
    true_margin = rng.normal(0.0, 1.5, size=n)
    p1 = 1 / (1 + np.exp(-true_margin))
    labels = (rng.random(n) < p1).astype(int)
    logits = np.stack([np.zeros(n), true_margin * inflation], axis=1)
    return logits, labels


def test_fit_recovers_the_inflation():
    logits, labels = overconfident(inflation=3.0)
    assert fit_temperature(logits, labels) == pytest.approx(3.0, rel=0.15)


def test_fit_is_the_nll_minimum_over_the_log_t_range():
    logits, labels = overconfident(n=500, inflation=2.0, seed=5)
    grid = np.linspace(*LOG_T_RANGE, 7001)  # log T in steps of 0.001
    nll = [negative_log_likelihood(logits, labels, math.exp(g)) for g in grid]
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(math.exp(grid[int(np.argmin(nll))]), rel=1e-3)
    assert negative_log_likelihood(logits, labels, fitted) <= min(nll) + 1e-12
    # Perfectly separated logits: sharper is always better, so T stops at the range's edge.
    separated = np.array([[0.05, -0.05], [-0.05, 0.05]] * 10)  # small margins: no NLL underflows to 0
    assert fit_temperature(separated, np.array([0, 1] * 10)) == pytest.approx(math.exp(LOG_T_RANGE[0]), rel=1e-4)


def test_ece_drops_and_argmax_is_unchanged():
    logits, labels = overconfident()
    calibration = calibrate(logits, labels)
    assert calibration.ece_before > 0.08
    assert calibration.ece_after < calibration.ece_before / 3
    assert calibration.nll_after < calibration.nll_before
    assert (calibration.probabilities(logits).argmax(1) == softmax(logits).argmax(1)).all()


def test_confidence_above_090_means_about_90_percent_after_calibration():
    logits, labels = overconfident(n=20000, seed=1)
    raw, cal = softmax(logits), calibrate(logits, labels).probabilities(logits)
    for probs, expect_honest in ((raw, False), (cal, True)):
        confident = probs.max(1) > 0.90
        accuracy = (probs.argmax(1)[confident] == labels[confident]).mean()
        assert (accuracy >= 0.90) == expect_honest, (accuracy, confident.sum())


def test_well_calibrated_model_keeps_t_near_1():
    logits, labels = overconfident(inflation=1.0, seed=2)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.15)


def test_ece_of_perfect_confidence():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(probs, np.array([0, 1])) == 0.0
    assert expected_calibration_error(probs, np.array([1, 0])) == 1.0
