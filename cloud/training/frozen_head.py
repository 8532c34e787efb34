"""`careeredge-cloud frozen-head` (dvc stage `frozen_head`): Hailo path (a), no compiler needed.

The Hailo model zoo ships all_minilm_l6_v2.hef precompiled: the pretrained MiniLM-L6 encoder, frozen, at
128 tokens. A device with that HEF needs only a head trained on what the frozen encoder says about a
posting. This stage computes those features (mean of the last hidden state over real tokens, 128 tokens,
the device's preprocessing), fits a logistic-regression head on the 2025 train split (C chosen on the
val split), and writes

* a device bundle (`artifacts/bundles/minilm_frozen_head_v1`): the CPU graph of the same model (INT8
  model.onnx, ids -> logits), tokenizer, golden set, and `hailo_host.npz` + the manifest's `hailo`
  block, so `[model] backend = "auto"` runs it on the zoo's HEF when one is present, on the CPU otherwise;
* `metrics.json`: its accuracy on the 2025 test and 2026 evaluation splits, beside the shipped
  student's (the device's Model A bundle) on the same postings.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np

from cloud.artifacts import atomic_directory, write_json_atomic
from cloud.cli_options import normalized_option, params_option, splits_option
from shared.errors import UserError

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
GOLDEN_PER_CLASS = 4


def frozen_features(reference, ids: np.ndarray, mask: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Mean-pooled last hidden state of the frozen encoder (the cut the HEF runs), one row per posting."""
    import torch

    pooled = []
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            batch_ids = torch.from_numpy(ids[start : start + batch_size])
            batch_mask = torch.from_numpy(mask[start : start + batch_size])
            embedding = reference.word_embeddings(batch_ids)
            keys = batch_mask.to(embedding.dtype)[:, None, None, :]
            expanded = keys.expand(len(batch_ids), ids.shape[1], reference.cut.heads, ids.shape[1])
            hidden = reference.cut(embedding, expanded.reshape(len(batch_ids), ids.shape[1], -1))
            weights = batch_mask.to(hidden.dtype).unsqueeze(-1)
            pooled.append(((hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)).numpy())
    return np.concatenate(pooled)


def fit_head(train: tuple[np.ndarray, Sequence[int]], val: tuple[np.ndarray, Sequence[int]]):
    """Logistic regression; C is the grid value with the best val accuracy (the smallest on ties)."""
    from sklearn.linear_model import LogisticRegression

    scored = []
    for c in C_GRID:
        head = LogisticRegression(C=c, max_iter=5000).fit(*train)
        scored.append((head.score(*val), -c, head))
    best_accuracy, negative_c, head = max(scored, key=lambda item: item[:2])
    return head, {"C": -negative_c, "val_accuracy": round(float(best_accuracy), 6)}


def golden_examples(texts: Sequence[str], p1: np.ndarray) -> list[dict]:
    """The OTA health check's postings: per class, the test postings the FP32 head is surest of (so the
    INT8 graph's small shifts cannot flip them)."""
    rows = []
    for label in (0, 1):
        confidence = p1 if label else 1 - p1
        chosen = [i for i in np.argsort(-confidence) if (p1[i] >= 0.5) == bool(label)][:GOLDEN_PER_CLASS]
        rows += [{"text": texts[i], "label": label, "p1": round(float(p1[i]), 6)} for i in chosen]
    return rows


