"""On the device: shadow mode off the request path, its own skew against the shipped 2025 profile,
shown on the status page and in the TUI and sent with the logs."""

from __future__ import annotations

import asyncio
import time

from device.daemon import Daemon
from device.monitoring import SkewMonitor
from device.sync.upload import row_to_record
from device.web import create_app
from shared.mqtt.contract import PREDICTION_BATCH
from tests.daemon.conftest import make_config
from tests.monitoring.fleet_traffic import postings

EMBEDDED = "device/embedded_bundle"


def shadow_daemon(tmp_path, served, shadow) -> Daemon:
    config = make_config(tmp_path, served)
    config.override("model", shadow=shadow)
    return Daemon(config)


def test_the_shadow_scores_every_served_text_and_sync_carries_it(tmp_path, tiny_bundle, repo_root, kaggle_csv):
    daemon = shadow_daemon(tmp_path, repo_root / EMBEDDED, tiny_bundle)
    try:
        texts = postings(kaggle_csv, 12)
        answers = [daemon.classify(text, source="api") for text in texts]
        assert daemon.shadow.drain(60)
        rows = {row["uuid"]: row for row in daemon.store.recent(limit=50)}
        assert len(rows) == 12
        for answer in answers:
            row = rows[answer.uuid]
            assert row["model_name"] == daemon.backend.model_name  # the served model answered
            assert row["shadow_model"] == daemon.shadow.backend.model_name
            assert abs(row["shadow_p0"] + row["shadow_p1"] - 1) < 1e-4
        record = row_to_record(next(iter(rows.values())))
        assert record["shadow"]["model_name"] == daemon.shadow.backend.model_name
        batch = {"schema": PREDICTION_BATCH.schema_id, "device_id": "pi-1", "batch_id": "00000000-0000-4000-8000-000000000001",
                 "sent_at": "2026-07-20T10:00:00Z", "records": [record]}  # fmt: skip
        PREDICTION_BATCH.encode(batch)  # the cloud's own checks accept it
        status = daemon.status()["shadow"]
        assert status["scored"] == 12 and status["dropped"] == 0 and status["failed"] == 0
    finally:
        daemon.close()


def test_the_request_never_waits_for_the_shadow(tmp_path, tiny_bundle, repo_root):
    daemon = shadow_daemon(tmp_path, tiny_bundle, repo_root / EMBEDDED)
    blocked = []
    original = daemon.shadow.backend.predict_model_inputs

    def slow(texts):  # a shadow far slower than serving
        time.sleep(0.5)
        blocked.append(len(texts))
        return original(texts)

    daemon.shadow.backend.predict_model_inputs = slow
    try:
        began = time.perf_counter()
        for i in range(6):
            daemon.classify(f"We build backend services in Java and Kubernetes, team {i}.", source="api")
        assert time.perf_counter() - began < 2.0  # six answers before even two shadow batches finish
        assert daemon.shadow.drain(30) and sum(blocked) == 6
    finally:
        daemon.close()


def test_a_broken_shadow_bundle_leaves_serving_alone(tmp_path, tiny_bundle):
    daemon = shadow_daemon(tmp_path, tiny_bundle, tmp_path / "no-such-bundle")
    try:
        assert daemon.shadow is None and not daemon.degraded
        assert daemon.classify("Python and SQL reports", source="api").stored
    finally:
        daemon.close()


def test_device_skew_on_the_status_page_in_the_tui_and_in_the_next_batch(tmp_path, tiny_bundle, kaggle_csv):
    daemon = Daemon(make_config(tmp_path, tiny_bundle))
    try:
        monitor = SkewMonitor(daemon.store, window=500)
        assert monitor.compute()["state"] == "too_few"  # an empty store: no claim, no division by zero
        assert monitor.unsent_summary() is None
        for text in postings(kaggle_csv, 30) + ["Agentic AI with LangChain, RAG and MCP servers."] * 30:
            daemon.classify(text, source="api")
        result = monitor.compute()
        assert result["documents"] == 60 and result["state"] == "alert"
        assert "skill:LangChain" in result["alerts"] and result["worst"][0]["value"] >= 0.3
        summary = monitor.unsent_summary()
        assert summary["alerts"] == result["alerts"] and monitor.unsent_summary() is None  # sent once
        daemon.skew = monitor
        daemon.status_providers["monitoring"] = monitor.status
        page = create_app(daemon).test_client().get("/status")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "ALARM" in html and "skill:LangChain" in html

        from device.tui.app import CareerEdgeApp

        async def status_tab():
            app = CareerEdgeApp(daemon.config, daemon=daemon)
            async with app.run_test(size=(120, 60)) as pilot:
                await pilot.press("f4")
                await pilot.pause()
                return str(app.query_one("#status-text").render())

        assert "ALARM" in asyncio.run(status_tab())
    finally:
        daemon.close()
