"""Hailo-8 / 8L (Raspberry Pi AI HAT+) backend: the HEF runs the encoder, the CPU does the rest.

A HEF compiled from a BERT-family encoder takes the word-embedding rows and an expanded attention mask
at a fixed sequence length, not token ids (`device/runtime/hailo_host.py` says why and computes them).
It is driven through HailoRT's InferModel API, the one Frigate's `hailo8l` detector uses:
`VDevice()` -> `create_infer_model(hef)` -> `configure()` -> `create_bindings()` -> `run()`.

`hailo_platform` is not on PyPI (Hailo's apt repository ships it on Raspberry Pi OS), so it is imported
only here, when a Hailo bundle is loaded. Every way this can fail on a given Pi (no package, no device,
the device busy with another process, a missing or corrupt HEF, a HEF compiled for another cut) raises
`HailoUnavailable`, and `device.runtime.load_backend` serves the same bundle on the CPU instead.

Where the HEF comes from: the bundle's own `model.hef` (listed in its manifest, so its sha256 is
checked: path (b), a fine-tuned encoder compiled by `careeredge-cloud export --target hailo` + the
Dataflow Compiler), or `[model] hef` in the config (path (a): the model zoo's precompiled
all_minilm_l6_v2.hef under a bundle whose head was trained on the frozen encoder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device.runtime.base import EncodedBatch, InferenceBackend
from device.runtime.hailo_host import EncoderCut, HostSide
from shared.bundle import HAILO_FILE, BundleError
from shared.errors import UserError
from shared.files import sha256_file

RUN_TIMEOUT_MS = 10_000


class HailoUnavailable(UserError):
    """This bundle cannot run on a Hailo device here; the message says why (the CPU takes over)."""


class HailoBackend(InferenceBackend):
    type_key = "hailo"

    def __init__(self, *args, hef: Path | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            self.cut = EncoderCut.from_manifest(self.manifest)
            self.host = HostSide.load(self.bundle_dir, self.manifest)
        except BundleError as exc:
            raise HailoUnavailable(str(exc.message)) from None
        self.hef_path = self._checked_hef(hef)
        hailo = import_hailo()
        self._device = self._infer_model = self._configured = None
        try:
            self._device = hailo.VDevice()
            self._infer_model = self._device.create_infer_model(str(self.hef_path))
            self._check_interface()
            for name in (self.cut.embedding_input, self.cut.mask_input):
                self._infer_model.input(name).set_format_type(hailo.FormatType.FLOAT32)
            self._infer_model.output(self.cut.output).set_format_type(hailo.FormatType.FLOAT32)
            self._configured = self._infer_model.configure()
        except HailoUnavailable:
            self.close()
            raise
        except Exception as exc:  # HailoRTException and friends: busy device, bad HEF, driver missing
            self.close()
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise HailoUnavailable(
                f"the Hailo device cannot run {self.hef_path.name} ({type(exc).__name__}: {first_line}); "
                "is another process using it? (hailortcli scan; sudo lsof /dev/hailo0)"
            ) from None

    def _checked_hef(self, hef: Path | None) -> Path:
        if hef is not None:
            if not Path(hef).is_file():
                raise HailoUnavailable(f"[model] hef {hef} does not exist")
            return Path(hef)
        path = self.bundle_dir / HAILO_FILE
        if HAILO_FILE not in self.manifest["files"] or not path.is_file():
            raise HailoUnavailable(f"bundle {self.bundle_dir} has no {HAILO_FILE} and [model] hef is not set")
        if sha256_file(path) != self.manifest["files"][HAILO_FILE]:
            raise HailoUnavailable(f"{path} does not match its sha256 in the manifest (corrupt or replaced HEF)")
        return path

    def _check_interface(self) -> None:
        """The HEF must be the cut this bundle's host side was written for: same inputs, same sizes."""
        length, hidden, heads = self.cut.sequence_length, self.cut.hidden_size, self.cut.num_heads
        expected = {
            self.cut.embedding_input: length * hidden,
            self.cut.mask_input: length * heads * length,
        }
        names = set(self._infer_model.input_names)
        if names != set(expected):
            raise HailoUnavailable(
                f"{self.hef_path.name} takes inputs {sorted(names)}, the bundle expects {sorted(expected)}"
            )
        for name, size in expected.items():
            shape = tuple(self._infer_model.input(name).shape)
            if int(np.prod(shape)) != size:
                raise HailoUnavailable(f"{self.hef_path.name} input {name} has shape {shape}, expected {size} values")
        out_shape = tuple(self._infer_model.output(self.cut.output).shape)
        if int(np.prod(out_shape)) != length * hidden:
            raise HailoUnavailable(f"{self.hef_path.name} output has shape {out_shape}, expected {length}x{hidden}")

    def logits(self, batch: EncodedBatch) -> np.ndarray:
        ids, mask = self.host.fixed_length(batch.input_ids, batch.attention_mask)
        embeddings, masks = self.host.embeddings(ids), self.host.mask(mask)
        hidden = np.empty((len(ids), self.cut.sequence_length, self.cut.hidden_size), dtype=np.float32)
        for row in range(len(ids)):  # the HEF is compiled for batch 1
            hidden[row] = self._encode(embeddings[row], masks[row])
        return self.host.logits(hidden, mask)

    def _encode(self, embedding: np.ndarray, mask: np.ndarray) -> np.ndarray:
        model = self._infer_model
        bindings = self._configured.create_bindings()
        for name, array in ((self.cut.embedding_input, embedding), (self.cut.mask_input, mask)):
            bindings.input(name).set_buffer(np.ascontiguousarray(array.reshape(model.input(name).shape)))
        out = np.empty(model.output(self.cut.output).shape, dtype=np.float32)
        bindings.output(self.cut.output).set_buffer(out)
        self._configured.run([bindings], RUN_TIMEOUT_MS)
        return out.reshape(self.cut.sequence_length, self.cut.hidden_size)

    def close(self) -> None:
        configured, device = self._configured, self._device
        self._configured = self._device = None
        if configured is not None and hasattr(configured, "shutdown"):
            configured.shutdown()
        if device is not None:
            device.release()


def import_hailo():
    try:
        import hailo_platform
    except ImportError:
        raise HailoUnavailable(
            "backend 'hailo' needs the hailo_platform package, which is not installed. On Raspberry Pi "
            "OS install it from Hailo's apt repository (sudo apt install hailo-all), or use --backend onnxruntime."
        ) from None
    return hailo_platform
