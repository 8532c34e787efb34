"""Dynamic micro-batching: concurrent requests share model calls, a bounded number of calls in flight.

Why: on a 2-4 core board, eight waitress threads each calling the ONNX session at once means eight
activation sets in memory and eight callers fighting ORT's intra-op pool for the same cores. Instead,
request threads queue their text here and `workers` worker threads (default 1) each take whatever has
queued as one batch (up to `max_batch`), so at most `workers` model calls run at once.

Batching is greedy: a worker takes what queued while the previous call ran and never waits for
company by default (`max_wait_ms=0`), so a lone request pays no extra latency. A 256-token BERT
already fills the cores, so batching buys memory and predictability (one activation set per worker,
no oversubscribed thread pools) more than throughput. A second worker buys throughput: between two
model calls a worker hands out results and pads the next batch in Python while the cores idle, and the
other worker's call fills that gap (docs/performance.md measures it). It needs a backend whose calls
may overlap (`InferenceBackend.concurrent_calls`).
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


class BatcherClosed(RuntimeError):
    """The batcher was closed (its model replaced or the daemon stopping) before this text was queued:
    nothing will run it here. A caller submits again to the model that replaced it."""


class MicroBatcher:
    def __init__(
        self,
        predict_batch: Callable[[Sequence[str]], list],
        max_batch: int = 8,
        max_wait_ms: float = 0.0,
        workers: int = 1,
        name: str = "careeredge-inference",
    ):
        self.predict_batch = predict_batch
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max_wait_ms / 1000
        self._queue: queue.Queue = queue.Queue()
        # Taken to queue a text and to close: nothing is queued behind the stop marker, where no worker
        # would ever take it (its caller would wait out its timeout).
        self._state = threading.Lock()
        self._closed = False
        # Worker index -> monotonic start of its model call in progress (absent: not in a call).
        self._busy_since: dict[int, float] = {}
        self._workers = [
            threading.Thread(target=self._run, args=(index,), name=f"{name}-{index}", daemon=True)
            for index in range(max(1, workers))
        ]
        for worker in self._workers:
            worker.start()

    @property
    def workers(self) -> int:
        return len(self._workers)

    def predict(self, text: str, timeout: float | None = 60.0):
        """Block until the prediction for `text` is ready; model errors are re-raised here, and
        BatcherClosed when the batcher was closed before the text could be queued."""
        return self._submit([text])[0].result(timeout=timeout)

    def predict_many(self, texts: Sequence[str], timeout: float | None = 60.0) -> list:
        """Queue several texts at once (they join batches with everyone else's); results in order."""
        return [future.result(timeout=timeout) for future in self._submit(texts)]

    def _submit(self, texts: Sequence[str]) -> list[Future]:
        futures: list[Future] = [Future() for _ in texts]
        with self._state:
            if self._closed:
                raise BatcherClosed("the model was replaced or is stopping; submit to the current one")
            for text, future in zip(texts, futures):
                self._queue.put((text, future))
        return futures

    def alive(self, max_call_s: float) -> bool:
        """Every worker thread runs and no model call has lasted `max_call_s` or more (the systemd
        watchdog's liveness check: a hung model must stop the heartbeats)."""
        now = time.monotonic()
        stuck = any(now - began >= max_call_s for began in list(self._busy_since.values()))
        return all(worker.is_alive() for worker in self._workers) and not stuck

    def close(self) -> None:
        """Stop after what is queued: each worker that meets the stop marker puts it back for the next.
        Texts submitted from now on raise BatcherClosed."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        deadline = time.monotonic() + 10
        for worker in self._workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))

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

    def _run(self, index: int) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                self._queue.put(_STOP)  # for the other workers
                return
            batch = self._collect(first)
            texts = [text for text, _ in batch]
            self._busy_since[index] = time.monotonic()
            try:
                predictions = self.predict_batch(texts)
            except BaseException as exc:  # hand the error to every waiting request, keep serving
                log.exception("inference.failed", extra={"fields": {"batch": len(batch)}})
                for _, future in batch:
                    future.set_exception(exc)
                continue
            finally:
                self._busy_since.pop(index, None)
            for (_, future), prediction in zip(batch, predictions):
                future.set_result(prediction)
