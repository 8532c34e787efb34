"""`careeredge-cloud train-b`: Model B = A's architecture, trained on 2025 train + selected 2026 postings.

One B candidate is trained per usable pseudo-label arm (model_a / taxonomy / agreement), with the
same fine-tuning loop as A (`cloud.training.finetune.fine_tune`). By default B starts from A's
weights (continual training: one epoch instead of A's six, with a replay sample of the 2025 data
so A's knowledge is kept). Each candidate is scored on the 2026 evaluation split; the best one is
saved as `artifacts/model_b_vN/` and (unless --no-export) exported to `artifacts/bundles/model_b_vN/`.
`arms.json` beside it reports every arm, winner or not.

Selection: the default arm is the one winning on the 2026 evaluation split. That makes the 2026
figure of the winning arm optimistically biased (selection on the evaluation set); `arms.json` shows
all arms so the spread is visible.

B's settings are params.yaml's `train_b:` section, read once into `TrainBSettings`. `export-b` (the
bundle of a B, or of its device student) is `cloud.export.export_b`.
"""

from __future__ import annotations

import csv
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from cloud.artifacts import atomic_directory, ensure_writable_dir, next_version, write_json_atomic
from cloud.cli_options import model_a_option, normalized_option, params_option, pseudo_labels_option, splits_option
from cloud.params import load_params
from cloud.training.pseudo_label import ARMS, pseudo_label_settings
from cloud.training.stream_split import split_stream
from shared.errors import UserError

A_CONFIG_HINT = "B copies A's preprocessing and max_length from it"  # when A's train_log.json is missing
DESCRIPTION = (
    "Model B is retrained weekly: it starts from Model A and is fine-tuned on the 2025 training "
    "split plus 2026 postings labelled by the winning pseudo-label arm ({arm})."
)


@dataclass(frozen=True)
class TrainBSettings:
    """params.yaml `train_b:`, typed and checked once (a bad value is one UserError naming its key).

    The row caps exist for the time budget (normalize -> B bundle in 15 min on 2 CPU cores, three arms):
    each arm trains on at most `max_rows_per_arm` 2026 postings plus a stratified `replay_2025` sample of
    the 2025 train split (B starts from A, so the replay only has to stop it forgetting). None (params:
    "all") lifts a cap."""

    epochs: int = 1
    init: str = "model_a"  # "model_a": start from A's weights; else a base encoder, as A starts
    learning_rate: float | None = None  # None: A's train.learning_rate
    freeze_layers: int | None = None  # None: A's train.freeze_layers
    arms: tuple[str, ...] = ARMS
    max_rows_per_arm: int | None = 400
    replay_2025: int | None = 200
    pseudo_weight: float | str = 1.0  # loss weight of a 2026 row vs a 2025 row, or "confidence" (`pseudo_weights`)
    seed: int = 2026  # B's own training (batch order, dropout) and its replay sample; A's train.seed is A's
    windows: int = 1  # max_length windows B reads per posting when scored and served (shared.reading)

    @classmethod
    def from_params(cls, params: dict, **overrides) -> TrainBSettings:
        """`train_b:` of `params` with `overrides` (e.g. a study-b setting, values as text) over it; keys
        that are not settings (`version`, which names DVC's outputs) are left to their readers."""
        parsers = {
            "epochs": int,
            "init": str,
            "learning_rate": lambda v: None if v is None else float(v),
            "freeze_layers": lambda v: None if v is None else int(v),
            "arms": tuple,
            "max_rows_per_arm": _row_cap,
            "replay_2025": _row_cap,
            "pseudo_weight": lambda v: v if v == "confidence" else float(v),
            "seed": int,
            "windows": reading_windows_setting,
        }
        values = {}
        for key, value in {**(params.get("train_b") or {}), **overrides}.items():
            if key not in parsers:
                continue
            try:
                values[key] = parsers[key](value)
            except (TypeError, ValueError) as exc:
                raise UserError(f"train_b.{key} = {value!r}: {exc}") from None
        return cls(**values)

    def fine_tune_config(self, params: dict, base: str, model_a_config: dict, threads: int | None = None):
        """A's recipe (params `model:` / `train:`) with B's epochs, seed, learning rate, frozen layers and
        windows. B reads text exactly as A does: A's recorded preprocessing and max_length."""
        from cloud.training.finetune import FineTuneConfig

        return FineTuneConfig.from_params(
            params,
            base=base,
            epochs=self.epochs,
            seed=self.seed,
            learning_rate=self.learning_rate,
            threads=threads,
            preprocessing=model_a_config.get("preprocessing"),
            max_length=model_a_config.get("max_length"),
            freeze_layers=self.freeze_layers,
            windows=self.windows,
        )


