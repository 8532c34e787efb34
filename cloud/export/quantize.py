"""Post-training INT8 quantization: two schemes, both gated by the same parity check.

`blockwise` (default): weight-only block quantization of the unfused graph. Every MatMul becomes
MatMulNBits with int8 weights and one scale per block of 32 input channels, run with accuracy_level 4
(int8 compute: the activations are quantized per block of 32 too, not with one scale for the whole
tensor); the 30k-row word embedding becomes GatherBlockQuantized with 4-bit blocks of 16 (ORT only
offers 4-bit Gather, so it gets finer blocks). Why it is the default: measured on the test split,
dynamic U8S8 (below) flips one borderline Model A posting (p1 0.473 -> 0.543: 98.9 % < the 99 % gate)
because one uint8 scale per activation tensor is set by BERT's few outlier channels; blockwise agrees
on 93/93 for Model A at 24 % of the FP32 size, with half dynamic's logit error on the validation split
(`scripts/study_quantization.py`). Its cost is speed on x86 AVX2, where MatMulNBits is slower than the
fused QAttention graph (see the README's figures). Which borderline posting a scheme flips is partly
chance: Model B v2 is the reverse case, which `export-b` handles by falling back to dynamic. Blocks of 32 map
onto both targets' int8 dot-product kernels (Cortex-A76 SDOT, x86 AVX2/VNNI).

`dynamic`: the classic ORT recipe, kept for models it suits (and measured in the bench):

The choices, and why they suit both the Pi 5 (Cortex-A76) and x86:

* Dynamic quantization: activations are quantized per batch at run time to uint8, weights ahead of
  time to int8 (U8S8). No calibration set, and the activation range follows each posting.
* Weights QInt8, full 8-bit range (reduce_range=False). On arm64 with the dot-product extension
  (A76: UDOT/SDOT) MLAS accumulates 8-bit products straight into int32, so there is no saturation and
  7-bit weights would only throw precision away. The one place U8S8 can saturate is x86 AVX2 without
  VNNI (vpmaddubsw sums pairs into int16) -- exactly this build machine, so the parity gate that
  follows measures that worst case; AVX-512 VNNI / AVX-VNNI use vpdpbusd and do not saturate.
  If the gate ever fails on x86 only, `reduce_range=True` is the knob.
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

SCHEMES = ("blockwise", "dynamic")
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
