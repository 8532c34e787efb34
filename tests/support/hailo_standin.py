"""A stand-in for `hailo_platform` with HailoRT's InferModel call signatures, for machines without a
Hailo device (this one, CI).

    VDevice() -> create_infer_model(hef) -> input(name).shape / set_format_type, configure()
      -> create_bindings() -> bindings.input(name).set_buffer(array) / output(name).set_buffer(array)
      -> run([bindings], timeout_ms) -> the output buffer holds the result

The "HEF" it loads is the encoder cut as ONNX (`careeredge-cloud export --target hailo` writes it as
encoder_cut.onnx), run by onnxruntime, so the backend's whole control flow and data layout are exercised
on real numbers. Input shapes mimic the zoo's all_minilm_l6_v2.hef: 128 tokens laid out 16 x 8.
`VDevice.busy = True` makes the device refuse, as HailoRT does when another process holds it.
"""

from __future__ import annotations

import types

import numpy as np


class HailoRTException(Exception):
    pass


class FormatType:
    FLOAT32 = "float32"
    UINT8 = "uint8"


class _Stream:
    def __init__(self, name: str, shape: tuple[int, ...]):
        self.name, self.shape, self.format_type = name, shape, None

    def set_format_type(self, format_type: str) -> None:
        self.format_type = format_type


class _Buffer:
    def __init__(self):
        self.array = None

    def set_buffer(self, array: np.ndarray) -> None:
        self.array = array

    def get_buffer(self) -> np.ndarray:
        return self.array


class _Bindings:
    def __init__(self, names: list[str]):
        self.buffers = {name: _Buffer() for name in names}

    def input(self, name: str) -> _Buffer:
        return self.buffers[name]

    def output(self, name: str) -> _Buffer:
        return self.buffers[name]


def _hef_layout(length: int, width: int) -> tuple[int, ...]:
    """The zoo's HEF lays 128 tokens out as a 16 x 8 image (input_shape 16x8x384, 16x8x1536)."""
    return (16, 8, width) if length == 128 else (length, width)


class InferModel:
    def __init__(self, hef_path: str):
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(hef_path, providers=["CPUExecutionProvider"])
        except Exception as exc:  # what HailoRT says about a file that is not a HEF
            raise HailoRTException(f"HAILO_INVALID_HEF(26): failed to parse {hef_path}") from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._streams = {}
        for info in [*self.session.get_inputs(), *self.session.get_outputs()]:
            _, length, width = info.shape
            shape = (1, length, width) if info in self.session.get_outputs() else _hef_layout(length, width)
            self._streams[info.name] = _Stream(info.name, shape)

    def input(self, name: str | None = None) -> _Stream:
        return self._streams[name or self.input_names[0]]

    def output(self, name: str | None = None) -> _Stream:
        return self._streams[name or self.output_names[0]]

    def configure(self) -> ConfiguredInferModel:
        return ConfiguredInferModel(self)


class ConfiguredInferModel:
    runs = 0

    def __init__(self, model: InferModel):
        self.model = model

    def create_bindings(self) -> _Bindings:
        return _Bindings(self.model.input_names + self.model.output_names)

    def run(self, bindings: list[_Bindings], timeout_ms: int) -> None:
        for binding in bindings:
            feed = {}
            for info in self.model.session.get_inputs():
                array = binding.input(info.name).get_buffer()
                assert array.dtype == np.float32, "the backend set FLOAT32 on every input"
                feed[info.name] = array.reshape(1, info.shape[1], info.shape[2])
            result = self.model.session.run(None, feed)[0]
            out = binding.output(self.model.output_names[0]).get_buffer()
            out[...] = result.reshape(out.shape)
            ConfiguredInferModel.runs += 1

    def shutdown(self) -> None:
        pass


class VDevice:
    busy = False
    released = 0

    def __init__(self, params=None):
        if VDevice.busy:
            raise HailoRTException("HAILO_OUT_OF_PHYSICAL_DEVICES(74): no free physical device")

    def create_infer_model(self, hef_path: str) -> InferModel:
        return InferModel(hef_path)

    def release(self) -> None:
        VDevice.released += 1


def module() -> types.ModuleType:
    """A fresh `hailo_platform` module object to put in sys.modules."""
    stand_in = types.ModuleType("hailo_platform")
    for name in ("VDevice", "FormatType", "HailoRTException", "InferModel", "ConfiguredInferModel"):
        setattr(stand_in, name, globals()[name])
    VDevice.busy = False
    return stand_in