def _row_cap(value) -> int | None:
    return None if value in (None, "all") else int(value)


def reading_windows_setting(value) -> int:
    """train_b.windows (how many max_length windows B reads per posting) checked, or a UserError."""
    from shared.reading import check_windows

    try:
        return check_windows(value)
    except ValueError as exc:
        raise UserError(f"train_b.windows: {exc}") from None


@dataclass
class ArmOutcome:
    arm: str
    rows_2026: int
    eval_accuracy: float
    eval_macro_f1: float
    val_2025_accuracy: float
    val_2025_macro_f1: float
    best_epoch: int
    result: object = None  # FineTuneResult, dropped once a better arm is found

    def summary(self) -> dict:
        return {
            "rows_2026": self.rows_2026,
            "eval_2026_accuracy": round(self.eval_accuracy, 4),
            "eval_2026_macro_f1": round(self.eval_macro_f1, 4),
            "val_2025_accuracy": round(self.val_2025_accuracy, 4),
            "val_2025_macro_f1": round(self.val_2025_macro_f1, 4),
            "best_epoch": self.best_epoch,
        }

    def beats(self, other: ArmOutcome | None) -> bool:
        key = lambda o: (o.eval_accuracy, o.eval_macro_f1, o.val_2025_accuracy)  # noqa: E731
        return other is None or key(self) > key(other)


def read_pseudo_rows(path: Path, max_rows: int | None = None, exclude_ids=frozenset()) -> list[dict]:
    """An arm's rows (minus `exclude_ids`); over `max_rows`, the most confident ones, class mix kept."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["id"] not in exclude_ids]
    if max_rows is not None and len(rows) > max_rows:
        rows = _cap_stratified(rows, max_rows)
    return rows


def read_pseudo_labels(path: Path, max_rows: int | None = None, exclude_ids=frozenset()) -> tuple[list[str], list[int]]:
    rows = read_pseudo_rows(path, max_rows, exclude_ids)
    return [r["text"] for r in rows], [int(r["label"]) for r in rows]


def pseudo_weights(rows: list[dict], pseudo_weight) -> list[float]:
    """Per-row loss weight of 2026 rows relative to the 2025 rows (weight 1): a number, or
    "confidence" = the arm's calibrated confidence (1.0 for taxonomy rows)."""
    if pseudo_weight == "confidence":
        return [float(r.get("confidence") or 1.0) for r in rows]
    weight = float(pseudo_weight)
    if not weight > 0:
        raise UserError(f"train_b.pseudo_weight must be > 0 or 'confidence', got {pseudo_weight!r}")
    return [weight] * len(rows)


def _cap_stratified(rows: list[dict], max_rows: int) -> list[dict]:
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    kept = []
    for members in by_label.values():
        share = max(1, round(max_rows * len(members) / len(rows)))
        # Most confident first; the id hash breaks ties (the taxonomy arm's confidence is always 1).
        members.sort(key=lambda r: (-float(r.get("confidence") or 1.0), _stable_hash(r["id"])))
        kept.extend(members[:share])
    return kept


def replay_sample(texts: list[str], labels: list[int], size: int | None, seed: int) -> tuple[list[str], list[int]]:
    """A stratified, seeded subsample of the 2025 train split (all of it when size is None or larger)."""
    if size is None or size >= len(texts):
        return list(texts), list(labels)
    from sklearn.model_selection import train_test_split

    chosen, _ = train_test_split(list(range(len(texts))), train_size=size, stratify=labels, random_state=seed)
    return [texts[i] for i in sorted(chosen)], [labels[i] for i in sorted(chosen)]


def _stable_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_prefix_cache(config):
    """One frozen-bottom cache for every candidate that starts from the same weights (None if nothing is frozen)."""
    from cloud.training.frozen_prefix import PrefixCache

    return PrefixCache(progress=config.progress) if config.freeze_layers > 0 else None


def warm_prefix_cache(cache, config, texts: list[str]) -> None:
    """Run the frozen bottom of `config.base` once over `texts` (raw postings), one progress bar for all."""
    if cache is None:
        return
    from cloud.training.base_models import load_pretrained_classifier
    from cloud.training.finetune import encode
    from cloud.training.frozen_prefix import FrozenPrefix
    from shared.labels import LABEL_NAMES
    from shared.text import load_tokenizer, model_input

    model, hf_tokenizer = load_pretrained_classifier(config.base, 2, dict(LABEL_NAMES))
    with tempfile.TemporaryDirectory(prefix="careeredge-tok-") as tok_dir:
        hf_tokenizer.save_pretrained(tok_dir)
        tokenizer = load_tokenizer(Path(tok_dir) / "tokenizer.json", config.max_length)
    inputs = [model_input(t, config.preprocessing) for t in texts]
    cache.ensure(FrozenPrefix(model, config.freeze_layers), lambda batch: encode(tokenizer, batch), inputs)


