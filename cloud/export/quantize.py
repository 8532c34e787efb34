"""Post-training INT8 quantization: four schemes, all gated by the same parity check.

The export tries `DEFAULT_SCHEMES` (or the `--scheme`s given) in order and ships the first that passes the gate
(`builder.export_first_passing`): batch-invariant schemes first, fastest first among them, then dynamic. The
gate runs the test split in batches of 16; the export also runs it one posting per call and records both
in the manifest, because only dynamic-style schemes can answer differently alone and in a batch.

`per_token` (first): the fused, embedding-pruned graph rebuilt op by op (`cloud.export.encoder_graph`) with
W8A8, one activation scale per token (`cloud.export.per_token`), 7-bit int8 weights per output column,
an int8 word table with one scale per row, merged QKV and ORT's MultiHeadAttention. Each token is quantized
from its own row, so a posting gets the same answer alone or in any batch (bit-identical: the manifest's
`batch_invariance_max_p1_gap` is 0), and the logit error is below dynamic's.

`blockwise` (second): weight-only block quantization of the unfused graph. Every MatMul becomes
MatMulNBits with int8 weights and one scale per block of 32 input channels, run with accuracy_level 4
(int8 compute: the activations are quantized per block of 32 too, not with one scale for the whole
tensor); the 30k-row word embedding becomes GatherBlockQuantized with 4-bit blocks of 16 (ORT only
offers 4-bit Gather, so it gets finer blocks). Batch-invariant too, and the most accurate, but on x86
AVX2 MatMulNBits is slower than fused FP32. Blocks of 32 map onto both targets' int8 dot-product
kernels (Cortex-A76 SDOT, x86 AVX2/VNNI).

`dynamic` (third): the classic ORT U8S8 recipe on the fused graph (QAttention), the fastest INT8 on
an x86 box without VNNI. Its weakness: one uint8 scale per activation tensor, per call, set by BERT's
few outlier channels and by every posting in the call. So some postings move a long way, and a
borderline posting's answer depends on which postings shared its call (the manifest's
`parity_by_batch_size` records both). It is the last resort of the default order for that reason, and
still in it because a model whose borderline postings the other schemes flip may pass with it.

`mixed` (opt-in, `--scheme mixed`): dynamic everywhere except one MatMul, which gets blockwise int8.
The MatMul is the one whose blockwise copy leaves the smallest logit error on the *validation* split
(layer-wise sensitivity, `builder.most_sensitive_node`: one trial quantization per MatMul). It inherits
dynamic's batch dependence.

The dynamic scheme's choices, and why they suit both the Pi 5 (Cortex-A76) and x86 (the measurements
behind this page, per model, are in docs/studies/2026-11-27-quantization-schemes.md):

* Dynamic quantization: activations are quantized per batch at run time to uint8, weights ahead of
  time to int8 (U8S8). No calibration set, and the activation range follows each posting.
* Weights QInt8, full 8-bit range (reduce_range=False). On arm64 with the dot-product extension
  (A76: UDOT/SDOT) MLAS accumulates 8-bit products straight into int32, so there is no saturation and
  7-bit weights would only throw precision away. The one place U8S8 can saturate is x86 AVX2 without
  VNNI (vpmaddubsw sums pairs into int16) -- exactly this build machine, so the parity gate that
  follows measures that worst case; AVX-512 VNNI / AVX-VNNI use vpdpbusd and do not saturate.
  `reduce_range=True` (7-bit weights) is the textbook fix for that saturation, but saturation is not
  what flips borderline postings (reduce_range and U8U8 flip them too): the per-tensor activation
  scale is.
* Per-channel weight scales: one scale per output column keeps small-magnitude columns from being
  crushed by one large column; it costs nothing at run time on either ISA.
* Operator coverage: MatMul, fused Attention (-> QAttention) and EmbedLayerNormalization
  (-> QEmbedLayerNormalization, which also shrinks the 30k-row embedding table 4x). Softmax,
  LayerNorm and GELU stay FP32.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

SCHEMES = ("per_token", "blockwise", "dynamic", "mixed")
DEFAULT_SCHEMES = ("per_token", "blockwise", "dynamic")  # what the export tries, in this order; see above
UNFUSED_SCHEMES = ("blockwise",)  # rewrites plain MatMul/Gather: quantized from model_fp32.onnx
BLOCK_SIZE = 32
# 4 bits is all ORT's GatherBlockQuantized offers, so the embedding gets finer blocks to compensate.
EMBEDDING_BLOCK_SIZE = 16

QUANTIZED_OPS = ("MatMul", "Attention", "EmbedLayerNormalization")


def quantize_int8(
    fp32_path: Path, out_path: Path, per_channel: bool = True, reduce_range: bool = False, keep_fp32: Sequence[str] = ()
) -> dict[str, object]:
    """Dynamic U8S8; `keep_fp32` names graph nodes left unquantized (the quantization study uses it)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint via root
    quantize_dynamic(
        str(fp32_path),
        str(out_path),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        reduce_range=reduce_range,
        op_types_to_quantize=list(QUANTIZED_OPS),
        nodes_to_exclude=list(keep_fp32),
        # Fused contrib ops (SkipLayerNormalization, ...) have no ONNX shape inference; their
        # outputs are float, which the quantizer must be told.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
    )
    return {
        "scheme": "dynamic",
        "weight_type": "QInt8",
        "activation_type": "QUInt8 (dynamic)",
        "per_channel": per_channel,
        "reduce_range": reduce_range,
        "quantized_ops": list(QUANTIZED_OPS),
        "kept_fp32": list(keep_fp32),
    }


