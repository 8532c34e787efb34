"""`careeredge-cloud pseudo-label`: label the 2026 pool for Model B, three ways, side by side.

Arms:
* `model_a`   - Model A's label where its *calibrated* confidence > threshold (default 0.90);
* `taxonomy`  - the title taxonomy's label (weak supervision from the title alone);
* `agreement` - both: A is confident and agrees with the taxonomy.

A is calibrated first (temperature scaling on the 2025 validation split): raw softmax is
over-confident, so "> 0.90" would let through labels that are much less than 90% right.
Each arm then goes through the class-balance guard, per ingest batch: a batch whose kept labels are
all one class contributes nothing, and a majority class is capped at `max_class_ratio` x the
minority (keeping the most confident). If no arm ends up with both classes, the stream is refused.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from cloud.artifacts import atomic_directory, write_json_atomic
from cloud.cli_options import model_a_option, normalized_option, params_option, splits_option
from cloud.params import load_params
from cloud.training.calibration import Calibration, calibrate
from cloud.training.stream_split import EVAL_FRACTION, split_stream
from shared.errors import UserError
from shared.labels import LABEL_NAMES, classify_title
from shared.posting import JobPosting
from shared.probabilities import softmax

ARMS = ("model_a", "taxonomy", "agreement")
PSEUDO_COLUMNS = ("id", "title", "text", "label", "confidence", "batch", "source")
DEFAULTS = {"threshold": 0.90, "max_class_ratio": 3.0, "eval_fraction": EVAL_FRACTION, "arms": list(ARMS)}


@dataclass(frozen=True)
class Candidate:
    posting: JobPosting
    label: int
    confidence: float

    @property
    def batch(self) -> str:
        return str(self.posting.extra.get("batch") or self.posting.source)

    def row(self) -> dict:
        p = self.posting
        return {
            "id": p.source_id,
            "title": p.title,
            "text": p.description,
            "label": self.label,
            "confidence": round(self.confidence, 5),
            "batch": self.batch,
            "source": p.source,
        }


def arm_candidates(arm: str, pool: list[JobPosting], probs: np.ndarray | None, threshold: float) -> list[Candidate]:
    """The selection rule: which pool postings an arm labels, before the balance guard."""
    if arm not in ARMS:
        raise UserError(f"unknown pseudo-label arm {arm!r}; known: {', '.join(ARMS)}")
    title_labels = [classify_title(p.title) for p in pool]
    candidates = []
    for i, posting in enumerate(pool):
        a_label = int(probs[i].argmax()) if probs is not None else None
        a_confident = probs is not None and float(probs[i].max()) > threshold
        if arm == "model_a" and a_confident:
            candidates.append(Candidate(posting, a_label, float(probs[i].max())))
        elif arm == "taxonomy" and title_labels[i] is not None:
            candidates.append(Candidate(posting, title_labels[i], 1.0))
        elif arm == "agreement" and a_confident and title_labels[i] == a_label:
            candidates.append(Candidate(posting, a_label, float(probs[i].max())))
    return candidates


def balance_guard(candidates: list[Candidate], max_class_ratio: float) -> tuple[list[Candidate], dict]:
    """Per batch: drop one-class batches, cap the majority class at max_class_ratio x minority."""
    by_batch: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_batch[candidate.batch].append(candidate)
    kept, report = [], {}
    for batch, members in sorted(by_batch.items()):
        by_class = defaultdict(list)
        for candidate in members:
            by_class[candidate.label].append(candidate)
        before = {LABEL_NAMES[k]: len(v) for k, v in sorted(by_class.items())}
        if len(by_class) < 2:
            report[batch] = {"before": before, "kept": {}, "note": "one-class batch: skipped"}
            continue
        cap = int(max_class_ratio * min(len(v) for v in by_class.values()))
        batch_kept = []
        for members_of_class in by_class.values():
            ranked = sorted(members_of_class, key=lambda c: (-c.confidence, _tie_break(c)))
            batch_kept.extend(ranked[:cap])
        kept.extend(batch_kept)
        report[batch] = {"before": before, "kept": _class_counts(batch_kept)}
    return kept, report


def _tie_break(candidate: Candidate) -> str:
    return hashlib.sha256(candidate.posting.source_id.encode()).hexdigest()


def _class_counts(candidates: list[Candidate]) -> dict[str, int]:
    counts = Counter(c.label for c in candidates)
    return {LABEL_NAMES[k]: counts.get(k, 0) for k in sorted(LABEL_NAMES)}


def taxonomy_agreement(candidates: list[Candidate]) -> dict:
    """Share of an arm's labels the title taxonomy agrees with (a precision proxy: 2026 has no gold)."""
    checkable = [(c.label, classify_title(c.posting.title)) for c in candidates]
    checkable = [(label, title) for label, title in checkable if title is not None]
    agree = sum(label == title for label, title in checkable)
    return {
        "checkable": len(checkable),
        "agree": agree,
        "rate": round(agree / len(checkable), 4) if checkable else None,
    }


