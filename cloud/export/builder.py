"""Build a device bundle from a trained HF classifier directory.

    HF dir -> model_fp32.onnx -> model_fp32_fused.onnx -> bundle/model.onnx (INT8)
                                                        -> parity gate on the test split
                                                        -> golden.jsonl + manifest.json

The bundle is assembled in a staging directory and renamed into place only after the parity gate
passes, so a failed export never leaves a bundle the device or the OTA publisher would pick up.
The FP32 graphs stay in `work_dir` for the inference benchmark.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloud.artifacts import atomic_directory
from cloud.export import parity
from cloud.export.encoder_graph import UnsupportedGraph
from cloud.export.onnx_export import export_onnx
from cloud.export.optimize import attention_geometry, fuse_transformer
from cloud.export.prune import prune_embeddings, verify_renumbering
from cloud.export.quantize import UNFUSED_SCHEMES, quantize_blockwise, quantize_int8, quantize_mixed, quantize_per_token
from cloud.export.reference import TorchClassifier, load_classifier
from device.runtime.onnx_backend import session_settings
from shared.bundle import GOLDEN_FILE, MODEL_FILE, TOKENIZER_FILE, write_bundle
from shared.errors import UserError

GOLDEN_PER_CLASS = 4
FP32_FILE = "model_fp32.onnx"
FUSED_FILE = "model_fp32_fused.onnx"
PRUNED_FILE = "model_fp32_pruned.onnx"
PRUNED_TOKENIZER_FILE = "tokenizer_pruned.json"
# The gate runs the test split in length-sorted batches of 16, as `--jsonl` does. The export also runs
# it one posting per call, as the web page, the TUI and a CLI argument do, and records both in the
# manifest (`parity_by_batch_size`, `batch_invariance_max_p1_gap`). Only a scheme with per-call
# activation scales (dynamic, mixed) can differ between the two; see quantize.py.
GATE_BATCH_SIZE = 16
RECORDED_BATCH_SIZES = (GATE_BATCH_SIZE, 1)


@dataclass
class EvalSet:
    """Postings the parity gate runs on (the test split, or an agreement set): raw text and true label."""

    texts: Sequence[str]
    labels: Sequence[int]
    ids: Sequence[str] | None = None
    name: str = "test split"


@dataclass
class ExportResult:
    bundle_dir: Path
    manifest: dict
    parity: parity.ParityReport


def export_bundle(
    model_dir: Path,
    out_dir: Path,
    eval_set: EvalSet,
    *,
    name: str,
    version: str,
    max_length: int,
    work_dir: Path,
    base_model: str = "",
    training_data_hash: str = "",
    preprocessing: str = "clean",
    windows: int = 1,
    scheme: str = "blockwise",
    per_channel: bool = True,
    reduce_range: bool = False,
    prune: bool = True,
    min_agreement: float = parity.MIN_AGREEMENT,
    max_accuracy_drop_pt: float = parity.MAX_ACCURACY_DROP_PT,
    distillation: dict | None = None,
    val_set: EvalSet | None = None,
    agreement_set: EvalSet | None = None,
    progress=None,
    shared: dict | None = None,
    session: dict | None = None,
) -> ExportResult:
    """`distillation` (a distilled model's train_log entry: teacher, teacher_accuracy, ...) adds a second
    floor: the INT8 graph's test accuracy against the *teacher's* FP32 accuracy, so that the device's
    answers are held to Model A itself and not only to the student they were quantized from.
    `val_set` (the validation split) is what the `mixed` scheme chooses its blockwise MatMul on.
    `agreement_set` (e.g. the 2026 evaluation split) joins the test split in the parity gate (agreement
    and accuracy drop, `gate_postings`); the teacher floor, the golden set and `parity` stay the test split's.
    `shared` (a dict, empty at first) carries what does not depend on the scheme from one attempt of
    `export_first_passing` to the next: the FP32 graphs' fusion counts and the FP32 probabilities.
    `session` (params.yaml `export.session`) goes into the manifest: how the device's ONNX Runtime runs the
    graph (`device.runtime.onnx_backend.SESSION_SETTINGS`); the parity gate already runs with it."""
    step = progress or (lambda message: None)
    model_dir, out_dir, work_dir = Path(model_dir), Path(out_dir), Path(work_dir)
    tokenizer_path = model_dir / TOKENIZER_FILE
    if not tokenizer_path.is_file():
        raise UserError(f"{model_dir} has no {TOKENIZER_FILE}; the device tokenizes with it")
    if scheme == "mixed" and val_set is None:
        raise UserError("the mixed INT8 scheme chooses its blockwise MatMul on the validation split: none was given")
    work_dir.mkdir(parents=True, exist_ok=True)

    step("loading the FP32 model")
    model = load_classifier(model_dir)
    labels = {int(k): v for k, v in model.config.id2label.items()}
    shared = {} if shared is None else shared
    if "fusion" not in shared:
        shared["fusion"] = export_fp32_graphs(model, work_dir, step)
    fusion = shared["fusion"]
    to_quantize, bundle_tokenizer, pruning = work_dir / FUSED_FILE, tokenizer_path, None
    if prune and scheme not in UNFUSED_SCHEMES:  # blockwise keeps the original graph and tokenizer
        step("pruning unreachable embedding rows")
        pruning = prune_embeddings(
            work_dir / FUSED_FILE, tokenizer_path, work_dir / PRUNED_FILE, work_dir / PRUNED_TOKENIZER_FILE, max_length
        )
        if pruning is not None:
            verify_renumbering(tokenizer_path, work_dir / PRUNED_TOKENIZER_FILE, eval_set.texts, max_length)
            to_quantize, bundle_tokenizer = work_dir / PRUNED_FILE, work_dir / PRUNED_TOKENIZER_FILE

    with atomic_directory(out_dir) as staging:
        if scheme in UNFUSED_SCHEMES:
            # These rewrite plain MatMul/Gather nodes; the fused graph hides them in Attention and
            # EmbedLayerNormalization. ORT still fuses LayerNorm/GELU when it loads the bundle.
            step(f"quantizing to INT8 ({scheme})")
            quantization = quantize_blockwise(work_dir / FP32_FILE, staging / MODEL_FILE)
            bundle_tokenizer, pruning = tokenizer_path, None
        common = dict(
            name=name,
            version=version,
            labels=labels,
            max_length=max_length,
            base_model=base_model,
            training_data_hash=training_data_hash,
            preprocessing=preprocessing,
            windows=windows,
            extra={"session": session_settings(session or {}, "params.yaml export.session")} if session else None,
        )
        if scheme == "mixed":
            step(f"finding the most quantization-sensitive MatMul on {len(val_set.texts)} validation postings")
            reference = TorchClassifier(model, tokenizer_path, max_length, preprocessing, windows).probabilities(
                val_set.texts
            )
            sensitivity = most_sensitive_node(
                to_quantize, bundle_tokenizer, common, val_set.texts, reference, work_dir, per_channel, reduce_range
            )
            step("quantizing to INT8 (mixed)")
            quantization = quantize_mixed(
                to_quantize, staging / MODEL_FILE, sensitivity["node"], per_channel, reduce_range
            )
            quantization["sensitivity"] = sensitivity
        elif scheme == "per_token":
            step("quantizing to INT8 (per_token: the fused graph rebuilt)")
            quantization = quantize_per_token(to_quantize, staging / MODEL_FILE)
        elif scheme == "dynamic":
            step("quantizing to INT8 (dynamic)")
            quantization = quantize_int8(to_quantize, staging / MODEL_FILE, per_channel, reduce_range)
        shutil.copyfile(bundle_tokenizer, staging / TOKENIZER_FILE)
        write_bundle(staging, **common)  # provisional: lets the device runtime load the staged bundle

        gate_set, tested = gate_postings(eval_set, agreement_set), len(eval_set.texts)
        step(
            f"parity check on {len(gate_set.texts)} postings ({gate_set.name}; batches of {GATE_BATCH_SIZE}, "
            f"one per call recorded)"
        )
        if "fp32_probs" not in shared:
            shared["fp32_probs"] = TorchClassifier(
                model, tokenizer_path, max_length, preprocessing, windows
            ).probabilities(gate_set.texts)
        fp32_probs = shared["fp32_probs"]
        int8_runs, reports, test_reports = {}, {}, {}
        for batch in RECORDED_BATCH_SIZES:  # the gate's batch size first: a failing scheme stops there
            int8_runs[batch] = probs = _int8_probabilities(staging, gate_set.texts, batch)
            reports[batch], test_reports[batch] = (
                parity.compare(
                    fp32_probs[rows].argmax(1).tolist(),
                    probs[rows].argmax(1).tolist(),
                    list(gate_set.labels[rows]),
                    fp32_probs[rows, 1].tolist(),
                    probs[rows, 1].tolist(),
                    gate_set.ids[rows],
                )
                for rows in (slice(None), slice(tested))
            )
            if batch == GATE_BATCH_SIZE:
                parity.enforce(
                    reports[batch],
                    min_agreement,
                    max_accuracy_drop_pt,
                    batch_size=batch,
                    postings="test postings" if agreement_set is None else f"postings ({gate_set.name})",
                )
        report = test_reports[GATE_BATCH_SIZE]
        if distillation:
            distillation = {
                **distillation,
                "int8_accuracy_drop_vs_teacher_pt": round(
                    parity.enforce_teacher_floor(
                        report, distillation["teacher"], distillation["teacher_accuracy"], max_accuracy_drop_pt
                    ),
                    4,
                ),
            }
        _write_golden(staging / GOLDEN_FILE, eval_set, fp32_probs[:tested], int8_runs[GATE_BATCH_SIZE][:tested], labels)

        metrics = {
            "parity": report.to_dict(),  # the test split, as every bundle before the agreement set
            "parity_by_batch_size": {str(batch): r.to_dict() for batch, r in test_reports.items()},
            "parity_gate": {"postings": gate_set.name, **reports[GATE_BATCH_SIZE].to_dict()},  # what was enforced
            # 0 for a batch-invariant scheme; dynamic's per-call activation scales make it > 0
            "batch_invariance_max_p1_gap": round(
                float(np.abs(int8_runs[GATE_BATCH_SIZE][:, 1] - int8_runs[1][:, 1]).max()), 6
            ),
            "parity_thresholds": {"min_agreement": min_agreement, "max_accuracy_drop_pt": max_accuracy_drop_pt},
            "accuracy_fp32": round(report.accuracy_fp32, 6),
            "accuracy_int8": round(report.accuracy_int8, 6),
            "size_fp32_mb": _megabytes(work_dir / FP32_FILE),
            "size_int8_mb": _megabytes(staging / MODEL_FILE),
            "fused_operators": fusion,
            "embedding_pruning": pruning or {},
            "quantization": quantization,
            **({"distillation": distillation} if distillation else {}),
        }
        manifest = write_bundle(staging, **common, metrics=metrics)
    return ExportResult(out_dir, manifest, report)


def gate_postings(test_set: EvalSet, agreement_set: EvalSet | None = None) -> EvalSet:
    """What the parity gate runs on: the test split, then `agreement_set` (ids default to row numbers).

    Why more than the test split: at 99 % agreement and 0.5 pt accuracy, 93 test postings allow no flip at
    all, so whether a model with a few postings near p = 0.5 ships would turn on one of them. The 2026
    evaluation split (labelled by the same title taxonomy as the test split) makes the same thresholds a
    rate that tolerates a few flips, and a few of them to the wrong class."""
    sets = [test_set] + ([agreement_set] if agreement_set is not None else [])
    # Row-number ids get the set's prefix once there are two sets, so a flip names which side it is on.
    prefixes = ("test-", "agreement-") if agreement_set is not None else ("",)
    ids = [
        str(i)
        for part, prefix in zip(sets, prefixes)
        for i in (part.ids if part.ids is not None else [f"{prefix}{n}" for n in range(len(part.texts))])
    ]
    return EvalSet(
        [t for part in sets for t in part.texts],
        np.asarray([y for part in sets for y in part.labels]),
        np.asarray(ids, dtype=object),
        " + ".join(part.name for part in sets),
    )


def export_fp32_graphs(model, work_dir: Path, step=None) -> dict[str, int]:
    """`model` (torch, eval mode) -> work_dir/model_fp32.onnx and its fused twin model_fp32_fused.onnx
    (attention / LayerNorm / GELU fusion). Returns the fused operator counts."""
    step = step or (lambda message: None)
    step("exporting to ONNX")
    export_onnx(model, work_dir / FP32_FILE)
    step("fusing attention / LayerNorm / GELU")
    heads, hidden = attention_geometry(model.config)
    layers = getattr(model.config, "num_hidden_layers", None) or model.config.n_layers
    return fuse_transformer(work_dir / FP32_FILE, work_dir / FUSED_FILE, heads, hidden, layers)


def export_first_passing(schemes: Sequence[str], *args, export=None, on_fallback=None, **kwargs) -> ExportResult:
    """Export with each INT8 scheme in turn under the same, never lowered, parity gate; the first that
    passes ships and the manifest records it. Which scheme keeps a given model's borderline test
    postings on the FP32 side differs from model to model, so the order is a preference:
    batch-invariant first, then speed; see `quantize.DEFAULT_SCHEMES`. When none passes, nothing is
    written and the last gate error is raised."""
    export = export or export_bundle
    shared: dict = {}  # the FP32 graphs and FP32 test probabilities, built by the first attempt
    for i, scheme in enumerate(schemes):
        try:
            return export(*args, scheme=scheme, shared=shared, **kwargs)
        except (parity.ParityError, UnsupportedGraph) as exc:
            if i == len(schemes) - 1:
                raise
            if on_fallback:
                why = (
                    f"does not fit: {exc}"
                    if isinstance(exc, UnsupportedGraph)
                    else f"fails the parity gate ({str(exc).split(':')[0]})"
                )
                on_fallback(f"{scheme} INT8 {why}; trying {schemes[i + 1]}")
    raise ValueError("no INT8 scheme to try")


def bundle_around(directory: Path, graph: Path, tokenizer: Path, like: dict, name: str) -> Path:
    """A scratch bundle at `directory` around any ONNX graph (symlinked, not copied), read like the bundle
    whose manifest is `like` (labels, max_length, preprocessing, windows): lets the benchmarks run FP32 or trial
    graphs through the device runtime itself. Not for shipping: nothing here passed the parity gate."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.symlink(Path(graph).resolve(), directory / MODEL_FILE)
    shutil.copyfile(tokenizer, directory / TOKENIZER_FILE)
    write_bundle(
        directory,
        name=name,
        version=str(like["version"]),
        labels={int(k): v for k, v in like["labels"].items()},
        max_length=like["max_length"],
        preprocessing=like.get("preprocessing", "clean"),
        windows=like.get("windows", 1),
        extra={"session": like["session"]} if like.get("session") else None,  # run as the bundle runs
    )
    return directory


def most_sensitive_node(
    graph: Path,
    tokenizer: Path,
    like: dict,
    val_texts: Sequence[str],
    reference: np.ndarray,
    scratch: Path,
    per_channel: bool = True,
    reduce_range: bool = False,
) -> dict:
    """Layer-wise sensitivity on the validation split: the `mixed` quantization with each MatMul in turn
    as its blockwise node; returns the MatMul whose choice leaves the smallest mean |logit-margin| error
    against the FP32 model (`reference` probabilities). Only validation postings are used: the test
    split stays the gate."""
    import onnx
    from tqdm.auto import tqdm

    nodes = [n.name for n in onnx.load(str(graph), load_external_data=False).graph.node if n.op_type == "MatMul"]
    errors = {}
    with tempfile.TemporaryDirectory(dir=scratch, prefix="sensitivity-") as tmp:
        for i, node in enumerate(tqdm(nodes, desc="sensitivity", unit="MatMul", leave=False)):
            trial = Path(tmp) / f"trial_{i}.onnx"
            quantize_mixed(graph, trial, node, per_channel, reduce_range)
            directory = bundle_around(Path(tmp) / f"bundle_{i}", trial, tokenizer, like, "sensitivity")
            errors[node] = float(
                np.abs(logit_margin(_int8_probabilities(directory, val_texts)) - logit_margin(reference)).mean()
            )
            trial.unlink()
    kept = min(errors, key=errors.get)
    return {
        "node": kept,
        "validation_postings": len(val_texts),
        "candidates": len(nodes),
        "val_logit_mae": round(errors[kept], 4),
        "val_logit_mae_worst_choice": round(max(errors.values()), 4),
    }


def logit_margin(probabilities: np.ndarray) -> np.ndarray:
    """log(p1 / p0) per row: the decision margin, comparable across graphs of one model."""
    clipped = np.clip(probabilities, 1e-12, 1.0)
    return np.log(clipped[:, 1]) - np.log(clipped[:, 0])


def _int8_probabilities(bundle_dir: Path, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
    from device.runtime import DEFAULT_BATCH_SIZE, load_backend  # the exact runtime the device will use

    backend = load_backend(bundle_dir, batch_size=batch_size or DEFAULT_BATCH_SIZE)
    try:
        return np.array([p.probabilities for p in backend.predict(list(texts))])
    finally:
        backend.close()


def _write_golden(
    path: Path, eval_set: EvalSet, fp32_probs: np.ndarray, int8_probs: np.ndarray, labels: dict[int, str]
) -> None:
    """The most confident postings per class on which FP32 and INT8 agree: an OTA smoke test that
    a healthy model passes with margin, so a failure means a broken model, not a borderline case."""
    fp32_labels, int8_labels = fp32_probs.argmax(1), int8_probs.argmax(1)
    rows = []
    for label in sorted(labels):
        candidates = [i for i in range(len(fp32_labels)) if fp32_labels[i] == int8_labels[i] == label]
        candidates.sort(key=lambda i: -fp32_probs[i, label])
        for i in candidates[:GOLDEN_PER_CLASS]:
            rows.append(
                {
                    "id": str(eval_set.ids[i]) if eval_set.ids is not None else str(i),
                    "text": eval_set.texts[i],
                    "label": int(label),
                    "label_name": labels[label],
                    "p1": round(float(fp32_probs[i, 1]), 6),
                }
            )
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _megabytes(path: Path) -> float:
    return round(path.stat().st_size / 1e6, 3)
