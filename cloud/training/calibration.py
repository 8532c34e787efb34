"""Temperature scaling (Guo et al., 2017) for Model A before its labels are trusted.

A fine-tuned transformer's softmax is over-confident: "p > 0.90" does not mean 90% right. One
scalar T, fitted on held-out labelled data (the 2025 validation split) by minimising the negative
log-likelihood of softmax(logits / T), makes the confidences honest without changing a single
argmax. ECE (expected calibration error, equal-width bins over the top-class confidence) is
reported before and after so the effect is visible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cloud.training.metrics import expected_calibration_error
from shared.probabilities import softmax

LOG_T_RANGE = (-3.0, 4.0)  # T in [0.05, 55]: wide enough for any sane model
LOG_T_TOLERANCE = 1e-8  # on log T: T to ~1e-8 relative, far below what the confidences can show


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    probs = softmax(logits, temperature)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising the NLL of softmax(logits / T), searched on log T within LOG_T_RANGE by bounded
    Brent (`scipy.optimize.minimize_scalar`): the NLL is unimodal in log T for a fixed set of logits."""
    from scipy.optimize import minimize_scalar

    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=int)
    if len(labels) == 0:
        raise ValueError("temperature scaling needs at least one labelled example")
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, math.exp(log_t)),
        bounds=LOG_T_RANGE,
        method="bounded",
        options={"xatol": LOG_T_TOLERANCE},
    )
    return float(math.exp(result.x))


@dataclass(frozen=True)
class Calibration:
    temperature: float
    examples: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits, self.temperature)

    def to_dict(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


def calibrate(logits: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> Calibration:
    labels = np.asarray(labels, dtype=int)
    temperature = fit_temperature(logits, labels)
    return Calibration(
        temperature=temperature,
        examples=len(labels),
        ece_before=expected_calibration_error(softmax(logits), labels, n_bins),
        ece_after=expected_calibration_error(softmax(logits, temperature), labels, n_bins),
        nll_before=negative_log_likelihood(logits, labels),
        nll_after=negative_log_likelihood(logits, labels, temperature),
    )
