"""`careeredge-cloud export --target hailo`: the compile kit for Hailo's Dataflow Compiler (DFC).

The Hailo model zoo compiles MiniLM-L6 from the nodes `embedding` + `masked_fill` to `last_hidden_state`
at 128 tokens (`cfg/base/all_minilm.yaml`); we cut our encoders at the same place, so one host side
(`device/runtime/hailo_host.py`) serves the zoo's precompiled HEF (path (a)) and a HEF compiled from a
fine-tuned encoder (path (b)). The kit holds:

    encoder_cut.onnx     word-embedding rows [1, 128, hidden] + expanded 0/1 mask [1, 128, heads*128]
                         -> last_hidden_state [1, 128, hidden]; positions, token types and the embedding
                         LayerNorm are inside (constants)
    calibration.npz      those two inputs for 64 training postings (the zoo's calibset_size)
    model.alls           the model script (the zoo's all_minilm_l6_v2.alls settings)
    hailo_host.npz       the host's weights: word embeddings, pooler, classifier
    COMPILE.md           the DFC commands (they need Hailo's developer-zone wheel: not run here)
    report.json          the cut checked against the HF model, and its accuracy at 128 tokens

`--bundle DIR` also writes `<DIR>_hailo/`: that bundle plus hailo_host.npz, the manifest's `hailo`
block, max_length 128 (the CPU fallback then reads what the HEF reads), and `model.hef` with `--hef`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from device.runtime.hailo_host import HOST_WEIGHTS_FILE, EncoderCut
from shared.bundle import HAILO_FILE, read_manifest, save_manifest
from shared.errors import UserError
from shared.files import sha256_file
from shared.text import load_tokenizer, model_input

SEQUENCE_LENGTH = 128
CALIBRATION_SIZE = 64
CUT_FILE = "encoder_cut.onnx"
OPSET = 17
MODEL_SCRIPT = """\
# Hailo DFC model script for careeredge's encoder cut (the zoo's all_minilm_l6_v2.alls settings).
set_input_mask_to_softmax()
model_optimization_config(calibration, batch_size=8, calibset_size=64)
pre_quantization_optimization(equalization, policy=enabled)
pre_quantization_optimization(ew_add_fusing, policy=disabled)
model_optimization_flavor(optimization_level=0, compression_level=0)
pre_quantization_optimization(matmul_correction, layers={matmul*}, correction_type=zp_comp_block)
model_optimization_config(negative_exponent, layers={*}, rank=0)
"""


class EncoderFromEmbeddings(torch.nn.Module):
    """A BERT encoder from word-embedding rows and the expanded 0/1 mask to its last hidden state:
    the graph the HEF runs. Token type 0 everywhere (single-segment postings)."""

    def __init__(self, bert):
        super().__init__()
        self.embeddings, self.encoder = bert.embeddings, bert.encoder
        self.heads = bert.config.num_attention_heads

    def forward(self, embedding: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, _ = embedding.shape
        positions = self.embeddings.position_embeddings.weight[:length]
        token_type = self.embeddings.token_type_embeddings.weight[0]
        hidden = self.embeddings.LayerNorm(embedding + positions + token_type)
        per_head = mask.view(batch, length, self.heads, length).transpose(1, 2)  # [batch, heads, query, key]
        additive = (1.0 - per_head) * torch.finfo(hidden.dtype).min
        return self.encoder(hidden, attention_mask=additive)[0]


class HailoReference(torch.nn.Module):
    """ids -> logits through the cut, returning the intermediates the host computes (the tests compare
    `device/runtime/hailo_host.py` against these ONNX outputs)."""

    def __init__(self, bert, pooling: str, head: torch.nn.Module, pooler: torch.nn.Module | None = None):
        super().__init__()
        self.word_embeddings = bert.embeddings.word_embeddings
        self.cut = EncoderFromEmbeddings(bert)
        self.pooling, self.head, self.pooler = pooling, head, pooler

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        batch, length = input_ids.shape
        embedding = self.word_embeddings(input_ids)
        keys = attention_mask.to(embedding.dtype)[:, None, None, :]
        mask = keys.expand(batch, length, self.cut.heads, length).reshape(batch, length, -1)
        hidden = self.cut(embedding, mask)
        if self.pooling == "mean":
            weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        else:
            pooled = self.pooler(hidden)
        return self.head(pooled), embedding, mask, hidden


class LogitsOnly(torch.nn.Module):
    """The reference's logits alone: the CPU graph (model.onnx) of a bundle built on the cut."""

    def __init__(self, reference: HailoReference):
        super().__init__()
        self.reference = reference

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.reference(input_ids, attention_mask)[0]


