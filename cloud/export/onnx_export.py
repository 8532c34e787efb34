"""PyTorch -> ONNX for a sequence classifier, shaped for ORT's transformer optimizer.

Why the TorchScript exporter (dynamo=False) and eager attention: the ORT transformer optimizer
pattern-matches the classic BERT subgraph (MatMul/Softmax attention, Add+LayerNorm) and fuses it into
`Attention` / `SkipLayerNormalization` / `EmbedLayerNormalization`. With transformers' SDPA attention
or the dynamo exporter the attention pattern is different and only the LayerNorms fuse, which costs
most of the speed-up.
Opset 17 has native LayerNormalization and is well inside what onnxruntime 1.32 supports.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import torch

OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


class _LogitsOnly(torch.nn.Module):
    """Positional inputs in, a single `logits` tensor out (the contract of a bundle's model.onnx)."""

    def __init__(self, model: torch.nn.Module, input_names: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.input_names, inputs))).logits


def model_input_names(model: torch.nn.Module) -> tuple[str, ...]:
    """DistilBERT has no token_type_ids; BERT/MiniLM do."""
    accepted = inspect.signature(model.forward).parameters
    return tuple(name for name in INPUT_NAMES if name in accepted)


def export_onnx(model: torch.nn.Module, out_path: Path, opset: int = OPSET) -> tuple[str, ...]:
    """Write `model` to `out_path` with dynamic batch and sequence axes; returns its input names."""
    model = model.eval()
    input_names = model_input_names(model)
    sample = torch.tensor([[101, 7592, 2088, 102], [101, 2951, 102, 0]], dtype=torch.int64)
    inputs = {
        "input_ids": sample,
        "attention_mask": (sample != 0).long(),
        "token_type_ids": torch.zeros_like(sample),
    }
    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    dynamic_axes["logits"] = {0: "batch"}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript tracer warnings about python-side shape checks
        # The wrapper must be in eval mode too: the exporter restores the wrapper's training flag
        # afterwards, recursively, and a fresh nn.Module is in training mode -- which would leave the
        # caller's model with dropout on (an FP32 reference that changes from run to run).
        torch.onnx.export(
            _LogitsOnly(model, input_names).eval(),
            tuple(inputs[name] for name in input_names),
            str(out_path),
            dynamo=False,
            opset_version=opset,
            input_names=list(input_names),
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
        )
    assert not model.training, "export must leave the model in eval mode"
    return input_names
