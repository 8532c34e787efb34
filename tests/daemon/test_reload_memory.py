"""Reloading the model (an admin reload, an OTA swap) frees the old ONNX Runtime session, but glibc keeps
freed heap pages mapped: without handing them back, each reload of the shipped model left 3-5 MB of RSS
behind (10 reloads: +31 to +49 MB on a 2-core x86 box; the HTTP fuzz, whose authorised admin requests
reload the model, grew the daemon by 100+ MB)."""

from __future__ import annotations

import gc

import psutil

from device.daemon import Daemon
from tests.daemon.conftest import REPO_ROOT, make_config

SHIPPED_BUNDLE = REPO_ROOT / "device" / "embedded_bundle"
POSTING = "We need Python, SQL, Kubernetes, pandas and statistics for our data platform. " * 30
RELOADS = 10
MAX_GROWTH_MB = 25  # with the freed pages returned: +6 MB (without: +31 to +49 MB)


def test_reloading_the_model_does_not_keep_the_old_sessions_memory(tmp_path):
    daemon = Daemon(make_config(tmp_path, SHIPPED_BUNDLE), bundle_dir=SHIPPED_BUNDLE)
    process = psutil.Process()
    try:
        daemon.classify(POSTING, source="api")  # the first session at its working size
        gc.collect()
        before = process.memory_info().rss
        for _ in range(RELOADS):
            assert daemon.load_model(SHIPPED_BUNDLE)
            daemon.classify(POSTING, source="api")
        gc.collect()
        growth_mb = (process.memory_info().rss - before) / 1e6
    finally:
        daemon.close()
    assert growth_mb <= MAX_GROWTH_MB, f"{RELOADS} reloads grew RSS by {growth_mb:.1f} MB"
