"""Running an experiment into a results directory, resumably.

    RESULTS/
      experiment.json          the experiment (variants, seeds, preset, budget)
      runs/VARIANT/seed-007/   one ordinary run directory per (variant, seed)
      report.html, summary.md, summary.json, plots/   written by `analysis`

Re-running the same command on the same directory resumes: a run whose
result.json says complete or diverged, whose config.json equals the resolved
configuration and whose files pass `rundir.reading.check_run`, is kept; anything
else (missing, partial, failed, corrupt) is redone. A run that raises, or
whose worker dies, is marked failed and does not stop the others; a disk
that refuses a write stops the sweep (`raise_disk_error`). The directory is
held by `ownership.output_dir` (marker and lock) for the whole command.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dqnlab.config import Config, config_to_dict
from dqnlab.errors import DqnlabError
from dqnlab.experiments.spec import Experiment, experiment_json
from dqnlab.experiments.trainrun import train_into
from dqnlab.rundir.disk import DiskError, read_json_object, write_text
from dqnlab.rundir.layout import CONFIG, EPISODES, EXPERIMENT, RESULT, run_dir_for
from dqnlab.rundir.ownership import check_owned, claim, refuse_link, remove_owned
from dqnlab.rundir.reading import RunFileError, check_run, read_run_json

FAIL_VARIABLE = "DQNLAB_FAIL_RUN_AT"  # a variant name; each of its runs raises as it starts (fault injection)
KEPT_STATUSES = ("complete", "diverged")  # outcomes of the algorithm, not of the machine


@dataclass(frozen=True)
class RunTask:
    """One (variant, seed) run to execute, picklable for worker processes."""

    variant: str
    seed: int
    config: Config
    run_dir: Path
    clock: str = "own"  # "shared" when it will run beside more runs than there are cores (trainrun.summarize)
    root: Path | None = None  # the results directory the run lies in: nothing outside it is ever deleted

    @property
    def key(self) -> str:
        return f"{self.variant}/seed-{self.seed:03d}"


@dataclass
class Plan:
    tasks: list[RunTask]  # to run now
    kept: list[str]  # keys of finished runs reused as they are
    redone: dict[str, str] = field(default_factory=dict)  # key -> why an existing directory is redone


def clock() -> float:
    """The seconds a time limit counts (monotonic: a changed wall clock does not end a sweep); tests replace it."""
    return time.monotonic()


@dataclass
class TimeLimit:
    """When a sweep stops starting work, and what the work it did took.

    Backends ask `may_start()` before each unit (one run, or one population):
    once `seconds` have passed since `start()`, none starts, while units in
    flight finish, so every run directory is whole. They report each finished
    unit's seconds as they saw them (handed to a worker until it answered
    done; on Ray, submitted until returned), load and overhead included: that
    is what the units left will cost on this machine. `parallel`: how many
    units the backend runs side by side. Without `seconds`, everything starts.
    """

    seconds: float | None = None
    began: float = 0.0
    reached: bool = False  # a unit was refused: the sweep stopped before every run had started
    parallel: int = 1
    unit: str = "run"  # what one unit is: "run", or "population" (the backend says)
    units: list[tuple[str, int, float]] = field(default_factory=list)  # (variant, runs in the unit, seconds) per finished unit

    def start(self) -> None:
        self.began, self.reached, self.units = clock(), False, []

    def may_start(self) -> bool:
        """False once the limit has passed (and from then on): the caller starts nothing more."""
        if self.seconds is not None and clock() - self.began >= self.seconds:
            self.reached = True
        return not self.reached

    def now(self) -> float:
        return clock()

    def finished(self, tasks: list[RunTask], seconds: float) -> None:
        """A unit (one run, or one population: one variant's seeds) took `seconds`."""
        self.units.append((tasks[0].variant, len(tasks), seconds))


def check_experiment(out: Path, experiment: Experiment) -> None:
    """Refuse to resume into `out` when it holds a different experiment (seeds and variants may be added)."""
    stored_path = out / EXPERIMENT
    if not stored_path.is_file():
        return
    difference = _difference(_read_stored(stored_path), experiment)
    if difference:
        raise DqnlabError(f"{out} holds a different experiment ({difference}); pass --overwrite to replace it, or choose another --out")


def write_experiment(out: Path, experiment: Experiment) -> None:
    write_text(out / EXPERIMENT, experiment_json(experiment))


def _read_stored(path: Path) -> Experiment:
    try:
        return Experiment.from_dict(read_json_object(path), source=str(path))
    except DqnlabError as error:
        raise DqnlabError(f"{error}; pass --overwrite to replace the results directory") from None


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
    """Which runs to execute and which finished ones to keep.

    Refuses (before anything is deleted) a run directory that is, or lies
    under, a symbolic link, that holds one, or that must be redone but holds
    files dqnlab did not write.
    """
    result = Plan(tasks=[], kept=[])
    for variant, seed in experiment.runs():
        task = RunTask(variant.name, seed, experiment.config(variant, seed), run_dir_for(out, variant.name, seed), root=out)
        refuse_link(task.run_dir, below=out)
        if task.run_dir.is_dir() and any(task.run_dir.iterdir()):
            check_owned(task.run_dir, "run")
        state = run_state(task.run_dir, task.config)
        if state in KEPT_STATUSES:
            result.kept.append(task.key)
            continue
        if state != "missing":
            result.redone[task.key] = state
        result.tasks.append(task)
    return result


def paired_first(tasks: list[RunTask]) -> list[RunTask]:
    """The tasks seed-major: seed s of every variant before the next seed, so a sweep stopped part way leaves
    whole pairs. Seeds come in the order they first appear (the plan's, variant by variant); variants keep
    their order within a seed."""
    rank: dict[int, int] = {}
    for task in tasks:
        rank.setdefault(task.seed, len(rank))
    return sorted(tasks, key=lambda task: rank[task.seed])  # stable


def run_state(run_dir: Path, expected: Config) -> str:
    """"complete", "diverged", "missing", or why the directory cannot be kept.

    A kept run passes `rundir.reading.check_run`, the test analysis applies too: every value of its files
    read back and its files agree, so every later report can use it.
    """
    if not run_dir.exists():
        return "missing"
    for name in (RESULT, CONFIG, EPISODES):
        if not (run_dir / name).exists():
            return f"partial (no {name})"
    try:
        status = read_run_json(run_dir, RESULT).get("status")
        if status not in KEPT_STATUSES:
            return f"{status or 'unknown status'} before"
        stored, wanted = read_run_json(run_dir, CONFIG), config_to_dict(expected)
        if stored != wanted:
            missing = _missing_keys(stored, wanted)
            if missing:  # keys a later dqnlab added: the run was made by code without them
                return f"written by an older dqnlab (config.json has no {missing[0]}{' and more' if len(missing) > 1 else ''})"
            return "configuration changed"
        finished = check_run(run_dir)
    except RunFileError as error:
        return f"corrupt ({error.reason})"
    if "terminated" not in finished.episodes:
        return "written by an older dqnlab (episodes.csv has no terminated column)"
    return status


def _missing_keys(stored: dict, wanted: dict) -> list[str]:
    """The "section.key" names of `wanted` that `stored` lacks, in order."""
    return [f"{section}.{key}" for section, values in wanted.items() if isinstance(values, dict)
            for key in values if not isinstance(stored.get(section), dict) or key not in stored[section]]  # fmt: skip


def fresh_run_dir(task: RunTask) -> None:
    """An empty, marked directory for the task's run; a partial or failed attempt there (dqnlab's) is removed."""
    remove_owned(task.run_dir, "run", root=task.root or task.run_dir.parent)
    claim(task.run_dir, "run")


def run_task(task: RunTask, on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Execute one run into its directory; never raises for the run's own failures (it returns them as an outcome)."""
    try:
        fresh_run_dir(task)
        if os.environ.get(FAIL_VARIABLE) == task.key.split("/")[0]:  # tests make a run fail for its own reasons this way
            raise RuntimeError("a run made to fail (fault injection)")
        _, summary = train_into(task.run_dir, task.config, on_progress=on_progress, clock=task.clock)
    except DiskError as error:  # the disk, not the run, failed: the sweep stops (see `raise_disk_error`)
        return {"status": "failed", "error": str(error), "disk": True}
    except Exception as error:  # a crash in one run must not stop the sweep; the sweep marks it failed
        return {"status": "failed", "error": f"{type(error).__name__}: {error}"}
    return summary


def raise_disk_error(outcome: dict[str, Any]) -> None:
    """Re-raise, in the process that runs the sweep, a disk error that ended one run."""
    if outcome.get("disk"):
        raise DiskError(outcome["error"])
