#!/usr/bin/env python
"""Diagnostic: how far above Model A can *any* model trained on 2026 postings get on the 2026 task?

    python scripts/study_ceiling.py --json artifacts/study_b/ceiling.json --plot docs/studies/figures/ceiling.png

Model B's target is >= +10 pt over A on the 2026 evaluation split (`evaluate_b.TARGETS`), whose labels
come from the title taxonomy (`shared.labels`). Pseudo-labels are at best those very labels, so the most any pseudo-labelling
scheme can give B is what supervised training on the taxonomy's own labels gives. This script measures
that bound, with more 2026 labels than B ever sees:

* every 2026 posting the taxonomy can place (pool + evaluation split) is cut into --folds folds by a
  stable hash of its source id (salted apart from the evaluation split's hash);
* for each fold, a learner trains on the 2025 train split + every other fold's 2026 postings with their
  taxonomy labels, and scores the fold. Each posting is scored once, by a model that never saw it.
  Which postings share a fold moves a 311-posting figure by points, so the folds are cut --repeats
  times (another salt each) and the figures are the mean and range over the repeats;
* learners: TF-IDF + logistic regression on the `skills_first` model input cut where the encoder's
  256-piece window ends (~1,200 characters) and whole (`scripts/study_text_window.py` showed text past
  the window carries signal). The transformer's own supervised figure is study-b's pool folds;
* Model A and Model B (as committed) score the same postings; B only on the evaluation split (it trained
  on the pool). The same learners trained on exactly B's rows (2025 train + the pool's taxonomy labels)
  score the evaluation split too. Differences to A there get a paired bootstrap 95 % interval;
* a learning curve (share of the other folds' 2026 postings kept) says whether more weeks of labels
  would move the bound; the bound's errors are grouped by the taxonomy rule that labelled them.

It chooses nothing: no setting of B is picked from these figures (results: docs/studies/2026-11-27-supervised-bound.md).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import click
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cloud.cli_options import model_a_option, normalized_option, params_option, splits_option  # noqa: E402
from cloud.training.baseline import fit_predict_window as fit_predict  # noqa: E402
from cloud.training.stream_split import stable_unit  # noqa: E402

FOLD_SALT = "careeredge/ceiling-folds"  # not the evaluation split's salt: folds cut across both sides
ENCODER_WINDOW_CHARS = 1200  # ~256 word pieces of skills_first text
CUTS = {ENCODER_WINDOW_CHARS: f"first {ENCODER_WINDOW_CHARS} chars", 0: "whole posting"}
CURVE_SHARES = (0.25, 0.5, 0.75, 1.0)
TARGET_PT = 10.0


def fold_of(source_id: str, folds: int, repeat: int) -> int:
    return int(stable_unit(f"{FOLD_SALT}/{repeat}:{source_id}") * folds)


def keep_share(source_id: str, share: float) -> bool:
    """A stable subset of the training postings for the learning curve (nested: 25 % is inside 50 %)."""
    return stable_unit(f"{FOLD_SALT}/curve:{source_id}") < share


def cross_fitted(ids, inputs, labels, train_2025, folds: int, repeat: int, cut: int, share: float = 1.0):
    """Each 2026 posting predicted by a learner trained on 2025 train + the other folds (their kept share)."""
    fold = np.array([fold_of(i, folds, repeat) for i in ids])
    kept = np.array([keep_share(i, share) for i in ids])
    predicted = np.empty(len(ids), dtype=int)
    for k in range(folds):
        train = np.flatnonzero((fold != k) & kept)
        predicted[fold == k] = fit_predict(
            train_2025[0] + [inputs[j] for j in train],
            list(train_2025[1]) + list(labels[train]),
            [inputs[j] for j in np.flatnonzero(fold == k)],
            cut,
        )
    return predicted


def paired_interval(correct_a: np.ndarray, correct_b: np.ndarray, draws: int = 10000, seed: int = 2026):
    """95 % bootstrap interval of accuracy(b) - accuracy(a) in points, resampling postings."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(correct_a), size=(draws, len(correct_a)))
    gaps = (correct_b[picks].mean(axis=1) - correct_a[picks].mean(axis=1)) * 100
    return [round(float(np.percentile(gaps, 2.5)), 1), round(float(np.percentile(gaps, 97.5)), 1)]


def spread(values) -> dict:
    return {
        "mean": round(float(np.mean(values)), 4),
        "min": round(float(np.min(values)), 4),
        "max": round(float(np.max(values)), 4),
    }


