"""Default backend: ONNX Runtime on the CPU (the Pi 5's four Cortex-A76 cores, or any x86 box).

Only onnxruntime + numpy + tokenizers: no torch, no transformers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from device.runtime.base import EncodedBatch, InferenceBackend
from shared.bundle import MODEL_FILE, BundleError

# The manifest's "session" section (written by the export from params.yaml `export.session`): how ONNX
# Runtime should run this graph. A bundle without it runs with every setting off.
SESSION_SETTINGS = {
    # Intra-op workers spin-wait between the parallel sections of one run instead of sleeping, and stop
    # spinning when the run returns ("session.force_spinning_stop"): no wake-up latency inside a run, no
    # CPU burnt between requests.
    "spin_within_run": bool,
}


class OnnxRuntimeBackend(InferenceBackend):
    type_key = "onnxruntime"
    concurrent_calls = True  # InferenceSession.run is thread-safe; overlapping calls share its intra-op pool

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = session_settings(self.manifest.get("session", {}), f"{self.bundle_dir}/manifest.json")
        self.session = create_session(str(self.bundle_dir / MODEL_FILE), self.threads, **settings)
        self.input_names = {i.name for i in self.session.get_inputs()}

    def logits(self, batch: EncodedBatch) -> np.ndarray:
        feed = {
            name: getattr(batch, name)
            for name in ("input_ids", "attention_mask", "token_type_ids")
            if name in self.input_names
        }
        return self.session.run(None, feed)[0]


def session_settings(section: Any, where: str) -> dict[str, Any]:
    """The manifest's "session" section, checked: BundleError (one line) for an unknown key or a bad value."""
    if not isinstance(section, dict):
        raise BundleError(f"{where}: 'session' must be a mapping of settings")
    for key, value in section.items():
        if key not in SESSION_SETTINGS:
            raise BundleError(f"{where}: unknown session setting {key!r} (known: {', '.join(SESSION_SETTINGS)})")
        if not isinstance(value, SESSION_SETTINGS[key]):
            raise BundleError(f"{where}: session setting {key!r} must be {SESSION_SETTINGS[key].__name__}")
    return dict(section)


def create_session(model_path: str, threads: int | None = None, spin_within_run: bool = False):
    """An ORT CPU session tuned for small-batch latency on a few cores.

    * intra-op threads = `threads` (None lets ORT use one per physical core); inter-op = 1 and
      sequential execution, because a BERT graph is a chain and a second pool only steals cores.
    * ORT_ENABLE_ALL graph optimisation at load time: it is hardware specific (e.g. NCHWc / MLAS
      layouts), so it runs on the device rather than being baked into the bundle.
    * Spin-waiting only within a run, when the bundle asks for it (`SESSION_SETTINGS`). ORT's default
      keeps idle workers busy-spinning after each run; on cores shared with the web server, TUI and
      sync agent that steals the CPU the next request needs, and it wastes power on an idle Pi.
    """
    import onnxruntime as ort  # lazy: keeps `careeredge --help` and bundle checks instant

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_within_run else "0")
    if spin_within_run:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    options.log_severity_level = 3  # warnings about unused initialisers are noise for users
    try:
        return ort.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types; all mean "bad model file"
        raise BundleError(f"cannot load {model_path}: {str(exc).splitlines()[0][:200]}") from None
