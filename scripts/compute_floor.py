"""What a graph costs in multiply-accumulates, and how fast this machine's kernels can do them.

Used by `bench_inference.py` for its floor figures:

* `graph_macs(path, feeds)`: runs the graph once under ONNX Runtime's profiler and adds up the
  multiply-accumulates of every product it executed, from the shapes the profiler records (so a graph
  that computes fewer rows, like the bundle's last block, is counted as it runs);
* `kernel_peak(...)`: the best multiply-accumulates per second of ORT's own int8 (MatMulIntegerToFloat,
  U8S8, what the bundle runs) or FP32 (MatMul) kernel at a bundle-sized product and thread count: the
  speed a graph would run at if it were nothing but its largest products.

floor = MACs / peak is a lower bound, not a target: attention, softmax, LayerNorm, GELU and the
per-token quantization have to run too.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np

# Products [..., K] x [K, N] (or two activations): output elements * K multiply-accumulates.
_PRODUCTS = {"MatMul", "FusedMatMul", "MatMulInteger", "MatMulIntegerToFloat", "Gemm", "FusedGemm", "MatMulNBits"}


def graph_macs(model_path: str, feeds: dict[str, np.ndarray], threads: int = 1) -> dict[str, int]:
    """{"int8": ..., "fp32": ..., "total": ...} multiply-accumulates of one run of `model_path` on `feeds`."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load(model_path, load_external_data=False).graph
    constants = {i.name: list(i.dims) for i in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.enable_profiling = True
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # count the graph as written
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, "macs")
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        with open(session.end_profiling(), encoding="utf-8") as handle:
            events = json.load(handle)
    macs = {"int8": 0, "fp32": 0}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        node = nodes.get(event["name"][: -len("_kernel_time")])
        if node is None:
            continue
        inputs = [next(iter(s.items())) for s in event["args"]["input_type_shape"]]
        shapes = [constants.get(name) or (inputs[i][1] if i < len(inputs) else []) for i, name in enumerate(node.input)]
        output = next(iter(event["args"]["output_type_shape"][0].values()))
        kind = "int8" if inputs and inputs[0][0] in ("uint8", "int8") else "fp32"
        macs[kind] += _node_macs(node.op_type, shapes, output)
    return {**macs, "total": macs["int8"] + macs["fp32"]}


def _node_macs(op: str, shapes: list[list[int]], output: list[int]) -> int:
    if op in _PRODUCTS:  # no transposed A in these graphs: K is A's last axis
        return int(np.prod(output, dtype=np.int64)) * int(shapes[0][-1])
    if op == "MultiHeadAttention":  # Q.K^T and P.V: 2 * batch * query rows * key rows * hidden
        query, key = shapes[0], shapes[1]
        return 2 * query[0] * query[1] * key[1] * query[2]
    if op == "Attention":  # fused: the QKV product, then the same two products
        (batch, rows, hidden), weight = shapes[0], shapes[1]
        return batch * rows * hidden * weight[1] + 2 * batch * rows * rows * hidden
    return 0


def kernel_peak(kind: str, rows: int, depth: int, columns: int, threads: int, seconds: float = 1.0) -> float:
    """Best multiply-accumulates per second of one [rows, depth] x [depth, columns] product (`kind` "int8":
    MatMulIntegerToFloat with uint8 activations and 7-bit int8 weights, as the bundle runs it; "fp32": MatMul)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if kind == "int8":
        weight = rng.integers(-63, 64, (depth, columns), dtype=np.int8)
        constants = [
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(np.float32(1.0), "a_scale"),
            numpy_helper.from_array(np.ones(columns, np.float32), "w_scale"),
            numpy_helper.from_array(np.uint8(128), "a_zero"),
            numpy_helper.from_array(np.int8(0), "w_zero"),
        ]
        node = helper.make_node(
            "MatMulIntegerToFloat", ["x", "w", "a_scale", "w_scale", "a_zero", "w_zero"], ["y"], domain="com.microsoft"
        )
        x_type, x = TensorProto.UINT8, rng.integers(0, 256, (rows, depth), dtype=np.uint8)
    else:
        constants = [numpy_helper.from_array(rng.standard_normal((depth, columns)).astype(np.float32), "w")]
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        x_type, x = TensorProto.FLOAT, rng.standard_normal((rows, depth)).astype(np.float32)
    graph = helper.make_graph(
        [node],
        "peak",
        [helper.make_tensor_value_info("x", x_type, [rows, depth])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, columns])],
        constants,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for _ in range(10):
        session.run(None, {"x": x})
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        session.run(None, {"x": x})
        best = min(best, time.perf_counter() - began)
    return rows * depth * columns / best
