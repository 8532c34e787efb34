"""`careeredge sync` killed mid-download: the restarted device resumes and activates only once verified."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from cloud.publisher.packing import build_ota_manifest, pack_bundle
from shared.mqtt.contract import STATUS_OFFLINE, Topics, bundle_id
from tests.sync.conftest import bundle_version
from tests.sync.fleet import RawClient, ota_events, publish_raw_update, read_chunks, start_collector, wait_until

CHUNK = 64 * 1024


def write_config(tmp_path: Path, broker, keys) -> Path:
    config = tmp_path / "device.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "device.db"}"\n\n'
        f'[sync]\nenabled = true\ndevice_id = "pi-resume"\nbroker_port = {broker.port}\n'
        f'public_key = "{keys["public_path"]}"\nmodels_dir = "{tmp_path / "models"}"\n'
    )
    return config


def start_device(config: Path, log: Path, repo_root: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "device.cli", "sync", "--config", str(config)],
        cwd=repo_root,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "a"),
    )


def chunks_on_disk(models_dir: Path) -> int:
    for progress in (models_dir / "downloads").glob("*.progress.json"):
        try:
            return len(json.loads(progress.read_text())["received"])
        except (OSError, ValueError):
            return 0
    return 0


def test_killed_mid_download_resumes_and_activates_after_verification(broker, tmp_path, keys, tiny_bundle, repo_root):
    collector, storage = start_collector(broker, tmp_path / "cloud.db")
    packed = pack_bundle(
        bundle_version(tiny_bundle, tmp_path / "v1", "7"), tmp_path / "v7.tar", keys["private"], chunk_size=CHUNK
    )
    manifest = build_ota_manifest(packed, "stable", 1, keys["private"])
    chunks = read_chunks(packed.path, CHUNK)
    half = len(chunks) // 2
    assert half >= 5
    # The upload is interrupted on the cloud side too: only the first half of the chunks is out.
    publish_raw_update(broker, manifest, chunks[:half])

    config, log, models_dir = write_config(tmp_path, broker, keys), tmp_path / "device.log", tmp_path / "models"
    device = start_device(config, log, repo_root)
    try:
        wait_until(lambda: chunks_on_disk(models_dir) == half, 60, "the first half on disk")
    finally:
        device.send_signal(signal.SIGKILL)
        device.wait(10)
    assert not (models_dir / "active").exists(), "nothing may be activated before the whole bundle verified"
    probe = RawClient(broker)
    probe.subscribe(Topics.device_status("pi-resume"))
    wait_until(
        lambda: probe.received(Topics.device_status("pi-resume"))[-1:] == [STATUS_OFFLINE],
        10,
        "the last will `offline` after the kill",
    )

    for index in range(half, len(chunks)):
        probe.publish(Topics.model_chunk("stable", bundle_id(manifest["sha256"]), index), chunks[index], retain=True)
    probe.close()
    device = start_device(config, log, repo_root)
    try:
        wait_until(lambda: ota_events(storage, "activated"), 60, "activation after the restart")
    finally:
        device.send_signal(signal.SIGTERM)
        assert device.wait(20) == 0, log.read_text()[-2000:]
        collector.stop()
    resumed = ota_events(storage, "download_resumed")
    assert len(resumed) == 1 and resumed[0]["detail"] == f"{half}/{len(chunks)} chunks on disk"
    assert ota_events(storage, "activated")[0]["version"] == "7"
    assert (models_dir / "active").resolve().name.startswith("7-")
    assert not list((models_dir / "downloads").iterdir())
    assert "resuming transfer of tiny_model 7" in log.read_text()
