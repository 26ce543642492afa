"""Reading run directories into arrays: the only input analysis ever takes."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dqnlab.analysis.clocks import Timing
from dqnlab.config import config_to_dict
from dqnlab.errors import DqnlabError
from dqnlab.experiments.clock import timing_config
from dqnlab.experiments.runner import EXPERIMENT, clock_file_for, run_dir_for
from dqnlab.experiments.spec import Experiment
from dqnlab.rundir import EPISODES, EVALUATIONS, RESULT


@dataclass(frozen=True)
class Run:
    """One run directory's episodes (and evaluations) as arrays."""

    variant: str
    seed: int
    status: str  # complete | diverged | failed | missing | incomplete
    result: dict[str, Any]  # result.json ({} when absent)
    episodes: dict[str, np.ndarray]  # column -> (E,) array
    evaluations: dict[str, np.ndarray]  # column -> (K,) array; empty without evaluations

    @property
    def usable(self) -> bool:
        """Finished the whole budget: only these enter the statistics."""
        return self.status == "complete"


def read_csv_columns(path: Path) -> dict[str, np.ndarray]:
    """A numeric CSV as columns (empty fields become NaN)."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise DqnlabError(f"{path} is empty")
    header, body = rows[0], rows[1:]
    try:
        table = np.array([[float(v) if v != "" else np.nan for v in row] for row in body], dtype=np.float64)
    except ValueError as error:
        raise DqnlabError(f"{path} holds a value that is not a number: {error}") from None
    table = table.reshape(len(body), len(header))  # (E, columns), also when E == 0
    return {name: table[:, i] for i, name in enumerate(header)}


def load_run(path: Path, variant: str, seed: int) -> Run:
    if not path.is_dir():
        return Run(variant, seed, "missing", {}, {}, {})
    try:
        result = json.loads((path / RESULT).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        result = {}
    status = result.get("status", "incomplete") if isinstance(result, dict) else "incomplete"
    episodes = read_csv_columns(path / EPISODES) if (path / EPISODES).is_file() else {}
    evaluations = read_csv_columns(path / EVALUATIONS) if (path / EVALUATIONS).is_file() else {}
    return Run(variant, seed, status, result if isinstance(result, dict) else {}, episodes, evaluations)


def load_experiment(out: str | Path) -> tuple[Experiment, list[Run]]:
    """The experiment stored in a results directory and its runs, in variant x seed order."""
    out = Path(out)
    path = out / EXPERIMENT
    if not path.is_file():
        raise DqnlabError(f"{out} is not a dqnlab results directory: it has no {EXPERIMENT}")
    try:
        experiment = Experiment.from_dict(json.loads(path.read_text()), source=str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DqnlabError(f"{path} is not valid JSON: {error}") from None
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
