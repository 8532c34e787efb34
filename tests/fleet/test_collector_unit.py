"""The collector's systemd template unit: it verifies, and it keeps each instance's MQTT session."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, require

UNIT = REPO_ROOT / "systemd" / "careeredge-collector@.service"
BIN = Path(sys.executable).parent


def test_the_collector_unit_verifies(tmp_path):
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze")
    require((BIN / "careeredge-cloud").is_file(), "careeredge-cloud console script in the venv")
    text = UNIT.read_text().replace("/opt/careeredge/.venv/bin/", f"{BIN}/").replace("/opt/careeredge", str(REPO_ROOT))
    text = text.replace("EnvironmentFile=/etc/careeredge/collector.env", "")  # not on a test machine
    instance = tmp_path / "careeredge-collector@1.service"
    instance.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(instance)], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "careeredge-collector" in line]
    assert not problems, "\n".join(problems)


def test_each_instance_keeps_one_session_and_restarts_unless_misconfigured():
    text = UNIT.read_text()
    assert "--client-id collector-%H-%i" in text  # stable per instance: its queued share waits for it
    assert "Restart=always" in text and "RestartPreventExitStatus=2" in text
    assert "--tls-ca ${MQTT_CA}" in text and "EnvironmentFile=/etc/careeredge/collector.env" in text
