"""Cost per prediction and per month: the small model (on a Pi 5, or on a cloud CPU) with its MLOps overhead,
against LLM APIs priced per token, and the monthly volume where the two cost the same.

Every number the model uses is an `Input` carrying its provenance: `measured` (read from a bench or pipeline
file, named in `source`), `source` (a dated published figure) or `assumed` (a stated assumption). The report
prints them all, so each cost can be traced back to what it rests on.

Monthly cost of the small model at volume V (predictions per month):

    devices(V) = max(1, ceil(V / capacity per device-month))
    small(V)   = devices(V) x fixed per device-month + V x variable per prediction + overhead per month
    overhead   = retrain compute + DVC snapshot storage + engineer hours  (monitoring export is per prediction)

and of an LLM: llm(V) = V x mean cost per call (from the token counts of the real postings). The break-even
volume is the smallest V where small(V) <= llm(V) (None when the LLM stays cheaper at every volume).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

HOURS_PER_MONTH = 730.0  # 8,760 / 12
WEEKS_PER_MONTH = 52.0 / 12.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
BYTES_PER_GB = 1e9
KINDS = ("measured", "source", "assumed")


@dataclass(frozen=True)
class Input:
    name: str
    value: float
    unit: str
    kind: str  # measured | source | assumed
    source: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"input {self.name}: kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class Deployment:
    """A small-model deployment: a fixed cost per device (or instance) and month, a capacity, a marginal cost."""

    name: str
    fixed_usd_per_unit_month: float
    capacity_per_unit_month: float
    variable_usd_per_prediction: float

    def units(self, volume: float) -> int:
        return max(1, math.ceil(volume / self.capacity_per_unit_month))

    def monthly_usd(self, volume: float, overhead_usd: float) -> float:
        return (
            self.units(volume) * self.fixed_usd_per_unit_month
            + volume * self.variable_usd_per_prediction
            + overhead_usd
        )

    def per_1000_at_capacity(self) -> float:
        """Compute cost per 1,000 predictions with every device busy (no overhead): the floor of this deployment."""
        return 1000 * (self.fixed_usd_per_unit_month / self.capacity_per_unit_month + self.variable_usd_per_prediction)


def pi5_deployment(inputs: dict[str, Input], seconds_per_prediction: float, monitoring_usd: float) -> Deployment:
    """A Pi 5 serving one posting after another: amortised hardware + idle power are fixed, the extra power of
    a busy board is paid per prediction."""
    kwh_usd = inputs["electricity_usd_per_kwh"].value
    pi_seconds = seconds_per_prediction * inputs["pi5.speed_vs_build_box"].value
    fixed = inputs["pi5.hardware_usd"].value / inputs["pi5.life_months"].value
    fixed += inputs["pi5.watts_idle"].value * HOURS_PER_MONTH / 1000 * kwh_usd
    busy_extra_w = inputs["pi5.watts_busy"].value - inputs["pi5.watts_idle"].value
    variable = busy_extra_w * pi_seconds / 3600 / 1000 * kwh_usd + monitoring_usd
    return Deployment("Raspberry Pi 5", fixed, SECONDS_PER_MONTH / pi_seconds, variable)


def cloud_cpu_deployment(inputs: dict[str, Input], predictions_per_second: float, monitoring_usd: float) -> Deployment:
    """Always-on 2 vCPU instances running the daemon at its measured throughput."""
    return Deployment(
        "cloud CPU (2 vCPU)",
        inputs["cloud_cpu.usd_per_hour"].value * HOURS_PER_MONTH,
        predictions_per_second * SECONDS_PER_MONTH,
        monitoring_usd,
    )


def monthly_overhead(inputs: dict[str, Input]) -> dict[str, float]:
    """MLOps cost per month that does not depend on the volume, by item."""
    retrain = inputs["retrain_seconds"].value / 3600 * inputs["trainer_usd_per_hour"].value * WEEKS_PER_MONTH
    stored_gb = inputs["snapshot_bytes_per_week"].value * inputs["snapshot_retention_weeks"].value / BYTES_PER_GB
    storage = stored_gb * inputs["storage_usd_per_gb_month"].value
    engineer = inputs["engineer_hours_per_month"].value * inputs["engineer_usd_per_hour"].value
    return {"retrain_compute": retrain, "snapshot_storage": storage, "engineer": engineer}


@dataclass(frozen=True)
class LlmCost:
    model: str
    per_call_usd: list[float]  # one per real posting
    estimate: bool
    method: str

    @property
    def mean_usd(self) -> float:
        return float(np.mean(self.per_call_usd))

    def per_1000(self) -> dict[str, float]:
        calls = np.asarray(self.per_call_usd)
        return {
            "mean": 1000 * float(calls.mean()),
            "p50": 1000 * float(np.percentile(calls, 50)),
            "p90": 1000 * float(np.percentile(calls, 90)),
            "p99": 1000 * float(np.percentile(calls, 99)),
            "max": 1000 * float(calls.max()),
        }


def llm_cost(model: str, price, prompt_tokens: Sequence[int], completion_tokens: Sequence[int], method, estimate):
    calls = [price.call_usd(p, c) for p, c in zip(prompt_tokens, completion_tokens)]
    if not calls:
        raise ValueError(f"no token counts for {model}")
    return LlmCost(model, calls, estimate, method)


def break_even_volume(
    deployment: Deployment, overhead_usd: float, llm_per_prediction_usd: float, llm_overhead_usd: float = 0.0
) -> float | None:
    """Smallest monthly volume where the small model (plus overhead) costs no more than the LLM; None if never.

    With n devices (volume up to n x capacity) the small model costs n*F + O + v*V and the LLM L*V + O_llm,
    so with n devices they meet at V_n = (n*F + O - O_llm) / (L - v). The answer is V_n for the fewest
    devices n that can serve it (V_n <= n x capacity): n >= (O - O_llm) / (capacity*(L - v) - F)."""
    margin = llm_per_prediction_usd - deployment.variable_usd_per_prediction
    if margin <= 0:
        return None
    fixed, capacity = deployment.fixed_usd_per_unit_month, deployment.capacity_per_unit_month
    extra = overhead_usd - llm_overhead_usd

    def meet(units: int) -> float:
        return max(0.0, (units * fixed + extra) / margin)

    if meet(1) <= capacity:
        return meet(1)
    gain_per_full_device = capacity * margin - fixed
    if gain_per_full_device <= 0:
        return None  # a busy device costs more than the LLM calls it replaces: more devices never catch up
    return meet(max(1, math.ceil(extra / gain_per_full_device)))


def inputs_table(inputs: dict[str, Input]) -> list[dict]:
    return [asdict(i) for i in inputs.values()]
