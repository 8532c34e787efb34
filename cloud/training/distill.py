"""`careeredge-cloud distill-a` / `distill-b`: the shallower copies of Model A and Model B that the device runs.

Why: on the 2-core x86 build box INT8 buys little over fused FP32 (no VNNI), so the edge target
(INT8 >= 3x PyTorch FP32) needs less arithmetic, not only cheaper arithmetic. A's cost is linear in
its six blocks, so the device gets a student with two of them. Model A itself stays the frozen control
of the study (pseudo-labels, Model B's start, evaluate-b all use A); only the bundle is the student.

Measured (same recipe, per-token INT8 bundle, `scripts/bench_inference.py`):

    blocks  window  2025 test acc (A 93.55 %)  agrees with A: val / test  2026 eval acc (A 0.846)  INT8 x PyTorch
    0, 4, 5  256    95.70 %                    96.7 % / 95.7 %            0.836 (FP32)             2.58x
    0, 5     256    93.55 %                    93.5 % / 95.7 %            0.842 (FP32), 0.852 INT8 3.65x
    0, 5     192    94.62 %                    93.5 % / 94.6 %            0.852 (INT8)             4.58x

The window (`max_length`, word pieces the student reads; A reads 256) was chosen on the validation
split: the 256-piece student's INT8 bundle cut at 224 or 192 kept every validation decision, at 160 it
lost 2.2 %. The model's cost is linear in it (1.36x from 256 to 192).

Recipe:
* student = A's embeddings, A's blocks `layers` (params.yaml: 0 and 5: the bottom block keeps the
  token features, the top one carries A's fine-tuning), A's pooler and head;
* transfer set = texts only, each labelled by A's logits: the 2025 train split plus the 2026 pool
  that pseudo-labelling draws from (the 2026 evaluation split and 2025 val/test are never used).
  Distillation needs no human labels, so the unlabelled 2026 stream triples the set;
* loss = mean squared error between student and teacher logits: logits keep A's margins, and the
  margin is what decides whether a borderline posting survives quantization later;
* embeddings frozen as in A's recipe; the epoch is chosen on the 2025 validation split by agreement
  with A (ties: smaller logit error). The test split is only the gate.

Gate (the edge issue's accuracy check, held against A itself): the student's accuracy on the 2025
test split may be at most `max_accuracy_drop_pt` below A's, or nothing is written. The export checks
the same floor again for the INT8 graph (see `cloud/export/builder.py`), with A's test accuracy and
the test split's sha256 read from this stage's train_log.json.

Model B (`distill-b`): the weekly B is A plus one epoch on its top two blocks, and the device should
pay for it what it pays for A. Its student therefore starts from A's student (same blocks, same window)
and is trained for `distill_b.epochs` to B's logits on the same transfer set: B's change, not the whole
compression again. Its bottom block stays A's student's (`distill_b.freeze_layers`), as B keeps A's
bottom, so that block runs once per text. Measured on model_b_v3 (FP32; val = agreement with B):

    student of B v3                           val      2025 test  2026 eval  time (2 cores)
    B v3 itself (6 blocks, 256 pieces)                 92.47 %    0.910
    cold: B's blocks 0, 5, 4 epochs           93.5 %   93.55 %    0.888      8 min 28 s
    warm: A's student, 2 epochs               92.4 %   93.55 %    0.894      5 min 14 s
    warm, bottom block frozen (committed)     93.5 %   93.55 %    0.891      3 min 51 s
    A's student (what devices run now)                 94.62 %    0.855

Reading 256 pieces instead of 192 does not recover the gap (cold 0.894, warm 0.891), so it is the two
blocks, not the window. The same gates hold B's student to B on the 2025 test split, and one more is B's
reason to exist: on the 2026 evaluation split the student must be at least as accurate as the device
model it replaces (its init, A's student), or publishing it gains the devices nothing.
"""

from __future__ import annotations

import contextlib
import copy
import math
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
import numpy as np
from tqdm.auto import tqdm

