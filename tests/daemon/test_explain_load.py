"""Explanations under load: their inferences go through the inference workers (at most [model]
inference_workers model calls at a time, at most MAX_BATCH texts each), at most MAX_CONCURRENT_EXPLAINS
run at once, and the daemon's RSS stays within its 250 MB budget when eight clients ask for
explanations together."""

from __future__ import annotations

import threading
import time

import psutil
import pytest
import requests

import device.daemon as daemon_module
from device.daemon import MAX_BATCH, Daemon
from device.web import create_app
from tests.daemon.conftest import make_config, post_form

SKILL_DENSE = (
    "We need Python, SQL, Kubernetes, Docker, AWS, PyTorch, TensorFlow, Spark, Airflow, React, Java, Go, "
    "Rust, Scala, Tableau, pandas, statistics, A/B testing, LangChain and Kafka. "
) * 12
RSS_BUDGET_MB = 250


@pytest.fixture
def daemon(tmp_path, tiny_bundle):
    daemon = Daemon(make_config(tmp_path, tiny_bundle), bundle_dir=tiny_bundle)
    yield daemon
    daemon.close()


def test_explanations_run_on_the_inference_workers_a_bounded_batch_at_a_time(daemon):
    calls: list[tuple[str, int]] = []
    running, overlap = [0], [0]
    lock = threading.Lock()
    original = daemon.backend.predict_tokenized

    def recorded(texts):
        with lock:
            running[0] += 1
            overlap[0] = max(overlap[0], running[0])
            calls.append((threading.current_thread().name, len(texts)))
        try:
            return original(texts)
        finally:
            with lock:
                running[0] -= 1

    daemon.batcher.predict_batch = recorded  # what the inference worker calls
    daemon.backend.predict = lambda texts: pytest.fail("an explanation ran the model outside the workers")
    client = create_app(daemon).test_client()
    answers = []
    threads = [
        threading.Thread(
            target=lambda i=i: answers.append(
                client.post("/api/v1/predict", json={"text": f"{SKILL_DENSE} {i}", "explain": True})
            )
        )
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.get_json()["driving_terms"] for a in answers)
    assert {name.rsplit("-", 1)[0] for name, _ in calls} == {"careeredge-inference"}
    assert max(size for _, size in calls) <= MAX_BATCH and 1 <= overlap[0] <= daemon.batcher.workers


def test_explanations_beyond_the_limit_are_told_to_retry_and_store_nothing(daemon, monkeypatch):
    monkeypatch.setattr(daemon_module, "EXPLAIN_WAIT_S", 0.2)
    for _ in range(daemon_module.MAX_CONCURRENT_EXPLAINS):
        daemon._explain_slots.acquire()  # every turn is taken
    client = create_app(daemon).test_client()
    busy = client.post("/api/v1/predict", json={"text": SKILL_DENSE, "explain": True})
    assert busy.status_code == 429 and busy.headers["Retry-After"] and "retry" in busy.get_json()["error"]
    assert post_form(client, {"text": SKILL_DENSE}).status_code == 429
    assert client.post("/api/v1/predict", json={"text": SKILL_DENSE}).status_code == 200  # plain ones still run
    assert daemon.store.count() == 1


def test_eight_parallel_explanations_keep_the_daemon_within_its_memory_budget(daemon_factory):
    """The shipped Model A bundle: before routing through the worker, 8 of these took RSS from ~130 MB to
    ~550 MB (eight 17-text inferences side by side, and ONNX Runtime's arena keeps its peak)."""
    served = daemon_factory(None)  # no --model: the embedded Model A bundle
    url = served.url + "api/v1/predict"
    assert requests.post(url, json={"text": SKILL_DENSE}, timeout=60).status_code == 200
    process = psutil.Process(served.process.pid)
    peak, answers = 0.0, []
    threads = [
        threading.Thread(
            target=lambda i=i: answers.append(
                requests.post(url, json={"text": f"{SKILL_DENSE} {i}", "explain": True}, timeout=120).status_code
            )
        )
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, process.memory_info().rss / 1e6)
        time.sleep(0.02)
    assert sorted(answers) == [200] * 8
    assert peak <= RSS_BUDGET_MB, f"peak RSS {peak:.0f} MB"