def plot(figures: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4))
    rows = figures["eval_2026"]["models"]
    names = list(rows)
    means = [rows[n]["accuracy"] if "accuracy" in rows[n] else rows[n]["mean"] for n in names]
    low = [m - rows[n].get("min", m) for n, m in zip(names, means)]
    high = [rows[n].get("max", m) - m for n, m in zip(names, means)]
    left.barh(names, means, xerr=[low, high], color=["#888"] + ["#3a7"] * (len(names) - 1), capsize=3)
    target = rows["Model A"]["accuracy"] + TARGET_PT / 100
    left.axvline(target, color="#c33", ls="--", label=f"A + {TARGET_PT:.0f} pt (the target)")
    for y, v in enumerate(means):
        left.text(0.802, y, f"{v:.3f}", va="center", fontsize=8, color="white")
    left.set_xlim(0.8, 1.0)
    left.invert_yaxis()
    left.set_title(f"2026 evaluation split (n = {figures['eval_2026']['n']}); bars: range over fold cuts")
    left.legend(loc="lower right", fontsize=8)
    curve, everything = figures["learning_curve"], figures["all_2026"]
    right.errorbar(
        [c["train_rows_2026"] for c in curve],
        [c["mean"] for c in curve],
        yerr=[[c["mean"] - c["min"] for c in curve], [c["max"] - c["mean"] for c in curve]],
        fmt="o-",
        capsize=3,
        label="TF-IDF whole posting, cross-fitted",
    )
    right.axhline(everything["Model A"], color="#888", label="Model A")
    right.axhline(everything["Model A"] + TARGET_PT / 100, color="#c33", ls="--", label="A + 10 pt")
    right.set_xlabel("2026 taxonomy-labelled postings trained on (per fold)")
    right.set_ylabel("accuracy")
    right.set_title(f"every placeable 2026 posting (n = {everything['n']})")
    right.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


