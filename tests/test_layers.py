"""The package's layers import downward only (see docs/layout.md), and reading results never loads training."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from dqnlab.engine.records import EpisodeRecord, EvaluationRecord
from dqnlab.engine.replay import FIELDS
from dqnlab.rundir.layout import EPISODE_COLUMNS, EVALUATION_COLUMNS, REPLAY_FIELDS

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dqnlab"

# Each layer, by module name prefix (the longest prefix decides), and the layers it may import from.
LAYERS = {
    "base": ["dqnlab", "dqnlab.errors", "dqnlab.config", "dqnlab.seeding", "dqnlab.runtime", "dqnlab.experiments.spec"],
    "engine": ["dqnlab.engine", "dqnlab.handset"],  # the hand-set network: a behaviour the engine can play
    "rundir": ["dqnlab.rundir"],
    "runner": ["dqnlab.experiments"],
    "analysis": ["dqnlab.reporting", "dqnlab.analysis", "dqnlab.probe", "dqnlab.networks", "dqnlab.play", "dqnlab.deploy"],
    "api": ["dqnlab.api"],
    "cli": ["dqnlab.cli", "dqnlab.__main__"],
}
MAY_IMPORT = {
    "base": {"base"},
    "engine": {"base", "engine"},
    "rundir": {"base", "rundir"},  # never the engine: run directories are files, read without torch's training code
    "runner": {"base", "engine", "rundir", "runner"},
    "analysis": {"base", "engine", "rundir", "analysis"},  # the engine's networks and environments, never its loop (below)
    "api": {"base", "engine", "rundir", "runner", "analysis", "api"},
    "cli": {"base", "engine", "rundir", "runner", "analysis", "api", "cli"},
}
# The modules that train: the learn step's kernel, the replay memory and its samplers, the target network,
# the loop, the behaviour streams, and the experiments' runner and backends. Acting with one network
# (engine.network.greedy_action), the environments and the records are not among them.
TRAINING_PATH = tuple(f"dqnlab.engine.{name}" for name in (
    "kernel", "learner", "replay", "sampling", "priority", "nstep", "target", "training", "stream", "behaviour"
)) + ("dqnlab.experiments.runner", "dqnlab.experiments.backends", "dqnlab.experiments.trainrun", "dqnlab.experiments.sweep")  # fmt: skip
NEVER = {"analysis": TRAINING_PATH}  # a report reads run directories and plays networks; it does not train


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    matches = [(len(prefix), layer) for layer, prefixes in LAYERS.items() for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".") and prefix != "dqnlab"]  # fmt: skip
    return max(matches)[1]


def imports(path: Path) -> set[str]:
    """Every dqnlab module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dqnlab"):
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names if (PACKAGE.parent / f"{node.module}.{a.name}".replace(".", "/")).exists()
                                        or (PACKAGE.parent / (f"{node.module}.{a.name}".replace(".", "/") + ".py")).exists()}  # fmt: skip
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dqnlab")}
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_upward(path):
    module = module_name(path)
    layer = layer_of(module)
    for target in imports(path):
        assert layer_of(target) in MAY_IMPORT[layer], f"{module} ({layer}) imports {target} ({layer_of(target)})"
        assert not target.startswith(NEVER.get(layer, ("-",))), f"{module} ({layer}) imports {target}"


def test_every_module_has_a_layer():
    assert all(layer_of(module_name(path)) for path in MODULES)


READING = sorted(module_name(path) for path in MODULES if module_name(path).startswith(("dqnlab.analysis", "dqnlab.probe", "dqnlab.reporting")))


def test_the_training_path_names_modules_that_exist():
    assert set(TRAINING_PATH) <= {module_name(path) for path in MODULES}


def test_reading_results_and_reporting_load_no_module_of_the_training_path():
    """Every analysis, probe and reporting module imported in one fresh interpreter: none of them loads training code."""
    code = (f"import importlib, sys; [importlib.import_module(m) for m in {READING!r}]; "
            f"print(sorted(m for m in sys.modules if m.startswith({TRAINING_PATH!r})))")  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert len(READING) > 20 and "dqnlab.analysis.report" in READING and "dqnlab.probe.probeset" in READING
    assert loaded == "[]", loaded


def test_reading_a_run_directory_loads_neither_torch_nor_gymnasium():
    code = "import sys, dqnlab.rundir.reading, dqnlab.analysis.runs; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'gymnasium'}))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_the_run_directory_layout_names_the_engines_records():
    assert EPISODE_COLUMNS == [f.name for f in fields(EpisodeRecord)]
    assert EVALUATION_COLUMNS == [f.name for f in fields(EvaluationRecord)]
    assert REPLAY_FIELDS == list(FIELDS)
