"""`dvc repro` reruns a stage when its code changes: every project module a stage's command imports
(transitively, lazy imports included) is covered by one of the stage's `deps`, and every dep exists.

Plumbing that cannot change what a stage computes (error types, atomic writes, where artifacts live,
reading params.yaml, which DVC tracks through `params:`) is left out on purpose: listing it would rerun
hours of training for a reworded error message.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cloud.cli import COMMANDS
from tests.test_import_graph import ROOT, import_graph, project_modules

PLUMBING = {"shared/errors.py", "shared/files.py", "shared/lazy_cli.py", "cloud/artifacts.py", "cloud/params.py"}
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_modules(command: str) -> set[str]:
    """Repository paths of the modules `careeredge-cloud <step>` imports, transitively."""
    graph, paths = import_graph(), project_modules()
    root = COMMANDS[command].split(":")[0]
    seen, todo = {root}, [root]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return {str(paths[m].relative_to(ROOT)) for m in seen}


def dep_paths(stage: dict) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_the_code_it_runs(name):
    command = STAGES[name]["cmd"].split()
    assert command[0] == "careeredge-cloud", f"{name}: stages run `careeredge-cloud <step>`"
    deps = dep_paths(STAGES[name])
    missing = sorted(
        p
        for p in stage_modules(command[1])
        if p not in PLUMBING and not p.endswith("__init__.py") and not covered(p, deps)
    )
    assert missing == [], f"{name}: add to deps in dvc.yaml: {missing}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_code_deps_exist(name):
    code = [d for d in dep_paths(STAGES[name]) if d.split("/")[0] in ("cloud", "device", "shared", "scripts")]
    assert [d for d in code if not (ROOT / d).exists()] == []


def test_the_closure_follows_lazy_imports():
    """train-a imports its trainer inside the command function; the closure must still reach it."""
    assert "cloud/training/finetune.py" in stage_modules("train-a")
    assert Path(ROOT / "cloud/training/finetune.py").is_file()
