"""The device's INT8 graph: the fused FP32 encoder rebuilt with per-token W8A8 and the ops that run fastest.

`read_fused_encoder` reads what ORT's transformer optimizer fused (`optimize.fuse_transformer`: one
EmbedLayerNormalization, then per block Attention -> MatMul -> SkipLayerNormalization -> MatMul -> BiasGelu
-> MatMul -> SkipLayerNormalization, then the classification head); BERT, MiniLM and DistilBERT all fuse to
that. `build_per_token_model` writes it again, op by op, as the bundle's model.onnx:

* every weight MatMul is per-token INT8 (`cloud.export.per_token`), Q, K and V as one merged MatMul whose
  output is split for ORT's `MultiHeadAttention`, which takes the attention bias and the padding mask;
* the word embedding is int8 with one scale per row, gathered as int8 and dequantized per row; the
  position and token-type tables stay FP32;
* residual + LayerNorm are plain `Add`, `Add`, `LayerNormalization`: on the x86 build box ORT's fused
  SkipLayerNormalization measured three times slower than the three ops it replaces;
* the head reads only the first token ([CLS]), so the last block computes its queries, attention output
  and feed-forward for the first `QUERY_ROWS` rows only; its keys and values still come from every token.
  That is the same arithmetic for the rows the head reads, at about 40 % fewer multiply-accumulates;
* the head's hidden-wide dense layer (BERT's pooler, DistilBERT's pre-classifier) is per-token INT8 too;
  the last layer, which writes the logits, stays FP32.

Why `QUERY_ROWS` is 2 and not 1: MLAS multiplies a single row by a matrix with a vector kernel whose
summation order depends on the matrix's length, here the number of keys, i.e. on how far a batch pads a
posting. With one query row a posting's probabilities moved by ~1e-7 between a call of its own and a
padded batch; with two rows the matrix kernel runs and they are bit-identical (measured on the 2025 test
split, texts cut to mixed lengths). The second row costs ~1/96 of the first block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cloud.export.per_token import (
    OPSET,
    GraphWriter,
    first_rows,
    int8_matmul,
    quantize_rows,
    slice_rows,
)
from shared.errors import UserError

QUERY_ROWS = 2
EMBEDDING_LEVELS = 127  # the word table is dequantized to float before any product: no AVX2 limit applies
IR_VERSION = 10  # ONNX 1.16 / opset 21: what onnxruntime >= 1.20 reads


class UnsupportedGraph(UserError):
    """The fused graph is not the encoder this builder knows; the export tries its next INT8 scheme."""


@dataclass(frozen=True)
class LayerNorm:
    gamma: np.ndarray
    beta: np.ndarray
    epsilon: float


@dataclass(frozen=True)
class Embeddings:
    word: np.ndarray  # [vocabulary, hidden]
    position: np.ndarray  # [positions, hidden]
    token_type: np.ndarray | None  # [types, hidden]; None for DistilBERT
    norm: LayerNorm


@dataclass(frozen=True)
class Block:
    num_heads: int
    qkv_weight: np.ndarray  # [hidden, 3 * hidden], Q then K then V
    qkv_bias: np.ndarray
    output_weight: np.ndarray
    output_bias: np.ndarray
    attention_norm: LayerNorm
    ffn_in_weight: np.ndarray
    ffn_in_bias: np.ndarray
    ffn_out_weight: np.ndarray
    ffn_out_bias: np.ndarray
    output_norm: LayerNorm


@dataclass
class FusedEncoder:
    embeddings: Embeddings
    blocks: list[Block]
    head: list  # onnx NodeProto, in order, reading `encoder_output`
    constants: dict[str, np.ndarray]  # every initializer and Constant node value of the fused graph
    encoder_output: str
    inputs: list = field(default_factory=list)  # graph inputs (ValueInfoProto)
    outputs: list = field(default_factory=list)

    @property
    def hidden(self) -> int:
        return int(self.embeddings.word.shape[1])

    @property
    def reads_first_token_only(self) -> bool:
        """Whether the head's only use of the encoder output is its first row (`x[:, 0]`)."""
        readers = [n for n in self.head if self.encoder_output in n.input]
        if len(readers) != 1 or readers[0].op_type != "Gather" or readers[0].input[0] != self.encoder_output:
            return False
        index = self.constants.get(readers[0].input[1])
        return _attribute(readers[0], "axis", 0) == 1 and index is not None and index.ndim == 0 and int(index) == 0


