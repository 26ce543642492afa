"""Reading a run directory back, with its content checked.

Every reader here refuses what it cannot trust with one `DqnlabError`
sentence that names the file, the problem and what is expected: JSON is read
strictly (`dqnlab.rundir.disk`), weights as tensors only (`dqnlab.rundir.weights`), and
episodes.csv and evaluations.csv value by value. `check_run` is the one test
of a finished run, applied both when a sweep resumes
(`experiments.runner.run_state`) and when analysis reads it
(`analysis.runs.load_run`): a run that passes it is one every report can use.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dqnlab.config import Config, config_from_dict
from dqnlab.errors import DqnlabError
from dqnlab.rundir.disk import read_json_object
from dqnlab.rundir.layout import (
    CHECKPOINTS,
    CONFIG,
    EPISODE_COLUMNS,
    EPISODES,
    EVALUATION_COLUMNS,
    EVALUATIONS,
    RESULT,
    WEIGHTS,
)

FINISHED = ("complete", "diverged")  # statuses of a run that trained to its end
# How each column is written: "int" a whole number >= 0, "float" a finite number, "float?" one or empty
# (td_loss of an episode without learn steps), "flag" 0 or 1 (True or False accepted).
EPISODE_KINDS = {"episode": "int", "samples": "int", "score": "float", "length": "int", "terminated": "flag",
                 "high_score": "float", "learn_steps": "int", "wall_seconds": "float", "td_loss": "float?"}  # fmt: skip
EVALUATION_KINDS = {"samples": "int", "learn_steps": "int", "mean_score": "float", "median_score": "float",
                    "min_score": "float", "max_score": "float", "capped": "int", "episodes": "int"}  # fmt: skip
assert list(EPISODE_KINDS) == EPISODE_COLUMNS and list(EVALUATION_KINDS) == EVALUATION_COLUMNS
OLDER_EPISODE_COLUMNS = [c for c in EPISODE_COLUMNS if c != "terminated"]  # written before terminations were recorded
FLAGS = {"0": 0.0, "1": 1.0, "False": 0.0, "True": 1.0}
WHOLE = re.compile(r"[0-9]+")


class RunFileError(DqnlabError):
    """A file of a run directory that does not read back; `reason` says which file and why, within the run."""

    def __init__(self, run_dir: str | Path, name: str, problem: str) -> None:
        self.reason = name + (problem if problem.startswith(":") else f" {problem}")  # "episodes.csv line 7: ..."
        super().__init__(f"{Path(run_dir) / self.reason}")

    @classmethod
    def of(cls, run_dir: str | Path, name: str, error: DqnlabError) -> RunFileError:
        """`error`, a sentence about the file `name` of the run, as a RunFileError (its path taken off the reason)."""
        text, path = str(error), str(Path(run_dir) / name)
        return cls(run_dir, name, text.removeprefix(path).strip() if text.startswith(path) else f": {text}")


def read_run_json(run_dir: str | Path, name: str) -> dict[str, Any]:
    """A JSON file of the run whose top level is an object; RunFileError (one line) otherwise."""
    path = Path(run_dir) / name
    try:
        return read_json_object(path)
    except DqnlabError as error:
        raise RunFileError.of(run_dir, name, error) from None


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    """result.json's content; None when there is none (the run did not finish); RunFileError when it is corrupt."""
    if not (Path(run_dir) / RESULT).exists():
        return None
    return read_run_json(run_dir, RESULT)


def run_status(run_dir: str | Path) -> str:
    """result.json's status ("complete", "diverged", "failed", "handset"), or "incomplete" without one."""
    result = read_result(run_dir)
    if result is None:
        return "incomplete"
    status = result.get("status")
    if not isinstance(status, str) or not status:
        raise RunFileError(run_dir, RESULT, f"has the status {status!r}; expected a word such as \"complete\"")
    return status


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(samples, path) of every checkpoint a run saved, oldest first."""
    found = []
    for path in (Path(run_dir) / CHECKPOINTS).glob("samples-*.pt"):
        digits = path.name.removeprefix("samples-").removesuffix(".pt")
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


def load_config(run_dir: str | Path) -> Config:
    """The run's configuration (config.json), checked as any configuration is."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise DqnlabError(f"{run_dir} is not a dqnlab run directory: it has no {CONFIG}")
    data = read_run_json(run_dir, CONFIG)
    try:
        return config_from_dict(data, source=str(path))
    except DqnlabError as error:
        raise RunFileError.of(run_dir, CONFIG, error) from None


# ---------------------------------------------------------------- tables


