"""Health check of a freshly activated bundle: run it on the golden examples it ships with.

`golden.jsonl` holds a few postings with the label the FP32 model gave them at export time. The
device's INT8 runtime must agree on at least MIN_AGREEMENT of them; a bundle that fails to load,
crashes, returns non-probabilities or disagrees is rolled back. The threshold is below 1.0 because
INT8 may legitimately flip a posting that sat on the FP32 decision boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from shared.bundle import read_golden

MIN_AGREEMENT = 0.9


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    checked: int
    agreed: int
    detail: str


def golden_health_check(bundle_dir: Path, backend: str = "onnxruntime", threads: int | None = 1) -> HealthReport:
    try:
        golden = read_golden(bundle_dir)
    except (OSError, ValueError) as exc:
        return HealthReport(False, 0, 0, f"unreadable golden.jsonl: {exc}")
    if not golden:
        return HealthReport(False, 0, 0, "bundle has no golden examples to check")
    try:
        from device.runtime import load_backend  # lazy: onnxruntime is heavy to import

        model = load_backend(bundle_dir, backend=backend, threads=threads)
        try:
            predictions = model.predict([str(example["text"]) for example in golden])
        finally:
            close = getattr(model, "close", None)
            if close:
                close()
    except Exception as exc:  # any failure to run the model is a failed health check, not a crash
        return HealthReport(False, len(golden), 0, f"bundle does not run: {type(exc).__name__}: {exc}")
    for prediction in predictions:
        if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in prediction.probabilities):
            return HealthReport(False, len(golden), 0, f"non-probability output {prediction.probabilities}")
    agreed = sum(int(p.label) == int(example["label"]) for p, example in zip(predictions, golden))
    ok = agreed >= math.ceil(MIN_AGREEMENT * len(golden))
    return HealthReport(ok, len(golden), agreed, f"{agreed}/{len(golden)} golden examples agree")