def quantize_mixed(
    fp32_path: Path, out_path: Path, sensitive_node: str, per_channel: bool = True, reduce_range: bool = False
) -> dict[str, object]:
    """Dynamic U8S8 everywhere but `sensitive_node` (a MatMul), which becomes blockwise int8 MatMulNBits."""
    import onnx

    info = quantize_int8(fp32_path, out_path, per_channel, reduce_range, keep_fp32=[sensitive_node])
    model = _block_quantize(onnx.load(str(out_path)), ("MatMul",), 8, BLOCK_SIZE, 4, nodes=[sensitive_node])
    onnx.save(model, str(out_path))
    return {
        **info,
        "scheme": "mixed",
        "kept_fp32": [],
        "blockwise_int8": {"nodes": [sensitive_node], "block_size": BLOCK_SIZE, "accuracy_level": 4},
    }


def quantize_blockwise(
    fp32_path: Path,
    out_path: Path,
    block_size: int = BLOCK_SIZE,
    embedding_block_size: int = EMBEDDING_BLOCK_SIZE,
    bits: int = 8,
    accuracy_level: int = 4,
) -> dict[str, object]:
    """Block-quantized MatMuls (int8, accuracy_level 4 = int8 compute, by default) and a 4-bit
    block-quantized word embedding. `bits`/`accuracy_level` are the quantization study's knobs."""
    import onnx

    model = _block_quantize(onnx.load(str(fp32_path)), ("Gather",), 4, embedding_block_size, None)
    model = _block_quantize(model, ("MatMul",), bits, block_size, accuracy_level)
    onnx.save(model, str(out_path))
    kinds = sorted(
        {node.op_type for node in model.graph.node if "Quantized" in node.op_type or "NBits" in node.op_type}
    )
    return {
        "scheme": "blockwise",
        "matmul_weights": f"int{bits}, symmetric, blocks of {block_size}",
        "matmul_compute": f"accuracy_level {accuracy_level}"
        + (" (int8, activations quantized per block)" if accuracy_level == 4 else ""),
        "embedding": f"4-bit blocks of {embedding_block_size} (GatherBlockQuantized)",
        "quantized_ops": kinds,
    }


def quantize_per_token(fused_path: Path, out_path: Path) -> dict[str, object]:
    """Per-token W8A8 on the fused graph, rebuilt op by op (`cloud.export.encoder_graph`)."""
    import onnx

    from cloud.export.encoder_graph import QUERY_ROWS, build_per_token_model, read_fused_encoder
    from cloud.export.per_token import WEIGHT_LEVELS, ZERO_POINT

    encoder = read_fused_encoder(onnx.load(str(fused_path)))
    model = build_per_token_model(encoder)
    onnx.save(model, str(out_path))
    return {
        "scheme": "per_token",
        "weight_type": f"QInt8 in [-{WEIGHT_LEVELS}, {WEIGHT_LEVELS}] (7 bits), symmetric, per output column",
        "activation_type": f"QUInt8 per token (row), symmetric around {ZERO_POINT}, scale from the row's max |x|",
        "matmuls": sum(n.op_type == "MatMulIntegerToFloat" for n in model.graph.node),
        "quantized_activations": sum(n.op_type == "QuantizeLinear" for n in model.graph.node),
        "embedding": "word table int8, one scale per row; position and token-type tables FP32",
        "attention": "merged QKV MatMul, MultiHeadAttention",
        "last_block_query_rows": QUERY_ROWS if encoder.reads_first_token_only else "all",
        "nodes": len(model.graph.node),
    }


def _block_quantize(
    model,
    ops: tuple[str, ...],
    bits: int,
    block_size: int,
    accuracy_level: int | None,
    nodes: Sequence[str] | None = None,
):
    """ORT's weight-only block quantizer (MatMul -> MatMulNBits, Gather -> GatherBlockQuantized) over `ops`."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.ERROR)
    config = DefaultWeightOnlyQuantConfig(
        block_size=block_size, is_symmetric=True, bits=bits, accuracy_level=accuracy_level, op_types_to_quantize=ops
    )
    quantizer = MatMulNBitsQuantizer(model, nodes_to_include=list(nodes) if nodes else None, algo_config=config)
    quantizer.process()
    return quantizer.model.model
