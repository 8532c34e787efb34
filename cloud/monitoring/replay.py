"""`careeredge-cloud replay-weeks`: the 2026 job-radar stream, week by week, through the real chain.

For each ISO week in arrival order (the day the scraper first saw a posting), the postings that
arrived that week become a file drop, and the weekly job runs on everything that has arrived so far:

    file drop -> ingest -> normalize (German to quarantine) -> pseudo-label (Model A, calibrated)
    -> train B (`train_b.train_arms`, params.yaml `train_b:`) -> evaluate A vs B -> monitoring

Evaluation, per week: the 2026 evaluation split (the UK stream's stable-hash hold-out,
`stream_split`), that week's own hold-out slice of the job-radar stream (same hash, title-taxonomy
labels) and the 2025 test split. Monitoring, per week: skew of the week's postings (A's predictions)
against the 2025 training split, drift against the previous week, the rising and falling skills.

What does not change from week to week is computed once: A's calibration, and the frozen bottom of
the encoder (A's embeddings and lowest blocks, which every B keeps) for every text, in one
`PrefixCache` shared by A's scoring, every week's arms and every evaluation. Each week's B is
trained from A afresh (B is "A plus this week's data", as the weekly trainer does).

The stream has no licence: it is read where it lies (`--stream`, default
`$CAREEREDGE_SHARED_DATA` or `../shared/data`) and what the replay writes stays under `--out`
(artifacts/, never committed).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import click
import numpy as np

from cloud.artifacts import atomic_directory, write_json_atomic
from cloud.cli_options import model_a_option, params_option, splits_option
from cloud.monitoring.baseline import BASELINE_NAME, baseline_table
from cloud.monitoring.cost import CostMeter
from cloud.monitoring.settings import MonitoringSettings
from cloud.monitoring.windows import class_counts, window_figures
from cloud.params import load_params
from shared.errors import UserError
from shared.files import atomic_write_jsonl
from shared.monitoring.features import FeatureTable, iso_week_label, project
from shared.monitoring.trends import skill_movement

STREAM_DIR = "remote_apis_2026_EGG-ZERO_da-job-radar"
STREAM_FILE = "tech_jobs_sample.jsonl"
ARRIVAL_FIELD = "first_seen_raw_file"


def default_stream() -> Path:
    shared = os.environ.get("CAREEREDGE_SHARED_DATA")
    root = Path(shared) if shared else Path.cwd().parent / "shared" / "data"
    return root / STREAM_DIR / STREAM_FILE


def iso_week(day: str) -> str | None:
    try:
        return iso_week_label(date.fromisoformat(str(day)[:10]))
    except ValueError:
        return None


def weekly_drops(stream_file: Path, drops_dir: Path) -> dict[str, Path]:
    """Split the stream into one JSONL file drop per arrival week (records unchanged); {week: path}."""
    from cloud.ingest.file_drop import read_records

    by_week: dict[str, list[dict]] = defaultdict(list)
    undated = 0
    for record in read_records(stream_file):
        week = iso_week(record.get(ARRIVAL_FIELD, ""))
        if week is None:
            undated += 1
            continue
        by_week[week].append(record)
    if not by_week:
        raise UserError(f"{stream_file}: no record has a readable {ARRIVAL_FIELD!r} date")
    if undated:
        click.echo(f"replay-weeks: {undated} records without an arrival date left out", err=True)
    drops_dir.mkdir(parents=True, exist_ok=True)
    return {week: atomic_write_jsonl(drops_dir / f"{week}.jsonl", by_week[week]) for week in sorted(by_week)}


@dataclass
class ModelAScorer:
    """Model A, calibrated once; its logits read through the shared frozen-bottom cache."""

    classifier: object
    calibration: object
    cache: object
    freeze_layers: int
    _logits: dict[str, np.ndarray] = field(default_factory=dict)

    def logits(self, texts: list[str]) -> np.ndarray:
        from cloud.training.finetune import read_logits
        from cloud.training.frozen_prefix import FrozenPrefix
        from shared.text import model_input

        missing = list(dict.fromkeys(t for t in texts if t not in self._logits))
        if missing:
            a = self.classifier
            inputs = [model_input(t, a.preprocessing) for t in missing]
            if self.cache is None:
                computed = a.predict_logits(missing)
            else:
                prefix = FrozenPrefix(a.model, self.freeze_layers)
                computed = read_logits(
                    a.tokenizer, inputs, a.windows, lambda items, enc: self.cache.logits(prefix, enc, items)
                )
            self._logits.update(zip(missing, computed))
        return np.array([self._logits[t] for t in texts]).reshape(len(texts), 2)


@dataclass
class Replay:
    """Everything fixed for the whole replay (read and computed once)."""

    settings: MonitoringSettings
    train_b: object  # TrainBSettings
    config: object  # FineTuneConfig
    pseudo: dict
    scorer: ModelAScorer
    baseline: FeatureTable
    train: tuple[list[str], list[int]]
    val: tuple[list[str], list[int]]
    test: tuple[list[str], list[int]]
    eval_2026: tuple[list[str], list[int]]
    eval_2026_ids: list[str]
    arms: list[str]


def prepare(
    params_path: Path, model_a: Path, splits: Path, eval_normalized: Path, arms, threads, overrides: dict | None = None
) -> Replay:
    from cloud.data.splits import read_split
    from cloud.training.calibration import calibrate
    from cloud.training.model_io import load_classifier, recorded_config
    from cloud.training.pseudo_label import pseudo_label_settings, set_threads
    from cloud.training.stream_split import load_stream
    from cloud.training.train_b import A_CONFIG_HINT, TrainBSettings, new_prefix_cache, replay_sample

    params = load_params(params_path)
    settings = MonitoringSettings.from_params(params)
    train_b = TrainBSettings.from_params(params, **(overrides or {}))
    if train_b.init != "model_a":
        raise UserError("replay-weeks shares A's frozen bottom with every B: it needs train_b.init = model_a")
    set_threads(threads)
    classifier = load_classifier(model_a)
    config = train_b.fine_tune_config(params, str(model_a / "hf"), recorded_config(model_a, A_CONFIG_HINT), threads)
    cache = new_prefix_cache(config)
    val, test, train = (read_split(splits / f"{name}.csv") for name in ("val", "test", "train"))
    stream = load_stream(eval_normalized, params, " on the 2026 stream that holds the evaluation split")
    if len(set(stream.eval_labels)) < 2:
        raise UserError(f"{eval_normalized}: the 2026 evaluation split has fewer than two classes")
    scorer = ModelAScorer(classifier, None, cache, config.freeze_layers)
    click.echo(f"replay-weeks: calibrating Model A on {len(val[0])} 2025 validation postings", err=True)
    scorer.calibration = calibrate(scorer.logits(val[0]), np.asarray(val[1]))
    return Replay(
        settings=settings,
        train_b=train_b,
        config=config,
        pseudo=pseudo_label_settings(params),
        scorer=scorer,
        baseline=baseline_table(splits, train),
        train=replay_sample(*train, train_b.replay_2025, train_b.seed),
        val=val,
        test=test,
        eval_2026=([p.description for p in stream.evaluation], stream.eval_labels),
        eval_2026_ids=[f"{p.source}:{p.source_id}" for p in stream.evaluation],
        arms=list(arms) or list(train_b.arms),
    )


def metrics(labels, predicted) -> dict:
    from cloud.training.evaluate_b import metrics as split_metrics

    return split_metrics(np.asarray(labels, dtype=int), np.asarray(predicted, dtype=int))


def run_week(replay: Replay, week: str, drops: list[Path], work: Path, previous: FeatureTable | None) -> dict:
    """One weekly job on every drop so far; returns the week's entry (and keeps its feature rows)."""
    from cloud.ingest.command import ingest_file
    from cloud.ingest.file_drop import read_records
    from cloud.ingest.manifest import read_manifest, write_manifest
    from cloud.ingest.normalize import Batch, normalize
    from cloud.training.pseudo_label import select_arms, write_rows
    from cloud.training.stream_split import split_stream
    from cloud.training.train_b import predict_labels, train_arms
    from shared.probabilities import softmax

    cost = CostMeter()
    week_dir = work / week
    with cost.step("ingest"):
        ingest_dir = week_dir / "ingest"
        write_manifest(ingest_dir, [ingest_file(drop, ingest_dir / "raw") for drop in drops])
    with cost.step("normalize"):
        raw = read_manifest(ingest_dir)
        result = normalize(Batch(r.name, read_records(ingest_dir / r.path)) for r in raw)
        with atomic_directory(week_dir / "normalized") as staging:
            atomic_write_jsonl(staging / "postings.jsonl", (p.to_record() for p in result.postings))
            write_json_atomic(staging / "report.json", result.report())
    split = split_stream(result.postings, replay.pseudo["eval_fraction"])
    if not split.pool:
        raise UserError(f"{week}: no postings left for pseudo-labelling after the hold-out")
    with cost.step("pseudo_label"):
        pool_logits = replay.scorer.logits([p.description for p in split.pool])
        calibrated = replay.scorer.calibration.probabilities(pool_logits)
        selections, arms_report = select_arms(
            split.pool,
            calibrated,
            softmax(pool_logits),
            replay.arms,
            replay.pseudo["threshold"],
            replay.pseudo["max_class_ratio"],
        )
        pseudo_dir = week_dir / "pseudo_labels"
        pseudo_dir.mkdir(parents=True, exist_ok=True)
        for arm, kept in selections.items():
            write_rows(pseudo_dir / f"{arm}.csv", [c.row() for c in kept])
    with cost.step("train_b"):
        best, outcomes, skipped = train_arms(
            replay.arms,
            pseudo_dir,
            replay.train,
            replay.val,
            replay.eval_2026,
            replay.config,
            replay.train_b.max_rows_per_arm,
            replay.train_b.pseudo_weight,
            log=click.echo,
            cache=replay.scorer.cache,
        )
    in_week = [week_of(p) == week for p in split.evaluation]
    slice_texts = [p.description for p, keep in zip(split.evaluation, in_week) if keep]
    slice_labels = [label for label, keep in zip(split.eval_labels, in_week) if keep]
    with cost.step("evaluate"):
        evaluation, predictions = {}, {}
        for name, (texts, labels) in {
            "eval_2026": replay.eval_2026,
            "week_slice": (slice_texts, slice_labels),
            "test_2025": replay.test,
        }.items():
            a_pred = replay.scorer.logits(texts).argmax(axis=1) if texts else np.zeros(0, dtype=int)
            b_pred = predict_labels(best.result, replay.config, texts, replay.scorer.cache) if texts else a_pred
            evaluation[name] = {"model_a": metrics(labels, a_pred), "model_b": metrics(labels, b_pred)}
            predictions[name] = {"model_a": a_pred.tolist(), "model_b": np.asarray(b_pred).tolist()}
    with cost.step("monitoring"):
        arrived = [p for p in result.postings if week_of(p) == week]
        texts = [p.description for p in arrived]
        probs = replay.scorer.calibration.probabilities(replay.scorer.logits(texts)) if texts else np.zeros((0, 2))
        table = project(
            texts,
            probs.argmax(axis=1),
            probs.max(axis=1),
            model="model_a",
            source=[p.source for p in arrived],
            timestamp=[p.extra.get("first_seen") for p in arrived],
        )
        monitoring = window_figures(replay.baseline, previous, table, replay.settings)
    entry = {
        "week": week,
        "arrived": sum(1 for p in result.postings if week_of(p) == week),
        "drops": len(drops),
        "normalize": {
            k: v for k, v in result.report().items() if k in ("records_seen", "kept", "quarantined", "non_english")
        },
        "quarantined_by_reason": dict(result.quarantined_by_reason),
        "stream": split.summary(),
        "week_slice": {"labelled": len(slice_labels), "class_counts": _counts(slice_labels)},
        "pseudo_labels": {
            arm: {k: r[k] for k in ("kept", "kept_per_class", "usable")} for arm, r in arms_report.items()
        },
        "model_b": {
            "arm": best.arm,
            "arms": {o.arm: o.summary() for o in outcomes},
            "skipped": skipped,
            "training_rows": len(replay.train[0]) + best.rows_2026,
        },
        "evaluation": evaluation,
        "monitoring": monitoring,
        "cost": cost.report(),
    }
    extras = {
        "table": table,
        "predictions": predictions,
        "slice_postings": [p for p, keep in zip(split.evaluation, in_week) if keep],
        "slice_labels": slice_labels,
    }
    best.result = None
    return entry, extras


