"""Shadow mode: a second bundle scores every served text off the request path.

`[model] shadow = "/path/to/bundle"` loads it beside the served model. After the answer is sent and
stored, the daemon hands the text to `ShadowRunner.submit`, which only appends to a bounded queue;
one background thread scores what is queued (in batches) and writes the shadow's probabilities
beside the served prediction (`PredictionStore.record_shadow`). Sync carries them to the cloud,
where the monitoring job compares the two models on field traffic that has no labels.

The request never waits for the shadow: when the queue is full (the shadow is slower than the
traffic), texts are dropped and counted, never queued without bound. The shadow runs at a lower
CPU priority than the serving threads where the OS allows it (os.nice on Linux applies per thread).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

QUEUE_SIZE = 1024
MAX_BATCH = 8
SHADOW_NICENESS = 10


@dataclass
class ShadowStats:
    scored: int = 0
    dropped: int = 0  # queue full: the shadow fell behind
    failed: int = 0

    def to_json(self) -> dict:
        return {"scored": self.scored, "dropped": self.dropped, "failed": self.failed}


class ShadowRunner:
    def __init__(self, backend, store, queue_size: int = QUEUE_SIZE):
        self.backend = backend  # device.runtime backend of the shadow bundle
        self.store = store
        self.stats = ShadowStats()
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._pending = 0  # submitted, not yet scored
        self._idle = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="careeredge-shadow", daemon=True)
        self._thread.start()

    @property
    def model(self) -> dict:
        return {"name": self.backend.model_name, "version": self.backend.model_version}

    def submit(self, uuid: str, text: str) -> None:
        """Queue one served text for the shadow; never blocks. Its model input is made in the shadow's thread."""
        with self._idle:
            try:
                self._queue.put_nowait((uuid, text))
            except queue.Full:
                self.stats.dropped += 1
                return
            self._pending += 1

    def _run(self) -> None:
        try:
            os.nice(SHADOW_NICENESS)  # Linux: this thread only
        except OSError:
            pass
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            items = [first]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._score(items)

    def _score(self, items: list[tuple[str, str]]) -> None:
        try:
            predictions = self.backend.predict([text for _, text in items])
            for (uuid, _), prediction in zip(items, predictions):
                self.store.record_shadow(
                    uuid, self.backend.model_name, prediction.model_version, prediction.probabilities
                )
            self.stats.scored += len(items)
        except Exception as exc:  # a failing shadow must never affect serving
            self.stats.failed += len(items)
            log.error("shadow.failed", extra={"fields": {"error": str(exc), "rows": len(items)}})
        finally:
            with self._idle:
                self._pending -= len(items)
                self._idle.notify_all()

    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until every submitted text is scored (or failed). Returns whether that happened in time."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.backend.close()
