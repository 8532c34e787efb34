"""scripts/bench_faults.py in its reduced mode: every part runs end to end and meets its target (the
full run, with the figures docs/reliability.md quotes, is the bench itself)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT, require
from tests.support.mosquitto import mosquitto_binary


def test_the_fault_bench_quick_run_meets_every_target(tmp_path):
    require(mosquitto_binary() is not None, "mosquitto (Debian package `mosquitto`)")
    out = tmp_path / "faults.json"
    result = subprocess.run(
        [sys.executable, "scripts/bench_faults.py", "--quick", "--json", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["meets_targets"], json.dumps(figures, indent=1)[:3000]
    assert figures["http_fuzz"]["answered_5xx"] == 0 and figures["collector_outage"]["lost"] == 0
    assert figures["ota_kill"]["problem_count"] == 0 and figures["kill9_under_load"]["lost"] == 0
    assert "meets targets: True" in result.stdout
