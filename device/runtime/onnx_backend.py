"""Default backend: ONNX Runtime on the CPU (the Pi 5's four Cortex-A76 cores, or any x86 box).

Only onnxruntime + numpy + tokenizers: no torch, no transformers.
"""

from __future__ import annotations

import numpy as np

from device.runtime.base import EncodedBatch, InferenceBackend
from shared.bundle import MODEL_FILE, BundleError


class OnnxRuntimeBackend(InferenceBackend):
    type_key = "onnxruntime"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = create_session(str(self.bundle_dir / MODEL_FILE), self.threads)
        self.input_names = {i.name for i in self.session.get_inputs()}

    def logits(self, batch: EncodedBatch) -> np.ndarray:
        feed = {
            name: getattr(batch, name)
            for name in ("input_ids", "attention_mask", "token_type_ids")
            if name in self.input_names
        }
        return self.session.run(None, feed)[0]


def create_session(model_path: str, threads: int | None = None):
    """An ORT CPU session tuned for small-batch latency on a few cores.

    * intra-op threads = `threads` (None lets ORT use one per physical core); inter-op = 1 and
      sequential execution, because a BERT graph is a chain and a second pool only steals cores.
    * ORT_ENABLE_ALL graph optimisation at load time: it is hardware specific (e.g. NCHWc / MLAS
      layouts, MatMulInteger+Cast+Mul -> DynamicQuantizeMatMul), so it runs on the device rather
      than being baked into the bundle.
    * No spin-waiting: by default ORT's idle workers busy-spin after each run. On cores shared with
      the web server, TUI and sync agent (and on a shared build box) the spinning steals the CPU the
      next request needs, and it wastes power on an idle Pi.
    """
    import onnxruntime as ort  # lazy: keeps `careeredge --help` and bundle checks instant

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about unused initialisers are noise for users
    try:
        return ort.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph types; all mean "bad model file"
        raise BundleError(f"cannot load {model_path}: {str(exc).splitlines()[0][:200]}") from None
