"""Model A's Space: the built folder runs on its own with torch and transformers blocked, answers a real 2025
posting through Gradio's HTTP API (gradio_client), and logs it off the request path: to a real MQTT broker
as a contract prediction batch, and to the local JSONL file when the broker does not acknowledge."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cloud.space.command import build_space, space_group
from shared.mqtt.contract import PREDICTION_BATCH, PREDICTION_RECORD, Topics, validate_object
from tests.conftest import KAGGLE_CSV, require
from tests.support.fake_hub import FakeHub
from tests.support.mosquitto import Mosquitto, free_loopback_port, mosquitto_binary

SPACE_ID = "hf-space-test"
# Runs the Space's own app.py from the built folder with the heavy training stack made unimportable.
LAUNCH = textwrap.dedent("""
    import importlib.abc, runpy, sys

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "transformers"):
                raise ImportError(f"blocked import of {name}: the Space must not need it")
            return None

    sys.meta_path.insert(0, Blocker())
    runpy.run_path("app.py", run_name="__main__")
""")


@pytest.fixture(scope="module")
def space(tmp_path_factory, tiny_bundle) -> Path:
    return build_space(tiny_bundle, tmp_path_factory.mktemp("space") / "space")


def real_posting() -> str:
    with KAGGLE_CSV.open(encoding="utf-8", newline="") as handle:
        return next(row["description"] for row in csv.DictReader(handle) if "Data Scientist" in row["positionName"])


def test_the_space_folder_is_self_contained_and_torch_free(space):
    front = yaml.safe_load((space / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and front["sdk_version"]
    lines = (space / "requirements.txt").read_text().splitlines()
    packages = {line.split(">")[0].split("=")[0].strip().lower() for line in lines if line and not line.startswith("#")}
    assert {"onnxruntime", "tokenizers", "paho-mqtt"} <= packages and not packages & {"torch", "transformers"}
    assert (space / "model" / "manifest.json").is_file() and (space / "cloud" / "space" / "app.py").is_file()
    assert not (space / "cloud" / "training").exists() and not (space / "device" / "web").exists()


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the Space exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the Space did not listen on {port} within {timeout} s: {log.read_text()[-2000:]}")


def read_jsonl(path: Path, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if len(records) >= count:
                return records
        time.sleep(0.1)
    pytest.fail(f"{count} record(s) did not reach {path} within {timeout} s")


class BatchListener:
    """A plain MQTT v5 subscriber on the predictions topic; every payload checked with the collector's decoder."""

    def __init__(self, port: int):
        import paho.mqtt.client as mqtt

        self.batches: list[dict] = []
        self.received = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda client, userdata, message: self._on(message)
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(Topics.ALL_DEVICE_PREDICTIONS, qos=1)
        self.client.loop_start()

    def _on(self, message) -> None:
        batch = PREDICTION_BATCH.decode(message.payload)
        assert Topics.device_id_of(message.topic) == batch["device_id"]
        self.batches.append(batch)
        self.received.set()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_the_space_answers_a_real_posting_and_logs_it_asynchronously(space, tmp_path):
    require(mosquitto_binary() is not None, "mosquitto")
    from gradio_client import Client

    broker = Mosquitto(tmp_path / "broker").start()
    listener = BatchListener(broker.port)
    port = free_loopback_port()
    log_path = tmp_path / "space_log.jsonl"
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "CAREEREDGE_SPACE_LOG": str(log_path),
        "CAREEREDGE_SPACE_ID": SPACE_ID,
        "CAREEREDGE_SPACE_MQTT_HOST": "127.0.0.1",
        "CAREEREDGE_SPACE_MQTT_PORT": str(broker.port),
        "CAREEREDGE_SPACE_THREADS": "1",
    }
    stdout = tmp_path / "space.out"
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH], cwd=space, env=env, stdout=stdout.open("wb"), stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, process, stdout)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        posting = real_posting()
        probabilities, result, advice = client.predict(posting, "python, sql", api_name="/classify")

        assert result["label"] in (0, 1) and result["model_version"] == "model_b_v4@4"
        assert sum(result["probabilities"]) == pytest.approx(1.0, abs=1e-5)
        assert {c["label"] for c in probabilities["confidences"]} == {"Software Engineering", "Data Science"}
        assert "Career advice" in advice and "Statistics" in advice

        assert listener.received.wait(20), "no prediction batch reached the broker"
        batch = listener.batches[0]
        assert batch["device_id"] == SPACE_ID and len(batch["records"]) == 1
        record = batch["records"][0]
        assert record["source"] == "space" and record["label"] == result["label"]
        assert record["text_sha256"] == hashlib.sha256(posting.strip().encode()).hexdigest()
        assert record["probabilities"] == pytest.approx(result["probabilities"], abs=1e-6)
        assert not log_path.exists()  # acknowledged by the broker: nothing fell back to the file

        broker.stop()  # the collector's broker goes away: the next record must land in the JSONL file
        second = "Backend engineer: Java, Kubernetes, microservices, CI/CD."
        began = time.perf_counter()
        _, second_result, _ = client.predict(second, "", api_name="/classify")
        assert time.perf_counter() - began < 4  # the 5 s acknowledgement wait is not in the request path
        fallback = read_jsonl(log_path, 1)
        assert fallback[0]["text"] == second and fallback[0]["label"] == second_result["label"]

        with pytest.raises(Exception, match="empty"):
            client.predict("   ", "", api_name="/classify")
        assert len(read_jsonl(log_path, 1)) == 1  # nothing logged for an empty request
    finally:
        process.terminate()
        process.wait(timeout=30)
        listener.close()
        broker.stop()
    assert "blocked import" not in stdout.read_text()


