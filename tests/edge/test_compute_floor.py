"""The benchmark's floor: multiply-accumulates counted from a profiled run, and a kernel peak that is real."""

from __future__ import annotations

import numpy as np

from cloud.export.encoder_graph import QUERY_ROWS
from cloud.export.quantize import quantize_per_token
from scripts.compute_floor import graph_macs, kernel_peak
from tests.edge.test_quantize import _graphs


def test_graph_macs_counts_what_the_graphs_run(tmp_path):
    """The tiny BERT (hidden 32, feed-forward 64, 2 blocks) at 20 tokens: the fused FP32 graph runs the whole
    encoder; the per-token graph runs the last block's queries and feed-forward for QUERY_ROWS rows only."""
    _, fused = _graphs(tmp_path)
    quantize_per_token(fused, tmp_path / "int8.onnx")
    tokens, hidden, inner = 20, 32, 64
    ids = np.full((1, tokens), 7, np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}

    block = tokens * hidden * 3 * hidden + 2 * tokens * tokens * hidden + tokens * hidden * hidden
    block += 2 * tokens * hidden * inner
    head = hidden * hidden + hidden * 2  # pooler, classifier
    assert graph_macs(str(fused), feeds) == {"int8": 0, "fp32": 2 * block + head, "total": 2 * block + head}

    rows = QUERY_ROWS
    last = tokens * hidden * 2 * hidden + rows * hidden * hidden  # keys and values of every token, queries of `rows`
    last += 2 * rows * tokens * hidden + rows * hidden * hidden + 2 * rows * hidden * inner
    counted = graph_macs(str(tmp_path / "int8.onnx"), feeds)
    attention = 2 * tokens * tokens * hidden + 2 * rows * tokens * hidden
    assert counted["fp32"] == attention + hidden * 2  # attention products and the FP32 classifier
    assert counted["total"] == block + last + head


def test_kernel_peak_is_a_rate_of_the_real_kernel():
    int8, fp32 = kernel_peak("int8", 64, 128, 256, threads=1, seconds=0.2), kernel_peak("fp32", 64, 128, 256, 1, 0.2)
    assert 1e8 < int8 < 1e13 and 1e8 < fp32 < 1e13
