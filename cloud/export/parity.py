"""The export's quality gate: the INT8 bundle must decide like the FP32 model it came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.errors import UserError

MIN_AGREEMENT = 0.99
MAX_ACCURACY_DROP_PT = 0.5


class ParityError(UserError):
    """INT8 disagrees with FP32 too often or loses too much accuracy: the export must not ship."""


@dataclass
class ParityReport:
    examples: int
    agreement: float  # share of postings where INT8 and FP32 predict the same class
    accuracy_fp32: float
    accuracy_int8: float
    accuracy_drop_pt: float  # (FP32 - INT8) accuracy, in percentage points
    max_probability_gap: float  # largest |p1_int8 - p1_fp32| over the examples
    flips: list[tuple[str, float, float]] = field(default_factory=list)  # (id, FP32 p1, INT8 p1)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "examples": self.examples,
            "agreement": round(self.agreement, 6),
            "accuracy_fp32": round(self.accuracy_fp32, 6),
            "accuracy_int8": round(self.accuracy_int8, 6),
            "accuracy_drop_pt": round(self.accuracy_drop_pt, 4),
            "max_probability_gap": round(self.max_probability_gap, 6),
            "flipped": len(self.flips),
        }


def compare(
    fp32_labels: Sequence[int],
    int8_labels: Sequence[int],
    true_labels: Sequence[int],
    fp32_p1: Sequence[float],
    int8_p1: Sequence[float],
    ids: Sequence[str] | None = None,
) -> ParityReport:
    n = len(true_labels)
    if n == 0 or not (len(fp32_labels) == len(int8_labels) == n):
        raise ParityError(f"parity check needs matching, non-empty predictions (got {n} labels)")
    agree = sum(a == b for a, b in zip(fp32_labels, int8_labels)) / n
    acc_fp32 = sum(a == y for a, y in zip(fp32_labels, true_labels)) / n
    acc_int8 = sum(b == y for b, y in zip(int8_labels, true_labels)) / n
    gap = max(abs(a - b) for a, b in zip(fp32_p1, int8_p1))
    ids = list(ids) if ids is not None else [str(i) for i in range(n)]
    flips = [(str(ids[i]), float(fp32_p1[i]), float(int8_p1[i])) for i in range(n) if fp32_labels[i] != int8_labels[i]]
    return ParityReport(n, agree, acc_fp32, acc_int8, (acc_fp32 - acc_int8) * 100, gap, flips)


def enforce(
    report: ParityReport,
    min_agreement: float = MIN_AGREEMENT,
    max_accuracy_drop_pt: float = MAX_ACCURACY_DROP_PT,
    batch_size: int | None = None,
    postings: str = "test postings",
) -> ParityReport:
    """Raise ParityError unless `report` passes; `batch_size` (how the INT8 side was run) and `postings`
    (what the report ran on) go in the message."""
    failures = []
    if report.agreement < min_agreement:
        failures.append(f"INT8/FP32 agreement {report.agreement:.2%} < {min_agreement:.0%}")
    if report.accuracy_drop_pt > max_accuracy_drop_pt:
        failures.append(
            f"accuracy drop {report.accuracy_drop_pt:.2f} pt > {max_accuracy_drop_pt} pt "
            f"({report.accuracy_fp32:.2%} -> {report.accuracy_int8:.2%})"
        )
    if failures:
        # Name the postings that flipped: a flip at FP32 p1 = 0.497 says "borderline model", one at
        # 0.05 says "broken quantization"; the two need different fixes.
        shown = ", ".join(f"{i} (FP32 p1 {a:.3f} -> INT8 {b:.3f})" for i, a, b in report.flips[:3])
        more = f" and {len(report.flips) - 3} more" if len(report.flips) > 3 else ""
        flipped = f"; flipped: {shown}{more}" if shown else ""
        accuracy = f" (accuracy {report.accuracy_fp32:.2%} -> {report.accuracy_int8:.2%})"
        batching = f", in batches of {batch_size}" if batch_size else ""
        raise ParityError(
            f"parity check failed on {report.examples} {postings}{batching}{accuracy}: {'; '.join(failures)}{flipped}"
        )
    return report


def enforce_teacher_floor(
    report: ParityReport, teacher: str, teacher_accuracy: float, max_accuracy_drop_pt: float = MAX_ACCURACY_DROP_PT
) -> float:
    """For a distilled model: its INT8 accuracy may sit at most `max_accuracy_drop_pt` below the
    teacher's FP32 accuracy on the same postings. Returns the drop in points (negative = better)."""
    drop = (teacher_accuracy - report.accuracy_int8) * 100
    if drop > max_accuracy_drop_pt + 1e-9:
        raise ParityError(
            f"INT8 accuracy {report.accuracy_int8:.2%} on {report.examples} test postings is "
            f"{drop:.2f} pt below the teacher {teacher}'s {teacher_accuracy:.2%} "
            f"(allowed: {max_accuracy_drop_pt} pt)"
        )
    return drop
