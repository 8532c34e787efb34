"""Dynamic micro-batching: concurrent requests share one model call.

Why: on a 2-4 core board, eight waitress threads each calling the ONNX session at once means eight
activation sets in memory and eight callers fighting ORT's intra-op pool for the same cores. Instead,
request threads queue their text here and one worker thread runs whatever has queued as a single
batch (up to `max_batch`), so exactly one inference runs at a time, on all the cores it was given.

Batching is greedy: the worker takes what queued while the previous call ran and never waits for
company by default (`max_wait_ms=0`), so a lone request pays no extra latency. A 256-token BERT
already fills the cores, so the win is memory and predictability (one activation set instead of
eight, no oversubscribed thread pools) rather than throughput.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

log = logging.getLogger(__name__)

_STOP = object()


class MicroBatcher:
    def __init__(
        self,
        predict_batch: Callable[[Sequence[str]], list],
        max_batch: int = 8,
        max_wait_ms: float = 0.0,
        name: str = "careeredge-inference",
    ):
        self.predict_batch = predict_batch
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max_wait_ms / 1000
        self._queue: queue.Queue = queue.Queue()
        self.batches = 0
        self.items = 0
        self._busy_since: float | None = None  # monotonic start of the model call in progress
        self._worker = threading.Thread(target=self._run, name=name, daemon=True)
        self._worker.start()

    def predict(self, text: str, timeout: float | None = 60.0):
        """Block until the prediction for `text` is ready; model errors are re-raised here."""
        future: Future = Future()
        self._queue.put((text, future))
        return future.result(timeout=timeout)

    def predict_many(self, texts: Sequence[str], timeout: float | None = 60.0) -> list:
        """Queue several texts at once (they join batches with everyone else's); results in order."""
        futures: list[Future] = []
        for text in texts:
            future: Future = Future()
            self._queue.put((text, future))
            futures.append(future)
        return [future.result(timeout=timeout) for future in futures]

    def alive(self, max_call_s: float) -> bool:
        """The worker thread runs and no model call has lasted `max_call_s` or more (the systemd
        watchdog's liveness check: a hung model must stop the heartbeats)."""
        busy_since = self._busy_since
        stuck = busy_since is not None and time.monotonic() - busy_since >= max_call_s
        return self._worker.is_alive() and not stuck

    def close(self) -> None:
        self._queue.put(_STOP)
        self._worker.join(timeout=10)

    def _collect(self, first) -> list:
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get_nowait() if remaining <= 0 else self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # finish this batch, then stop
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = self._collect(first)
            texts = [text for text, _ in batch]
            self._busy_since = time.monotonic()
            try:
                predictions = self.predict_batch(texts)
            except BaseException as exc:  # hand the error to every waiting request, keep serving
                log.exception("inference.failed", extra={"fields": {"batch": len(batch)}})
                for _, future in batch:
                    future.set_exception(exc)
                continue
            finally:
                self._busy_since = None
            self.batches += 1
            self.items += len(batch)
            for (_, future), prediction in zip(batch, predictions):
                future.set_result(prediction)