def week_of(posting) -> str | None:
    return iso_week(posting.extra.get("first_seen") or posting.posted_date or "")


def _counts(labels: list[int]) -> dict[str, int]:
    return {str(k): labels.count(k) for k in (0, 1)}


def hypotheses(
    entries_extras: list[tuple[dict, dict]], eval_2026: Replay, rising: set[str], limit: int
) -> dict[str, list[dict]]:
    """Postings where A is wrong and B right that name a skill rising in 2026, and the reverse list.

    Sources: the 2026 evaluation split scored by the last week's B, and each week's own hold-out
    slice scored by that week's B. Texts stay in the artifacts (the job-radar stream's are unlicensed)."""
    from shared.skills import skill_names

    found = {"a_wrong_b_right": [], "b_wrong_a_right": []}
    last_entry, last_extras = entries_extras[-1]
    candidates = [
        (last_entry["week"], "eval_2026", i, text, label, eval_2026.eval_2026_ids[i], None)
        for i, (text, label) in enumerate(zip(*eval_2026.eval_2026))
    ]
    scored = [(last_extras["predictions"]["eval_2026"], candidates)]
    for entry, extras in entries_extras:
        postings = extras["slice_postings"]
        scored.append(
            (
                extras["predictions"]["week_slice"],
                [
                    (entry["week"], "week_slice", i, p.description, label, f"{p.source}:{p.source_id}", p.title)
                    for i, (p, label) in enumerate(zip(postings, extras["slice_labels"]))
                ],
            )
        )
    for predictions, rows in scored:
        for week, split, i, text, label, posting_id, title in rows:
            a, b = predictions["model_a"][i], predictions["model_b"][i]
            if a == b:
                continue
            named = [s for s in skill_names(text) if s in rising]
            if not named:
                continue
            kind = "a_wrong_b_right" if b == label else "b_wrong_a_right"
            found[kind].append(
                {
                    "week": week,
                    "split": split,
                    "id": posting_id,
                    "title": title,
                    "text": text,
                    "label": int(label),
                    "model_a": int(a),
                    "model_b": int(b),
                    "rising_skills": named,
                }
            )
    counts = {kind: len(rows) for kind, rows in found.items()}
    return {"counts": counts, **{kind: rows[:limit] for kind, rows in found.items()}}


