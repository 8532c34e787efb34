"""Model A/B -> device bundle: ONNX export, transformer fusion, dynamic INT8, parity gate, manifest."""