from cloud.artifacts import atomic_directory, ensure_writable_dir, read_json, write_json_atomic
from cloud.training.finetune import (
    Optimization,
    TrainedClassifier,
    encode,
    encoder_layers,
    freeze_lower_layers,
    set_seed,
    shuffled_batches,
)
from cloud.training.model_io import load_classifier
from shared.errors import UserError
from shared.files import sha256_file
from shared.text import model_input

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json")


class DistillationError(UserError):
    """The student lost too much of its teacher's accuracy: nothing is written."""


@dataclass
class DistillConfig:
    layers: tuple[int, ...] = (0, 5)
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    seed: int = 2025
    max_accuracy_drop_pt: float = 0.5
    max_length: int | None = None  # the student's input window in word pieces; None = A's
    freeze_layers: int = 0  # the student's lowest blocks kept as they start (their output cached)
    threads: int | None = None
    progress: bool = True

    @classmethod
    def from_params(cls, params: dict, section_name: str = "distill", **overrides) -> DistillConfig:
        """`distill:`, with `section_name`'s keys (e.g. `distill_b:`) over it."""
        section = {**(params.get("distill", {}) or {}), **(params.get(section_name, {}) or {})}
        values = {
            k: int(section[k])
            for k in ("epochs", "batch_size", "seed", "max_length", "freeze_layers")
            if section.get(k) is not None
        }
        values.update(
            {
                k: float(section[k])
                for k in ("learning_rate", "weight_decay", "warmup_ratio", "max_accuracy_drop_pt")
                if k in section
            }
        )
        if "layers" in section:
            values["layers"] = tuple(section["layers"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class Outcome:
    reader: object  # the student as a TrainedClassifier at its own window (`student_reader`)
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0

    @property
    def student(self):
        """The student's transformers model."""
        return self.reader.model


def shallow_copy(teacher_model, layers: tuple[int, ...]):
    """A copy of `teacher_model` keeping only the encoder blocks `layers` (in order), with everything
    else (embeddings, pooler, head) as the teacher has it."""
    import torch

    blocks = encoder_layers(teacher_model)
    if not layers or list(layers) != sorted(set(layers)) or not all(0 <= i < len(blocks) for i in layers):
        raise UserError(f"distill.layers must be increasing block indices in 0..{len(blocks) - 1}, got {list(layers)}")
    student = copy.deepcopy(teacher_model)
    kept = torch.nn.ModuleList([copy.deepcopy(blocks[i]) for i in layers])
    container = student.base_model.encoder if hasattr(student.base_model, "encoder") else student.base_model.transformer
    container.layer = kept
    for position, block in enumerate(kept):  # newer transformers index blocks for their KV cache
        attention = getattr(getattr(block, "attention", None), "self", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = position
    attribute = "num_hidden_layers" if hasattr(student.config, "num_hidden_layers") else "n_layers"
    setattr(student.config, attribute, len(layers))
    return student


def load_stream(normalized: Path, params: dict, hint: str):
    """The normalized 2026 stream split into pool and evaluation split (`stream_split`), read once."""
    from cloud.ingest.normalize_command import load_postings
    from cloud.training.pseudo_label import pseudo_label_settings
    from cloud.training.stream_split import split_stream

    if not (normalized / "postings.jsonl").is_file():
        raise UserError(f"{normalized / 'postings.jsonl'} not found (run `careeredge-cloud normalize` first{hint})")
    return split_stream(load_postings(normalized), pseudo_label_settings(params)["eval_fraction"])


def transfer_texts(splits: Path, stream=None) -> tuple[list[str], dict]:
    """2025 train texts + the 2026 pseudo-label pool of `stream` (descriptions, as A sees them)."""
    from cloud.data.prepare import read_split

    texts, _ = read_split(splits / "train.csv")
    counts = {"train_2025": len(texts), "pool_2026": 0}
    if stream is not None:
        texts = texts + [p.description for p in stream.pool]
        counts["pool_2026"] = len(stream.pool)
    return texts, counts


def student_reader(student, teacher, max_length: int | None = None):
    """`student` as a TrainedClassifier reading raw texts like `teacher` (same preprocessing and
    tokenizer), but truncated at its own window `max_length` (None: the teacher's)."""
    from tokenizers import Tokenizer

    window = int(max_length or teacher.max_length)
    if not 8 <= window <= teacher.max_length:
        raise UserError(f"distill.max_length must be between 8 and the teacher's {teacher.max_length}, got {window}")
    tokenizer = Tokenizer.from_str(teacher.tokenizer.to_str())
    tokenizer.enable_truncation(max_length=window)
    return TrainedClassifier(student, tokenizer, teacher.preprocessing, window, teacher.windows)


def distill(teacher, transfer: list[str], val_texts: list[str], config: DistillConfig, init=None) -> Outcome:
    """Train a `config.layers` student of `teacher` (a TrainedClassifier) to regress its logits.

    The teacher's targets come from its own window; the student reads `config.max_length` word pieces,
    so it learns to reach the teacher's decision from the shorter prefix the device will give it.
    `init` (a transformers model, e.g. A's student for Model B) is the starting student instead of
    the teacher's `config.layers` blocks; it is copied, never changed."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    set_seed(config.seed)
    targets = torch.tensor(teacher.predict_logits(transfer, progress=config.progress), dtype=torch.float32)
    val_teacher = teacher.predict_logits(val_texts)
    student = copy.deepcopy(init) if init is not None else shallow_copy(teacher.model, tuple(config.layers))
    reader = student_reader(student, teacher, config.max_length)
    if not 0 <= config.freeze_layers < len(encoder_layers(student)):
        raise UserError(
            f"distill freeze_layers must leave a block to train: 0..{len(encoder_layers(student)) - 1}, "
            f"got {config.freeze_layers}"
        )
    freeze_lower_layers(student, True, config.freeze_layers)
    inputs = [model_input(t, teacher.preprocessing) for t in transfer]
    prefix = None
    if config.freeze_layers:  # the frozen bottom's output never changes: run it once per text, not per epoch
        from cloud.training.frozen_prefix import FrozenPrefix

        prefix = FrozenPrefix(student, config.freeze_layers)
        prefix.precompute(lambda batch: encode(reader.tokenizer, batch), inputs)

    def batch_logits(idx):
        if prefix is not None:
            return prefix.logits(idx)
        ids, mask = encode(reader.tokenizer, [inputs[i] for i in idx])
        return student(input_ids=ids, attention_mask=mask).logits

    total_steps = math.ceil(len(inputs) / config.batch_size) * config.epochs
    optimization = Optimization.for_model(
        student, config.learning_rate, config.weight_decay, config.warmup_ratio, total_steps
    )
    generator = torch.Generator().manual_seed(config.seed)
    outcome, best_key, best_state = Outcome(reader), None, None
    bar = tqdm(total=total_steps, desc=f"distil to {len(encoder_layers(student))} blocks", disable=not config.progress)
    for epoch in range(1, config.epochs + 1):
        student.train()
        epoch_loss = 0.0
        with prefix.top_only() if prefix is not None else contextlib.nullcontext():
            for idx in shuffled_batches(len(inputs), config.batch_size, generator):
                loss = optimization.step(torch.nn.functional.mse_loss(batch_logits(idx), targets[idx]))
                epoch_loss += loss * len(idx)
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{loss:.3f}")
        record = {
            "epoch": epoch,
            "train_mse": epoch_loss / len(inputs),
            **fidelity(reader.predict_logits(val_texts), val_teacher, "val"),
        }
        outcome.history.append(record)
        key = (record["val_agreement"], -record["val_logit_mae"])
        if best_key is None or key > best_key:
            best_key, outcome.best_epoch, best_state = key, epoch, optimization.snapshot()
    bar.close()
    optimization.restore(best_state)
    student.eval()
    return outcome


def fidelity(student: np.ndarray, teacher: np.ndarray, split: str) -> dict:
    """How closely the student follows A: decision agreement and mean |logit-margin difference|."""
    margin = lambda logits: logits[:, 1] - logits[:, 0]  # noqa: E731
    return {
        f"{split}_agreement": float((student.argmax(1) == teacher.argmax(1)).mean()),
        f"{split}_logit_mae": float(np.abs(margin(student) - margin(teacher)).mean()),
    }


def accuracy(logits: np.ndarray, labels) -> float:
    return float((logits.argmax(1) == np.asarray(labels)).mean())


def gate(
    teacher, student, test_texts: list[str], test_labels: list[int], max_drop_pt: float, teacher_name: str = "Model A"
) -> dict:
    """The teacher's and the student's (TrainedClassifiers) test accuracy; raises DistillationError past
    the allowed drop."""
    teacher_logits, logits = teacher.predict_logits(test_texts), student.predict_logits(test_texts)
    report = {
        "test_postings": len(test_labels),
        "teacher_accuracy": accuracy(teacher_logits, test_labels),
        "student_accuracy": accuracy(logits, test_labels),
        **fidelity(logits, teacher_logits, "test"),
    }
    report["accuracy_drop_pt"] = (report["teacher_accuracy"] - report["student_accuracy"]) * 100
    if report["accuracy_drop_pt"] > max_drop_pt + 1e-9:
        raise DistillationError(
            f"distilled student scores {report['student_accuracy']:.2%} on the {len(test_labels)} test postings, "
            f"{report['accuracy_drop_pt']:.2f} pt below {teacher_name}'s {report['teacher_accuracy']:.2%} "
            f"(allowed: {max_drop_pt} pt); nothing written"
        )
    return report


def stream_gate(teacher, student, replaced, texts: list[str], labels: list[int], replaced_name: str) -> dict:
    """Model B's student on the 2026 evaluation split, beside B and beside `replaced`, the device model it
    would replace (A's student). Raises DistillationError when the student is less accurate than
    `replaced` there: B exists for the 2026 postings, and a student that lost that gain is not worth
    publishing."""
    teacher_logits, logits = teacher.predict_logits(texts), student.predict_logits(texts)
    report = {
        "eval_2026_postings": len(labels),
        "eval_2026_teacher_accuracy": accuracy(teacher_logits, labels),
        "eval_2026_student_accuracy": accuracy(logits, labels),
        "eval_2026_replaced_accuracy": accuracy(replaced.predict_logits(texts), labels),
        **fidelity(logits, teacher_logits, "eval_2026"),
    }
    if report["eval_2026_student_accuracy"] < report["eval_2026_replaced_accuracy"]:
        raise DistillationError(
            f"distilled student scores {report['eval_2026_student_accuracy']:.2%} on the {len(labels)} postings of "
            f"the 2026 evaluation split, below {replaced_name}'s {report['eval_2026_replaced_accuracy']:.2%} "
            f"(the device model it would replace); nothing written"
        )
    return report


def save_student(
    outcome: Outcome,
    teacher_dir: Path,
    out_dir: Path,
    name: str,
    config: DistillConfig,
    teacher_config: dict,
    transfer_counts: dict,
    report: dict,
    test_csv: Path,
    init: str | None = None,
) -> None:
    """The layout every later step reads (`hf/`, `train_log.json`, `<name>.pth`, MODEL_CARD.md)."""
    import torch

    with atomic_directory(out_dir) as staging:
        outcome.student.save_pretrained(staging / "hf", safe_serialization=True)
        for source in (teacher_dir / "hf").iterdir():  # tokenizer files: the student reads as A does
            if source.is_file() and source.name not in WEIGHT_FILES:
                shutil.copyfile(source, staging / "hf" / source.name)
        torch.save(outcome.student.state_dict(), staging / f"{name}.pth")
        distillation = {
            "teacher": teacher_dir.name,
            **({"init": init} if init else {}),
            "layers": list(config.layers),
            "max_length": outcome.reader.max_length,
            "teacher_max_length": teacher_config["max_length"],
            **transfer_counts,
            **report,
            "test_split_sha256": sha256_file(test_csv),
        }  # the export checks it with the same function
        log = {
            "name": name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            # preprocessing (and windows) are the teacher's, max_length the student's window: the export
            # and the device read them here
            "config": {
                **teacher_config,
                "max_length": outcome.reader.max_length,
                "distill": {k: v for k, v in asdict(config).items() if k not in ("threads", "progress")},
            },
            "distillation": distillation,
            "best_epoch": outcome.best_epoch,
            "history": outcome.history,
        }
        write_json_atomic(staging / "train_log.json", log)
        (staging / "MODEL_CARD.md").write_text(_model_card(name, log), encoding="utf-8")


def _model_card(name: str, log: dict) -> str:
    d = log["distillation"]
    start = (
        f"starting from {d['init']} and trained"
        if d.get("init")
        else f"{len(d['layers'])} of {d['teacher']}'s blocks ({d['layers']}), trained"
    )
    stream = (
        f"\n- 2026 evaluation split ({d['eval_2026_postings']} postings): accuracy "
        f"{d['eval_2026_student_accuracy']:.4f} vs {d['teacher']}'s {d['eval_2026_teacher_accuracy']:.4f} "
        f"and {d['init']}'s {d['eval_2026_replaced_accuracy']:.4f}."
        if "eval_2026_postings" in d
        else ""
    )
    return f"""# {name}

The device's copy of {d["teacher"]}: {start} to reproduce {d["teacher"]}'s logits
(`cloud/training/distill.py`).

- Transfer set: {d["train_2025"]} 2025 train postings + {d["pool_2026"]} postings of the 2026 pseudo-label pool,
  labelled by {d["teacher"]}'s logits (no human labels).
- Best epoch {log["best_epoch"]} by agreement with {d["teacher"]} on the 2025 validation split.
- 2025 test split ({d["test_postings"]} postings): accuracy {d["student_accuracy"]:.4f} vs {d["teacher"]}'s
  {d["teacher_accuracy"]:.4f}; decisions agree on {d["test_agreement"]:.2%}.{stream}
- Weights: `hf/model.safetensors`; `{name}.pth` is a plain state_dict (`torch.load(..., weights_only=True)`).
"""


def _read_log(model_dir: Path) -> dict:
    return read_json(model_dir / "train_log.json", f"{model_dir} is not a trained model directory")


def _report_line(
    command: str, outcome: Outcome, config: DistillConfig, transfer: list[str], report: dict, out_dir: Path
) -> str:
    best = outcome.history[outcome.best_epoch - 1]
    return (
        f"{command}: {len(encoder_layers(outcome.student))} blocks on {len(transfer)} transfer texts; best epoch "
        f"{outcome.best_epoch}/{config.epochs} (val agreement {best['val_agreement']:.1%}); test accuracy "
        f"{report['student_accuracy']:.2%} vs the teacher's {report['teacher_accuracy']:.2%}, agreement "
        f"{report['test_agreement']:.1%} -> {out_dir}"
    )


_COMMON = [
    click.option("--splits", type=click.Path(path_type=Path), default=Path("data/processed/splits"), show_default=True),
    click.option(
        "--params", "params_path", type=click.Path(path_type=Path), default=Path("params.yaml"), show_default=True
    ),
    click.option("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)."),
]


def _common_options(command):
    for option in reversed(_COMMON):
        command = option(command)
    return command


@click.command("distill-a")
@click.option(
    "--model-a",
    "model_a",
    type=click.Path(path_type=Path),
    default=Path("artifacts/model_a_v1"),
    show_default=True,
    help="The teacher: Model A's directory (hf/ + train_log.json).",
)
@click.option(
    "--normalized",
    type=click.Path(path_type=Path),
    default=None,
    help="Normalized postings dir; its 2026 pseudo-label pool joins the transfer set.",
)
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=Path("artifacts/model_a_v1_edge"), show_default=True
)
@click.option("--epochs", type=int, default=None, help="Override params.yaml distill.epochs.")
@_common_options
def distill_command(
    model_a: Path,
    splits: Path,
    normalized: Path | None,
    out_dir: Path,
    params_path: Path,
    epochs: int | None,
    threads: int | None,
) -> None:
    """Distil Model A into a shallower student for the device, gated on A's 2025 test accuracy."""
    from cloud.data.prepare import read_split
    from cloud.params import load_params

    ensure_writable_dir(out_dir.parent)
    params = load_params(params_path)
    config = DistillConfig.from_params(params, epochs=epochs, threads=threads)
    teacher = load_classifier(model_a)
    teacher_config = _read_log(model_a)["config"]
    stream = (
        None
        if normalized is None
        else load_stream(normalized, params, ", or leave out --normalized to distil on the 2025 train split alone")
    )
    transfer, counts = transfer_texts(splits, stream)
    val_texts, _ = read_split(splits / "val.csv")
    test_texts, test_labels = read_split(splits / "test.csv")
    outcome = distill(teacher, transfer, val_texts, config)
    report = gate(teacher, outcome.reader, test_texts, test_labels, config.max_accuracy_drop_pt)
    save_student(outcome, model_a, out_dir, out_dir.name, config, teacher_config, counts, report, splits / "test.csv")
    click.echo(_report_line("distill-a", outcome, config, transfer, report, out_dir))


@click.command("distill-b")
@click.option(
    "--model-b",
    "model_b",
    type=click.Path(path_type=Path),
    default=None,
    help="The teacher: a model_b_vN directory [default: the newest under artifacts/].",
)
@click.option(
    "--init",
    "init_dir",
    type=click.Path(path_type=Path),
    default=Path("artifacts/model_a_v1_edge"),
    show_default=True,
    help="The student to start from: the device's Model A (distill-a's output).",
)
@click.option(
    "--normalized",
    type=click.Path(path_type=Path),
    default=Path("data/normalized"),
    show_default=True,
    help="Normalized postings dir: its 2026 pool joins the transfer set, its evaluation split gates.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Student directory [default: <model-b>_edge beside it].",
)
@click.option("--epochs", type=int, default=None, help="Override params.yaml distill_b.epochs.")
@_common_options
def distill_b_command(
    model_b: Path | None,
    init_dir: Path,
    normalized: Path,
    out_dir: Path | None,
    splits: Path,
    params_path: Path,
    epochs: int | None,
    threads: int | None,
) -> None:
    """Distil Model B for the device: A's student trained to B's logits, gated on B's 2025 test
    accuracy and on the 2026 evaluation split against A's student."""
    from cloud.data.prepare import read_split
    from cloud.params import load_params
    from cloud.training.train_b import latest_model_b

    model_b = model_b or latest_model_b(Path("artifacts"))
    out_dir = out_dir or model_b.with_name(f"{model_b.name}_edge")
    init_log = _read_log(init_dir)
    if "distillation" not in init_log:
        raise UserError(
            f"{init_dir} is not a distilled student (no distillation record in its train_log.json); "
            "run `careeredge-cloud distill-a` first"
        )
    ensure_writable_dir(out_dir.parent)
    params = load_params(params_path)
    # The student keeps the init's shape: its blocks and its window are A's student's.
    config = DistillConfig.from_params(
        params,
        "distill_b",
        epochs=epochs,
        threads=threads,
        layers=tuple(init_log["distillation"]["layers"]),
        max_length=int(init_log["config"]["max_length"]),
    )
    stream = load_stream(
        normalized, params, "; Model B's student is distilled on the 2026 pool and gated on the 2026 evaluation split"
    )
    transfer, counts = transfer_texts(splits, stream)
    if len(set(stream.eval_labels)) < 2:
        raise UserError("the 2026 evaluation split has fewer than two classes; it cannot gate Model B's student")
    val_texts, _ = read_split(splits / "val.csv")
    test_texts, test_labels = read_split(splits / "test.csv")
    teacher, replaced = load_classifier(model_b), load_classifier(init_dir)
    outcome = distill(teacher, transfer, val_texts, config, init=replaced.model)
    report = gate(teacher, outcome.reader, test_texts, test_labels, config.max_accuracy_drop_pt, model_b.name)
    report.update(
        stream_gate(
            teacher,
            outcome.reader,
            replaced,
            [p.description for p in stream.evaluation],
            stream.eval_labels,
            init_dir.name,
        )
    )
    save_student(
        outcome,
        model_b,
        out_dir,
        out_dir.name,
        config,
        _read_log(model_b)["config"],
        counts,
        report,
        splits / "test.csv",
        init=init_dir.name,
    )
    click.echo(_report_line("distill-b", outcome, config, transfer, report, out_dir))
    click.echo(
        f"distill-b: 2026 evaluation split accuracy {report['eval_2026_student_accuracy']:.3f} vs "
        f"{model_b.name}'s {report['eval_2026_teacher_accuracy']:.3f} and {init_dir.name}'s "
        f"{report['eval_2026_replaced_accuracy']:.3f}"
    )
