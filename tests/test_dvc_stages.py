"""`dvc repro` reruns a stage when its code changes: every project module a stage's command imports
(transitively, lazy imports included) is covered by one of the stage's `deps`, and every dep exists.

Plumbing that cannot change what a stage computes (error types, atomic writes, where artifacts live,
reading params.yaml, which DVC tracks through `params:`) is left out on purpose: listing it would rerun
hours of training for a reworded error message.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from cloud.cli import COMMANDS
from tests.test_import_graph import ROOT, import_graph, imported_names, project_modules

PLUMBING = {"shared/errors.py", "shared/files.py", "shared/lazy_cli.py", "cloud/artifacts.py", "cloud/params.py"}
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_modules(cmd: str) -> set[str]:
    """Repository paths of the code a stage runs: `careeredge-cloud <step>` or `python scripts/X.py`, with
    every project module it imports, transitively."""
    graph, paths = import_graph(), project_modules()
    words = cmd.split()
    if words[0] == "careeredge-cloud":
        roots, own = {COMMANDS[words[1]].split(":")[0]}, set()
    else:
        script = ROOT / words[1]
        own = {words[1]}
        names = imported_names(ast.parse(script.read_text(encoding="utf-8")), "scripts", is_package=False)
        roots = {n for n in names if n in paths}
    seen, todo = set(roots), list(roots)
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return own | {str(paths[m].relative_to(ROOT)) for m in seen}


def dep_paths(stage: dict) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_the_code_it_runs(name):
    command = STAGES[name]["cmd"].split()
    assert command[0] == "careeredge-cloud" or (command[0] == "python" and command[1].startswith("scripts/")), (
        f"{name}: stages run `careeredge-cloud <step>` or `python scripts/<script>.py`"
    )
    deps = dep_paths(STAGES[name])
    missing = sorted(
        p
        for p in stage_modules(STAGES[name]["cmd"])
        if p not in PLUMBING and not p.endswith("__init__.py") and not covered(p, deps)
    )
    assert missing == [], f"{name}: add to deps in dvc.yaml: {missing}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_code_deps_exist(name):
    code = [d for d in dep_paths(STAGES[name]) if d.split("/")[0] in ("cloud", "device", "shared", "scripts")]
    assert [d for d in code if not (ROOT / d).exists()] == []


def test_the_closure_follows_lazy_imports():
    """train-a imports its trainer inside the command function; the closure must still reach it."""
    assert "cloud/training/finetune.py" in stage_modules("careeredge-cloud train-a --out x")
    assert Path(ROOT / "cloud/training/finetune.py").is_file()
