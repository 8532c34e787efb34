"""Post-training dynamic INT8 quantization of the fused graph.

The choices, and why they suit both the Pi 5 (Cortex-A76) and x86:

* Dynamic quantization: activations are quantized per batch at run time to uint8, weights ahead of
  time to int8 (U8S8). No calibration set, and the activation range follows each posting.
* Weights QInt8, full 8-bit range (reduce_range=False). On arm64 with the dot-product extension
  (A76: UDOT/SDOT) MLAS accumulates 8-bit products straight into int32, so there is no saturation and
  7-bit weights would only throw precision away. The one place U8S8 can saturate is x86 AVX2 without
  VNNI (vpmaddubsw sums pairs into int16) -- exactly this build machine, so the parity gate that
  follows measures that worst case; AVX-512 VNNI / AVX-VNNI use vpdpbusd and do not saturate.
  If the gate ever fails on x86 only, `reduce_range=True` is the knob (see notes/edge.md).
* Per-channel weight scales: one scale per output column keeps small-magnitude columns from being
  crushed by one large column; it costs nothing at run time on either ISA.
* Operator coverage: MatMul, fused Attention (-> QAttention) and EmbedLayerNormalization
  (-> QEmbedLayerNormalization, which also shrinks the 30k-row embedding table 4x). Softmax,
  LayerNorm and GELU stay FP32.
"""
from __future__ import annotations

import logging
from pathlib import Path

QUANTIZED_OPS = ("MatMul", "Attention", "EmbedLayerNormalization")


def quantize_int8(fp32_path: Path, out_path: Path, per_channel: bool = True,
                  reduce_range: bool = False) -> dict[str, object]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint via root
    quantize_dynamic(
        str(fp32_path), str(out_path),
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        reduce_range=reduce_range,
        op_types_to_quantize=list(QUANTIZED_OPS),
        # Fused contrib ops (SkipLayerNormalization, ...) have no ONNX shape inference; their
        # outputs are float, which the quantizer must be told.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
    )
    return {"weight_type": "QInt8", "activation_type": "QUInt8 (dynamic)", "per_channel": per_channel,
            "reduce_range": reduce_range, "quantized_ops": list(QUANTIZED_OPS)}
