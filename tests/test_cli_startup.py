"""`dqnlab --help` and `dqnlab VERB --help` answer without loading torch, matplotlib or Gymnasium.

What is asserted is which modules load (Python's `-X importtime` lists every one), not how long they take:
the time is measured in benchmarks/bench_startup.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from dqnlab.cli import cli

HEAVY = ("torch", "matplotlib", "gymnasium", "dqnlab.api")


def importing(*args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    """Every module a fresh `python -X importtime ARGS` imported, and the finished process."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True)
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return names - {"package"}, done  # "package": the header line's last column


def loaded_modules(*args: str) -> tuple[set[str], str]:
    """As `importing`, for a process that must succeed: the modules and its stdout."""
    names, done = importing(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    return names, done.stdout


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY)))


def test_the_import_listing_sees_torch_when_it_loads():
    """The checks below can fail: the library's API and its report do load the heavy libraries."""
    modules, _ = loaded_modules("-c", "import dqnlab.api, dqnlab.analysis.report")
    assert {"torch", "matplotlib", "gymnasium", "dqnlab.api"} <= set(heavy(modules))


@pytest.mark.parametrize("verb", [None, *sorted(cli.commands)])
def test_help_loads_none_of_the_heavy_libraries(verb):
    args = ["-m", "dqnlab", *([verb] if verb else []), "--help"]
    modules, stdout = loaded_modules(*args)
    assert stdout.startswith(f"Usage: dqnlab {verb or ''}".rstrip()), stdout
    assert "dqnlab.cli" in modules
    assert heavy(modules) == []


@pytest.mark.parametrize("args, message", [
    (["train", "--preset", "nope"], "error: Invalid value for '--preset'"),  # click's
    (["train", "--set", "learner.lr=abc"], "error: learner.lr='abc' is not a TOML literal"),  # the configuration's
    (["config", "--set", "learner.nope=1"], "error: unknown key learner.nope"),
])  # fmt: skip
def test_a_mistake_in_the_settings_is_refused_before_the_heavy_libraries_load(args, message):
    names, done = importing("-m", "dqnlab", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "dqnlab.config" in names and heavy(names) == []


def test_every_verb_is_listed():
    assert set(cli.commands) == {"train", "play", "config", "presets", "compare", "report", "study", "probe", "handset"}
