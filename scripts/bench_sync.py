#!/usr/bin/env python
"""Benchmark the MQTT sync path on loopback: prediction-log throughput and an over-the-air update.

    python scripts/bench_sync.py --json bench/sync.json [--records 10000] [--bundle artifacts/bundles/model_a_v1]

What runs: a real mosquitto (free loopback port), the device as a separate `careeredge sync`
process (its own store, config and MQTT session), and the cloud side in this process (collector
with its SQLite storage, publisher). Figures:

- records_per_s: rows from the device's SQLite store to the collector's SQLite storage, from the
  device's first `online` to the last row stored; `lost` / `duplicates` are checked by uuid.
  Baseline in the same run: bare paho QoS 1 publish -> subscribe of the same payloads (no stores,
  no validation), reported as a ratio.
- ota_seconds: `publish` start (chunks + signed manifest) -> the device's `activated` report
  (download, size/sha256/signature checks, unpack, bundle verification, symlink swap, golden health
  check). Baseline: copying + hashing the same tar locally. The device's peak RSS growth during the
  transfer shows memory stays bounded (chunks are streamed to disk).

Without --bundle it uses artifacts/bundles/model_a_v1 when present, else a synthetic bundle: the
tiny test model plus incompressible padding up to --bundle-mb (needs the cloud extra to build).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import psutil  # noqa: E402

from cloud.collector.collector import Collector  # noqa: E402
from cloud.collector.storage import SqliteStorage  # noqa: E402
from cloud.publisher.packing import pack_bundle  # noqa: E402
from cloud.publisher.publisher import ChannelPublisher  # noqa: E402
from device.store import PredictionStore  # noqa: E402
from device.sync.upload import row_to_record  # noqa: E402
from shared.bundle import read_manifest, save_manifest  # noqa: E402
from shared.files import sha256_file  # noqa: E402
from shared.mqtt.client import BrokerSettings, make_client  # noqa: E402
from shared.mqtt.contract import PREDICTION_BATCH, STATUS_ONLINE, Topics  # noqa: E402
from shared.signing import generate_keypair, load_private_key  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402

DEVICE_ID = "bench-pi"


def wait_until(condition, timeout: float, what: str, interval: float = 0.01) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(interval)
    raise SystemExit(f"bench: timed out after {timeout}s waiting for {what}")


def fill_store(path: Path, count: int) -> set[str]:
    labels = ["Software Engineering", "Data Science"]
    with PredictionStore(path) as store:
        return {
            store.insert(
                {
                    "source": "cli",
                    "model_name": "bench",
                    "model_version": "1",
                    "label": i % 2,
                    "label_name": labels[i % 2],
                    "probabilities": [0.7, 0.3] if i % 2 == 0 else [0.2, 0.8],
                    "latency_ms": 12.0,
                    "text": f"posting {i}: we need python, sql, pandas and kubernetes experience. " * 4,
                }
            )
            for i in range(count)
        }


def synthetic_bundle(work: Path, size_mb: float) -> tuple[Path, str]:
    from tests.support.tiny_model import build_tiny_bundle

    bundle = build_tiny_bundle(work / "bundle", name="bench_model", version="2")
    padding_bytes = max(0, int(size_mb * 1024 * 1024) - sum(p.stat().st_size for p in bundle.iterdir()))
    with open(bundle / "padding.bin", "wb") as handle:
        for _ in range(padding_bytes // (1 << 20)):
            handle.write(os.urandom(1 << 20))
        handle.write(os.urandom(padding_bytes % (1 << 20)))
    manifest = read_manifest(bundle)
    manifest["files"]["padding.bin"] = sha256_file(bundle / "padding.bin")
    save_manifest(bundle, manifest)
    return bundle, f"synthetic: tiny INT8 model + {padding_bytes / 1e6:.1f} MB random padding"


def device_config(work: Path, broker: Mosquitto, public_key: Path, batch_size: int) -> Path:
    config = work / "device.toml"
    config.write_text(
        f'[store]\npath = "{work / "device.db"}"\n\n[sync]\nenabled = true\ndevice_id = "{DEVICE_ID}"\n'
        f'broker_port = {broker.port}\npublic_key = "{public_key}"\nmodels_dir = "{work / "models"}"\n'
        f"batch_size = {batch_size}\n"
    )
    return config


def raw_mqtt_baseline(broker: Mosquitto, payload: bytes, batches: int, records_per_batch: int) -> float:
    """Records/s through the broker with bare paho clients: the ceiling the sync path is compared to."""
    settings = BrokerSettings(host=broker.host, port=broker.port)
    received = threading.Semaphore(0)
    subscribed = threading.Event()
    subscriber = make_client("bench-raw-sub", settings)
    subscriber.on_message = lambda *args: received.release()
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.connect(broker.host, broker.port)
    subscriber.loop_start()
    subscriber.subscribe("bench/raw", qos=1)
    subscribed.wait(10)
    publisher = make_client("bench-raw-pub", settings)
    publisher.connect(broker.host, broker.port)
    publisher.loop_start()
    started = time.monotonic()
    infos = [publisher.publish("bench/raw", payload, qos=1) for _ in range(batches)]
    for info in infos:
        info.wait_for_publish(30)
    for _ in range(batches):
        received.acquire(timeout=30)
    elapsed = time.monotonic() - started
    for client in (publisher, subscriber):
        client.disconnect()
        client.loop_stop()
    return batches * records_per_batch / elapsed


def local_copy_and_hash_seconds(path: Path, work: Path) -> float:
    started = time.monotonic()
    shutil.copyfile(path, work / "baseline-copy.tar")
    sha256_file(work / "baseline-copy.tar")
    elapsed = time.monotonic() - started
    (work / "baseline-copy.tar").unlink()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="write the figures here")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--bundle-mb", type=float, default=25.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    generate_keypair(work / "signing.pem", work / "signing.pub.pem")
    private_key = load_private_key(work / "signing.pem")
    bundle, bundle_label = args.bundle, str(args.bundle)
    if bundle is None and (REPO_ROOT / "artifacts/bundles/model_a_v1/manifest.json").is_file():
        bundle, bundle_label = REPO_ROOT / "artifacts/bundles/model_a_v1", "artifacts/bundles/model_a_v1"
    if bundle is None:
        print(f"building a synthetic {args.bundle_mb:.0f} MB bundle (tiny model + padding)...", file=sys.stderr)
        bundle, bundle_label = synthetic_bundle(work, args.bundle_mb)

    print(f"filling the device store with {args.records} predictions...", file=sys.stderr)
    sent = fill_store(work / "device.db", args.records)
    with PredictionStore(work / "device.db") as store:
        sample_payload = PREDICTION_BATCH.encode(
            {
                "schema": PREDICTION_BATCH.schema_id,
                "device_id": DEVICE_ID,
                "batch_id": "baseline-0000",
                "sent_at": "2026-01-01T00:00:00.000Z",
                "records": [row_to_record(r) for r in store.unsynced(limit=args.batch_size)],
            }
        )

    results: dict = {"records_sent": len(sent), "batch_size": args.batch_size, "bundle": bundle_label}
    with Mosquitto(work / "broker", extra_config="max_queued_messages 1000000\n") as broker:
        settings = BrokerSettings(host=broker.host, port=broker.port)
        storage = SqliteStorage(work / "cloud.db")
        collector = Collector(storage, settings, client_id="bench-collector")
        collector.start()
        collector.subscribed.wait(10)
        probe = make_client("bench-probe", settings)
        online = threading.Event()
        probe.on_message = lambda c, u, m: online.set() if m.payload == STATUS_ONLINE else None
        probe.connect(broker.host, broker.port)
        probe.loop_start()
        probe.subscribe(Topics.device_status(DEVICE_ID), qos=1)

        config = device_config(work, broker, work / "signing.pub.pem", args.batch_size)
        device_log = open(work / "device.log", "w")
        device = subprocess.Popen(
            [sys.executable, "-m", "device.cli", "sync", "--config", str(config)],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=device_log,
        )
        try:
            online.wait(30)
            started = time.monotonic()
            finished = wait_until(lambda: storage.prediction_count() >= len(sent), 300, "all rows at the collector")
            stored = storage.prediction_uuids()
            snapshot = collector.snapshot()
            results.update(
                records_stored=len(stored),
                duplicates=snapshot["duplicates"],
                lost=len(sent - stored),
                records_per_s=round(len(sent) / (finished - started), 1),
                collector_rejected=snapshot["rejected"],
            )

            # --- OTA -------------------------------------------------------------------------------
            packing_started = time.monotonic()
            packed = pack_bundle(bundle, work / "bundle.tar", private_key)
            results["pack_seconds"] = round(time.monotonic() - packing_started, 2)
            results["bundle_bytes"] = packed.size
            process = psutil.Process(device.pid)
            rss_before = process.memory_info().rss
            # peak[0]: whole OTA (includes loading the model for the health check);
            # peak[1]: only while the transfer is in progress (a .part file exists).
            peak = [rss_before, rss_before]
            sampling = threading.Event()
            downloads = work / "models" / "downloads"

            def sample_rss() -> None:
                while not sampling.is_set():
                    try:
                        rss = process.memory_info().rss
                    except psutil.Error:
                        return
                    peak[0] = max(peak[0], rss)
                    if downloads.is_dir() and any(downloads.glob("*.part")):
                        peak[1] = max(peak[1], rss)
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample_rss, daemon=True)
            sampler.start()
            ota_started = time.monotonic()
            with ChannelPublisher(settings, "stable") as publisher:
                publisher.publish(packed, private_key, progress=False)
            published = time.monotonic()
            activated = wait_until(
                lambda: any(e["event"] == "activated" for e in storage.ota_events()),
                120,
                "the device's activated report",
                interval=0.02,
            )
            sampling.set()
            sampler.join()
            failures = [e for e in storage.ota_events() if e["event"] in ("rejected", "rolled_back")]
            if failures:
                raise SystemExit(f"bench: OTA failed: {failures}")
            baseline = local_copy_and_hash_seconds(packed.path, work)
            results.update(
                ota_seconds=round(activated - ota_started, 2),
                ota_publish_seconds=round(published - ota_started, 2),
                ota_baseline_local_copy_hash_seconds=round(baseline, 3),
                ota_ratio_to_baseline=round((activated - ota_started) / baseline, 1),
                device_rss_before_ota_mb=round(rss_before / 2**20, 1),
                device_peak_rss_growth_during_transfer_mb=round((peak[1] - rss_before) / 2**20, 1),
                device_peak_rss_growth_during_ota_mb=round((peak[0] - rss_before) / 2**20, 1),
            )
        finally:
            device.terminate()
            device.wait(30)
            device_log.close()
            collector.stop()
            probe.disconnect()
            probe.loop_stop()

        baseline_rate = raw_mqtt_baseline(broker, sample_payload, max(1, len(sent) // args.batch_size), args.batch_size)
        results["baseline_raw_mqtt_records_per_s"] = round(baseline_rate, 1)
        results["records_per_s_ratio_to_baseline"] = round(results["records_per_s"] / baseline_rate, 3)

    results["targets"] = {
        "records_per_s": ">= 2000",
        "ota_seconds": "<= 10 (~25 MB bundle)",
        "lost": 0,
        "duplicates_stored": 0,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k in results)
    for key, value in results.items():
        if key != "targets":
            print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
