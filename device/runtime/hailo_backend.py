"""Hailo-8L (Raspberry Pi AI Kit) backend, for bundles that ship a compiled `model.hef`.

`hailo_platform` is not on PyPI: it comes from Hailo's apt repository on Raspberry Pi OS, so it is
imported only when this backend is chosen, and its absence is a clear error, never an import crash.
The Hailo model zoo compiles this encoder family (all_minilm_l6_v2); the HEF takes the same
token ids as the ONNX model, so tokenisation, cleaning and softmax stay in the shared base class.
"""

from __future__ import annotations

import numpy as np

from device.runtime.base import EncodedBatch, InferenceBackend
from shared.bundle import HAILO_FILE, BundleError
from shared.errors import UserError


class HailoBackend(InferenceBackend):
    type_key = "hailo"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hef_path = self.bundle_dir / HAILO_FILE
        if HAILO_FILE not in self.manifest["files"] or not hef_path.is_file():
            raise BundleError(f"bundle {self.bundle_dir} has no {HAILO_FILE}: use backend 'onnxruntime'")
        hailo = import_hailo()
        self._device = hailo.VDevice()
        self._hef = hailo.HEF(str(hef_path))
        self._network_group = self._device.configure(
            hailo.ConfigureParams.create_from_hef(self._hef, interface=hailo.HailoStreamInterface.PCIe)
        )[0]
        self._input_params = hailo.InputVStreamParams.make(self._network_group)
        self._output_params = hailo.OutputVStreamParams.make(self._network_group)
        self._hailo = hailo

    def logits(self, batch: EncodedBatch) -> np.ndarray:
        # A HEF has static shapes: pad to the compiled sequence length.
        names = [info.name for info in self._hef.get_input_vstream_infos()]
        length = self._hef.get_input_vstream_infos()[0].shape[-1]
        arrays = [batch.input_ids, batch.attention_mask, batch.token_type_ids][: len(names)]
        feed = {name: _pad(array, length) for name, array in zip(names, arrays)}
        with self._hailo.InferVStreams(self._network_group, self._input_params, self._output_params) as pipe:
            with self._network_group.activate(self._network_group.create_params()):
                outputs = pipe.infer(feed)
        return np.asarray(next(iter(outputs.values()))).reshape(len(batch.input_ids), -1)

    def close(self) -> None:
        self._device.release()


def import_hailo():
    try:
        import hailo_platform
    except ImportError:
        raise UserError(
            "backend 'hailo' needs the hailo_platform package, which is not installed. On Raspberry Pi "
            "OS install it from Hailo's apt repository (sudo apt install hailo-all), or use --backend onnxruntime."
        ) from None
    return hailo_platform


def _pad(array: np.ndarray, length: int) -> np.ndarray:
    array = array[:, :length]
    return np.pad(array, ((0, 0), (0, length - array.shape[1])))
