"""params.yaml `monitoring:`, typed and checked once (a bad value is one UserError naming its key)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import UserError
from shared.monitoring.drift import NUMERIC_BUCKETS, VERTEX_DEFAULT_THRESHOLD, Thresholds
from shared.monitoring.trends import MIN_COUNT


@dataclass(frozen=True)
class MonitoringSettings:
    threshold: float = VERTEX_DEFAULT_THRESHOLD  # alert at distance >= this (Vertex's default)
    thresholds: dict[str, float] = field(default_factory=dict)  # per feature or family ("skill:*")
    min_count: int = MIN_COUNT  # postings naming a skill before its share is read as a trend
    buckets: int = NUMERIC_BUCKETS  # histogram buckets for numeric features (reference deciles)
    top_skills: int = 10  # rising / falling skills listed per window
    hypotheses: int = 25  # postings listed per hypothesis list on the dashboard

    @classmethod
    def from_params(cls, params: dict) -> MonitoringSettings:
        section = params.get("monitoring") or {}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise UserError(f"monitoring: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = dict(section)
        for key in ("min_count", "buckets", "top_skills", "hypotheses"):
            if key in values and (not isinstance(values[key], int) or values[key] < 1):
                raise UserError(f"monitoring.{key} = {values[key]!r}: must be a positive integer")
        values["thresholds"] = dict(values.get("thresholds") or {})
        settings = cls(**values)
        try:
            settings.alert_thresholds()
        except ValueError as exc:
            raise UserError(f"monitoring.thresholds: {exc}") from None
        return settings

    def alert_thresholds(self) -> Thresholds:
        return Thresholds(self.threshold, self.thresholds)

    def to_json(self) -> dict:
        return {
            "default_threshold": self.threshold,
            "thresholds": self.thresholds,
            "min_count": self.min_count,
            "buckets": self.buckets,
        }