def encoder_cut(model) -> EncoderCut:
    """The manifest block for a BERT-family classifier cut at SEQUENCE_LENGTH (pooler + classifier head)."""
    config = model.config
    return EncoderCut(SEQUENCE_LENGTH, config.hidden_size, config.num_attention_heads, "cls_pooler")


def classifier_reference(model) -> HailoReference:
    """A BertForSequenceClassification as host + cut: [CLS] pooler and classifier on the host."""
    return HailoReference(model.bert, "cls_pooler", model.classifier, model.bert.pooler).eval()


def host_weights(reference: HailoReference) -> dict[str, np.ndarray]:
    def array(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy().astype(np.float32)

    weights = {
        "word_embeddings": array(reference.word_embeddings.weight),
        "classifier_weight": array(reference.head.weight),
        "classifier_bias": array(reference.head.bias),
    }
    if reference.pooling == "cls_pooler":
        weights["pooler_weight"] = array(reference.pooler.dense.weight)
        weights["pooler_bias"] = array(reference.pooler.dense.bias)
    return weights


def export_cut(reference: HailoReference, out_path: Path) -> None:
    """The encoder cut as static-shape ONNX (batch 1, SEQUENCE_LENGTH): what `hailo parser onnx` reads."""
    hidden, heads = reference.word_embeddings.weight.shape[1], reference.cut.heads
    inputs = (
        torch.zeros(1, SEQUENCE_LENGTH, hidden),
        torch.ones(1, SEQUENCE_LENGTH, heads * SEQUENCE_LENGTH),
    )
    with torch.no_grad():
        torch.onnx.export(
            reference.cut,
            inputs,
            str(out_path),
            input_names=["embedding", "masked_fill"],
            output_names=["last_hidden_state"],
            opset_version=OPSET,
            dynamo=False,
        )


def export_reference(reference: HailoReference, out_path: Path) -> None:
    """The whole path (ids -> logits) as ONNX with its intermediates as extra outputs."""
    inputs = (torch.ones(1, SEQUENCE_LENGTH, dtype=torch.long), torch.ones(1, SEQUENCE_LENGTH, dtype=torch.long))
    with torch.no_grad():
        torch.onnx.export(
            reference,
            inputs,
            str(out_path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits", "embedding", "masked_fill", "last_hidden_state"],
            dynamic_axes={"input_ids": {0: "batch"}, "attention_mask": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def encode_fixed(tokenizer_path: Path, texts: Sequence[str], preprocessing: str) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and 0/1 mask padded to SEQUENCE_LENGTH, with the device's preprocessing."""
    tokenizer = load_tokenizer(tokenizer_path, SEQUENCE_LENGTH)
    tokenizer.enable_padding(length=SEQUENCE_LENGTH, pad_id=tokenizer.token_to_id("[PAD]") or 0)
    encodings = tokenizer.encode_batch([model_input(t, preprocessing) for t in texts])
    return (
        np.array([e.ids for e in encodings], dtype=np.int64),
        np.array([e.attention_mask for e in encodings], dtype=np.int64),
    )


def calibration_set(reference: HailoReference, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        _, embedding, expanded, _ = reference(torch.from_numpy(ids), torch.from_numpy(mask))
    return {"embedding": embedding.numpy(), "masked_fill": expanded.numpy()}


def compile_steps(name: str, cut: EncoderCut, hw_arch: str = "hailo8l") -> str:
    return f"""# Compiling {name} for Hailo ({hw_arch})

Needs Hailo's Dataflow Compiler (`hailo_dataflow_compiler` wheel from the Hailo developer zone, x86-64
Linux, Python 3.10); not available from PyPI, so not run by careeredge's CI. Run in this directory:

```sh
hailo parser onnx {CUT_FILE} --hw-arch {hw_arch} \\
    --start-node-names embedding masked_fill --end-node-names last_hidden_state \\
    --har-path {name}.har -y
hailo optimize {name}.har --hw-arch {hw_arch} --calib-set-path calibration.npz \\
    --model-script model.alls --output-har-path {name}_optimized.har
hailo compiler {name}_optimized.har --hw-arch {hw_arch} --output-dir .
```

The HEF takes `embedding` [{cut.sequence_length}, {cut.hidden_size}] and `masked_fill`
[{cut.sequence_length}, {cut.num_heads}x{cut.sequence_length}] (float32; HailoRT quantizes on the host) and
returns `last_hidden_state`. Put it in the bundle and re-hash:

```sh
careeredge-cloud export --target hailo --model-dir MODEL_DIR --bundle BUNDLE_DIR --hef {name}.hef
```

Use `--hw-arch hailo8` for the 26 TOPS AI HAT+. On the Pi: `[model] backend = "auto"` (docs/appliance.md).
"""


def bundle_for_hailo(
    bundle_dir: Path, out_dir: Path, cut: EncoderCut, weights: dict[str, np.ndarray], hef: Path | None, metrics: dict
) -> Path:
    """A copy of `bundle_dir` that the Hailo backend can run (and the CPU still can, at 128 tokens)."""
    manifest = read_manifest(bundle_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(bundle_dir, out_dir)
    np.savez(out_dir / HOST_WEIGHTS_FILE, **weights)
    names = [*manifest["files"], HOST_WEIGHTS_FILE]
    if hef is not None:
        shutil.copyfile(hef, out_dir / HAILO_FILE)
        names.append(HAILO_FILE)
    manifest = {k: v for k, v in manifest.items() if k not in ("signature", "key_id")}  # re-sign when publishing
    manifest.update(
        max_length=cut.sequence_length,
        windows=1,
        hailo=cut.to_manifest(),
        files={name: sha256_file(out_dir / name) for name in sorted(set(names))},
        metrics={**manifest.get("metrics", {}), "hailo": metrics},
    )
    save_manifest(out_dir, manifest)
    return out_dir


def export_hailo(
    model_dir: Path,
    out_dir: Path,
    train_texts: Sequence[str],
    test_texts: Sequence[str],
    test_labels: Sequence[int],
    preprocessing: str,
    bundle_dir: Path | None = None,
    hef: Path | None = None,
    progress=lambda message: None,
) -> dict:
    from transformers import AutoModelForSequenceClassification

    if hef is not None and not hef.is_file():
        raise UserError(f"--hef {hef} does not exist")
    # eager attention: the exporter traces the additive mask path the cut relies on
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    if not hasattr(model, "bert"):
        raise UserError(f"{model_dir}: the Hailo cut is written for BERT-family encoders (MiniLM, BERT)")
    reference, cut = classifier_reference(model), encoder_cut(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress("exporting the encoder cut")
    export_cut(reference, out_dir / CUT_FILE)
    ids, mask = encode_fixed(model_dir / "tokenizer.json", train_texts[:CALIBRATION_SIZE], preprocessing)
    np.savez_compressed(out_dir / "calibration.npz", **calibration_set(reference, ids, mask))
    (out_dir / "model.alls").write_text(MODEL_SCRIPT)
    weights = host_weights(reference)
    np.savez(out_dir / HOST_WEIGHTS_FILE, **weights)
    progress(f"checking the cut on {len(test_texts)} test postings")
    report = check_cut(
        model, reference, out_dir / CUT_FILE, model_dir / "tokenizer.json", test_texts, test_labels, preprocessing
    )
    report["cut"] = cut.to_manifest()
    (out_dir / "COMPILE.md").write_text(compile_steps(model_dir.parent.name or "model", cut))
    if bundle_dir is not None:
        target = bundle_dir.parent / f"{bundle_dir.name}_hailo"
        report["bundle"] = str(bundle_for_hailo(bundle_dir, target, cut, weights, hef, report["accuracy"]))
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def check_cut(model, reference, cut_path, tokenizer_path, texts, labels, preprocessing) -> dict:
    """The cut (ONNX Runtime, FP32) + the host's numpy half against the HF model at the same 128 tokens."""
    import onnxruntime as ort

    from device.runtime.hailo_host import HostSide

    ids, mask = encode_fixed(tokenizer_path, texts, preprocessing)
    with torch.no_grad():
        hf_logits = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    host = HostSide(encoder_cut(model), host_weights(reference))
    session = ort.InferenceSession(str(cut_path), providers=["CPUExecutionProvider"])
    hidden = np.concatenate(
        [
            session.run(
                None, {"embedding": host.embeddings(ids[i : i + 1]), "masked_fill": host.mask(mask[i : i + 1])}
            )[0]
            for i in range(len(ids))
        ]
    )
    logits = host.logits(hidden, mask)
    labels = np.asarray(labels)
    return {
        "postings": len(texts),
        "max_abs_logit_diff_vs_hf": float(np.abs(logits - hf_logits).max()),
        "agreement_with_hf": float((logits.argmax(1) == hf_logits.argmax(1)).mean()),
        "accuracy": {"test_2025_at_128_tokens": round(float((logits.argmax(1) == labels).mean()), 6)},
    }
