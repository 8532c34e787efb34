#!/usr/bin/env python
"""Quantization study: which INT8 recipes keep Model A's decisions, and what each costs in speed.

    python scripts/study_quantization.py --json artifacts/bench/quantization_study.json

The export's parity gate (>= 99 % agreement on the 93 test postings, <= 0.5 pt accuracy drop) allows
no flipped posting at all, and the fast recipe on an x86 box without VNNI (fused graph, dynamic U8S8
with QAttention) can flip one. This script measures, against ORT FP32 on the same graph, in one process:

* `per_token`: what the export ships by default: the fused graph rebuilt with one activation scale per
  token (`cloud/export/encoder_graph.py`, `per_token.py`), 7-bit per-column weights, int8 word table;
* `dynamic`: the whole fused graph, per-channel U8S8 (what `--scheme dynamic` ships);
* `dynamic, one node FP32`: the same with each quantizable node left in FP32 in turn (25 variants).
  The one a user could pick honestly is the variant with the smallest error on the *validation*
  split; the spread of test flips over all 25 shows whether node selection can fix the gate at all;
* `dynamic + SmoothQuant a`: per-channel activation scales migrated into the weights (Xiao et al.,
  2023) before every quantized MatMul/Attention, calibrated on training postings. BERT is post-LN, so
  the 1/s scale cannot be folded into the LayerNorm (its output is also the residual): an explicit Mul
  is inserted instead;
* `blockwise ...`: MatMulNBits weight-only blocks (the export's fallback is int8, accuracy_level 4).

Columns: logit-margin error and flips vs FP32 on the validation and test splits, test accuracy, size,
and batch-1 p50 latency (model_input + tokenize + session; postings interleaved across variants) as a
ratio to ORT FP32. Selection is only ever made on the validation split; the test split is reported.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cloud.cli_options import splits_option  # noqa: E402

SMOOTHQUANT_ALPHAS = (0.5, 0.8)
CALIBRATION_POSTINGS = 64


@click.command()
@click.option("--json", "json_out", type=click.Path(path_type=Path), required=True)
@click.option(
    "--bundle", type=click.Path(path_type=Path), default=Path("artifacts/bundles/model_a_v1"), show_default=True
)
@click.option(
    "--export-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The export's work dir with model_fp32.onnx [default: artifacts/export/<bundle name>].",
)
@click.option(
    "--model-dir", type=click.Path(path_type=Path), default=Path("artifacts/model_a_v1/hf"), show_default=True
)
@splits_option()
@click.option("--threads", default=2, show_default=True)
@click.option("--latency-postings", default=30, show_default=True)
@click.option("--skip-sensitivity", is_flag=True, help="Skip the 25 one-node-FP32 variants.")
def main(
    json_out: Path,
    bundle: Path,
    export_dir: Path | None,
    model_dir: Path,
    splits: Path,
    threads: int,
    latency_postings: int,
    skip_sensitivity: bool,
) -> None:
    import onnx
    from tqdm import tqdm

    from cloud.export.builder import FP32_FILE
    from cloud.export.optimize import fuse_transformer
    from cloud.export.prune import prune_embeddings
    from cloud.export.quantize import QUANTIZED_OPS, quantize_blockwise, quantize_int8, quantize_per_token
    from shared.bundle import read_manifest

    manifest = read_manifest(bundle)
    export_dir = export_dir or Path("artifacts/export") / manifest["name"]
    unfused, tokenizer = export_dir / FP32_FILE, model_dir / "tokenizer.json"
    for path in (unfused, tokenizer, model_dir / "config.json"):
        if not path.is_file():
            raise SystemExit(f"missing {path}: train and export the model first (`dvc repro export`)")
    val, test, train = (read_split(splits / f"{name}.csv") for name in ("val", "test", "train"))
    scratch = Path(tempfile.mkdtemp(prefix="careeredge-qstudy-"))
    study = Study(manifest, val, test, threads, scratch)
    try:
        # The fused, embedding-pruned FP32 graph the dynamic scheme starts from, rebuilt from this
        # export's FP32 graph so that every variant descends from the same weights.
        config = json.loads((model_dir / "config.json").read_text())
        fuse_transformer(
            unfused,
            scratch / "fused.onnx",
            config["num_attention_heads"],
            config["hidden_size"],
            config["num_hidden_layers"],
        )
        fused, fused_tokenizer = scratch / "pruned.onnx", scratch / "pruned_tokenizer.json"
        if prune_embeddings(scratch / "fused.onnx", tokenizer, fused, fused_tokenizer, manifest["max_length"]) is None:
            fused, fused_tokenizer = scratch / "fused.onnx", tokenizer
        study.add("ORT FP32 (fused)", fused, fused_tokenizer)
        candidates = {
            "per_token (shipped default)": lambda out: quantize_per_token(fused, out),
            "dynamic (--scheme dynamic)": lambda out: quantize_int8(fused, out),
        }
        calibration = study.reference_inputs(train[0][:CALIBRATION_POSTINGS])
        peaks = activation_peaks(fused, calibration)  # alpha-independent: measured once
        for alpha in SMOOTHQUANT_ALPHAS:

            def smoothed(out, alpha=alpha):
                smooth_quant(fused, scratch / "smoothed.onnx", peaks, alpha, calibration)
                quantize_int8(scratch / "smoothed.onnx", out)

            candidates[f"dynamic + SmoothQuant a={alpha}"] = smoothed
        for bits, level in ((8, 4), (8, 0), (4, 4)):
            label = f"blockwise int{bits}, accuracy_level {level}" + (
                " (the fallback)" if (bits, level) == (8, 4) else ""
            )
            candidates[label] = lambda out, bits=bits, level=level: quantize_blockwise(
                unfused, out, bits=bits, accuracy_level=level
            )
        for label, build in tqdm(candidates.items(), desc="variants", unit="variant"):
            out = scratch / f"variant_{len(study.rows)}.onnx"
            build(out)
            study.add(label, out, tokenizer if label.startswith("blockwise") else fused_tokenizer)

        sensitivity = []
        if not skip_sensitivity:
            graph = onnx.load(str(fused), load_external_data=False)
            nodes = [n.name for n in graph.graph.node if n.op_type in QUANTIZED_OPS]
            for node in tqdm(nodes, desc="one node FP32", unit="node"):
                out = scratch / "one_node.onnx"
                quantize_int8(fused, out, keep_fp32=[node])
                sensitivity.append({"node": node, **study.score(out, fused_tokenizer)})
            chosen = min(sensitivity, key=lambda r: r["val_logit_mae"])
            out = scratch / "chosen.onnx"
            quantize_int8(fused, out, keep_fp32=[chosen["node"]])
            study.add(f"dynamic, {chosen['node']} FP32 (best on val of {len(nodes)})", out, fused_tokenizer)

        study.time_latency(test[0][:latency_postings])
    finally:
        study.close()
        shutil.rmtree(scratch, ignore_errors=True)

    figures = {
        "model": manifest["name"],
        "threads": threads,
        "validation_postings": len(val[0]),
        "test_postings": len(test[0]),
        "latency_postings": min(latency_postings, len(test[0])),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "variants": study.rows,
    }
    if sensitivity:
        flips = [r["test_flips"] for r in sensitivity]
        figures["one_node_fp32"] = {
            "variants": len(sensitivity),
            "test_flips_min": min(flips),
            "test_flips_max": max(flips),
            "per_node": sensitivity,
        }
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(figures, indent=2) + "\n")
    print_table(figures)


class Study:
    """Scores quantized graphs against the first graph added (the FP32 reference)."""

    def __init__(self, manifest: dict, val, test, threads: int, scratch: Path):
        self.manifest, self.val, self.test, self.threads, self.scratch = manifest, val, test, threads, scratch
        self.rows: list[dict] = []
        self.backends: dict[str, object] = {}
        self.reference: dict[str, np.ndarray] = {}

    def backend(self, model: Path, tokenizer: Path):
        from cloud.export.builder import bundle_around
        from device.runtime import load_backend

        directory = bundle_around(Path(tempfile.mkdtemp(dir=self.scratch)), model, tokenizer, self.manifest, "study")
        return load_backend(directory, threads=self.threads)

    def score(self, model: Path, tokenizer: Path, keep_backend: str | None = None) -> dict:
        backend = self.backend(model, tokenizer)
        from bench_inference import OrtRuntime  # scripts/, beside this file

        from cloud.export.builder import logit_margin

        runtime = OrtRuntime(backend)
        probabilities = {
            name: runtime.probabilities(split[0]) for name, split in (("val", self.val), ("test", self.test))
        }
        if not self.reference:
            self.reference = probabilities
        row = {
            "size_mb": round(model.stat().st_size / 1e6, 2),
            "test_accuracy": round(float((probabilities["test"].argmax(1) == self.test[1]).mean()), 4),
        }
        for name, split_probabilities in probabilities.items():
            reference = self.reference[name]
            row[f"{name}_logit_mae"] = round(
                float(np.abs(logit_margin(split_probabilities) - logit_margin(reference)).mean()), 4
            )
            row[f"{name}_max_p1_gap"] = round(float(np.abs(split_probabilities[:, 1] - reference[:, 1]).max()), 4)
            row[f"{name}_flips"] = int((split_probabilities.argmax(1) != reference.argmax(1)).sum())
        if keep_backend:
            self.backends[keep_backend] = backend
        else:
            backend.close()
        return row

    def add(self, label: str, model: Path, tokenizer: Path) -> None:
        self.rows.append({"variant": label, **self.score(model, tokenizer, keep_backend=label)})

    def reference_inputs(self, texts):
        """Postings encoded by the reference backend, exactly as the device tokenizes them."""
        backend = next(iter(self.backends.values()))
        from shared.text import model_input

        return [backend.encode([model_input(t, backend.preprocessing)]) for t in texts]

    def time_latency(self, texts) -> None:
        from bench_inference import OrtRuntime, interleaved  # scripts/, beside this file

        runtimes = {name: OrtRuntime(backend) for name, backend in self.backends.items()}
        for runtime in runtimes.values():
            runtime.probabilities(texts[:2])  # warm-up
        seconds, _ = interleaved(runtimes, [[text] for text in texts], "batch 1 latency", "posting")
        baseline = float(np.median(seconds[next(iter(runtimes))])) * 1000
        for row in self.rows:
            p50 = float(np.median(seconds[row["variant"]])) * 1000
            row["p50_ms"] = round(p50, 2)
            row["speed_vs_ort_fp32"] = round(baseline / p50, 2)

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()


def activation_peaks(fp32_path: Path, calibration) -> dict[str, np.ndarray]:
    """Per-channel max |x| of every quantized MatMul/Attention input over the calibration postings."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.load(str(fp32_path))
    initializers = {i.name for i in probe.graph.initializer}
    activations = sorted({n.input[0] for n in smoothing_targets(probe.graph.node, initializers)})
    probe.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in activations)
    session = ort.InferenceSession(probe.SerializeToString(), unoptimized(), providers=["CPUExecutionProvider"])
    feeds = {i.name for i in session.get_inputs()}
    peaks: dict[str, np.ndarray] = {}
    for batch in calibration:
        outputs = session.run(activations, {k: getattr(batch, k) for k in feeds})
        for name, value in zip(activations, outputs):
            peak = np.abs(value.reshape(-1, value.shape[-1])).max(0)
            peaks[name] = np.maximum(peaks.get(name, peak), peak)
    return peaks