def replay_document(replay: Replay, entries_extras: list[tuple[dict, dict]], stream_file: Path) -> dict:
    tables = [extras["table"] for _, extras in entries_extras]
    all_2026 = FeatureTable.concat(tables)
    movement = skill_movement(replay.baseline, all_2026, replay.settings.min_count, replay.settings.top_skills)
    rising = {row["skill"] for row in movement["rising"]}
    from shared.monitoring.trends import shares_by_group

    weekly_shares = shares_by_group(all_2026, all_2026.iso_weeks())
    tracked = [r["skill"] for r in movement["rising"]] + [r["skill"] for r in movement["falling"]]
    return {
        "format": 1,
        "kind": "replay",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "stream": {"file": stream_file.name, "weeks": len(entries_extras), "postings_kept": len(all_2026)},
        "baseline": {
            "name": BASELINE_NAME,
            "documents": len(replay.baseline),
            "class_counts": class_counts(replay.baseline),
        },
        "settings": replay.settings.to_json(),
        "train_b": {
            "arms": replay.arms,
            "epochs": replay.config.epochs,
            "freeze_layers": replay.config.freeze_layers,
            "max_rows_per_arm": replay.train_b.max_rows_per_arm,
            "replay_2025": replay.train_b.replay_2025,
        },
        "weeks": [entry for entry, _ in entries_extras],
        "movement_2026": movement,
        "skill_weeks": {
            skill: {
                week: {"count": shares["counts"].get(skill, 0), "documents": shares["documents"]}
                for week, shares in weekly_shares.items()
            }
            for skill in tracked
        },
        "hypotheses": hypotheses(entries_extras, replay, rising, replay.settings.hypotheses),
    }