@click.command()
@click.option("--json", "json_out", type=click.Path(path_type=Path), required=True)
@click.option("--plot", "plot_out", type=click.Path(path_type=Path), default=None)
@click.option("--folds", default=5, show_default=True)
@click.option("--repeats", default=5, show_default=True, help="Fold cuts (each with its own salt).")
@model_a_option()
@click.option("--model-b", type=click.Path(path_type=Path), default=Path("artifacts/model_b_v3"), show_default=True)
@splits_option()
@normalized_option()
@params_option()
def main(json_out, plot_out, folds, repeats, model_a, model_b, splits, normalized, params_path) -> None:
    from tqdm.auto import tqdm

    from cloud.data.splits import read_split
    from cloud.params import load_params
    from cloud.training.model_io import load_classifier
    from cloud.training.stream_split import load_stream
    from shared.labels import TITLE_RULES, classify_title, matching_rule
    from shared.text import model_input

    stream = load_stream(normalized, load_params(params_path), "")
    pool = [(p, label) for p, label in ((p, classify_title(p.title)) for p in stream.pool) if label is not None]
    postings = [p for p, _ in pool] + list(stream.evaluation)
    labels = np.array([label for _, label in pool] + list(stream.eval_labels))
    is_eval = np.arange(len(postings)) >= len(pool)
    ids = [p.source_id for p in postings]
    inputs = [model_input(p.description, "skills_first") for p in postings]
    train_texts, train_labels = read_split(splits / "train.csv")
    train_2025 = ([model_input(t, "skills_first") for t in train_texts], list(train_labels))
    click.echo(
        f"{len(postings)} placeable 2026 postings ({is_eval.sum()} in the evaluation split), "
        f"{repeats} x {folds} folds, + {len(train_texts)} 2025 train rows in every fold"
    )

    # Single models: A, B, and the TF-IDF learners on B's own rows; all scored per posting.
    correct = {}
    descriptions = [p.description for p in postings]
    for name, model_dir, rows in (("Model A", model_a, np.ones(len(postings), bool)), ("Model B", model_b, is_eval)):
        click.echo(f"{name} ({model_dir.name}) reads {rows.sum()} postings")
        probabilities = load_classifier(model_dir).predict_proba(
            [text for text, read in zip(descriptions, rows) if read], progress=True
        )
        hits = np.zeros(len(postings), bool)  # B never scores the pool it trained on
        hits[rows] = probabilities.argmax(axis=1) == labels[rows]
        correct[f"{name} ({model_dir.name})" if name == "Model B" else name] = hits
    pool_rows = np.flatnonzero(~is_eval)
    for cut, reading in CUTS.items():
        hits = np.zeros(len(postings), bool)
        hits[is_eval] = (
            fit_predict(
                train_2025[0] + [inputs[j] for j in pool_rows],
                train_2025[1] + list(labels[pool_rows]),
                [inputs[j] for j in np.flatnonzero(is_eval)],
                cut,
            )
            == labels[is_eval]
        )
        correct[f"TF-IDF on B's rows, {reading}"] = hits
    eval_models = {}
    for name, hits in correct.items():
        row = {"accuracy": round(float(hits[is_eval].mean()), 4)}
        if name != "Model A":
            row["gap_to_a_pt"] = round(float(hits[is_eval].mean() - correct["Model A"][is_eval].mean()) * 100, 1)
            row["gap_95ci_pt"] = paired_interval(correct["Model A"][is_eval], hits[is_eval])
        eval_models[name] = row

    # The bound: cross-fitted over every placeable 2026 posting, folds cut `repeats` times.
    fits = repeats * (len(CUTS) + len(CURVE_SHARES) - 1)
    bound = {cut: [] for cut in CUTS}
    curve = {share: [] for share in CURVE_SHARES}
    errors_by_rule = Counter()
    with tqdm(total=fits * folds, desc="cross-fitted TF-IDF", unit="fit") as bar:
        for repeat in range(repeats):
            for cut in CUTS:
                hits = cross_fitted(ids, inputs, labels, train_2025, folds, repeat, cut) == labels
                bound[cut].append(hits)
                bar.update(folds)
                if cut == 0:
                    curve[1.0].append(hits.mean())
                    errors_by_rule.update(matching_rule(postings[j].title).reason for j in np.flatnonzero(~hits))
            for share in CURVE_SHARES[:-1]:
                curve[share].append(
                    (cross_fitted(ids, inputs, labels, train_2025, folds, repeat, 0, share) == labels).mean()
                )
                bar.update(folds)
    for cut, reading in CUTS.items():
        eval_models[f"bound: TF-IDF cross-fitted, {reading}"] = spread([h[is_eval].mean() for h in bound[cut]])
    everything = {
        "n": int(len(labels)),
        "Model A": round(float(correct["Model A"].mean()), 4),
        **{
            f"bound: TF-IDF cross-fitted, {reading}": spread([h.mean() for h in bound[cut]])
            for cut, reading in CUTS.items()
        },
    }
    learning_curve = [
        {
            "share": share,
            "train_rows_2026": round(sum(keep_share(i, share) for i in ids) * (folds - 1) / folds),
            **spread(curve[share]),
        }
        for share in CURVE_SHARES
    ]
    by_rule = Counter(matching_rule(p.title).reason for p in postings)
    label_of_rule = {rule.reason: rule.label for rule in TITLE_RULES}
    residual = [
        {
            "rule": rule,
            "label": label_of_rule[rule],
            "n": by_rule[rule],
            "errors_per_cut": round(count / repeats, 1),
            "error_rate": round(count / repeats / by_rule[rule], 3),
        }
        for rule, count in errors_by_rule.most_common()
    ]

    figures = {
        "folds": folds,
        "repeats": repeats,
        "train_rows_2025": len(train_texts),
        "eval_2026": {"n": int(is_eval.sum()), "models": eval_models},
        "all_2026": everything,
        "learning_curve": learning_curve,
        "bound_errors_by_rule": residual,
    }
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    click.echo(f"2026 evaluation split (n = {is_eval.sum()}):")
    for name, row in eval_models.items():
        if "mean" in row:
            click.echo(f"  {name:<48} {row['mean']:.3f} (fold cuts {row['min']:.3f}-{row['max']:.3f})")
        else:
            gap = (
                f"  {row['gap_to_a_pt']:+.1f} pt, 95 % [{row['gap_95ci_pt'][0]:+.1f}, {row['gap_95ci_pt'][1]:+.1f}]"
                if "gap_to_a_pt" in row
                else ""
            )
            click.echo(f"  {name:<48} {row['accuracy']:.3f}{gap}")
    click.echo(
        f"every placeable 2026 posting (n = {len(labels)}): Model A {everything['Model A']:.3f}; "
        + "; ".join(f"{k} {v['mean']:.3f}" for k, v in everything.items() if isinstance(v, dict))
    )
    click.echo("learning curve: " + ", ".join(f"{c['train_rows_2026']} rows {c['mean']:.3f}" for c in learning_curve))
    if plot_out:
        plot(figures, plot_out)
        click.echo(f"plot: {plot_out}")


if __name__ == "__main__":
    main()
