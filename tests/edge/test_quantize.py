"""The quantizers' knobs do what the export and the quantization study rely on."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx

from cloud.export.onnx_export import export_onnx
from cloud.export.optimize import fuse_transformer
from cloud.export.quantize import quantize_blockwise, quantize_int8, quantize_mixed, quantize_per_token
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


def _session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _padded_batch(vocabulary: int, lengths=(12, 5, 9), width=12, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocabulary, size=(len(lengths), width)).astype(np.int64)
    mask = np.array([[1] * n + [0] * (width - n) for n in lengths], dtype=np.int64)
    return {"input_ids": ids * mask, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def test_per_token_rebuilds_the_fused_graph_and_answers_each_row_as_if_alone(tmp_path):
    """Every weight MatMul INT8 (merged QKV, the last block's queries for the first rows only, the pooler),
    MultiHeadAttention instead of the fused Attention, no SkipLayerNormalization, an int8 word table with
    FP32 position/token-type tables; and a posting in a padded batch gets the bits it gets alone."""
    from cloud.export.encoder_graph import QUERY_ROWS

    _, fused = _graphs(tmp_path)
    config = quantize_per_token(fused, tmp_path / "per_token.onnx")
    model = onnx.load(str(tmp_path / "per_token.onnx"))
    ops = Counter(n.op_type for n in model.graph.node)
    # block 0: QKV, output, FFN in, FFN out; block 1: Q, KV, output, FFN in, FFN out; the pooler
    assert ops["MatMulIntegerToFloat"] == config["matmuls"] == 4 + 5 + 1
    assert ops["MultiHeadAttention"] == 2 and ops["Attention"] == ops["SkipLayerNormalization"] == 0
    assert ops["GatherBlockQuantized"] == 0 and ops["MatMul"] == 0
    assert config["last_block_query_rows"] == QUERY_ROWS
    tables = {i.name: i for i in model.graph.initializer}
    assert tables["embeddings/word_int8"].data_type == onnx.TensorProto.INT8
    assert (
        tables["embeddings/position"].data_type == tables["embeddings/token_type"].data_type == onnx.TensorProto.FLOAT
    )

    feeds = _padded_batch(90)
    per_token, reference = _session(tmp_path / "per_token.onnx"), _session(fused)
    batched = per_token.run(None, feeds)[0]
    for row, n in enumerate((12, 5, 9)):
        alone = per_token.run(None, {k: v[row : row + 1, :n] for k, v in feeds.items()})[0]
        np.testing.assert_array_equal(alone[0], batched[row])  # bit-identical: no scale is shared across rows
    exact = reference.run(None, feeds)[0]
    assert (batched.argmax(1) == exact.argmax(1)).all()
    np.testing.assert_allclose(batched, exact, atol=0.05)


def test_per_token_reads_a_fused_distilbert_and_refuses_an_unfused_graph(tmp_path):
    """DistilBERT (no token types, position ids from its buffer, a pre-classifier) fuses to the same
    encoder and rebuilds; a graph the builder does not know is refused with a reason, so that the
    export moves on to its next scheme."""
    import pytest
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from cloud.export.encoder_graph import UnsupportedGraph

    torch.manual_seed(0)
    config = DistilBertConfig(
        vocab_size=8000,  # export_onnx samples ids up to 7592
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=64,
    )
    model = DistilBertForSequenceClassification(config).eval()
    model.config._attn_implementation = "eager"
    export_onnx(model, tmp_path / "distil.onnx")
    fuse_transformer(tmp_path / "distil.onnx", tmp_path / "distil_fused.onnx", 2, 32, 2)
    quantize_per_token(tmp_path / "distil_fused.onnx", tmp_path / "distil_int8.onnx")
    feeds = {k: v for k, v in _padded_batch(120).items() if k != "token_type_ids"}
    int8 = _session(tmp_path / "distil_int8.onnx").run(None, feeds)[0]
    np.testing.assert_allclose(int8, _session(tmp_path / "distil_fused.onnx").run(None, feeds)[0], atol=0.05)

    with pytest.raises(UnsupportedGraph, match="EmbedLayerNormalization"):
        quantize_per_token(tmp_path / "distil.onnx", tmp_path / "unfused_int8.onnx")


def test_per_token_matmul_computes_the_documented_w8a8_and_keeps_outliers_local(tmp_path):
    """One MatMul, 3-D input, one token with a 50x outlier channel: the graph equals the docstring's
    formula computed in numpy (so no int16 saturation on this AVX2 machine either), and the other
    tokens keep per-token precision (a per-tensor scale, set by the outlier, would leave them a
    fraction of the bits)."""
    from onnx import TensorProto, helper

    from cloud.export.per_token import OPSET, WEIGHT_LEVELS, ZERO_POINT, GraphWriter, int8_matmul, quantize_rows

    rng = np.random.default_rng(1)
    w = rng.normal(size=(16, 8)).astype(np.float32)
    x = rng.normal(size=(2, 5, 16)).astype(np.float32)
    x[0, 0, 3] = 50.0
    graph = GraphWriter()
    y_name = int8_matmul(graph, quantize_rows(graph, "x", 16, "x", rows="tokens"), w, "mm")
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            "one_matmul",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 16])],
            [helper.make_tensor_value_info(y_name, TensorProto.FLOAT, None)],
            graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
    )
    onnx.save(model, str(tmp_path / "per_token.onnx"))
    y = _session(tmp_path / "per_token.onnx").run(None, {"x": x})[0]

    rows = x.reshape(-1, 16)
    scale = np.abs(rows).max(1, keepdims=True) / 127
    q = np.clip(np.round(rows / scale) + ZERO_POINT, 0, 255) - ZERO_POINT
    w_scale = np.abs(w).max(0) / WEIGHT_LEVELS
    expected = ((q @ np.round(w / w_scale)) * scale * w_scale).reshape(2, 5, 8)  # exact integer arithmetic
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)

    exact = x @ w
    per_tensor_scale = np.abs(x).max() / 127
    per_tensor = (np.round(x / per_tensor_scale) * per_tensor_scale) @ w
    ordinary = np.ones((2, 5), bool)
    ordinary[0, 0] = False
    assert np.abs(y - exact)[ordinary].max() < np.abs(per_tensor - exact)[ordinary].max() / 5


def test_a_per_token_bundle_answers_alone_exactly_as_in_a_batch_and_says_so(tmp_path):
    """The manifest records the test split's parity in batches of 16 and one posting per call; for a
    per-token bundle the two are bit-identical, and so is what the device runtime returns."""
    from device.runtime import load_backend
    from shared.bundle import verify_bundle
    from tests.support import tiny_model

    bundle = tiny_model.build_tiny_bundle(tmp_path / "bundle", scheme="per_token")
    metrics = verify_bundle(bundle)["metrics"]
    assert metrics["quantization"]["scheme"] == "per_token"
    assert set(metrics["parity_by_batch_size"]) == {"16", "1"}
    assert metrics["parity_by_batch_size"]["1"] == metrics["parity_by_batch_size"]["16"]
    assert metrics["batch_invariance_max_p1_gap"] == 0

    texts, _ = tiny_model.synthetic_postings(20, seed=7)
    alone, batched = (
        np.array([p.probabilities for p in load_backend(bundle, batch_size=n).predict(texts)]) for n in (1, 16)
    )
    np.testing.assert_array_equal(alone, batched)