@click.command("replay-weeks")
@click.option(
    "--stream",
    "stream_file",
    type=click.Path(path_type=Path),
    default=None,
    help=f"The dated stream (default: $CAREEREDGE_SHARED_DATA or ../shared/data, then {STREAM_DIR}/{STREAM_FILE}).",
)
@model_a_option()
@splits_option()
@click.option(
    "--eval-normalized",
    type=click.Path(path_type=Path),
    default=Path("data/normalized"),
    show_default=True,
    help="The normalized 2026 stream whose hold-out is the 2026 evaluation split.",
)
@params_option()
@click.option("--work", type=click.Path(path_type=Path), default=Path("artifacts/replay"), show_default=True)
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path),
    default=Path("artifacts/monitoring/weekly.json"),
    show_default=True,
)
@click.option("--weeks", "max_weeks", type=int, default=None, help="Replay only the first N weeks.")
@click.option("--arm", "arms", multiple=True, help="Train only these pseudo-label arms (default: train_b.arms).")
@click.option(
    "--train-b",
    "train_b_overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a train_b setting for the replay (e.g. max_rows_per_arm=400, replay_2025=200).",
)
@click.option("--threads", type=int, default=None, help="torch threads (default: all cores).")
def replay_weeks_command(
    stream_file,
    model_a,
    splits,
    eval_normalized,
    params_path,
    work,
    out_file,
    max_weeks,
    arms,
    train_b_overrides,
    threads,
):
    """Replay the dated 2026 stream week by week: drop, normalize, pseudo-label, train B, evaluate, monitor."""
    stream_file = stream_file or default_stream()
    if not stream_file.is_file():
        click.echo(f"replay-weeks: no dated stream at {stream_file}; nothing to replay (it is not part of a clone)")
        return
    if max_weeks is not None and max_weeks < 1:
        raise UserError("--weeks must be at least 1")
    overrides = {}
    for item in train_b_overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--train-b {item!r}: expected KEY=VALUE")
        from cloud.training.train_b import TrainBSettings

        if key.strip() not in TrainBSettings.__dataclass_fields__:
            known = ", ".join(sorted(TrainBSettings.__dataclass_fields__))
            raise UserError(f"--train-b {item!r}: unknown train_b setting (known: {known})")
        overrides[key.strip()] = value.strip()
    replay = prepare(params_path, model_a, splits, eval_normalized, arms, threads, overrides)
    drops = weekly_drops(stream_file, work / "drops")
    weeks = list(drops)[:max_weeks]
    done, previous = [], None
    for n, week in enumerate(weeks, 1):
        click.echo(f"replay-weeks: {week} ({n}/{len(weeks)})", err=True)
        entry, extras = run_week(replay, week, [drops[w] for w in weeks[:n]], work, previous)
        done.append((entry, extras))
        previous = extras["table"]
        click.echo(week_line(entry))
        # Written after every week: an interrupted replay keeps what it finished.
        write_json_atomic(out_file, replay_document(replay, done, stream_file))
    click.echo(f"replay-weeks: {len(done)} weeks -> {out_file}")


def week_line(entry: dict) -> str:
    ev, cost = entry["evaluation"], entry["cost"]

    def acc(split, model):
        value = ev[split][model]["accuracy"]
        return "  n/a" if value is None else f"{value:.3f}"

    return (
        f"{entry['week']}: {entry['arrived']:4d} arrived | 2026 eval A {acc('eval_2026', 'model_a')} "
        f"B {acc('eval_2026', 'model_b')} | week slice (n={ev['week_slice']['model_a']['n']}) "
        f"A {acc('week_slice', 'model_a')} B {acc('week_slice', 'model_b')} | 2025 test A "
        f"{acc('test_2025', 'model_a')} B {acc('test_2025', 'model_b')} | arm {entry['model_b']['arm']} | "
        f"{cost['wall_s']:.0f} s wall, {cost['cpu_s']:.0f} s CPU, load {cost['load_avg_1m']}"
    )
