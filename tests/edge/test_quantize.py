"""The quantizers' knobs do what the export and the quantization study rely on."""
from __future__ import annotations

from collections import Counter

import onnx

from cloud.export.onnx_export import export_onnx
from cloud.export.optimize import fuse_transformer
from cloud.export.quantize import quantize_blockwise, quantize_int8, quantize_mixed
from cloud.export.reference import load_classifier
from tests.support.tiny_model import train_tiny_classifier


def _graphs(tmp_path):
    model = load_classifier(train_tiny_classifier(tmp_path / "hf", steps=5))
    export_onnx(model, tmp_path / "fp32.onnx")
    fuse_transformer(tmp_path / "fp32.onnx", tmp_path / "fused.onnx", 2, 32, 2)
    return tmp_path / "fp32.onnx", tmp_path / "fused.onnx"


def test_dynamic_keeps_named_nodes_fp32_and_blockwise_takes_bits_and_level(tmp_path):
    fp32, fused = _graphs(tmp_path)
    attention = [n.name for n in onnx.load(str(fused)).graph.node if n.op_type == "Attention"]
    assert len(attention) == 2

    config = quantize_int8(fused, tmp_path / "dynamic.onnx", keep_fp32=[attention[0]])
    ops = {n.name: n.op_type for n in onnx.load(str(tmp_path / "dynamic.onnx")).graph.node}
    assert ops[attention[0]] == "Attention", "the excluded node must stay FP32"
    assert Counter(ops.values())["QAttention"] == 1
    assert config["kept_fp32"] == [attention[0]]

    config = quantize_blockwise(fp32, tmp_path / "int4.onnx", bits=4, accuracy_level=0)
    nbits = [n for n in onnx.load(str(tmp_path / "int4.onnx")).graph.node if n.op_type == "MatMulNBits"]
    assert nbits and all({a.name: a.i for a in n.attribute}["bits"] == 4 for n in nbits)
    assert all({a.name: a.i for a in n.attribute}.get("accuracy_level", 0) == 0 for n in nbits)  # 0: the ONNX default
    assert config["matmul_weights"].startswith("int4") and config["matmul_compute"] == "accuracy_level 0"


def test_mixed_makes_one_matmul_blockwise_and_the_rest_dynamic(tmp_path):
    _, fused = _graphs(tmp_path)
    matmuls = [n.name for n in onnx.load(str(fused)).graph.node if n.op_type == "MatMul"]
    config = quantize_mixed(fused, tmp_path / "mixed.onnx", matmuls[1])
    nodes = onnx.load(str(tmp_path / "mixed.onnx")).graph.node
    nbits = [n for n in nodes if n.op_type == "MatMulNBits"]
    assert len(nbits) == 1 and matmuls[1] in nbits[0].name
    assert {a.name: a.i for a in nbits[0].attribute}["bits"] == 8
    weights = {i.name for i in onnx.load(str(tmp_path / "mixed.onnx")).graph.initializer}
    assert not [n.name for n in nodes if n.op_type == "MatMul" and n.input[1] in weights], "no FP32 weight MatMul left"
    assert Counter(n.op_type for n in nodes)["DynamicQuantizeLinear"] >= 1
    assert Counter(n.op_type for n in nodes)["QAttention"] == 2
    assert config["scheme"] == "mixed" and config["blockwise_int8"]["nodes"] == [matmuls[1]]
