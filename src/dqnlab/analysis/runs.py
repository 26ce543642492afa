"""Reading run directories into arrays: the only input analysis ever takes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dqnlab.analysis.clocks import Timing
from dqnlab.config import config_to_dict
from dqnlab.errors import DqnlabError
from dqnlab.experiments.spec import Experiment, timing_config
from dqnlab.rundir.disk import read_json_object
from dqnlab.rundir.layout import EPISODES, EXPERIMENT, clock_file_for, run_dir_for
from dqnlab.rundir.reading import FINISHED, RunFileError, check_run, read_episodes, read_evaluations, read_result

UNREADABLE = "unreadable"  # a run whose files do not read back (`Run.reason` says why)


@dataclass(frozen=True)
class Run:
    """One run directory's episodes (and evaluations) as arrays."""

    variant: str
    seed: int
    status: str  # complete | diverged | failed | missing | incomplete | unreadable
    result: dict[str, Any]  # result.json ({} when absent)
    episodes: dict[str, np.ndarray]  # column -> (E,) array
    evaluations: dict[str, np.ndarray]  # column -> (K,) array; empty without evaluations
    reason: str = ""  # why an unreadable run could not be read, e.g. "episodes.csv line 7: score is 'hello', not a number"

    @property
    def usable(self) -> bool:
        """Finished the whole budget: only these enter the statistics."""
        return self.status == "complete"


def load_run(path: Path, variant: str, seed: int) -> Run:
    """The run in `path`, read and checked as resuming checks it (`rundir.reading.check_run`); never raises for its files.

    A finished run whose files do not read back or do not agree is "unreadable", with the reason kept.
    A run that did not finish keeps its status; its episodes are read (and checked) for the plots.
    """
    if not path.is_dir():
        return Run(variant, seed, "missing", {}, {}, {})
    result = None
    try:
        result = read_result(path)
        status = "incomplete" if result is None else str(result.get("status") or "incomplete")
        if status in FINISHED:
            run = check_run(path)
            return Run(variant, seed, status, run.result, run.episodes, run.evaluations)
        episodes = read_episodes(path) if (path / EPISODES).is_file() else {}
        return Run(variant, seed, status, result or {}, episodes, read_evaluations(path))
    except RunFileError as error:
        return Run(variant, seed, UNREADABLE, result or {}, {}, {}, reason=error.reason)


def load_experiment(out: str | Path) -> tuple[Experiment, list[Run]]:
    """The experiment stored in a results directory and its runs, in variant x seed order."""
    out = Path(out)
    path = out / EXPERIMENT
    if not path.is_file():
        raise DqnlabError(f"{out} is not a dqnlab results directory: it has no {EXPERIMENT}")
    experiment = Experiment.from_dict(read_json_object(path), source=str(path))
    runs = [load_run(run_dir_for(out, v.name, seed), v.name, seed) for v, seed in experiment.runs()]
    return experiment, runs


def load_timings(out: str | Path, experiment: Experiment) -> dict[str, Timing]:
    """Each variant's timing run (experiments.clock), where one exists for the experiment's current settings."""
    timings = {}
    for variant in experiment.variants:
        timing = Timing.load(clock_file_for(Path(out), variant.name))
        if timing is not None and timing.config == config_to_dict(timing_config(experiment, variant.name)):
            timings[variant.name] = timing
    return timings