def test_space_push_needs_a_token_and_uploads_the_folder(space, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    no_token = CliRunner().invoke(space_group, ["push", str(space), "--repo", "org/careeredge"])
    assert no_token.exit_code == 2 and "HF_TOKEN is not set" in no_token.output
    with FakeHub() as hub:
        env = {"HF_TOKEN": "hf_test", "HF_ENDPOINT": hub.endpoint}
        result = CliRunner().invoke(space_group, ["push", str(space), "--repo", "org/careeredge"], env=env)
        assert result.exit_code == 0, result.output
        repo = hub.repos["org/careeredge"]
        assert repo.repo_type == "space" and repo.sdk == "gradio"
        assert repo.files["model/model.onnx"] == (space / "model" / "model.onnx").read_bytes()
        assert repo.files["app.py"] == (space / "app.py").read_bytes()
        assert any("sdk: gradio" in card for card in hub.validated)


def test_space_build_refuses_a_missing_bundle(tmp_path):
    result = CliRunner().invoke(
        space_group, ["build", "--bundle", str(tmp_path / "nope"), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 2 and "not a model bundle" in result.output


def test_a_full_log_queue_drops_and_counts_instead_of_blocking_the_request():
    from cloud.space.prediction_log import PredictionLog

    release, writing = threading.Event(), threading.Event()
    written: list[dict] = []

    class SlowSink:
        def write(self, records):
            writing.set()
            release.wait(10)
            written.extend(records)

        def close(self):
            pass

    log = PredictionLog(SlowSink(), max_queue=2, batch_size=1, flush_interval_s=0.01)
    assert log.submit({"n": 0}) and writing.wait(5)  # the drain thread holds record 0 in the slow sink
    assert log.submit({"n": 1}) and log.submit({"n": 2})  # the queue is now full
    began = time.perf_counter()
    assert log.submit({"n": 3}) is False
    assert time.perf_counter() - began < 0.05 and log.counters.dropped_queue_full == 1
    release.set()
    log.close()
    assert [r["n"] for r in written] == [0, 1, 2] and log.counters.written == 3


def test_a_posting_with_nul_characters_is_logged_as_a_record_the_collector_stores(tiny_bundle):
    """PostgreSQL text cannot hold U+0000, so the contract refuses it: one such posting would send the
    whole batch of 100 records it travels in to the collector's dead letters."""
    from cloud.space.app import SpaceModel

    logged: list[dict] = []

    class ListLog:
        def submit(self, record: dict) -> bool:
            logged.append(record)
            return True

    SpaceModel(tiny_bundle, ListLog()).classify("Data scientist\x00 with statistics, pandas and regression.")
    [record] = logged
    validate_object(record, PREDICTION_RECORD, "record")
    assert record["text"] == "Data scientist with statistics, pandas and regression."
