"""The micro-batcher gives every caller its own answer, batches what queues, and survives errors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from device.batcher import MicroBatcher


def test_concurrent_callers_get_their_own_results_in_bounded_batches():
    sizes = []

    def slow_upper(texts):
        sizes.append(len(texts))
        time.sleep(0.01)  # like a model call: others queue up meanwhile
        return [t.upper() for t in texts]

    batcher = MicroBatcher(slow_upper, max_batch=4)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(batcher.predict, [f"text {i}" for i in range(40)]))
    batcher.close()
    assert results == [f"TEXT {i}" for i in range(40)]
    assert max(sizes) <= 4 and sum(sizes) == 40 and len(sizes) < 40  # some calls were shared


def test_a_failing_batch_fails_its_callers_and_the_worker_keeps_going():
    calls = threading.Event()

    def flaky(texts):
        if not calls.is_set():
            calls.set()
            raise RuntimeError("model exploded")
        return texts

    batcher = MicroBatcher(flaky)
    with pytest.raises(RuntimeError, match="model exploded"):
        batcher.predict("first")
    assert batcher.predict("second") == "second"
    batcher.close()


def _overlap_probe():
    """A model call that records how many calls run at once, and stays in long enough for a second
    call to join it if the batcher allows one."""
    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    def call(texts):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return list(texts)

    return call, state


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_at_most_workers_model_calls_run_at_once(workers):
    call, state = _overlap_probe()
    batcher = MicroBatcher(call, max_batch=1, workers=workers)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(batcher.predict, [f"text {i}" for i in range(24)]))
    batcher.close()
    assert results == [f"text {i}" for i in range(24)]
    assert state["most"] == workers  # a second worker's call overlaps the first's; never more than asked


def test_one_stuck_worker_makes_the_batcher_not_alive_and_close_stops_every_worker():
    release = threading.Event()

    def model(texts):
        if "hang" in texts:
            release.wait(10)
        return list(texts)

    batcher = MicroBatcher(model, max_batch=1, workers=2)
    assert batcher.alive(max_call_s=0.2)
    with ThreadPoolExecutor(2) as pool:
        stuck = pool.submit(batcher.predict, "hang")
        assert batcher.predict("fine") == "fine"  # the other worker still answers
        time.sleep(0.3)
        assert not batcher.alive(max_call_s=0.2)  # the watchdog stops pinging
        release.set()
        assert stuck.result(timeout=5) == "hang"
    assert batcher.alive(max_call_s=0.2)
    batcher.close()
    assert not any(worker.is_alive() for worker in batcher._workers)


def test_the_daemon_runs_the_configured_workers_and_one_where_calls_cannot_overlap(tmp_path, monkeypatch):
    from device.config import EMBEDDED_BUNDLE, load_config
    from device.daemon import Daemon
    from device.runtime.onnx_backend import OnnxRuntimeBackend

    config = load_config(env={}).override("store", path=tmp_path / "predictions.db")
    assert config.model.inference_workers == 2  # the default
    config.override("model", inference_workers=3)
    daemon = Daemon(config, bundle_dir=EMBEDDED_BUNDLE)
    try:
        assert daemon.batcher.workers == 3
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda i: daemon.classify(f"Data scientist {i}: pandas, SQL", "api"), range(12)))
        assert all(answer.stored for answer in answers)
        monkeypatch.setattr(OnnxRuntimeBackend, "concurrent_calls", False)  # like the Hailo backend
        assert daemon.load_model(EMBEDDED_BUNDLE)
        assert daemon.batcher.workers == 1
    finally:
        daemon.close()


def test_a_closed_batcher_refuses_new_texts_at_once_and_answers_what_it_queued_first():
    from device.batcher import BatcherClosed

    release = threading.Event()

    def model(texts):
        release.wait(5)
        return [t.upper() for t in texts]

    batcher = MicroBatcher(model, max_batch=1, workers=2)
    with ThreadPoolExecutor(4) as pool:
        queued = [pool.submit(batcher.predict, f"text {i}") for i in range(4)]
        time.sleep(0.1)  # all four are queued or running
        closing = threading.Thread(target=batcher.close)  # waits for the workers, which wait for `release`
        closing.start()
        time.sleep(0.1)
        began = time.monotonic()
        with pytest.raises(BatcherClosed):
            batcher.predict("too late")
        assert time.monotonic() - began < 1  # refused, not left to wait out its timeout
        release.set()
        closing.join(10)
        assert [f.result(timeout=5) for f in queued] == [f"TEXT {i}" for i in range(4)]


def test_a_request_that_meets_a_model_swap_is_answered_by_the_new_model(tmp_path, tiny_bundle):
    """A reload swaps the model and closes the old batcher; a request that read the old model just before
    (here: the reload lands while it tokenizes) runs again on the new one: 200 and stored, not a hang."""
    from device.config import EMBEDDED_BUNDLE, load_config
    from device.daemon import Daemon

    config = load_config(env={}).override("store", path=tmp_path / "predictions.db")
    daemon = Daemon(config, bundle_dir=EMBEDDED_BUNDLE)
    try:
        old = daemon.backend
        old_tokenize = old.tokenize

        def tokenize_while_the_model_is_replaced(texts):
            encodings = old_tokenize(texts)
            old.tokenize = old_tokenize  # once
            assert daemon.load_model(tiny_bundle)  # swaps, then closes the batcher this request holds
            return encodings

        old.tokenize = tokenize_while_the_model_is_replaced
        result = daemon.classify("Data scientist: pandas, SQL and statistics", "api")
        assert daemon.backend is not old
        assert result.prediction.model_version == daemon.backend.model_version != old.model_version
        assert result.stored and daemon.store.count() == 1
    finally:
        daemon.close()
