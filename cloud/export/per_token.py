"""Per-token dynamic INT8 (W8A8, one activation scale per token) as ONNX nodes, and the writer that emits them.

ORT's dynamic quantization (`DynamicQuantizeLinear`, QAttention) takes *one* uint8 scale per
activation tensor, over every token of every posting in the call. BERT's few outlier channels set
that scale, so ordinary tokens keep only a few bits, and a posting's answer depends on which other
postings shared its call. Here each token (row) gets its own scale instead, the granularity of the
W8A8 LLM recipes (LLM.int8, SmoothQuant), built from standard ONNX ops plus ORT's
`MatMulIntegerToFloat`, which runs on MLAS' U8S8 kernels on both the Pi 5 (A76 dot product) and x86:

    x [..., K]  -> s  = max(max(x), -min(x), eps) / 127             one scale per row, [..., 1]
                   q  = QuantizeLinear(x, s, zero point 128)        uint8, symmetric about 128, blocks of K
    W [K, N]    -> W8 int8 in [-63, 63], one scale per output column (ahead of time; 7 bits: see WEIGHT_LEVELS)
    y           =  MatMulIntegerToFloat(q, W8, 1, w_scale, 128, 0) * s

Each row is quantized from that row alone, so a posting's integer products do not depend on the batch,
and the logit error is below per-tensor dynamic's (`scripts/study_quantization.py` measures both).
The scale takes max(x) and -min(x) rather than max(|x|): two reductions that read the tensor in place
measured twice as fast as Abs (which writes a copy) then one reduction, for the same value. A row's
scale is a [..., 1] block scale (ONNX opset 21 blocked quantization), so 3-D activations need no
reshapes, and every row set shares one tensor of zero points. `cloud.export.encoder_graph` uses these
nodes to build the device's graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ZERO_POINT = 128  # uint8 activations, symmetric: q = round(x / s) + 128, |x / s| <= 127
# 7-bit weights (|w8| <= 63). x86 AVX2 without VNNI (this build machine) runs U8S8 with vpmaddubsw,
# which adds two u8 x s8 products into int16 and saturates: 2 x 255 x 127 > 32767. With 7 bits,
# 2 x 255 x 63 = 32130 fits, so the arithmetic is exact on every ISA, and the gate measures here what
# the Pi 5 (A76 dot product, never saturating) computes. U8U8 is exact too, but slower on AVX2, and
# S8S8 (no zero point) measured 6x slower than U8S8 here: MLAS has no AVX2 kernel for it.
WEIGHT_LEVELS = 63
ACTIVATION_LEVELS = 127
_EPSILON = 1e-8  # an all-zero row gets scale eps / 127 instead of a division by zero
OPSET = 21  # blocked QuantizeLinear / DequantizeLinear (a scale per row of a 3-D tensor)


class GraphWriter:
    """Emits ONNX nodes and initializers with unique, readable names (`scope/what`), so that ORT's
    profiler and error messages name the block and the step."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()
        self._zero_points: dict[str, str] = {}

    def unique(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self._names:
            n += 1
            candidate = f"{name}_{n}"
        self._names.add(candidate)
        return candidate

    def constant(self, name: str, value) -> str:
        from onnx import numpy_helper

        name = self.unique(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def keep_constant(self, name: str, value) -> None:
        """An initializer under exactly `name` (a tensor copied from another graph), once."""
        from onnx import numpy_helper

        if name not in self._names:
            self._names.add(name)
            self.initializers.append(numpy_helper.from_array(np.asarray(value), name))

    def node(self, op_type: str, inputs: list[str], name: str, outputs: int = 1, domain: str = "", **attributes):
        """Add one node; returns its output name, or the list of them when `outputs` > 1."""
        from onnx import helper

        name = self.unique(name)
        names = [name] if outputs == 1 else [self.unique(f"{name}:{i}") for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=name, domain=domain or None, **attributes))
        return names[0] if outputs == 1 else names

    def zero_points(self, rows: str, scale: str) -> str:
        """The uint8 zero points (all 128) shaped like `scale`, built once per row set (`rows` names it:
        every activation with the same rows has scales of the same shape)."""
        from onnx import TensorProto, helper

        if rows not in self._zero_points:
            self._zero_points[rows] = self.node(
                "ConstantOfShape",
                [self.node("Shape", [scale], f"{rows}/rows_shape")],
                f"{rows}/zero_points",
                value=helper.make_tensor("zero_point", TensorProto.UINT8, [1], [ZERO_POINT]),
            )
        return self._zero_points[rows]


@dataclass(frozen=True)
class QuantizedRows:
    """An activation quantized per row: `values` uint8 [..., K], `scale` float [..., 1]."""

    values: str
    scale: str
    width: int
    rows: str  # which row set: rows of one set share their zero points


def quantize_rows(graph: GraphWriter, x: str, width: int, name: str, rows: str) -> QuantizedRows:
    """Nodes quantizing `x` ([..., width], float) to uint8 with one symmetric scale per row."""
    axis = graph.constant(f"{name}/last_axis", np.array([-1], np.int64))
    high = graph.node("ReduceMax", [x, axis], f"{name}/row_max", keepdims=1)
    low = graph.node("ReduceMin", [x, axis], f"{name}/row_min", keepdims=1)
    peak = graph.node(
        "Max",
        [high, graph.node("Neg", [low], f"{name}/row_neg_min"), graph.constant(f"{name}/eps", np.float32(_EPSILON))],
        f"{name}/row_peak",
    )
    scale = graph.node(
        "Div", [peak, graph.constant(f"{name}/levels", np.float32(ACTIVATION_LEVELS))], f"{name}/row_scale"
    )
    values = graph.node(
        "QuantizeLinear", [x, scale, graph.zero_points(rows, scale)], f"{name}/quantize", axis=-1, block_size=width
    )
    return QuantizedRows(values, scale, width, rows)


def slice_rows(graph: GraphWriter, activation: QuantizedRows, count: int, name: str, rows: str) -> QuantizedRows:
    """The first `count` rows (axis 1) of a quantized [batch, rows, K] activation: the same integers
    and scales, no second quantization."""
    return QuantizedRows(
        first_rows(graph, activation.values, count, f"{name}/values"),
        first_rows(graph, activation.scale, count, f"{name}/scale"),
        activation.width,
        rows,
    )


def first_rows(graph: GraphWriter, x: str, count: int, name: str) -> str:
    """x[:, :count] of a [batch, rows, ...] tensor."""
    return graph.node(
        "Slice",
        [
            x,
            graph.constant(f"{name}/start", np.array([0], np.int64)),
            graph.constant(f"{name}/end", np.array([count], np.int64)),
            graph.constant(f"{name}/axis", np.array([1], np.int64)),
        ],
        f"{name}/first_rows",
    )


def int8_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[K, N] float -> (int8 in [-WEIGHT_LEVELS, WEIGHT_LEVELS], one float scale per output column)."""
    weight = np.asarray(weight, np.float32)
    scale = (np.maximum(np.abs(weight).max(0), 1e-12) / WEIGHT_LEVELS).astype(np.float32)
    return np.clip(np.round(weight / scale), -WEIGHT_LEVELS, WEIGHT_LEVELS).astype(np.int8), scale


def int8_matmul(graph: GraphWriter, activation: QuantizedRows, weight: np.ndarray, name: str) -> str:
    """activation @ weight ([K, N] float, quantized here) as an integer product rescaled per row and column."""
    if weight.shape[0] != activation.width:
        raise ValueError(f"{name}: weight has {weight.shape[0]} rows for an activation {activation.width} wide")
    w8, w_scale = int8_weight(weight)
    product = graph.node(
        "MatMulIntegerToFloat",
        [
            activation.values,
            graph.constant(f"{name}/weight", w8),
            graph.constant(f"{name}/activation_scale", np.float32(1.0)),
            graph.constant(f"{name}/weight_scale", w_scale),
            graph.constant(f"{name}/activation_zero_point", np.uint8(ZERO_POINT)),
            graph.constant(f"{name}/weight_zero_point", np.int8(0)),
        ],
        f"{name}/int8_matmul",
        domain="com.microsoft",
    )
    return graph.node("Mul", [product, activation.scale], f"{name}/row_rescale")