def select_arms(
    pool: list[JobPosting],
    calibrated: np.ndarray | None,
    raw: np.ndarray | None,
    arms: list[str],
    threshold: float,
    max_class_ratio: float,
) -> tuple[dict, dict]:
    """Run every arm through the selection rule and the guard. Returns (kept per arm, report)."""
    selections, report = {}, {}
    for arm in arms:
        if arm != "taxonomy" and calibrated is None:
            raise UserError(f"arm {arm!r} needs Model A's probabilities")
        candidates = arm_candidates(arm, pool, calibrated, threshold)
        kept, guard = balance_guard(candidates, max_class_ratio)
        counts = _class_counts(kept)
        usable = sum(1 for n in counts.values() if n) == 2
        selections[arm] = kept if usable else []
        report[arm] = {
            "candidates": len(candidates),
            "kept": len(kept),
            "kept_per_class": counts,
            "usable": usable,
            "taxonomy_agreement": taxonomy_agreement(kept),
            "batches": guard,
        }
        if not usable:
            report[arm]["note"] = "one class only after the guard: not used to train B"
    if raw is not None and "model_a" in arms:
        # What the same rule would have kept on uncalibrated softmax: the over-confidence on show.
        uncalibrated = arm_candidates("model_a", pool, raw, threshold)
        report["model_a"]["uncalibrated"] = {
            "candidates": len(uncalibrated),
            "taxonomy_agreement": taxonomy_agreement(uncalibrated),
        }
    return selections, report


def write_rows(path: Path, rows: list[dict], columns=PSEUDO_COLUMNS) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def pseudo_label_settings(params: dict) -> dict:
    return {**DEFAULTS, **(params.get("pseudo_label") or {})}


@click.command("pseudo-label")
@normalized_option()
@model_a_option(help="Model A's directory (hf/ + train_log.json).")
@splits_option(help="2025 splits; val.csv calibrates Model A.")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=Path("data/pseudo_labels"), show_default=True
)
@params_option()
@click.option("--threshold", type=float, default=None, help="Override pseudo_label.threshold.")
@click.option("--threads", type=int, default=None, help="torch threads (default: all cores).")
def pseudo_label_command(normalized, model_a, splits, out_dir, params_path, threshold, threads) -> None:
    """Calibrate Model A, label the 2026 pool (3 arms), guard class balance, write one CSV per arm."""
    from cloud.data.splits import read_split
    from cloud.ingest.normalized import load_postings
    from cloud.training.model_io import load_classifier

    params = load_params(params_path)
    settings = pseudo_label_settings(params)
    if threshold is not None:
        settings["threshold"] = threshold
    if not 0.5 <= settings["threshold"] < 1.0:
        raise UserError(f"threshold must be in [0.5, 1), got {settings['threshold']}")
    split = split_stream(load_postings(normalized), settings["eval_fraction"])
    if not split.pool:
        raise UserError(f"{normalized}: no 2026 postings left for pseudo-labelling after the eval hold-out")
    val_texts, val_labels = read_split(splits / "val.csv")

    needs_a = any(arm != "taxonomy" for arm in settings["arms"])
    calibration: Calibration | None = None
    raw = calibrated = None
    if needs_a:
        set_threads(threads)
        classifier = load_classifier(model_a)
        click.echo(f"pseudo-label: calibrating Model A on {len(val_texts)} validation postings", err=True)
        calibration = calibrate(classifier.predict_logits(val_texts), np.asarray(val_labels))
        click.echo(f"pseudo-label: scoring {len(split.pool)} pool postings with Model A", err=True)
        pool_logits = classifier.predict_logits([p.description for p in split.pool])
        raw, calibrated = softmax(pool_logits), calibration.probabilities(pool_logits)

    selections, arms_report = select_arms(
        split.pool, calibrated, raw, settings["arms"], settings["threshold"], settings["max_class_ratio"]
    )
    if not any(selections.values()):
        raise UserError(
            "one-class stream: no labelling arm kept both classes "
            f"({ {arm: r['kept_per_class'] for arm, r in arms_report.items()} }); refusing to train B on it"
        )
    report = {
        "settings": settings,
        "stream": split.summary(),
        "calibration": calibration.to_dict() if calibration else None,
        "arms": arms_report,
    }
    with atomic_directory(out_dir) as staging:
        for arm, kept in selections.items():
            write_rows(staging / f"{arm}.csv", [c.row() for c in kept])
        write_json_atomic(staging / "report.json", report)
    _print_summary(report)


def _print_summary(report: dict) -> None:
    cal = report["calibration"]
    if cal:
        click.echo(
            f"calibration: T={cal['temperature']:.3f}, ECE {cal['ece_before']:.3f} -> {cal['ece_after']:.3f} "
            f"on {cal['examples']} 2025 validation postings"
        )
    stream = report["stream"]
    click.echo(
        f"stream: pool {stream['pool']}, eval {stream['eval_labelled']} labelled "
        f"(+{stream['eval_unlabelled']} without a taxonomy label)"
    )
    for arm, r in report["arms"].items():
        agreement = r["taxonomy_agreement"]["rate"]
        click.echo(
            f"arm {arm:9s}: kept {r['kept']:4d} {json.dumps(r['kept_per_class'])}"
            f"{'' if r['usable'] else ' (unusable: one class)'}; agrees with taxonomy "
            f"{'n/a' if agreement is None else f'{agreement:.1%}'}"
        )
