"""Running an experiment into a results directory, resumably.

    RESULTS/
      experiment.json          the experiment (variants, seeds, preset, budget)
      runs/VARIANT/seed-007/   one ordinary run directory per (variant, seed)
      report.html, summary.md, summary.json, plots/   written by `analysis`

Re-running the same command on the same directory resumes: a run whose
result.json says complete or diverged, whose config.json equals the resolved
configuration and whose episodes.csv reads back, is kept; anything else
(missing, partial, failed, corrupt) is redone. A run that raises, or whose
worker dies, is marked failed and does not stop the others.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dqnlab.config import Config, config_to_dict
from dqnlab.errors import DqnlabError
from dqnlab.experiments.spec import Experiment, experiment_json
from dqnlab.rundir import CONFIG, EPISODE_COLUMNS, EPISODES, RESULT, prepare_run_dir, train_into, write_failure

EXPERIMENT = "experiment.json"
RUNS = "runs"
CLOCKS = "clock"  # OUT/clock/VARIANT.json: one agent's samples -> seconds (experiments/clock.py)
KEPT_STATUSES = ("complete", "diverged")  # outcomes of the algorithm, not of the machine


@dataclass(frozen=True)
class RunTask:
    """One (variant, seed) run to execute, picklable for worker processes."""

    variant: str
    seed: int
    config: Config
    run_dir: Path
    clock: str = "own"  # "shared" when it will run beside more runs than there are cores (rundir.summarize)

    @property
    def key(self) -> str:
        return f"{self.variant}/seed-{self.seed:03d}"


@dataclass
class Plan:
    tasks: list[RunTask]  # to run now
    kept: list[str]  # keys of finished runs reused as they are
    redone: dict[str, str] = field(default_factory=dict)  # key -> why an existing directory is redone


def run_dir_for(out: Path, variant: str, seed: int) -> Path:
    return out / RUNS / variant / f"seed-{seed:03d}"


def clock_file_for(out: Path, variant: str) -> Path:
    return out / CLOCKS / f"{variant}.json"


def prepare_results_dir(out: Path, experiment: Experiment, overwrite: bool = False) -> None:
    """Create or reopen a results directory; refuse one that holds something else."""
    if out.exists() and not out.is_dir():
        raise DqnlabError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        stored_path = out / EXPERIMENT
        if not stored_path.is_file():
            raise DqnlabError(f"{out} is not empty and is not a dqnlab results directory (no {EXPERIMENT}); choose another --out")
        if overwrite:
            shutil.rmtree(out)
        else:
            difference = _difference(_read_stored(stored_path), experiment)
            if difference:
                raise DqnlabError(
                    f"{out} holds a different experiment ({difference}); pass --overwrite to replace it, or choose another --out"
                )
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (EXPERIMENT + ".tmp")
    tmp.write_text(experiment_json(experiment))
    tmp.replace(out / EXPERIMENT)


def _read_stored(path: Path) -> Experiment:
    try:
        return Experiment.from_dict(json.loads(path.read_text()), source=str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DqnlabError(f"{path} is not valid JSON ({error}); pass --overwrite to replace the results directory") from None


def _difference(stored: Experiment, new: Experiment) -> str | None:
    """Why `new` cannot share a directory with `stored`; None if it can (seeds and variants may be added)."""
    for name in ("preset", "samples", "common"):
        if getattr(stored, name) != getattr(new, name):
            return f"{name} {getattr(stored, name)!r} there, {getattr(new, name)!r} here"
    old = {v.name: v for v in stored.variants}
    for variant in new.variants:
        if variant.name in old and old[variant.name] != variant:
            return f"variant {variant.name!r} has other settings there"
    return None


def plan(experiment: Experiment, out: Path) -> Plan:
    """Which runs to execute and which finished ones to keep."""
    result = Plan(tasks=[], kept=[])
    for variant, seed in experiment.runs():
        task = RunTask(variant.name, seed, experiment.config(variant, seed), run_dir_for(out, variant.name, seed))
        state = run_state(task.run_dir, task.config)
        if state in KEPT_STATUSES:
            result.kept.append(task.key)
            continue
        if state != "missing":
            result.redone[task.key] = state
        result.tasks.append(task)
    return result


def run_state(run_dir: Path, expected: Config) -> str:
    """"complete", "diverged", "missing", or why the directory cannot be kept."""
    if not run_dir.exists():
        return "missing"
    try:
        outcome = json.loads((run_dir / RESULT).read_text())
        stored = json.loads((run_dir / CONFIG).read_text())
        with (run_dir / EPISODES).open(newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError as error:
        return f"partial (no {Path(error.filename).name})"
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as error:
        return f"corrupt ({type(error).__name__})"
    status = outcome.get("status") if isinstance(outcome, dict) else None
    if status not in KEPT_STATUSES:
        return f"{status or 'unknown status'} before"
    if stored != config_to_dict(expected):
        return "configuration changed"
    if rows and "terminated" not in rows[0] and "score" in rows[0]:
        return "written by an older dqnlab (episodes.csv has no terminated column)"
    if not rows or rows[0] != EPISODE_COLUMNS or any(len(row) != len(EPISODE_COLUMNS) for row in rows[1:]):
        return "corrupt (episodes.csv)"
    if outcome.get("episodes") != len(rows) - 1:
        return "corrupt (episode count)"
    return status


def fresh_run_dir(task: RunTask) -> None:
    """An empty directory for the task's run; a partial or failed attempt there is ours to replace."""
    if task.run_dir.exists():
        shutil.rmtree(task.run_dir)
    prepare_run_dir(task.run_dir)


def run_task(task: RunTask, on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Execute one run into its directory; never raises for the run's own failures."""
    fresh_run_dir(task)
    try:
        _, summary = train_into(task.run_dir, task.config, on_progress=on_progress, clock=task.clock)
    except Exception as error:  # a crash in one run must not stop the sweep
        write_failure(task.run_dir, error)
        return {"status": "failed", "error": f"{type(error).__name__}: {error}"}
    return summary