def read_fused_encoder(model) -> FusedEncoder:
    """The fused graph's weights and head; UnsupportedGraph (naming what differs) for anything else."""
    from onnx import numpy_helper

    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def weight(name: str, what: str) -> np.ndarray:
        if name not in constants:
            raise UnsupportedGraph(f"fused graph: the {what} ({name!r}) is not a constant")
        return constants[name].astype(np.float32)

    def only_reader(tensor: str, op_type: str, after: str):
        found = readers.get(tensor, [])
        if len(found) != 1 or found[0].op_type != op_type:
            seen = ", ".join(n.op_type for n in found) or "nothing"
            raise UnsupportedGraph(f"fused graph: after {after} expected {op_type}, found {seen}")
        return found[0]

    def layer_norm(node) -> LayerNorm:
        return LayerNorm(
            weight(node.input[2], "LayerNorm scale"),
            weight(node.input[3], "LayerNorm bias"),
            float(_attribute(node, "epsilon", 1e-12)),
        )

    def add_norm(node, matmul_output: str):
        """A SkipLayerNormalization adding `matmul_output`, a residual and a bias: (norm, bias, residual)."""
        if len(node.input) < 5 or not node.input[4]:
            raise UnsupportedGraph(f"fused graph: {node.name} has no bias input")
        residual = node.input[1] if node.input[0] == matmul_output else node.input[0]
        return layer_norm(node), weight(node.input[4], "residual bias"), residual

    embedding_nodes = [n for n in graph.node if n.op_type == "EmbedLayerNormalization"]
    if len(embedding_nodes) != 1:
        raise UnsupportedGraph(f"fused graph has {len(embedding_nodes)} EmbedLayerNormalization nodes, expected 1")
    embedding = embedding_nodes[0]
    inputs = list(embedding.input) + [""] * (9 - len(embedding.input))
    if inputs[8]:
        _require_default_positions(inputs[8], graph, constants)
    embeddings = Embeddings(
        word=weight(inputs[2], "word embedding"),
        position=weight(inputs[3], "position embedding"),
        token_type=weight(inputs[4], "token-type embedding") if inputs[4] else None,
        norm=LayerNorm(
            weight(inputs[5], "embedding LayerNorm scale"),
            weight(inputs[6], "embedding LayerNorm bias"),
            float(_attribute(embedding, "epsilon", 1e-12)),
        ),
    )

    blocks, x = [], embedding.output[0]
    while True:
        attention = next((n for n in readers.get(x, []) if n.op_type == "Attention"), None)
        if attention is None:
            break
        if _attribute(attention, "unidirectional", 0) or _attribute(attention, "qkv_hidden_sizes", None) is not None:
            raise UnsupportedGraph(f"fused graph: {attention.name} is not a plain bidirectional self-attention")
        if len(attention.input) > 4 and any(attention.input[4:]):
            raise UnsupportedGraph(f"fused graph: {attention.name} takes past state or a relative position bias")
        out = only_reader(attention.output[0], "MatMul", attention.name)
        norm1 = only_reader(out.output[0], "SkipLayerNormalization", out.name)
        attention_norm, output_bias, residual = add_norm(norm1, out.output[0])
        ffn_in = next((n for n in readers[norm1.output[0]] if n.op_type == "MatMul"), None)  # and norm2 reads it
        if residual != x or ffn_in is None:
            raise UnsupportedGraph(f"fused graph: block after {x!r} is not attention + feed-forward with residuals")
        gelu = only_reader(ffn_in.output[0], "BiasGelu", ffn_in.name)
        ffn_out = only_reader(gelu.output[0], "MatMul", gelu.name)
        norm2 = only_reader(ffn_out.output[0], "SkipLayerNormalization", ffn_out.name)
        output_norm, ffn_out_bias, residual = add_norm(norm2, ffn_out.output[0])
        if residual != norm1.output[0]:
            raise UnsupportedGraph(f"fused graph: {norm2.name} does not add the attention output back")
        blocks.append(
            Block(
                num_heads=int(_attribute(attention, "num_heads", 0)),
                qkv_weight=weight(attention.input[1], "QKV weight"),
                qkv_bias=weight(attention.input[2], "QKV bias"),
                output_weight=weight(out.input[1], "attention output weight"),
                output_bias=output_bias,
                attention_norm=attention_norm,
                ffn_in_weight=weight(ffn_in.input[1], "feed-forward weight"),
                ffn_in_bias=weight(gelu.input[1], "feed-forward bias"),
                ffn_out_weight=weight(ffn_out.input[1], "feed-forward output weight"),
                ffn_out_bias=ffn_out_bias,
                output_norm=output_norm,
            )
        )
        x = norm2.output[0]
    if not blocks:
        raise UnsupportedGraph("fused graph has no fused Attention block")
    return FusedEncoder(
        embeddings,
        blocks,
        _downstream(graph, x),
        constants,
        x,
        list(graph.input),
        list(graph.output),
    )