def smoothing_targets(nodes, initializers) -> list:
    """The nodes SmoothQuant rescales: fused Attention (QKV weight) and every MatMul with a constant weight."""
    return [n for n in nodes if n.op_type == "Attention" or (n.op_type == "MatMul" and n.input[1] in initializers)]


def unoptimized():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return options


def smooth_quant(fp32_path: Path, out_path: Path, peaks: dict[str, np.ndarray], alpha: float, calibration) -> None:
    """SmoothQuant for a post-LN BERT graph: X W = (X / s)(s W), with s_j = max|X_j|^a / max|W_j|^(1-a).

    Exact in FP32; it only moves where the dynamic range lives, so that one uint8 scale per activation
    tensor is no longer set by a few outlier channels.
    """
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32_path))
    initializers = {i.name: i for i in model.graph.initializer}
    targets = smoothing_targets(model.graph.node, initializers)

    smoothing = []
    for index, node in enumerate(targets):
        weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
        scale = peaks[node.input[0]] ** alpha / np.maximum(np.abs(weight).max(1), 1e-8) ** (1 - alpha)
        scale = np.clip(scale, 1e-4, 1e4).astype(np.float32)
        initializers[node.input[1]].CopyFrom(numpy_helper.from_array(weight * scale[:, None], node.input[1]))
        inverse, smoothed = f"smoothquant_{index}_inverse_scale", f"smoothquant_{index}_output"
        model.graph.initializer.append(numpy_helper.from_array(1.0 / scale, inverse))
        smoothing.append(
            (node, helper.make_node("Mul", [node.input[0], inverse], [smoothed], name=f"SmoothQuant_{index}"))
        )
        node.input[0] = smoothed
    ordered = []
    inserted = {id(node): mul for node, mul in smoothing}
    for node in model.graph.node:
        if id(node) in inserted:
            ordered.append(inserted[id(node)])
        ordered.append(node)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    onnx.save(model, str(out_path))

    # The transform must be exact in FP32: check the logits on a few calibration postings.
    smoothed_session = ort.InferenceSession(str(out_path), unoptimized(), providers=["CPUExecutionProvider"])
    original = ort.InferenceSession(str(fp32_path), unoptimized(), providers=["CPUExecutionProvider"])
    feeds = {i.name for i in original.get_inputs()}
    for batch in calibration[:4]:
        feed = {k: getattr(batch, k) for k in feeds}
        gap = float(np.abs(smoothed_session.run(None, feed)[0] - original.run(None, feed)[0]).max())
        if gap > 1e-3:
            raise SystemExit(f"SmoothQuant changed the FP32 logits by {gap:.2e}: the transform is wrong")


