"""The export's parity gate: passes on a good export, fails loudly (and ships nothing) on a bad one."""

from __future__ import annotations

import pytest

from cloud.export import parity


def test_compare_and_enforce_thresholds():
    truth = [0, 1] * 50
    good = parity.compare(truth, truth, truth, [0.1] * 100, [0.12] * 100)
    assert parity.enforce(good).agreement == 1.0 and good.max_probability_gap == pytest.approx(0.02)

    one_flip = list(truth)
    one_flip[0] = 1
    report = parity.compare(truth, one_flip, truth, [0.0] * 100, [0.0] * 100)
    assert report.agreement == 0.99 and report.accuracy_drop_pt == pytest.approx(1.0)
    with pytest.raises(parity.ParityError, match=r"accuracy drop 1.00 pt > 0.5 pt"):
        parity.enforce(report)

    two_flips = one_flip[:]
    two_flips[1] = 0
    p1 = [0.2] * 100
    with pytest.raises(
        parity.ParityError,
        match=r"\(accuracy 100.00% -> 98.00%\): INT8/FP32 agreement 98.00% < 99%.*flipped: 0 \(FP32 p1 0.200 -> INT8 0.200\), 1 ",
    ):
        parity.enforce(parity.compare(truth, two_flips, truth, p1, p1))


def test_an_agreement_set_makes_the_gate_a_rate_instead_of_a_single_posting():
    """93 test postings at 99 % allow no flip; with the 311-posting agreement set the same thresholds allow
    four flips in 404 (two of them to the wrong class), and still catch a broken export."""
    from cloud.export.builder import EvalSet, gate_postings

    test = EvalSet(["t"] * 93, [0, 1] * 46 + [0])
    agreement = EvalSet(
        ["a"] * 311, [1, 0] * 155 + [1], ids=[f"adzuna-{i}" for i in range(311)], name="2026 evaluation split"
    )

    def gate(gate_set, flips):
        truth = list(gate_set.labels)
        int8 = [1 - y if i in flips else y for i, y in enumerate(truth)]
        p1 = [float(y) for y in truth]
        return parity.enforce(
            parity.compare(truth, int8, truth, p1, [float(y) for y in int8], gate_set.ids),
            postings=f"postings ({gate_set.name})",
        )

    one_test_posting_flips = {0}
    with pytest.raises(parity.ParityError, match=r"on 93 postings \(test split\).*accuracy drop 1.08 pt"):
        gate(gate_postings(test), one_test_posting_flips)
    pooled = gate_postings(test, agreement)
    assert pooled.name == "test split + 2026 evaluation split" and len(pooled.texts) == 404
    assert list(pooled.ids[:2]) == ["test-0", "test-1"] and pooled.ids[93] == "adzuna-0"
    assert gate(pooled, one_test_posting_flips).examples == 404
    assert gate(pooled, {0, 93}).agreement == pytest.approx(402 / 404)  # a flip on each side: still a pass
    with pytest.raises(parity.ParityError, match=r"on 404 postings.*agreement 98.76% < 99%.*adzuna-"):
        gate(pooled, {0, 93, 94, 95, 96})  # five flips: a broken export


def test_export_fails_loudly_when_the_int8_model_is_corrupted(tmp_path, monkeypatch, tiny_bundle):
    """Corrupt the quantized model's classifier head (negated weights and bias flip every decision):
    the export must raise ParityError and leave no bundle behind."""
    import onnx
    from onnx import numpy_helper

    from cloud.export import builder
    from tests.support import tiny_model

    real_quantize = builder.quantize_blockwise

    def corrupted_quantize(fp32_path, out_path, *args, **kwargs):
        config = real_quantize(fp32_path, out_path, *args, **kwargs)
        model = onnx.load(str(out_path))
        for initializer in model.graph.initializer:
            if "classifier" in initializer.name:
                initializer.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(initializer), initializer.name))
        onnx.save(model, str(out_path))
        return config

    monkeypatch.setattr(builder, "quantize_blockwise", corrupted_quantize)
    out = tmp_path / "bundle"
    with pytest.raises(
        parity.ParityError,
        match=r"parity check failed on 40 test postings, in batches of 16 \(accuracy .*\): INT8/FP32 agreement",
    ):
        tiny_model.build_tiny_bundle(out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")], "staging dir left behind"
