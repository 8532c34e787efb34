"""Per-token dynamic INT8 for every MatMul with a constant weight (W8A8, one activation scale per token).

ORT's dynamic quantization (`DynamicQuantizeLinear`, QAttention) takes *one* uint8 scale per
activation tensor, over every token of every posting in the call. BERT's few outlier channels set
that scale, so ordinary tokens keep only a few bits, and a posting's answer depends on which other
postings shared its call. Here each token (row) gets its own scale instead, the granularity of the
W8A8 LLM recipes (LLM.int8, SmoothQuant), built from standard ONNX ops plus ORT's
`MatMulIntegerToFloat`, which runs on MLAS' U8S8 kernels on both the Pi 5 (A76 dot product) and x86:

    x [..., K]  -> x2 = Reshape(x, [-1, K])
                   s  = max(|x2|, axis=1) / 127                      one scale per token, [R, 1]
                   q  = QuantizeLinear(x2, s, zero point 128)        uint8, symmetric about 128
    W [K, N]    -> W8 int8 in [-63, 63], one scale per output column (ahead of time; 7 bits: see WEIGHT_LEVELS)
    y           =  Reshape(MatMulIntegerToFloat(q, W8, 1, w_scale, 128, 0) * s, [..., N])

Each token's row is quantized from that row alone, so the answers do not depend on the batch, and the
logit error is below per-tensor dynamic's (`scripts/study_quantization.py` measures both), though it runs
slower than dynamic: the per-token scale costs a few elementwise passes that ORT's fused
DynamicQuantizeMatMul does not.
MatMuls that read the same activation (Q, K and V) share one quantized copy of it.
"""

from __future__ import annotations

import numpy as np

ZERO_POINT = 128  # uint8 activations, symmetric: q = round(x / s) + 128, |x / s| <= 127
# 7-bit weights (|w8| <= 63). x86 AVX2 without VNNI (this build machine) runs U8S8 with vpmaddubsw,
# which adds two u8 x s8 products into int16 and saturates: 2 x 255 x 127 > 32767. With 7 bits,
# 2 x 255 x 63 = 32130 fits, so the arithmetic is exact on every ISA, and the gate measures here what
# the Pi 5 (A76 dot product, never saturating) computes. U8U8 is exact too, but slower on AVX2.
WEIGHT_LEVELS = 63
_EPSILON = 1e-8  # an all-zero token gets scale eps / 127 instead of a division by zero


def quantize_matmuls_per_token(model) -> dict[str, object]:
    """Rewrite `model` (an onnx.ModelProto, opset >= 15) in place; returns what was quantized."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    weights = {i.name: i for i in graph.initializer}
    added = []

    def constant(name: str, value: np.ndarray) -> str:
        added.append(numpy_helper.from_array(value, name))
        return name

    one = constant("per_token_one", np.array(1.0, np.float32))
    eps = constant("per_token_eps", np.array(_EPSILON, np.float32))
    q_max = constant("per_token_127", np.array(127.0, np.float32))
    zero_point = constant("per_token_zero_point", np.array(ZERO_POINT, np.uint8))
    weight_zero_point = constant("per_token_weight_zero_point", np.array(0, np.int8))
    last_axis = constant("per_token_axis", np.array([1], np.int64)) if opset >= 18 else None  # an input from opset 18
    flat = constant("per_token_flat", np.array([-1], np.int64))

    nodes, quantized, groups = [], [], {}
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if weight is None or len(weight.dims) != 2:
            nodes.append(node)
            continue
        x, (k, n) = node.input[0], weight.dims
        mm = f"per_token_{len(quantized)}"  # this MatMul's names
        if x not in groups:  # quantize this activation once, for every MatMul that reads it
            groups[x] = act = f"per_token_x{len(groups)}"  # the quantized activation's names
            nodes += [
                helper.make_node("Reshape", [x, constant(act + "_rows", np.array([-1, k], np.int64))], [act + "_2d"]),
                helper.make_node("Abs", [act + "_2d"], [act + "_abs"]),
                (
                    helper.make_node("ReduceMax", [act + "_abs", last_axis], [act + "_peak"], keepdims=1)
                    if opset >= 18
                    else helper.make_node("ReduceMax", [act + "_abs"], [act + "_peak"], axes=[1], keepdims=1)
                ),
                helper.make_node("Max", [act + "_peak", eps], [act + "_peak_safe"]),
                helper.make_node("Div", [act + "_peak_safe", q_max], [act + "_scale"]),  # [R, 1]
                helper.make_node("Reshape", [act + "_scale", flat], [act + "_scale_1d"]),  # [R]
                helper.make_node("Shape", [act + "_scale_1d"], [act + "_rows_shape"]),
                helper.make_node(
                    "ConstantOfShape",
                    [act + "_rows_shape"],
                    [act + "_zero_points"],
                    value=helper.make_tensor("zp", TensorProto.UINT8, [1], [ZERO_POINT]),
                ),
                helper.make_node(
                    "QuantizeLinear", [act + "_2d", act + "_scale_1d", act + "_zero_points"], [act + "_q"], axis=0
                ),
                helper.make_node("Shape", [x], [act + "_lead"], end=-1),
            ]
        act = groups[x]
        w = numpy_helper.to_array(weight).astype(np.float32)
        w_scale = (np.maximum(np.abs(w).max(0), 1e-12) / WEIGHT_LEVELS).astype(np.float32)
        w_int8 = np.clip(np.round(w / w_scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8)
        nodes += [
            helper.make_node(
                "MatMulIntegerToFloat",
                [
                    act + "_q",
                    constant(mm + "_weight", w_int8),
                    one,
                    constant(mm + "_weight_scale", w_scale),
                    zero_point,
                    weight_zero_point,
                ],
                [mm + "_2d"],
                domain="com.microsoft",
                name=node.name + "_per_token",
            ),
            helper.make_node("Mul", [mm + "_2d", act + "_scale"], [mm + "_scaled"]),
            helper.make_node(
                "Concat", [act + "_lead", constant(mm + "_cols", np.array([n], np.int64))], [mm + "_shape"], axis=0
            ),
            helper.make_node("Reshape", [mm + "_scaled", mm + "_shape"], [node.output[0]], name=node.name),
        ]
        quantized.append(node.name)
    used = {name for node in nodes for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return {"matmuls": len(quantized), "activations": len(groups)}