def predict_labels(result, config, texts: list[str], cache=None):
    """Argmax labels of a fresh fine-tune result on raw postings, read with the config's preprocessing.
    With a prefix cache only the trained top runs (the bottom is the frozen one the cache holds)."""
    from cloud.training.finetune import TrainedClassifier, read_logits
    from shared.text import load_tokenizer, model_input

    tokenizer = load_tokenizer(result.tokenizer_json, config.max_length)
    if cache is None or config.freeze_layers == 0:
        classifier = TrainedClassifier(result.model, tokenizer, config.preprocessing, config.max_length, config.windows)
        return classifier.predict_logits(texts).argmax(axis=1)
    from cloud.training.frozen_prefix import FrozenPrefix

    prefix = FrozenPrefix(result.model, config.freeze_layers)
    inputs = [model_input(t, config.preprocessing) for t in texts]
    return read_logits(
        tokenizer, inputs, config.windows, lambda items, encode_batch: cache.logits(prefix, encode_batch, items)
    ).argmax(axis=1)


def score(result, config, texts: list[str], labels: list[int], cache=None) -> tuple[float, float]:
    """Accuracy and macro-F1 of a fresh fine-tune result, with the config's own preprocessing."""
    from sklearn.metrics import accuracy_score, f1_score

    predicted = predict_labels(result, config, texts, cache)
    return (
        float(accuracy_score(labels, predicted)),
        float(f1_score(labels, predicted, average="macro", labels=[0, 1], zero_division=0)),
    )


def write_training_csv(path: Path, texts: list[str], labels: list[int]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels))
    return path


def train_arms(
    arms, pseudo_dir, train, val, evaluation, config, max_rows=None, pseudo_weight=1.0, log=click.echo, cache=None
) -> tuple[ArmOutcome, list[ArmOutcome], dict]:
    """Train one B candidate per usable arm, one after the other; keep only the best model in memory.

    Every candidate starts from the same weights with the same frozen bottom, so the bottom runs once
    per distinct text for all arms (`cache`), up front with one progress bar."""
    from cloud.training.finetune import fine_tune

    best, outcomes, skipped = None, [], {}
    rows = {arm: read_pseudo_rows(pseudo_dir / f"{arm}.csv", max_rows) for arm in arms}
    if cache is None:
        cache = new_prefix_cache(config)
    usable = [arm for arm in arms if len({r["label"] for r in rows[arm]}) >= 2]
    log(f"train-b: frozen bottom once for every arm ({', '.join(usable) or 'none'})", err=True)
    warm_prefix_cache(
        cache, config, train[0] + val[0] + evaluation[0] + [r["text"] for arm in usable for r in rows[arm]]
    )
    for arm in arms:
        texts, labels = [r["text"] for r in rows[arm]], [int(r["label"]) for r in rows[arm]]
        if len(set(labels)) < 2:
            skipped[arm] = "no usable pseudo-labels (missing, empty or one class)"
            log(f"train-b: arm {arm}: skipped ({skipped[arm]})", err=True)
            continue
        log(f"train-b: arm {arm}: {len(train[0])} 2025 + {len(texts)} 2026 postings", err=True)
        weights = [1.0] * len(train[0]) + pseudo_weights(rows[arm], pseudo_weight)
        result = fine_tune(
            train[0] + texts, train[1] + labels, val[0], val[1], config, sample_weights=weights, prefix_cache=cache
        )
        accuracy, macro_f1 = score(result, config, evaluation[0], evaluation[1], cache)
        history = result.history[result.best_epoch - 1]
        outcome = ArmOutcome(
            arm,
            len(texts),
            accuracy,
            macro_f1,
            history["val_accuracy"],
            history["val_macro_f1"],
            result.best_epoch,
            result,
        )
        log(
            f"train-b: arm {arm}: 2026 eval accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f}; "
            f"2025 val accuracy {outcome.val_2025_accuracy:.3f}",
            err=True,
        )
        outcomes.append(outcome)
        if outcome.beats(best):
            if best is not None:
                best.result = None
            best = outcome
        else:
            outcome.result = None
    if best is None:
        raise UserError(f"no pseudo-label arm is usable ({skipped}); run pseudo-label on a stream with both classes")
    return best, outcomes, skipped


