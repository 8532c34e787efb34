"""The device's own skew: its recent predictions against the 2025 training profile, offline.

Every `[monitoring] interval_s` seconds a background thread reads the last `[monitoring] window`
predictions from the store, projects them with the same function the cloud uses
(`shared.monitoring.features.project`) and compares them with the 2025 profile shipped in the
package (`shared/monitoring/baseline_2025.json`) with the same metrics (`shared.monitoring.drift`):
L-infinity for skill / category flags and the predicted class, Jensen-Shannon divergence for text
length, alert at 0.3 (Vertex AI's default). Confidence has no 2025 baseline (no model served the
training rows), so it is compared with the previous window instead.

The result feeds the status page, the TUI and `/api/v1/status` (`status()`), and a compact summary
(`summary()`, the contract's `skew` object) travels with the next prediction batch.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from importlib import resources

from shared.monitoring.drift import Profile, Thresholds, compare_profiles, summary
from shared.monitoring.features import project

log = logging.getLogger(__name__)

MIN_WINDOW = 20  # fewer predictions than this: not enough to say anything about skew


def load_baseline() -> tuple[str, Profile]:
    payload = json.loads(resources.files("shared.monitoring").joinpath("baseline_2025.json").read_text("utf-8"))
    return payload["name"], Profile.from_json(payload["profile"])


class SkewMonitor:
    def __init__(self, store, window: int = 500, thresholds: Thresholds | None = None):
        self.store = store
        self.window = window
        self.thresholds = thresholds or Thresholds()
        self.baseline_name, self.baseline = load_baseline()
        self._latest: dict | None = None
        self._previous: Profile | None = None
        self._sent: str | None = None  # computed_at of the summary last handed to the sync agent
        self._lock = threading.Lock()

    def compute(self) -> dict:
        """Skew of the last `window` predictions; stored as the latest result and returned."""
        rows = self.store.recent(limit=self.window)
        computed_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        result = {"window": f"last {self.window} predictions", "computed_at": computed_at, "documents": len(rows),
                  "baseline": self.baseline_name, "threshold": self.thresholds.default}  # fmt: skip
        if len(rows) < MIN_WINDOW:
            result.update(state="too_few", message=f"{len(rows)} predictions stored; skew needs {MIN_WINDOW}")
        else:
            table = project(
                [r.get("text") or r.get("snippet") or "" for r in rows],
                [int(r["label"]) for r in rows],
                [max(float(r["p0"]), float(r["p1"])) for r in rows],
                model=[r["model_name"] for r in rows],
                source=[r["source"] for r in rows],
                timestamp=[r["created_at"] for r in rows],
            )
            window = Profile.of(table, edges_from=self.baseline)
            drifts = [d for d in compare_profiles(self.baseline, window, self.thresholds) if d.feature != "confidence"]
            confidence = self._confidence_drift(table)
            if confidence is not None:
                drifts.append(confidence)
            headline = summary(drifts)
            result.update(
                state="alert" if headline["alerts"] else "ok",
                alerts=headline["alerts"],
                worst=headline["worst"],
                message=(
                    f"{len(headline['alerts'])} features past {self.thresholds.default}: "
                    + ", ".join(headline["alerts"][:5])
                    if headline["alerts"]
                    else "no feature past its threshold"
                ),
            )
        with self._lock:
            self._latest = result
        return result

    def _confidence_drift(self, table):
        """Confidence against the previous computation (bucketed by the previous window's deciles)."""
        current = Profile.of(table)
        previous, self._previous = self._previous, current
        if previous is None:
            return None
        window = Profile.of(table, edges_from=previous)
        (drift,) = [d for d in compare_profiles(previous, window, self.thresholds) if d.feature == "confidence"]
        drift.note = (drift.note + "; " if drift.note else "") + "against the previous window"
        return drift

    def status(self) -> dict:
        with self._lock:
            return dict(self._latest) if self._latest else {"state": "pending", "message": "not computed yet"}

    def summary(self) -> dict | None:
        """The contract's `skew` object of the latest computation, or None before there is one."""
        with self._lock:
            latest = self._latest
        if not latest or "alerts" not in latest:
            return None
        return {key: latest[key] for key in ("window", "computed_at", "documents", "threshold", "alerts", "worst")}

    def unsent_summary(self) -> dict | None:
        """`summary()` once per computation: the sync agent attaches it to the next batch only."""
        current = self.summary()
        with self._lock:
            if current is None or current["computed_at"] == self._sent:
                return None
            self._sent = current["computed_at"]
        return current

    def start(self, interval_s: float) -> threading.Event:
        """Compute now and then every `interval_s` seconds; set the returned event to stop."""
        stop = threading.Event()

        def loop() -> None:
            while True:
                try:
                    self.compute()
                except Exception as exc:  # a failing skew check must never take the daemon down
                    log.error("skew.failed", extra={"fields": {"error": str(exc)}})
                if stop.wait(interval_s):
                    return

        threading.Thread(target=loop, name="careeredge-skew", daemon=True).start()
        return stop
