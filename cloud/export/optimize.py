"""ORT transformer optimizer: fuse attention, LayerNorm, GELU and embeddings before quantizing.

Fusion first matters for INT8: a fused `Attention` node becomes `QAttention` (one INT8 GEMM for Q, K
and V) and `EmbedLayerNormalization` becomes `QEmbedLayerNormalization`. Only the hardware-neutral
Python fusions run here (opt_level=0); ORT's own graph optimisations run on the device at load time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from shared.errors import UserError

EXPECTED_FUSIONS = ("Attention", "SkipLayerNormalization")


def attention_geometry(config) -> tuple[int, int]:
    """(num_heads, hidden_size) from a BERT- or DistilBERT-style config."""
    heads = getattr(config, "num_attention_heads", None) or config.n_heads
    hidden = getattr(config, "hidden_size", None) or config.dim
    return int(heads), int(hidden)


def fuse_transformer(
    fp32_path: Path, out_path: Path, num_heads: int, hidden_size: int, num_layers: int
) -> dict[str, int]:
    """Write the fused FP32 model and return the fused-operator counts.

    Raises when attention did not fuse in every layer: an unfused graph still runs, but it would
    silently lose most of the INT8 speed-up, which is the point of this step.
    """
    from onnxruntime.transformers import optimizer

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    model = optimizer.optimize_model(
        str(fp32_path),
        model_type="bert",
        num_heads=num_heads,
        hidden_size=hidden_size,
        opt_level=0,
        use_gpu=False,
    )
    stats = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
    if stats.get("Attention", 0) < num_layers:
        raise UserError(
            f"transformer fusion fused {stats.get('Attention', 0)} of {num_layers} attention blocks "
            f"({fp32_path}); export with eager attention and the TorchScript exporter"
        )
    model.save_model_to_file(str(out_path))
    return stats