def _read_table(run_dir: str | Path, name: str, kinds: dict[str, str], older: list[str] | None = None) -> dict[str, np.ndarray]:
    """A CSV file of the run as float64 columns (E,), every value checked against its column's kind (empty -> NaN)."""
    path = Path(run_dir) / name
    try:
        text = path.read_bytes().decode("utf-8")
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except FileNotFoundError:
        raise RunFileError(run_dir, name, "is missing") from None
    except UnicodeDecodeError:
        raise RunFileError(run_dir, name, "is not UTF-8 text (a binary file?)") from None
    except (OSError, csv.Error) as error:
        raise RunFileError(run_dir, name, f"cannot be read as CSV ({error})") from None
    columns = list(kinds)
    if not rows:
        raise RunFileError(run_dir, name, f"is empty; expected the header {','.join(columns)}")
    header = rows[0]
    if header != columns and header != older:
        lacking = [c for c in columns if c not in header]
        problem = f"lacks the column(s) {', '.join(lacking)}" if lacking else f"has the header {','.join(header)}"
        raise RunFileError(run_dir, name, f"{problem}; expected the header {','.join(columns)}")
    table = np.empty((len(rows) - 1, len(header)))  # (E, columns)
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if len(row) != len(header):
            raise RunFileError(run_dir, name, f"line {line} has {len(row)} fields; expected {len(header)}")
        for j, (column, text) in enumerate(zip(header, row)):
            table[i, j] = _value(text, kinds[column], lambda problem: RunFileError(run_dir, name, f"line {line}: {column} {problem}"))
    return {column: table[:, j] for j, column in enumerate(header)}


