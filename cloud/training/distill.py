"""Distillation: the shallower copies of Model A and Model B that the device runs.

Why: on an x86 build box without VNNI, INT8 buys little over fused FP32, so the edge target
(INT8 >= 3x PyTorch FP32) needs less arithmetic, not only cheaper arithmetic. A's cost is linear in
its six blocks, so the device gets a student with fewer of them. Model A itself stays the frozen control
of the study (pseudo-labels, Model B's start, evaluate-b all use A); only the bundle is the student.

The student reads its own window (`max_length`, word pieces; A reads 256), chosen on the validation
split: the model's cost is linear in it.

Recipe:
* student = A's embeddings, A's blocks `layers` (params.yaml: the bottom block keeps the token
  features, the top one carries A's fine-tuning), A's pooler and head;
* transfer set = texts only, each labelled by A's logits: the 2025 train split plus the 2026 pool
  that pseudo-labelling draws from (the 2026 evaluation split and 2025 val/test are never used).
  Distillation needs no human labels, so the unlabelled 2026 stream enlarges the set several times;
* loss = mean squared error between student and teacher logits: logits keep A's margins, and the
  margin is what decides whether a borderline posting survives quantization later;
* embeddings frozen as in A's recipe; the epoch is chosen on the 2025 validation split by agreement
  with A (ties: smaller logit error). The test split is only the gate.

Gate (the edge accuracy check, held against A itself): the student's accuracy on the 2025 test split
may be at most `max_accuracy_drop_pt` below A's, or nothing is written. The export checks the same
floor again for the INT8 graph (see `cloud/export/builder.py`), with A's test accuracy and the test
split's sha256 read from the student's train_log.json.

Model B: the weekly B is A plus one epoch on its top two blocks, and the device should pay for it what
it pays for A. Its student therefore starts from A's student (same blocks, same window) and is trained
for `distill_b.epochs` to B's logits on the same transfer set: B's change, not the whole compression
again. Its bottom block stays A's student's (`distill_b.freeze_layers`), as B keeps A's bottom, so that
block runs once per text. The same gate holds B's student to B on the 2025 test split, and one more is
B's reason to exist: on the 2026 evaluation split the student must be at least as accurate as the
device model it replaces (its init, A's student), or publishing it gains the devices nothing
(`stream_gate`).

The measurements behind the blocks, the window and the warm start are in
docs/studies/2026-11-27-distillation.md. The
`distill-a` / `distill-b` steps are in `distill_command.py`, the transfer set and the student's
directory in `distill_io.py`.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import numpy as np

from cloud.training.encoder_anatomy import encoder_layers, freeze_lower_layers, shallow_copy
from cloud.training.finetune import TrainedClassifier, encode
from cloud.training.training_loop import set_seed, train
from shared.errors import UserError
from shared.text import model_input


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

    def validate(epoch: int) -> tuple[dict, tuple[float, float]]:
        """Agreement with the teacher on the validation split; ties go to the smaller logit error."""
        record = fidelity(reader.predict_logits(val_texts), val_teacher, "val")
        return record, (record["val_agreement"], -record["val_logit_mae"])

    fit = train(
        student,
        len(inputs),
        config,
        lambda idx: torch.nn.functional.mse_loss(batch_logits(idx), targets[idx]),
        validate,
        desc=f"distil to {len(encoder_layers(student))} blocks",
        loss_name="train_mse",
        batch_context=prefix.top_only if prefix is not None else contextlib.nullcontext,
    )
    return Outcome(reader, fit.history, fit.best_epoch)


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
