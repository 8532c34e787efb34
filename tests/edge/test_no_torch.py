"""The device never needs torch, transformers or the cloud package.

A subprocess installs a meta-path finder that makes those imports fail, then imports every device
runtime module and runs a prediction, an explanation and the CLI on a tiny bundle.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys

    BLOCKED = ("torch", "transformers", "cloud")

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {name}: the device must not need it")
            return None

    sys.meta_path.insert(0, Blocker())
""")

DEVICE_RUN = BLOCKER + textwrap.dedent("""
    import json, runpy, sys
    import device.runtime, device.runtime.base, device.runtime.onnx_backend, device.runtime.hailo_backend
    import device.inputs, device.explain, device.predict_command, shared.bundle
    from device.runtime import load_backend
    from device.explain import driving_terms

    bundle = sys.argv[1]
    engine = load_backend(bundle, threads=1)
    prediction = engine.predict(["Data scientist: pandas, statistics, regression"])[0]
    terms = driving_terms(engine, "Data scientist: pandas, statistics, regression")
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "cloud"))
    print(json.dumps({"label": prediction.label, "terms": [t for t, _ in terms], "leaked": leaked}))
    sys.argv = ["careeredge", "predict", "--model", bundle, "--json", "Java backend microservices"]
    runpy.run_module("device.cli", run_name="__main__")
""")


def test_device_runs_with_torch_transformers_and_cloud_blocked(tiny_bundle):
    result = subprocess.run(
        [sys.executable, "-c", DEVICE_RUN, str(tiny_bundle)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    summary, cli_output = result.stdout.splitlines()
    import json

    summary = json.loads(summary)
    assert summary == {"label": 1, "terms": summary["terms"], "leaked": []}
    assert {"pandas", "Statistics"} & set(summary["terms"])
    assert json.loads(cli_output)["label"] == 0


def test_the_blocker_really_blocks():
    result = subprocess.run([sys.executable, "-c", BLOCKER + "import torch"], capture_output=True, text=True)
    assert result.returncode != 0 and "blocked import of torch" in result.stderr


def test_predict_command_import_is_light():
    """Cold start: importing the command must not pull numpy, tokenizers or onnxruntime yet."""
    code = (
        "import sys, device.cli, device.predict_command; "
        "print(sorted(m for m in ('numpy', 'onnxruntime', 'tokenizers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr
