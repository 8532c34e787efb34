"""What a step cost to run: wall time, CPU time of this process and its children, peak memory, load."""

from __future__ import annotations

import os
import resource
import time
from contextlib import contextmanager


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: kB


class CostMeter:
    """Per-step wall and CPU seconds; `report()` adds the peak RSS and the 1-minute load average."""

    def __init__(self) -> None:
        self.steps: dict[str, dict] = {}
        self._began = time.perf_counter()

    @contextmanager
    def step(self, name: str):
        wall, cpu = time.perf_counter(), _cpu_s()
        try:
            yield
        finally:
            self.steps[name] = {
                "wall_s": round(time.perf_counter() - wall, 2),
                "cpu_s": round(_cpu_s() - cpu, 2),
            }

    def report(self) -> dict:
        return {
            "steps": self.steps,
            "wall_s": round(time.perf_counter() - self._began, 2),
            "cpu_s": round(sum(s["cpu_s"] for s in self.steps.values()), 2),
            "peak_rss_mb": peak_rss_mb(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "cores": os.cpu_count(),
        }
