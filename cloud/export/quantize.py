"""Post-training INT8 quantization: three schemes, all gated by the same parity check.

The export tries `DEFAULT_SCHEMES` (or the `--scheme`s given) in order and ships the first that passes the gate
(`builder.export_first_passing`): the gate decides what is accurate enough, and among what passes
the faster scheme on the hardware we measured goes first.

`dynamic` (first): the classic ORT U8S8 recipe on the fused graph, the fastest INT8 on this x86 box
(1.3-1.7x fused FP32 with QAttention). Its weakness: one uint8 scale per activation tensor, set by
BERT's few outlier channels, so some postings move a long way. Measured on the test split, it flips one
of full-depth Model A's 93 postings (p1 0.473 -> 0.543: 98.9 % < the 99 % gate) and one of its distilled
student's (0.371 -> 0.520); it keeps all 93 for Model B v2.

`mixed` (opt-in, `--scheme mixed`): dynamic everywhere except one MatMul, which gets blockwise int8
(below: per-block activation scales, half dynamic's error). The MatMul is the one whose blockwise copy
leaves the smallest logit error on the *validation* split (layer-wise sensitivity,
`builder.most_sensitive_node`: one trial quantization per MatMul, a minute or a few). Blockwise rather
than FP32 for that node, because an FP32 FFN matrix costs 1.8 MB and pushes the bundle past 25 % of
the FP32 size. Measured on A's distilled student: 1.2x student FP32, and 93/93 test decisions kept when
the gate runs its usual batches of 16, but one flip when each posting runs alone; on Model B v2 one
flip alone too. A scheme whose verdict depends on batching is not one to ship by default.

Dynamic activation scales are taken per call, over every posting in the batch, so a dynamic bundle's
answer for a borderline posting can depend on which postings shared its call. The gate runs batches
of 16 (length-sorted), as `--jsonl` does. Measured with one posting per call instead: full-depth A,
its student and Model B v2 each flip one of 93 under dynamic. Capping dynamic bundles at one posting
per call was tried; it makes B v2 fail every scheme, so it is recorded here and in the README, not
shipped. Blockwise quantizes activations per row block, so its answers do not depend on the batch.

`blockwise` (second): weight-only block quantization of the unfused graph. Every MatMul becomes
MatMulNBits with int8 weights and one scale per block of 32 input channels, run with accuracy_level 4
(int8 compute: the activations are quantized per block of 32 too, not with one scale for the whole
tensor); the 30k-row word embedding becomes GatherBlockQuantized with 4-bit blocks of 16 (ORT only
offers 4-bit Gather, so it gets finer blocks). It has half dynamic's logit error on the validation
split and keeps full-depth A's 93/93 (`scripts/study_quantization.py`), but on x86 AVX2 MatMulNBits is
slower than fused FP32. Blocks of 32 map onto both targets' int8 dot-product kernels (Cortex-A76 SDOT,
x86 AVX2/VNNI).

The dynamic scheme's choices, and why they suit both the Pi 5 (Cortex-A76) and x86:

* Dynamic quantization: activations are quantized per batch at run time to uint8, weights ahead of
  time to int8 (U8S8). No calibration set, and the activation range follows each posting.
* Weights QInt8, full 8-bit range (reduce_range=False). On arm64 with the dot-product extension
  (A76: UDOT/SDOT) MLAS accumulates 8-bit products straight into int32, so there is no saturation and
  7-bit weights would only throw precision away. The one place U8S8 can saturate is x86 AVX2 without
  VNNI (vpmaddubsw sums pairs into int16) -- exactly this build machine, so the parity gate that
  follows measures that worst case; AVX-512 VNNI / AVX-VNNI use vpdpbusd and do not saturate.
  `reduce_range=True` (7-bit weights) is the textbook fix, but it is not what flips full-depth A's
  posting: measured here, reduce_range and U8U8 leave 1-3 test flips too.
* Per-channel weight scales: one scale per output column keeps small-magnitude columns from being
  crushed by one large column; it costs nothing at run time on either ISA.
* Operator coverage: MatMul, fused Attention (-> QAttention) and EmbedLayerNormalization
  (-> QEmbedLayerNormalization, which also shrinks the 30k-row embedding table 4x). Softmax,
  LayerNorm and GELU stay FP32.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

SCHEMES = ("dynamic", "mixed", "blockwise")
DEFAULT_SCHEMES = ("dynamic", "blockwise")   # what the export tries, in this order; see above
BLOCK_SIZE = 32
# 4 bits is all ORT's GatherBlockQuantized offers, so the embedding gets finer blocks to compensate.
EMBEDDING_BLOCK_SIZE = 16

QUANTIZED_OPS = ("MatMul", "Attention", "EmbedLayerNormalization")


def quantize_int8(fp32_path: Path, out_path: Path, per_channel: bool = True,
                  reduce_range: bool = False, keep_fp32: Sequence[str] = ()) -> dict[str, object]:
    """Dynamic U8S8; `keep_fp32` names graph nodes left unquantized (the quantization study uses it)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint via root
    quantize_dynamic(
        str(fp32_path), str(out_path),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        reduce_range=reduce_range,
        op_types_to_quantize=list(QUANTIZED_OPS),
        nodes_to_exclude=list(keep_fp32),
        # Fused contrib ops (SkipLayerNormalization, ...) have no ONNX shape inference; their
        # outputs are float, which the quantizer must be told.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
    )
    return {"scheme": "dynamic", "weight_type": "QInt8", "activation_type": "QUInt8 (dynamic)", "per_channel": per_channel,
            "reduce_range": reduce_range, "quantized_ops": list(QUANTIZED_OPS), "kept_fp32": list(keep_fp32)}


