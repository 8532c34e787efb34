"""What the device installs is what it imports: `pip install '.[device]'` is enough to run every
device module, and none of them reaches for torch, transformers or the cloud package."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import packages_distributions

from tests.conftest import REPO_ROOT
from tests.edge.test_no_torch import BLOCKER

# Not on PyPI: Hailo's apt repository provides it on Raspberry Pi OS, and hailo_backend imports it
# only when that backend is chosen, with a clear message when it is missing.
INSTALLED_BY_APT = {"hailo_platform"}


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def declared_for_the_device() -> set[str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["device"]
    return {_normalise(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]) for requirement in requirements}


def third_party_imports(package: str) -> dict[str, set[str]]:
    """Top-level names imported anywhere in `package` (lazy imports too) that are not stdlib or ours."""
    found: dict[str, set[str]] = {}
    for path in (REPO_ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("__future__", "device", "shared", "cloud"):
                    found.setdefault(top, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def undeclared(imports: dict[str, set[str]], declared: set[str], distributions: dict[str, list[str]]) -> list[str]:
    missing = []
    for name, files in sorted(imports.items()):
        if name in INSTALLED_BY_APT:
            continue
        provided_by = {_normalise(d) for d in distributions.get(name, [name])}
        if not provided_by & declared:
            missing.append(f"{name} (imported by {', '.join(sorted(files))})")
    return missing


def test_every_package_the_device_imports_is_declared_in_its_extra():
    declared, distributions = declared_for_the_device(), packages_distributions()
    missing = [
        problem
        for package in ("device", "shared")  # the device installs and runs shared/ too
        for problem in undeclared(third_party_imports(package), declared, distributions)
    ]
    assert missing == [], "not declared in the device extra: " + "; ".join(missing)


def test_the_checker_sees_lazy_imports_and_maps_import_names_to_distributions():
    assert "onnxruntime" in third_party_imports("device"), "imported inside a function in onnx_backend.py"
    distributions = {"paho": ["paho-mqtt"], "yaml": ["PyYAML"], "torch": ["torch"]}
    imports = {"paho": {"a.py"}, "yaml": {"b.py"}, "torch": {"c.py"}, "hailo_platform": {"d.py"}}
    assert undeclared(imports, {"paho-mqtt"}, distributions) == ["torch (imported by c.py)", "yaml (imported by b.py)"]


def test_every_device_module_imports_with_torch_transformers_and_cloud_blocked():
    code = BLOCKER + textwrap.dedent("""
        import importlib, pkgutil, sys
        import device

        names = ["device"] + [m.name for m in pkgutil.walk_packages(device.__path__, "device.")]
        for name in names:
            importlib.import_module(name)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "cloud"))
        print(len(names), leaked)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    count, leaked = result.stdout.split(" ", 1)
    assert int(count) > 30 and leaked.strip() == "[]"