def build_per_token_model(encoder: FusedEncoder, int8: bool = True):
    """The per-token INT8 ModelProto for `encoder` (see the module docstring). `int8=False` writes the same
    graph with FP32 weights and products: what the graph alone buys, for the inference benchmark."""
    from onnx import helper

    graph = GraphWriter()
    products = _Products(graph, int8)
    x = _embeddings(graph, encoder.embeddings, {i.name for i in encoder.inputs}, int8)
    mask = graph.node("Cast", ["attention_mask"], "attention/key_padding_mask", to=6)  # int32, as MHA reads it
    last = len(encoder.blocks) - 1
    for index, block in enumerate(encoder.blocks):
        query_rows = QUERY_ROWS if index == last and encoder.reads_first_token_only else None
        x = _block(graph, products, block, x, mask, f"block{index}", query_rows)
    _head(graph, products, encoder, x)
    name = "per_token_int8" if int8 else "encoder_fp32"
    model = helper.make_model(
        helper.make_graph(graph.nodes, name, encoder.inputs, encoder.outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
    )
    model.ir_version = IR_VERSION
    return model


class _Products:
    """Activation x weight products: per-token INT8, or plain FP32 MatMuls."""

    def __init__(self, graph: GraphWriter, int8: bool):
        self.graph, self.int8 = graph, int8

    def prepare(self, x: str, width: int, name: str, rows: str):
        """`x` made ready for products (quantized once, for every product that reads it)."""
        return quantize_rows(self.graph, x, width, name, rows) if self.int8 else x

    def first_rows(self, prepared, count: int, name: str, rows: str):
        if self.int8:
            return slice_rows(self.graph, prepared, count, name, rows)
        return first_rows(self.graph, prepared, count, name)

    def times(self, prepared, weight: np.ndarray, name: str) -> str:
        if self.int8:
            return int8_matmul(self.graph, prepared, weight, name)
        return self.graph.node("MatMul", [prepared, self.graph.constant(f"{name}/weight", weight)], f"{name}/matmul")


def _embeddings(graph: GraphWriter, embeddings: Embeddings, inputs: set[str], int8: bool) -> str:
    word = embeddings.word
    if int8:
        row_scale = (np.maximum(np.abs(word).max(1, keepdims=True), 1e-12) / EMBEDDING_LEVELS).astype(np.float32)
        word8 = np.clip(np.round(word / row_scale), -EMBEDDING_LEVELS, EMBEDDING_LEVELS).astype(np.int8)
        rows = graph.node(
            "Gather", [graph.constant("embeddings/word_int8", word8), "input_ids"], "embeddings/word_rows"
        )
        scales = graph.node(
            "Gather", [graph.constant("embeddings/word_scale", row_scale), "input_ids"], "embeddings/word_scales"
        )
        # Cast + Mul, not a blocked DequantizeLinear: the same floats, 2.5x faster in ORT 1.32 on this box.
        words = graph.node(
            "Mul", [graph.node("Cast", [rows], "embeddings/word_floats", to=1), scales], "embeddings/words"
        )
    else:
        words = graph.node("Gather", [graph.constant("embeddings/word", word), "input_ids"], "embeddings/words")
    sequence = graph.node("Shape", ["input_ids"], "embeddings/sequence_length", start=1, end=2)
    positions = graph.node(
        "Slice",
        [
            graph.constant("embeddings/position", embeddings.position),
            graph.constant("embeddings/position_start", np.array([0], np.int64)),
            sequence,
            graph.constant("embeddings/position_axis", np.array([0], np.int64)),
        ],
        "embeddings/positions",
    )
    x = graph.node("Add", [words, positions], "embeddings/add_positions")
    if embeddings.token_type is not None and "token_type_ids" in inputs:
        types = graph.node(
            "Gather",
            [graph.constant("embeddings/token_type", embeddings.token_type), "token_type_ids"],
            "embeddings/token_types",
        )
        x = graph.node("Add", [x, types], "embeddings/add_token_types")
    return _layer_norm(graph, x, embeddings.norm, "embeddings/norm")


def _block(
    graph: GraphWriter, products: _Products, block: Block, x: str, mask: str, scope: str, query_rows: int | None
) -> str:
    hidden, width = block.qkv_weight.shape[0], block.ffn_in_weight.shape[1]
    tokens = products.prepare(x, hidden, f"{scope}/input", rows="tokens")
    if query_rows is None:
        qkv = products.times(tokens, block.qkv_weight, f"{scope}/qkv")
        q, k, v = graph.node("Split", [qkv, _sizes(graph, scope, [hidden] * 3)], f"{scope}/split_qkv", 3, axis=-1)
        residual, rows = x, "tokens"
    else:  # only the first rows go on: the head reads the first token
        queries = products.first_rows(tokens, query_rows, f"{scope}/query_rows", rows="queries")
        q = products.times(queries, block.qkv_weight[:, :hidden], f"{scope}/q")
        kv = products.times(tokens, block.qkv_weight[:, hidden:], f"{scope}/kv")
        k, v = graph.node("Split", [kv, _sizes(graph, scope, [hidden] * 2)], f"{scope}/split_kv", 2, axis=-1)
        residual, rows = first_rows(graph, x, query_rows, f"{scope}/residual"), "queries"
    context = graph.node(
        "MultiHeadAttention",
        [q, k, v, graph.constant(f"{scope}/qkv_bias", block.qkv_bias), mask],
        f"{scope}/attention",
        domain="com.microsoft",
        num_heads=block.num_heads,
    )
    attention_output = products.times(
        products.prepare(context, hidden, f"{scope}/context", rows), block.output_weight, f"{scope}/attention_output"
    )
    attended = _add_norm(
        graph, attention_output, block.output_bias, residual, block.attention_norm, f"{scope}/attention_norm"
    )
    ffn_in = products.times(
        products.prepare(attended, hidden, f"{scope}/ffn_input", rows), block.ffn_in_weight, f"{scope}/ffn_in"
    )
    inner = graph.node(
        "BiasGelu",
        [ffn_in, graph.constant(f"{scope}/ffn_in_bias", block.ffn_in_bias)],
        f"{scope}/gelu",
        domain="com.microsoft",
    )
    ffn_out = products.times(
        products.prepare(inner, width, f"{scope}/ffn_inner", rows), block.ffn_out_weight, f"{scope}/ffn_out"
    )
    return _add_norm(graph, ffn_out, block.ffn_out_bias, attended, block.output_norm, f"{scope}/output_norm")


def _head(graph: GraphWriter, products: _Products, encoder: FusedEncoder, x: str) -> None:
    """The fused graph's head, reading `x`; its hidden-wide dense layers become per-token INT8."""
    from onnx import helper

    renamed = {encoder.encoder_output: x}
    for node in encoder.head:
        inputs = [renamed.get(name, name) for name in node.input]
        dense = _dense_weight(node, encoder.constants)
        if products.int8 and dense is not None and dense[0].shape == (encoder.hidden, encoder.hidden):
            weight, bias = dense
            scope = f"head/{node.name.strip('/').replace('/', '_') or 'dense'}"
            product = products.times(products.prepare(inputs[0], encoder.hidden, scope, "postings"), weight, scope)
            renamed[node.output[0]] = graph.node(
                "Add", [product, graph.constant(f"{scope}/bias", bias)], f"{scope}/bias"
            )
            continue
        for name in node.input:
            if name in encoder.constants:
                graph.keep_constant(name, encoder.constants[name])
        copy = helper.make_node(
            node.op_type, inputs, [renamed.get(o, o) for o in node.output], name=node.name, domain=node.domain or None
        )
        copy.attribute.extend(node.attribute)
        graph.nodes.append(copy)


def _dense_weight(node, constants) -> tuple[np.ndarray, np.ndarray] | None:
    """(weight [K, N], bias [N]) of a Gemm y = x W^T + b (transB, alpha = beta = 1) with constant weights."""
    if node.op_type != "Gemm" or len(node.input) != 3 or not all(n in constants for n in node.input[1:]):
        return None
    if _attribute(node, "transA", 0) or not _attribute(node, "transB", 0):
        return None
    if _attribute(node, "alpha", 1.0) != 1.0 or _attribute(node, "beta", 1.0) != 1.0:
        return None
    return constants[node.input[1]].astype(np.float32).T, constants[node.input[2]].astype(np.float32)


def _add_norm(graph: GraphWriter, y: str, bias: np.ndarray, residual: str, norm: LayerNorm, name: str) -> str:
    y = graph.node("Add", [y, graph.constant(f"{name}/bias", bias)], f"{name}/add_bias")
    return _layer_norm(graph, graph.node("Add", [y, residual], f"{name}/add_residual"), norm, name)


def _layer_norm(graph: GraphWriter, x: str, norm: LayerNorm, name: str) -> str:
    return graph.node(
        "LayerNormalization",
        [x, graph.constant(f"{name}/gamma", norm.gamma), graph.constant(f"{name}/beta", norm.beta)],
        name,
        axis=-1,
        epsilon=norm.epsilon,
    )


def _sizes(graph: GraphWriter, scope: str, sizes: list[int]) -> str:
    return graph.constant(f"{scope}/split_sizes", np.array(sizes, np.int64))


def _downstream(graph, tensor: str) -> list:
    """The nodes computing the graph outputs from `tensor`, in graph order."""
    from_tensor, reached = [], {tensor}
    for node in graph.node:
        if any(name in reached for name in node.input):
            from_tensor.append(node)
            reached.update(node.output)
    return from_tensor


def _require_default_positions(position_ids: str, graph, constants: dict[str, np.ndarray]) -> None:
    """DistilBERT's fused embedding reads position ids sliced from its `arange` buffer; anything else (custom
    positions) is not what this builder writes."""
    producers = {o: n for n in graph.node for o in n.output}
    node = producers.get(position_ids)
    while node is not None and node.op_type in ("Cast", "Slice", "Unsqueeze", "Expand"):
        source = node.input[0]
        if source in constants:
            values = constants[source].reshape(-1)
            if np.array_equal(values, np.arange(values.size)):
                return
            break
        node = producers.get(source)
    raise UnsupportedGraph("fused graph: the embedding reads position ids other than 0, 1, 2, ...")


def _attribute(node, name: str, default):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default
