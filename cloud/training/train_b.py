"""`careeredge-cloud train-b`: Model B = A's architecture, trained on 2025 train + selected 2026 postings.

One B candidate is trained per usable pseudo-label arm (model_a / taxonomy / agreement), with the
same fine-tuning loop as A (`cloud.training.finetune.fine_tune`). By default B starts from A's
weights (continual training: one epoch instead of A's six, with a replay sample of the 2025 data
so A's knowledge is kept). Each candidate is scored on the 2026 evaluation split; the best one is
saved as `artifacts/model_b_vN/` and (unless --no-export) exported to `artifacts/bundles/model_b_vN/`.
`arms.json` beside it reports every arm, winner or not.

Note on selection: the issue fixes the rule "the default arm is the one winning on the 2026
evaluation split". That makes the 2026 figure of the winning arm optimistically biased (selection
on the evaluation set); `arms.json` shows all arms so the spread is visible.
"""

from __future__ import annotations

import csv
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from cloud.artifacts import (
    MODEL_B_DIR,
    atomic_directory,
    ensure_writable_dir,
    next_version,
    read_json,
    write_json_atomic,
)
from cloud.export.quantize import DEFAULT_SCHEMES, SCHEMES
from cloud.params import load_params
from cloud.training.pseudo_label import ARMS, pseudo_label_settings
from cloud.training.stream_split import split_stream
from shared.errors import UserError

# The row caps exist for the time budget (normalize -> B bundle in 15 min on 2 CPU cores, three arms):
# each arm trains on at most `max_rows_per_arm` 2026 postings plus a stratified `replay_2025` sample of
# the 2025 train split (B starts from A, so the replay only has to stop it forgetting). "all" lifts a cap.
B_DEFAULTS = {
    "epochs": 1,
    "init": "model_a",
    "learning_rate": None,
    "freeze_layers": None,
    "arms": list(ARMS),
    "max_rows_per_arm": 400,
    "replay_2025": 200,
    "pseudo_weight": 1.0,
    "seed": 2026,
    "windows": 1,
}
DESCRIPTION = (
    "Model B is retrained weekly: it starts from Model A and is fine-tuned on the 2025 training "
    "split plus 2026 postings labelled by the winning pseudo-label arm ({arm})."
)


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


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


def reading_windows_setting(value) -> int:
    """train_b.windows (how many max_length windows B reads per posting) checked, or a UserError."""
    from shared.reading import check_windows

    try:
        return check_windows(value)
    except ValueError as exc:
        raise UserError(f"train_b.windows: {exc}") from None