def _value(text: str, kind: str, refuse) -> float:
    if kind == "flag":
        if text not in FLAGS:
            raise refuse(f"is {text!r}; expected 0 or 1")
        return FLAGS[text]
    if kind == "int":
        if not WHOLE.fullmatch(text):
            raise refuse(f"is {text!r}; expected a whole number >= 0")
        return float(int(text))
    if text == "":
        if kind == "float?":
            return math.nan
        raise refuse("is empty; expected a number")
    try:
        value = float(text)
    except ValueError:
        raise refuse(f"is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise refuse(f"is {text}; expected a finite number")
    return value


def _first(bad: np.ndarray) -> int | None:
    """The index of the first True in `bad` (E,), or None."""
    found = np.flatnonzero(bad)
    return int(found[0]) if len(found) else None


def read_episodes(run_dir: str | Path) -> dict[str, np.ndarray]:
    """episodes.csv as columns (E,), its values and their sequence checked (td_loss NaN where empty).

    A file written before terminations were recorded (no terminated column) reads without that column.
    """
    e = _read_table(run_dir, EPISODES, EPISODE_KINDS, OLDER_EPISODE_COLUMNS)
    before = np.concatenate([[0.0], e["samples"][:-1]])  # (E,) the previous episode's end
    checks = (
        (e["episode"] != np.arange(len(e["episode"])), "episode {episode:.0f} is out of sequence; episodes count 0, 1, 2, ..."),
        (e["length"] < 1, "length {length:.0f}; an episode takes at least one step"),
        (e["samples"] != before + e["length"], "samples {samples:.0f} is not the previous episode's end plus length {length:.0f}"),
        (e["high_score"] != np.maximum.accumulate(e["score"]), "high_score {high_score:g} is not the best score so far"),
        (e["learn_steps"] < np.concatenate([[0.0], e["learn_steps"][:-1]]), "learn_steps {learn_steps:.0f} went down"),
        (e["wall_seconds"] < 0, "wall_seconds {wall_seconds:g} is negative"),
    )  # fmt: skip
    _check_rows(run_dir, EPISODES, e, checks)
    return e


def read_evaluations(run_dir: str | Path) -> dict[str, np.ndarray]:
    """evaluations.csv as columns (K,), checked; {} when the run has none."""
    if not (Path(run_dir) / EVALUATIONS).exists():
        return {}
    v = _read_table(run_dir, EVALUATIONS, EVALUATION_KINDS)
    slack = 1e-9 * np.maximum(1.0, np.abs(v["max_score"]))  # (K,) a mean may round past an end
    checks = (
        (v["samples"] <= np.concatenate([[0.0], v["samples"][:-1]]), "samples {samples:.0f} does not follow the previous evaluation's"),
        (v["learn_steps"] < np.concatenate([[0.0], v["learn_steps"][:-1]]), "learn_steps {learn_steps:.0f} went down"),
        ((v["min_score"] > v["median_score"]) | (v["median_score"] > v["max_score"]) | (v["mean_score"] < v["min_score"] - slack)
         | (v["mean_score"] > v["max_score"] + slack), "the scores are not ordered min <= mean, median <= max"),
        ((v["episodes"] < 1) | (v["capped"] > v["episodes"]), "{capped:.0f} capped of {episodes:.0f} episodes"),
    )  # fmt: skip
    _check_rows(run_dir, EVALUATIONS, v, checks)
    return v


def _check_rows(run_dir, name: str, table: dict[str, np.ndarray], checks) -> None:
    """RunFileError at the first row where a check's mask (E,) is True, its message formatted with that row."""
    for bad, message in checks:
        row = _first(bad)
        if row is not None:
            values = {column: values[row] for column, values in table.items()}
            raise RunFileError(run_dir, name, f"line {row + 2}: {message.format(**values)}")


# ---------------------------------------------------------------- a finished run


@dataclass(frozen=True)
class FinishedRun:
    """A run that trained to its end, every file of it read and checked against the others."""

    result: dict[str, Any]
    config: Config
    episodes: dict[str, np.ndarray]  # column -> (E,)
    evaluations: dict[str, np.ndarray]  # column -> (K,); empty without evaluations


def check_run(run_dir: str | Path) -> FinishedRun:
    """The run in `run_dir`, if it finished (complete or diverged) and its files agree; RunFileError naming what does not."""
    result = read_result(run_dir)
    if result is None:
        raise RunFileError(run_dir, RESULT, "is missing: the run did not finish")
    if result.get("status") not in FINISHED:
        raise RunFileError(run_dir, RESULT, f"says {result.get('status')!r}; a finished run is complete or diverged")
    if not (Path(run_dir) / CONFIG).is_file():
        raise RunFileError(run_dir, CONFIG, "is missing")
    config = load_config(run_dir)
    episodes, evaluations = read_episodes(run_dir), read_evaluations(run_dir)
    if not (Path(run_dir) / WEIGHTS).is_file():
        raise RunFileError(run_dir, WEIGHTS, "is missing; a finished run saves its final weights")
    _check_result(run_dir, result, config, episodes, evaluations)
    if result["status"] == "complete":  # a diverged run's weights are NaN by nature; a complete run's must load
        shape = result.get("obs_dim"), result.get("n_actions")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
            raise RunFileError(run_dir, RESULT, f"has obs_dim and n_actions {shape}; expected whole numbers >= 1")
        from dqnlab.rundir.weights import read_weights  # torch, loaded only when a finished run is checked

        frame = result.get("frame")  # (H, W, C) of image observations; absent or null for vectors
        if frame is not None and not (isinstance(frame, list) and len(frame) == 3 and all(isinstance(n, int) and n >= 1 for n in frame)):
            raise RunFileError(run_dir, RESULT, f"has frame {frame!r}; expected [height, width, channels] or null")
        try:
            read_weights(Path(run_dir) / WEIGHTS, *shape, config.network.hidden, config.network.conv, frame and tuple(frame))
        except DqnlabError as error:
            raise RunFileError.of(run_dir, WEIGHTS, error) from None
    return FinishedRun(result, config, episodes, evaluations)


def _check_result(run_dir, result: dict[str, Any], config: Config, episodes: dict, evaluations: dict) -> None:
    """result.json's totals against the configuration, episodes.csv and evaluations.csv."""
    def whole(key: str) -> int:
        value = result.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RunFileError(run_dir, RESULT, f"has {key} {value!r}; expected a whole number >= 0")
        return value

    def refuse(problem: str) -> RunFileError:
        return RunFileError(run_dir, RESULT, problem)

    count, samples, budget = len(episodes["episode"]), whole("samples"), config.run.samples
    if whole("episodes") != count:
        raise refuse(f"says {result['episodes']} episodes, but {EPISODES} holds {count}")
    last = int(episodes["samples"][-1]) if count else 0
    if not last <= samples <= budget or (result["status"] == "complete" and samples != budget):
        expected = f"the budget, {budget}" if result["status"] == "complete" else f"between {last} and {budget}"
        raise refuse(f"says {result['status']} after {samples} samples; expected {expected} ({EPISODES} ends at {last})")
    if count and whole("learn_steps") < episodes["learn_steps"][-1]:
        raise refuse(f"says {result['learn_steps']} learn steps, fewer than {EPISODES}'s {episodes['learn_steps'][-1]:.0f}")
    best, high = (float(episodes["score"].max()) if count else None), result.get("high_score")
    agrees = high is None if best is None else (isinstance(high, (int, float)) and not isinstance(high, bool)
                                                 and math.isclose(high, best, rel_tol=1e-9, abs_tol=1e-9))  # fmt: skip
    if not agrees:
        raise refuse(f"says high_score {high!r}, but the best score in {EPISODES} is {best!r}")
    if evaluations and len(evaluations["samples"]) and evaluations["samples"][-1] > samples:
        raise refuse(f"says {samples} samples, but {EVALUATIONS} evaluated at {evaluations['samples'][-1]:.0f}")
