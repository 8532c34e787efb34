"""Weight-space arithmetic on Model B candidates: interpolation towards Model A (WiSE-FT) and averaging
several fine-tunes (a model soup).

Why: B starts from A's weights and is fine-tuned on 2026 postings, and what it gains on 2026 it
partly loses on 2025 (forgetting). Wortsman et al., "Robust fine-tuning of zero-shot models" (CVPR
2022), show that the straight line between the starting weights and the fine-tuned weights,

    theta(alpha) = theta_A + alpha * (theta_B - theta_A),   alpha in [0, 1],

keeps most of the fine-tuning's gain on the new distribution while recovering much of the old one,
at no training cost: one more model is a weighted sum of two state dicts. alpha = 1 is B itself,
alpha = 0 is A. The line is only meaningful because B was initialised from A (same architecture,
same basin); `interpolate` refuses two models whose parameters do not line up.

Frozen parameters (A's embeddings and bottom blocks) are identical in both and are copied, not
recomputed (A + alpha * 0 would turn every -0.0 into +0.0), so they stay A's bit for bit and the
frozen-bottom cache, which checks a byte fingerprint, stays valid for every alpha.

`average` is the uniform "model soup" of Wortsman et al. (ICML 2022): fine-tunes of the same start that
differ only in their seed land in one basin, and the mean of their weights is one model that tends to be
as good as the best of them and steadier than any one. Same rules: the models must line up, and what they
share (the frozen bottom) is copied bit for bit.
"""

from __future__ import annotations

import copy

from shared.errors import UserError


def check_alpha(alpha) -> float:
    value = float(alpha)
    if not 0.0 <= value <= 1.0:
        raise UserError(f"interpolation alpha must be in [0, 1] (1 = Model B as trained, 0 = Model A), got {alpha!r}")
    return value


def interpolate(start_model, tuned_model, alpha: float):
    """A copy of `tuned_model` with weights start + alpha * (tuned - start); non-float buffers are the tuned ones."""
    import torch

    alpha = check_alpha(alpha)
    start, tuned = start_model.state_dict(), tuned_model.state_dict()
    if start.keys() != tuned.keys() or any(start[k].shape != tuned[k].shape for k in tuned):
        raise UserError("cannot interpolate: the two models' parameters differ (B must be initialised from A)")
    if alpha == 1.0:
        return tuned_model
    mixed = {
        name: torch.lerp(start[name], value, alpha)
        if value.is_floating_point() and not torch.equal(start[name], value)
        else value
        for name, value in tuned.items()
    }
    model = copy.deepcopy(tuned_model)
    model.load_state_dict(mixed)
    model.eval()
    return model


def average(models: list):
    """A copy of `models[0]` with every parameter the mean over `models` (parameters equal in all are copied)."""
    import torch

    if len(models) < 2:
        raise UserError(f"a model soup needs at least two models, got {len(models)}")
    states = [m.state_dict() for m in models]
    first = states[0]
    if any(s.keys() != first.keys() or any(s[k].shape != first[k].shape for k in first) for s in states[1:]):
        raise UserError("cannot average: the models' parameters differ (they must all start from Model A)")
    mixed = {}
    for name, value in first.items():
        values = [s[name] for s in states]
        shared = all(torch.equal(value, other) for other in values[1:])
        mixed[name] = torch.stack(values).mean(dim=0) if value.is_floating_point() and not shared else value
    model = copy.deepcopy(models[0])
    model.load_state_dict(mixed)
    model.eval()
    return model