def _cap(value) -> int | None:
    return None if value in (None, "all") else int(value)


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
@click.option("--splits", type=click.Path(path_type=Path), default=Path("data/processed/splits"), show_default=True)
@click.option(
    "--pseudo-labels",
    "pseudo_dir",
    type=click.Path(path_type=Path),
    default=Path("data/pseudo_labels"),
    show_default=True,
)
@click.option("--normalized", type=click.Path(path_type=Path), default=Path("data/normalized"), show_default=True)
@click.option(
    "--model-a",
    type=click.Path(path_type=Path),
    default=Path("artifacts/model_a_v1"),
    show_default=True,
    help="Model A's directory (hf/ + train_log.json); B starts from its weights.",
)
@click.option("--artifacts", type=click.Path(path_type=Path), default=Path("artifacts"), show_default=True)
@click.option(
    "--version", "version", default="auto", show_default=True, help="N for model_b_vN, or 'auto' (next free)."
)
@click.option(
    "--params", "params_path", type=click.Path(path_type=Path), default=Path("params.yaml"), show_default=True
)
@click.option("--arm", "only_arms", multiple=True, type=click.Choice(ARMS), help="Train only these arms.")
@click.option("--epochs", type=int, default=None, help="Override train_b.epochs.")
@click.option("--threads", type=int, default=None, help="torch threads (default: all cores).")
@click.option("--export/--no-export", default=True, show_default=True, help="Export the INT8 bundle too.")
def train_b_command(
    splits, pseudo_dir, normalized, model_a, artifacts, version, params_path, only_arms, epochs, threads, export
) -> None:
    """Train one Model B candidate per pseudo-label arm; keep the one best on the 2026 eval split."""
    from cloud.data.prepare import read_split
    from cloud.ingest.normalize_command import load_postings
    from cloud.training.finetune import FineTuneConfig
    from cloud.training.model_io import save_classifier

    params = load_params(params_path)
    settings = {**B_DEFAULTS, **(params.get("train_b") or {})}
    version_number = next_version(artifacts) if version == "auto" else _parse_version(version)
    name = f"model_b_v{version_number}"
    base = str(model_a / "hf") if settings["init"] == "model_a" else settings["init"]
    if settings["init"] == "model_a" and not (model_a / "hf" / "config.json").is_file():
        raise UserError(f"{model_a}: Model A not found; run `careeredge-cloud train-a` first (B starts from A)")
    # B must read text exactly as A does: same preprocessing and max_length as A's recorded config.
    a_config = _recorded_config(model_a) if settings["init"] == "model_a" else {}
    # train_b.seed seeds B's own training (batch order, dropout) and its replay sample; A's train.seed is A's.
    config = FineTuneConfig.from_params(
        params,
        base=base,
        epochs=epochs or settings["epochs"],
        seed=int(settings["seed"]),
        learning_rate=_optional_float(settings["learning_rate"]),
        threads=threads,
        preprocessing=a_config.get("preprocessing"),
        max_length=a_config.get("max_length"),
        freeze_layers=_optional_int(settings["freeze_layers"]),
        windows=reading_windows_setting(settings["windows"]),
    )

    train = replay_sample(*read_split(splits / "train.csv"), _cap(settings["replay_2025"]), settings["seed"])
    val = read_split(splits / "val.csv")
    stream = split_stream(load_postings(normalized), pseudo_label_settings(params)["eval_fraction"])
    if len(set(stream.eval_labels)) < 2:
        raise UserError("the 2026 evaluation split has fewer than two classes; cannot pick an arm on it")
    evaluation = ([p.description for p in stream.evaluation], stream.eval_labels)
    max_rows = _cap(settings["max_rows_per_arm"])
    best, outcomes, skipped = train_arms(
        list(only_arms) or settings["arms"],
        pseudo_dir,
        train,
        val,
        evaluation,
        config,
        max_rows,
        settings["pseudo_weight"],
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
                    "init": settings["init"],
                    "epochs": config.epochs,
                    "learning_rate": config.learning_rate,
                    "freeze_layers": config.freeze_layers,
                    "pseudo_weight": settings["pseudo_weight"],
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
        export_b(
            out_dir,
            artifacts / "bundles" / name,
            splits,
            config.max_length,
            version_number,
            base_model=_base_model_name({"base": config.base}, params),
            stream=stream,
        )


def export_b(
    model_dir: Path,
    bundle_dir: Path,
    splits: Path,
    max_length: int,
    version_number: int,
    base_model: str,
    stream,
    schemes=DEFAULT_SCHEMES,
    export=None,
    student: Path | None = None,
) -> None:
    """Export through the edge export code (INT8 + parity gate, see below), named like
    `careeredge-cloud export` names Model A's bundle (name = the model directory's name). The gate is
    never lowered: the schemes are tried in order and the first that passes ships (see
    `cloud.export.builder.export_first_passing`).

    `student` (distill-b's output for this B) is tried first, under B's name: the device then pays for
    B what it pays for A, and the export also holds the INT8 student to B's 2025 test accuracy. When no
    scheme of the student passes, B itself ships: slower on the device, but the week's B still
    reaches it. The manifest's `base_model` says which one did.

    `stream` (`split_stream`'s output) lends its 2026 evaluation split to the parity gate, beside the 2025
    test split (`builder.gate_postings`): with the 93 test postings alone, 99 % agreement and 0.5 pt allow
    no flip, and whether a week's B ships would turn on one borderline posting (README, "Session 8"). The
    split's labels only measure what quantization changes (INT8 vs FP32 of one model); no model is chosen
    on them. The teacher floor and the golden set stay on the 2025 test split."""
    from cloud.data.prepare import read_split
    from cloud.export.builder import EvalSet, export_first_passing
    from cloud.export.command import checked_distillation, distilled_name
    from cloud.export.parity import ParityError

    test_texts, test_labels = read_split(splits / "test.csv")
    val_set = EvalSet(*read_split(splits / "val.csv")) if "mixed" in schemes else None  # what mixed chooses on
    agreement_set = (
        EvalSet(
            [p.description for p in stream.evaluation],
            list(stream.eval_labels),
            [p.source_id for p in stream.evaluation],
            name="2026 evaluation split",
        )
        if stream.evaluation
        else None
    )
    if agreement_set is None:
        click.echo(
            "export-b: the stream has no 2026 evaluation postings; agreement is checked on the 2025 test split alone",
            err=True,
        )
    log = read_json(model_dir / "train_log.json", "run `careeredge-cloud train-b` first")
    training_hash, preprocessing = log["training_data_sha256"], log["config"].get("preprocessing", "clean")
    windows = int(log["config"].get("windows", 1))
    echo = lambda message: click.echo(f"export-b: {message}", err=True)  # noqa: E731

    def ship(graph: Path, window: int, shipped_as: str, distillation: dict | None = None):
        with tempfile.TemporaryDirectory(prefix="careeredge-export-b-") as work:
            return export_first_passing(
                schemes,
                graph,
                bundle_dir,
                EvalSet(test_texts, test_labels),
                export=export,
                name=model_dir.name,
                version=str(version_number),
                max_length=window,
                work_dir=Path(work),
                base_model=shipped_as,
                training_data_hash=training_hash,
                preprocessing=preprocessing,
                windows=windows,  # the device must read text as B is scored
                distillation=distillation,
                val_set=val_set,
                agreement_set=agreement_set,
                progress=echo,
                on_fallback=echo,
            )

    result, shipped = None, model_dir.name
    if student is not None:
        student_log = read_json(student / "train_log.json", "run `careeredge-cloud distill-b` first")
        distillation = checked_distillation(student_log, splits / "test.csv")
        if not distillation or distillation.get("teacher") != model_dir.name:
            raise UserError(
                f"{student} is not a student of {model_dir.name} (its train_log.json names teacher "
                f"{(distillation or {}).get('teacher')!r}); run `careeredge-cloud distill-b`"
            )
        try:
            result = ship(
                student / "hf",
                int(student_log["config"]["max_length"]),
                distilled_name(distillation, base_model),
                distillation,
            )
            shipped = student.name
        except ParityError as exc:
            echo(f"no INT8 scheme of {student.name} passes the gate ({exc}); exporting {model_dir.name} itself")
    if result is None:
        result = ship(model_dir / "hf", max_length, base_model)
    metrics = result.manifest["metrics"]
    click.echo(
        f"export-b: bundle {result.bundle_dir} ({metrics['quantization']['scheme']} INT8 of {shipped}, "
        f"accuracy on the 2025 test split {metrics.get('accuracy_int8', float('nan')):.3f})"
    )


@click.command("export-b")
@click.option("--model-dir", type=click.Path(path_type=Path), required=True, help="A model_b_vN directory.")
@click.option(
    "--student",
    type=click.Path(path_type=Path),
    default=None,
    help="Its device student (distill-b's output), exported under B's name instead of B itself.",
)
@click.option(
    "--out",
    "bundle_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Bundle directory [default: artifacts/bundles/<model dir name>].",
)
@click.option("--splits", type=click.Path(path_type=Path), default=Path("data/processed/splits"), show_default=True)
@click.option(
    "--normalized",
    type=click.Path(path_type=Path),
    default=Path("data/normalized"),
    show_default=True,
    help="The normalized stream: its 2026 evaluation split joins the parity gate's agreement check.",
)
@click.option(
    "--params", "params_path", type=click.Path(path_type=Path), default=Path("params.yaml"), show_default=True
)
@click.option(
    "--scheme",
    "schemes",
    multiple=True,
    type=click.Choice(SCHEMES),
    help="INT8 schemes to try in order (default: per_token, blockwise, dynamic).",
)
def export_b_command(model_dir, student, bundle_dir, splits, normalized, params_path, schemes) -> None:
    """Export a Model B (or its device student) to an INT8 bundle: the first scheme that passes the
    parity gate ships."""
    from cloud.training.stream_split import load_stream

    match = MODEL_B_DIR.match(model_dir.name)
    if not match:
        raise UserError(f"{model_dir}: expected a model_b_vN directory")
    params = load_params(params_path)
    config = _recorded_config(model_dir)
    export_b(
        model_dir,
        bundle_dir or Path("artifacts/bundles") / model_dir.name,
        splits,
        int(config.get("max_length") or params.get("model", {}).get("max_length", 256)),
        int(match.group(1)),
        base_model=_base_model_name(config, params),
        stream=load_stream(normalized, params, ""),
        schemes=tuple(schemes) or DEFAULT_SCHEMES,
        student=student,
    )


def _base_model_name(config: dict, params: dict) -> str:
    """As train-b names it: "model_a_v1 (from minilm)" for a B initialised from A's hf/ directory."""
    base, encoder = str(config.get("base", "")), str(params.get("model", {}).get("base", ""))
    return f"{Path(base).parent.name} (from {encoder})" if Path(base).name == "hf" else base


def _recorded_config(model_dir: Path) -> dict:
    return read_json(model_dir / "train_log.json", "B copies A's preprocessing and max_length from it").get(
        "config", {}
    )


def _parse_version(value: str) -> int:
    if not str(value).isdigit() or int(value) < 1:
        raise UserError(f"--version must be a positive integer or 'auto', got {value!r}")
    return int(value)