def quantize_mixed(fp32_path: Path, out_path: Path, sensitive_node: str, per_channel: bool = True,
                   reduce_range: bool = False) -> dict[str, object]:
    """Dynamic U8S8 everywhere but `sensitive_node` (a MatMul), which becomes blockwise int8 MatMulNBits."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    info = quantize_int8(fp32_path, out_path, per_channel, reduce_range, keep_fp32=[sensitive_node])
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.ERROR)
    config = DefaultWeightOnlyQuantConfig(block_size=BLOCK_SIZE, is_symmetric=True, bits=8, accuracy_level=4,
                                          op_types_to_quantize=("MatMul",))
    quantizer = MatMulNBitsQuantizer(onnx.load(str(out_path)), nodes_to_include=[sensitive_node], algo_config=config)
    quantizer.process()
    onnx.save(quantizer.model.model, str(out_path))
    return {**info, "scheme": "mixed", "kept_fp32": [],
            "blockwise_int8": {"nodes": [sensitive_node], "block_size": BLOCK_SIZE, "accuracy_level": 4}}


def quantize_blockwise(fp32_path: Path, out_path: Path, block_size: int = BLOCK_SIZE,
                       embedding_block_size: int = EMBEDDING_BLOCK_SIZE, bits: int = 8,
                       accuracy_level: int = 4) -> dict[str, object]:
    """Block-quantized MatMuls (int8, accuracy_level 4 = int8 compute, by default) and a 4-bit
    block-quantized word embedding. `bits`/`accuracy_level` are the quantization study's knobs."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (DefaultWeightOnlyQuantConfig,
                                                                 MatMulNBitsQuantizer)

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.ERROR)
    model = onnx.load(str(fp32_path))
    for step_bits, ops, level, block in ((4, ("Gather",), None, embedding_block_size),
                                         (bits, ("MatMul",), accuracy_level, block_size)):
        config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, bits=step_bits,
                                              accuracy_level=level, op_types_to_quantize=ops)
        quantizer = MatMulNBitsQuantizer(model, algo_config=config)
        quantizer.process()
        model = quantizer.model.model
    onnx.save(model, str(out_path))
    kinds = sorted({node.op_type for node in model.graph.node if "Quantized" in node.op_type or "NBits" in node.op_type})
    return {"scheme": "blockwise", "matmul_weights": f"int{bits}, symmetric, blocks of {block_size}",
            "matmul_compute": f"accuracy_level {accuracy_level}"
                              + (" (int8, activations quantized per block)" if accuracy_level == 4 else ""),
            "embedding": f"4-bit blocks of {embedding_block_size} (GatherBlockQuantized)", "quantized_ops": kinds}