def read_split(path: Path) -> tuple[list[str], np.ndarray]:
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], np.array([int(r["label"]) for r in rows])


def print_table(figures: dict) -> None:
    print(
        f"\n{figures['model']}: flips vs ORT FP32 on {figures['validation_postings']} validation / "
        f"{figures['test_postings']} test postings; p50 over {figures['latency_postings']} postings, "
        f"{figures['threads']} threads, load {figures['load_average_1m']}"
    )
    print(
        f"{'variant':<58}{'val err':>8}{'val fl':>7}{'test err':>9}{'test fl':>8}{'test acc':>9}{'MB':>6}{'x FP32':>8}"
    )
    for r in figures["variants"]:
        print(
            f"{r['variant']:<58}{r['val_logit_mae']:>8.3f}{r['val_flips']:>7}{r['test_logit_mae']:>9.3f}"
            f"{r['test_flips']:>8}{r['test_accuracy']:>9.2%}{r['size_mb']:>6.1f}{r['speed_vs_ort_fp32']:>7.2f}x"
        )
    if "one_node_fp32" in figures:
        o = figures["one_node_fp32"]
        print(
            f"one node FP32, {o['variants']} variants: test flips from {o['test_flips_min']} to {o['test_flips_max']}"
        )


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.ERROR)
    main()