def export_cpu_graph(reference, fp32_path: Path) -> None:
    import torch

    from cloud.export.hailo import LogitsOnly

    example = (torch.ones(1, 16, dtype=torch.long), torch.ones(1, 16, dtype=torch.long))
    with torch.no_grad():
        torch.onnx.export(
            LogitsOnly(reference),
            example,
            str(fp32_path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={name: {0: "batch", 1: "sequence"} for name in ("input_ids", "attention_mask")},
            opset_version=17,
            dynamo=False,
        )


def bundle_accuracy(bundle_dir: Path, texts: Sequence[str], labels: Sequence[int]) -> float:
    """What the device answers (onnxruntime, the bundle's own preprocessing and tokenizer)."""
    from device.runtime import load_backend

    backend = load_backend(bundle_dir, backend="onnxruntime", threads=2)
    predicted = [p.label for p in backend.predict(list(texts))]
    return round(float(np.mean(np.asarray(predicted) == np.asarray(labels))), 6)


def build_frozen_head(
    base: str,
    splits: dict[str, tuple[list[str], list[int]]],
    preprocessing: str,
    out: Path,
    student: Path | None,
    progress,
) -> dict:
    import torch
    from transformers import AutoModel

    from cloud.export.hailo import SEQUENCE_LENGTH, HailoReference, encode_fixed, host_weights
    from cloud.export.quantize import quantize_int8
    from cloud.training.base_models import resolve_base
    from device.runtime.hailo_host import HOST_WEIGHTS_FILE, EncoderCut
    from shared.bundle import GOLDEN_FILE, MODEL_FILE, TOKENIZER_FILE, write_bundle
    from shared.labels import LABEL_NAMES

    if len(LABEL_NAMES) != 2:
        raise UserError("the frozen-encoder head is written for the two-class taxonomy")
    source = Path(resolve_base(base))
    encoder = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    tokenizer_path = source / TOKENIZER_FILE
    if not tokenizer_path.is_file():
        raise UserError(f"{source} has no {TOKENIZER_FILE}; the device tokenizes with it")
    head_layer = torch.nn.Linear(encoder.config.hidden_size, len(LABEL_NAMES))
    reference = HailoReference(encoder, "mean", head_layer).eval()
    features, encoded = {}, {}
    for name, (texts, _) in splits.items():
        progress(f"frozen-encoder features for {name} ({len(texts)} postings, {SEQUENCE_LENGTH} tokens)")
        encoded[name] = encode_fixed(tokenizer_path, texts, preprocessing)
        features[name] = frozen_features(reference, *encoded[name])
    head, selection = fit_head(
        (features["train_2025"], splits["train_2025"][1]), (features["val_2025"], splits["val_2025"][1])
    )
    # sklearn's binary head scores class 1 with w.x + b; logits [-(w.x + b)/2, (w.x + b)/2] give the same softmax.
    w, b = head.coef_[0].astype(np.float32), float(head.intercept_[0])
    with torch.no_grad():
        head_layer.weight.copy_(torch.from_numpy(np.stack([-w / 2, w / 2])))
        head_layer.bias.copy_(torch.tensor([-b / 2, b / 2]))
    fp32 = {name: float(head.score(features[name], splits[name][1])) for name in ("test_2025", "eval_2026")}
    cut = EncoderCut(SEQUENCE_LENGTH, encoder.config.hidden_size, encoder.config.num_attention_heads, "mean")
    with tempfile.TemporaryDirectory(prefix="frozen-head-") as tmp, atomic_directory(out) as staging:
        progress("exporting the CPU graph (INT8) and the host weights")
        export_cpu_graph(reference, Path(tmp) / "model_fp32.onnx")
        quantization = quantize_int8(Path(tmp) / "model_fp32.onnx", staging / MODEL_FILE)
        shutil.copyfile(tokenizer_path, staging / TOKENIZER_FILE)
        np.savez(staging / HOST_WEIGHTS_FILE, **host_weights(reference))
        golden_rows = golden_examples(splits["test_2025"][0], head.predict_proba(features["test_2025"])[:, 1])
        (staging / GOLDEN_FILE).write_text("".join(json.dumps(r) + "\n" for r in golden_rows), encoding="utf-8")
        write_bundle(
            staging,
            name="minilm_frozen_head_v1",
            version="1",
            labels=dict(LABEL_NAMES),
            max_length=SEQUENCE_LENGTH,
            metrics={"accuracy_fp32": fp32, "head": selection, "quantization": quantization},
            base_model=f"all-MiniLM-L6-v2 (frozen; {source.name}) + logistic-regression head",
            preprocessing=preprocessing,
            extra={"hailo": cut.to_manifest()},
        )
    metrics = {
        "frozen_head": {
            "fp32": {k: round(v, 6) for k, v in fp32.items()},
            "int8_cpu": {k: bundle_accuracy(out, *splits[k]) for k in ("test_2025", "eval_2026")},
            "selection": selection,
            "sequence_length": SEQUENCE_LENGTH,
        },
        "postings": {name: len(texts) for name, (texts, _) in splits.items()},
    }
    if student is not None:
        metrics["student"] = {
            "bundle": student.name,
            "int8_cpu": {k: bundle_accuracy(student, *splits[k]) for k in ("test_2025", "eval_2026")},
        }
    return metrics


@click.command("frozen-head")
@splits_option()
@normalized_option()
@click.option(
    "--student",
    type=click.Path(path_type=Path),
    default=Path("artifacts/bundles/model_a_v1"),
    show_default=True,
    help="The device's fine-tuned bundle, scored on the same postings for comparison.",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("artifacts/bundles/minilm_frozen_head_v1"), show_default=True
)
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(path_type=Path),
    default=Path("artifacts/frozen_head/metrics.json"),
    show_default=True,
)
@params_option()
@click.option("--threads", type=int, default=None, help="torch threads.")
def frozen_head_command(splits, normalized, student, out, metrics_path, params_path, threads) -> None:
    """Train a head on frozen MiniLM-L6 features at 128 tokens (Hailo path (a)) and bundle it."""
    from cloud.data.splits import read_split
    from cloud.params import load_params
    from cloud.training.stream_split import load_stream

    params = load_params(params_path)
    if threads:
        import torch

        torch.set_num_threads(threads)
    stream = load_stream(normalized, params, "")
    data = {name: read_split(splits / f"{name}.csv") for name in ("train", "val", "test")}
    data = {f"{name}_2025": value for name, value in data.items()}
    data["eval_2026"] = ([p.description for p in stream.evaluation], list(stream.eval_labels))
    preprocessing = str(params.get("model", {}).get("preprocessing", "clean"))
    echo = lambda message: click.echo(f"frozen-head: {message}", err=True)  # noqa: E731
    metrics = build_frozen_head("minilm", data, preprocessing, out, student if student.is_dir() else None, echo)
    write_json_atomic(metrics_path, metrics)
    click.echo(json.dumps(metrics, indent=2))
