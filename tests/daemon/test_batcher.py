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
