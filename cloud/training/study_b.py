"""`careeredge-cloud study-b`: Model B's training settings side by side, chosen on data that is not reported.

Each `--setting NAME:key=value,...` (keys: arm, epochs, learning_rate, replay_2025, max_rows_per_arm,
pseudo_weight, freeze_layers, seed; unset keys come from params.yaml's `train_b`) trains one B candidate.
Every candidate is scored on four sets:

* `val_2025`  - the 2025 validation split (also picks each candidate's best epoch);
* `dev_2026`  - a 2026 development slice carved from the pseudo-label pool by the same stable hash as
  the evaluation split (bucket in [dev_start, dev_start + dev_fraction), dev_start defaulting to
  eval_fraction), labelled by the title taxonomy; its postings are removed from every arm's training rows
  here. Runs with successive `--dev-start`s score every pool posting once, each by a candidate that never
  trained on it (folds);
* `eval_2026` and `test_2025` - the report's splits, shown but not used to choose.

`--interpolate ALPHA` (repeatable) also scores every candidate at A + ALPHA * (candidate - A)
(`cloud.training.interpolate`, WiSE-FT), as extra rows `NAME@ALPHA`: no extra training.
`--windows N` (repeatable) also scores every candidate (and Model A) reading up to N windows of
max_length word pieces per posting (`shared.reading`), as extra rows `NAME/wN`: no extra training.
`--soup` also scores the mean of all the settings' weights (`cloud.training.interpolate.average`, a
uniform model soup; e.g. the same setting with several seeds) as a row `soup`.

The recommended setting is the one with the best mean of dev_2026 and val_2025 accuracy. Model A's
figures on the same sets are the reference row. All candidates start from Model A with its bottom
frozen, so the frozen bottom runs once per posting for the whole study (one progress bar).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import click

from cloud.artifacts import write_json_atomic
from cloud.cli_options import model_a_option, normalized_option, params_option, pseudo_labels_option, splits_option
from cloud.params import load_params
from cloud.training.interpolate import average, check_alpha, interpolate
from cloud.training.pseudo_label import ARMS, pseudo_label_settings
from cloud.training.stream_split import eval_bucket, split_stream
from cloud.training.train_b import (
    A_CONFIG_HINT,
    TrainBSettings,
    new_prefix_cache,
    predict_labels,
    pseudo_weights,
    read_pseudo_rows,
    reading_windows_setting,
    replay_sample,
    warm_prefix_cache,
)
from shared.errors import UserError
from shared.labels import classify_title

SETTING_KEYS = {
    "arm",
    "epochs",
    "learning_rate",
    "replay_2025",
    "max_rows_per_arm",
    "pseudo_weight",
    "freeze_layers",
    "seed",
}


def parse_setting(text: str) -> tuple[str, dict]:
    """ "name:key=value,key=value" -> (name, {key: value}); values stay strings until used."""
    name, _, body = text.partition(":")
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise UserError(f"--setting {text!r}: expected NAME:key=value,... with a plain NAME")
    values = {}
    for item in filter(None, body.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in SETTING_KEYS:
            raise UserError(f"--setting {text!r}: {item!r} is not key=value with key in {sorted(SETTING_KEYS)}")
        values[key] = value
    if values.get("arm", "taxonomy") not in ARMS:
        raise UserError(f"--setting {text!r}: unknown arm {values['arm']!r}")
    return name, values


def dev_slice(pool, eval_fraction: float, dev_fraction: float, dev_start: float | None = None):
    """Pool postings whose stable hash falls in [dev_start, dev_start + dev_fraction) (by default just after
    the evaluation split's share); (ids, labelled postings, labels). Unplaceable titles are held out too
    (no training on them), but not scored. Successive `dev_start`s cut the pool into folds."""
    start = eval_fraction if dev_start is None else dev_start
    if not eval_fraction <= start < 1.0:
        raise UserError(
            f"--dev-start must be in [{eval_fraction:.2f}, 1) (the evaluation split comes first), got {start}"
        )
    if not 0.0 < dev_fraction <= 1.0 - start + 1e-9:
        raise UserError(
            f"--dev-fraction must be in (0, {1.0 - start:.2f}] from --dev-start {start:.2f}, got {dev_fraction}"
        )
    held = [p for p in pool if start <= eval_bucket(p.source_id) < start + dev_fraction]
    labelled = [(p, classify_title(p.title)) for p in held]
    labelled = [(p, label) for p, label in labelled if label is not None]
    return {p.source_id for p in held}, [p.description for p, _ in labelled], [label for _, label in labelled]


def accuracy(labels, predicted) -> float:
    import numpy as np

    return round(float((np.asarray(labels) == np.asarray(predicted)).mean()), 4) if len(labels) else float("nan")


@click.command("study-b")
@click.option(
    "--setting",
    "settings_text",
    multiple=True,
    required=True,
    help="NAME:key=value,... (keys: " + ", ".join(sorted(SETTING_KEYS)) + "); repeatable.",
)
@click.option(
    "--dev-fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="Share of the 2026 stream (by stable hash) carved from the pool as the dev slice.",
)
@click.option(
    "--dev-start",
    type=float,
    default=None,
    help="Where the dev slice starts in the stable-hash range [default: right after the evaluation "
    "split]; run the study with successive starts to score every pool posting once (folds).",
)
@splits_option()
@pseudo_labels_option()
@normalized_option()
@model_a_option()
@params_option()
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    default=Path("artifacts/study_b/study.json"),
    show_default=True,
)
@click.option(
    "--interpolate",
    "alphas",
    type=float,
    multiple=True,
    help="Also score each candidate interpolated towards A: weights A + ALPHA * (B - A); repeatable.",
)
@click.option(
    "--windows",
    "window_counts",
    type=int,
    multiple=True,
    help="Also score each candidate reading up to N windows of max_length per posting; repeatable.",
)
@click.option("--soup", is_flag=True, help="Also score the average of all settings' weights (a model soup).")
@click.option("--threads", type=int, default=None)
def study_b_command(
    settings_text,
    dev_fraction,
    dev_start,
    splits,
    pseudo_dir,
    normalized,
    model_a,
    params_path,
    out_path,
    alphas,
    window_counts,
    soup,
    threads,
) -> None:
    """Train B candidates for several settings; score them on 2025 val + a 2026 dev slice (and the report's splits)."""
    from cloud.data.splits import read_split
    from cloud.ingest.normalized import load_postings
    from cloud.training.finetune import FineTuneResult, fine_tune
    from cloud.training.model_io import load_classifier, recorded_config

    params = load_params(params_path)
    # What each row records: the values as written (params.yaml or --setting), unset ones as their defaults.
    base_settings = {**asdict(TrainBSettings()), **(params.get("train_b") or {})}
    settings = [parse_setting(text) for text in settings_text]
    if soup and len(settings) < 2:
        raise UserError("--soup averages the settings' models: give at least two --setting")
    alphas = sorted({check_alpha(a) for a in alphas} - {1.0}, reverse=True)
    readings = [1] + sorted({reading_windows_setting(n) for n in window_counts} - {1})
    eval_fraction = pseudo_label_settings(params)["eval_fraction"]
    stream = split_stream(load_postings(normalized), eval_fraction)
    dev_ids, dev_texts, dev_labels = dev_slice(stream.pool, eval_fraction, dev_fraction, dev_start)
    sets = {
        "val_2025": read_split(splits / "val.csv"),
        "dev_2026": (dev_texts, dev_labels),
        "eval_2026": ([p.description for p in stream.evaluation], stream.eval_labels),
        "test_2025": read_split(splits / "test.csv"),
    }
    train_all = read_split(splits / "train.csv")
    a_config = recorded_config(model_a, A_CONFIG_HINT)
    click.echo(
        f"study-b: dev_2026 {len(dev_labels)} labelled ({len(dev_ids)} held out of the pool), "
        f"eval_2026 {len(stream.eval_labels)}, val_2025 {len(sets['val_2025'][1])}, "
        f"test_2025 {len(sets['test_2025'][1])}",
        err=True,
    )

    members: list = []  # (result, config, entry) per setting, for --soup
    caches, report = (
        {},
        {
            "dev_fraction": dev_fraction,
            "dev_start": eval_fraction if dev_start is None else dev_start,
            "sizes": {k: len(v[1]) for k, v in sets.items()},
            "selection": "best mean of dev_2026 and val_2025 accuracy",
            "settings": {},
        },
    )
    classifier_a = load_classifier(model_a)
    a_result = FineTuneResult(
        model=classifier_a.model, hf_tokenizer=None, tokenizer_json=model_a / "hf" / "tokenizer.json"
    )
    for name, values in settings:
        merged = {**base_settings, **values}
        arm = values.get("arm", "taxonomy")
        setting = TrainBSettings.from_params(params, **{k: v for k, v in values.items() if k != "arm"})
        config = setting.fine_tune_config(params, str(model_a / "hf"), a_config, threads)
        rows = read_pseudo_rows(pseudo_dir / f"{arm}.csv", setting.max_rows_per_arm, dev_ids)
        if len({r["label"] for r in rows}) < 2:
            raise UserError(f"setting {name}: arm {arm} has no usable rows in {pseudo_dir}")
        train = replay_sample(*train_all, setting.replay_2025, setting.seed)
        if config.freeze_layers not in caches:
            shallower = [k for k in caches if caches[k] is not None and 0 < k < config.freeze_layers]
            if shallower and config.freeze_layers > 0:  # run only the extra blocks on cached states
                from cloud.training.frozen_prefix import FrozenPrefix

                caches[config.freeze_layers] = caches[max(shallower)].deepen(
                    FrozenPrefix(classifier_a.model, config.freeze_layers)
                )
            else:
                cache = caches[config.freeze_layers] = new_prefix_cache(config)
                pool_texts = [r["text"] for a in ARMS for r in read_pseudo_rows(pseudo_dir / f"{a}.csv", None, dev_ids)]
                warm_prefix_cache(cache, config, train_all[0] + pool_texts + [t for s in sets.values() for t in s[0]])
            if "model_a" not in report:
                for windows in readings:
                    reading = replace(config, windows=windows)
                    report["model_a" if windows == 1 else f"model_a/w{windows}"] = {
                        s: accuracy(labels, predict_labels(a_result, reading, texts, cache))
                        for s, (texts, labels) in sets.items()
                    }
                click.echo(f"study-b: model A {report['model_a']}", err=True)
        cache = caches[config.freeze_layers]
        started = time.monotonic()
        click.echo(
            f"study-b: {name}: arm {arm}, {len(train[0])} 2025 + {len(rows)} 2026 rows, "
            f"{config.epochs} epoch(s), lr {config.learning_rate}, freeze {config.freeze_layers}, "
            f"weight {merged['pseudo_weight']}",
            err=True,
        )
        result = fine_tune(
            train[0] + [r["text"] for r in rows],
            train[1] + [int(r["label"]) for r in rows],
            *sets["val_2025"],
            config,
            sample_weights=[1.0] * len(train[0]) + pseudo_weights(rows, setting.pseudo_weight),
            prefix_cache=cache,
        )
        entry = {
            "values": {"arm": arm, **{k: merged[k] for k in SETTING_KEYS - {"arm"}}},
            "rows_2025": len(train[0]),
            "rows_2026": len(rows),
            "best_epoch": result.best_epoch,
            "train_seconds": round(time.monotonic() - started, 1),
        }
        for alpha in [1.0] + alphas:
            candidate = (
                result
                if alpha == 1.0
                else FineTuneResult(
                    model=interpolate(classifier_a.model, result.model, alpha),
                    hf_tokenizer=None,
                    tokenizer_json=result.tokenizer_json,
                )
            )
            score_rows(
                report,
                name if alpha == 1.0 else f"{name}@{alpha:g}",
                candidate,
                config,
                readings,
                sets,
                cache,
                {**entry, "values": {**entry["values"], "interpolate": alpha}},
            )
        if soup:
            if members and members[0][1].freeze_layers != config.freeze_layers:
                raise UserError("--soup needs every setting to freeze the same layers (one shared frozen bottom)")
            members.append((result, config, entry))
        save(report, out_path)  # after every setting: a long study keeps what it measured
        del result
    if soup:
        click.echo(f"study-b: soup of {len(members)} settings", err=True)
        first_result, config, entry = members[0]
        souped = FineTuneResult(
            model=average([m[0].model for m in members]), hf_tokenizer=None, tokenizer_json=first_result.tokenizer_json
        )
        score_rows(
            report,
            "soup",
            souped,
            config,
            readings,
            sets,
            caches[config.freeze_layers],
            {
                **entry,
                "values": {**entry["values"], "interpolate": 1.0, "soup": [n for n, _ in settings]},
                "best_epoch": None,
                "train_seconds": sum(m[2]["train_seconds"] for m in members),
            },
        )
        save(report, out_path)
    click.echo(render(report))


def score_rows(report: dict, row: str, candidate, config, readings: list[int], sets: dict, cache, entry: dict) -> None:
    """Score one candidate on every set, once per reading (rows `row` and `row/wN`)."""
    for windows in readings:
        reading = replace(config, windows=windows)
        scores = {
            s: accuracy(labels, predict_labels(candidate, reading, texts, cache)) for s, (texts, labels) in sets.items()
        }
        name = row + ("" if windows == 1 else f"/w{windows}")
        report["settings"][name] = {**entry, "values": {**entry["values"], "windows": windows}, **scores}
        click.echo(f"study-b: {name}: " + ", ".join(f"{s} {v:.3f}" for s, v in scores.items()), err=True)


def save(report: dict, out_path: Path) -> None:
    """Write the study so far, with the recommended row by the selection rule."""
    report["recommended"] = max(
        report["settings"], key=lambda n: (report["settings"][n]["dev_2026"] + report["settings"][n]["val_2025"]) / 2
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_path, report)


def render(report: dict) -> str:
    columns = ("val_2025", "dev_2026", "eval_2026", "test_2025")
    lines = [
        "| setting | arm | rows 2025+2026 | epochs | lr | freeze | weight | alpha | windows | "
        + " | ".join(columns)
        + " |",
        "|---|---|---|---|---|---|---|---|---|" + "---|" * len(columns),
    ]
    for key in [k for k in report if k.startswith("model_a")]:
        a, windows = report[key], key.partition("/w")[2] or "1"
        lines.append(
            f"| Model A | - | - | - | - | - | - | 0 | {windows} | "
            + " | ".join(f"{a.get(c, float('nan')):.3f}" for c in columns)
            + " |"
        )
    for name, entry in report["settings"].items():
        v = entry["values"]
        mark = " (recommended)" if name == report.get("recommended") else ""
        lines.append(
            f"| {name}{mark} | {v['arm']} | {entry['rows_2025']}+{entry['rows_2026']} | {v['epochs']} | "
            f"{v['learning_rate'] or 'A'} | {v['freeze_layers'] or 'A'} | {v['pseudo_weight']} | "
            f"{v.get('interpolate', 1.0):g} | {v.get('windows', 1)} | "
            + " | ".join(f"{entry[c]:.3f}" for c in columns)
            + " |"
        )
    return "\n".join(lines)