@click.command("train-b")
@splits_option()
@pseudo_labels_option()
@normalized_option()
@model_a_option(help="Model A's directory (hf/ + train_log.json); B starts from its weights.")
@click.option("--artifacts", type=click.Path(path_type=Path), default=Path("artifacts"), show_default=True)
@click.option(
    "--version", "version", default="auto", show_default=True, help="N for model_b_vN, or 'auto' (next free)."
)
@params_option()
@click.option("--arm", "only_arms", multiple=True, type=click.Choice(ARMS), help="Train only these arms.")
@click.option("--epochs", type=int, default=None, help="Override train_b.epochs.")
@click.option("--threads", type=int, default=None, help="torch threads (default: all cores).")
@click.option("--export/--no-export", default=True, show_default=True, help="Export the INT8 bundle too.")
def train_b_command(
    splits, pseudo_dir, normalized, model_a, artifacts, version, params_path, only_arms, epochs, threads, export
) -> None:
    """Train one Model B candidate per pseudo-label arm; keep the one best on the 2026 eval split."""
    from cloud.data.splits import read_split
    from cloud.ingest.normalized import load_postings
    from cloud.training.model_io import recorded_config, save_classifier

    params = load_params(params_path)
    settings = TrainBSettings.from_params(params, **({"epochs": epochs} if epochs else {}))
    version_number = next_version(artifacts) if version == "auto" else _parse_version(version)
    name = f"model_b_v{version_number}"
    base = str(model_a / "hf") if settings.init == "model_a" else settings.init
    if settings.init == "model_a" and not (model_a / "hf" / "config.json").is_file():
        raise UserError(f"{model_a}: Model A not found; run `careeredge-cloud train-a` first (B starts from A)")
    a_config = recorded_config(model_a, A_CONFIG_HINT) if settings.init == "model_a" else {}
    config = settings.fine_tune_config(params, base, a_config, threads)

    train = replay_sample(*read_split(splits / "train.csv"), settings.replay_2025, settings.seed)
    val = read_split(splits / "val.csv")
    stream = split_stream(load_postings(normalized), pseudo_label_settings(params)["eval_fraction"])
    if len(set(stream.eval_labels)) < 2:
        raise UserError("the 2026 evaluation split has fewer than two classes; cannot pick an arm on it")
    evaluation = ([p.description for p in stream.evaluation], stream.eval_labels)
    max_rows = settings.max_rows_per_arm
    best, outcomes, skipped = train_arms(
        list(only_arms) or list(settings.arms),
        pseudo_dir,
        train,
        val,
        evaluation,
        config,
        max_rows,
        settings.pseudo_weight,
    )

    ensure_writable_dir(artifacts)
    out_dir = artifacts / name
    with tempfile.TemporaryDirectory(prefix="careeredge-train-b-") as scratch:
        best_texts, best_labels = read_pseudo_labels(pseudo_dir / f"{best.arm}.csv", max_rows)
        train_csv = write_training_csv(
            Path(scratch) / f"train_{best.arm}.csv", train[0] + best_texts, train[1] + best_labels
        )
        with atomic_directory(out_dir) as staging:
            save_classifier(best.result, config, staging, name, train_csv, DESCRIPTION.format(arm=best.arm))
            write_json_atomic(
                staging / "arms.json",
                {
                    "name": name,
                    "default_arm": best.arm,
                    "selection": "highest 2026 eval accuracy",
                    "init": settings.init,
                    "epochs": config.epochs,
                    "learning_rate": config.learning_rate,
                    "freeze_layers": config.freeze_layers,
                    "pseudo_weight": settings.pseudo_weight,
                    "windows": config.windows,
                    "eval_2026_postings": len(evaluation[1]),
                    "replay_2025_rows": len(train[1]),
                    "max_rows_per_arm": max_rows,
                    "arms": {o.arm: o.summary() for o in outcomes},
                    "skipped": skipped,
                },
            )
    click.echo(f"train-b: {name} <- arm {best.arm} (2026 eval accuracy {best.eval_accuracy:.3f}) -> {out_dir}")
    for outcome in outcomes:
        click.echo(
            f"  arm {outcome.arm:9s} 2026 eval acc {outcome.eval_accuracy:.3f} F1 {outcome.eval_macro_f1:.3f}"
            f" | 2025 val acc {outcome.val_2025_accuracy:.3f} | {outcome.rows_2026} 2026 rows"
        )
    if export:
        from cloud.export.command import export_session
        from cloud.export.export_b import base_model_name, export_b

        export_b(
            out_dir,
            artifacts / "bundles" / name,
            splits,
            config.max_length,
            version_number,
            base_model=base_model_name({"base": config.base}, params),
            stream=stream,
            session=export_session(params),
        )


def _parse_version(value: str) -> int:
    if not str(value).isdigit() or int(value) < 1:
        raise UserError(f"--version must be a positive integer or 'auto', got {value!r}")
    return int(value)
