"""Every dqnlab command as a Python function: it returns what it made and raises DqnlabError, and prints nothing.

    from dqnlab import api
    summary = api.compare(experiment, "results/x", workers=2, backend="population")

The CLI (`dqnlab.cli`) turns options into these calls and their results into
lines, progress bars and exit codes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dqnlab.config import Config
from dqnlab.engine.envs import make_env
from dqnlab.engine.records import EpisodeRecord, TrainResult
from dqnlab.errors import DqnlabError
from dqnlab.experiments.backends import make_backend
from dqnlab.experiments.events import OnEvent
from dqnlab.experiments.limits import check_cost, check_experiment_cost
from dqnlab.experiments.runner import TimeLimit
from dqnlab.experiments.assemble import Study, study_from
from dqnlab.experiments.spec import STUDIES, Experiment, PlaySettings, find_study, study_files, study_question
from dqnlab.experiments.sweep import Remaining, sweep
from dqnlab.experiments.trainrun import behaviour_network, train_into
from dqnlab.networks import load_run_network, write_handset_run
from dqnlab.play import Played
from dqnlab.play import play as play_network
from dqnlab.rundir.disk import write_json
from dqnlab.rundir.ownership import output_dir
from dqnlab.rundir.reading import run_status
from dqnlab.rundir.writer import require_tensorboard
from dqnlab.runtime import resolve_device


DEPLOY = "deploy.json"  # RESULTS/deploy.json: a study's greedy decision times (dqnlab.deploy)


@dataclass(frozen=True)
class Trained:
    run_dir: Path
    result: TrainResult
    summary: dict[str, Any]  # result.json's content


def check_train(config: Config, out: str | Path, save_replay: bool = False, tensorboard: bool = False) -> Any:
    """Everything `train` refuses, checked before anything is written; returns the environment's spec."""
    resolve_device(config.run.device)
    env, spec = make_env(config.env)
    env.close()
    if tensorboard:
        require_tensorboard()
    check_cost(config, spec, members=1, out=out, save_replay=save_replay)  # memory and disk
    behaviour_network(config)  # a missing or unreadable behaviour.weights file is refused here, in one line
    return spec


def train(config: Config, out: str | Path, overwrite: bool = False, tensorboard: bool = False, save_replay: bool = False,
          on_episode: Callable[[EpisodeRecord], None] | None = None, on_progress: Callable[[int], None] | None = None,
          on_start: Callable[[], None] | None = None) -> Trained:  # fmt: skip
    """Train one agent into the run directory `out` (locked while it trains). Ctrl-C leaves it without result.json.

    `on_start()` is called once the directory is held, just before training begins.
    """
    out = Path(out)
    check_train(config, out, save_replay, tensorboard)
    with output_dir(out, "run", "dqnlab train", overwrite=overwrite):
        if on_start is not None:
            on_start()
        result, summary = train_into(out, config, on_episode, on_progress, tensorboard, save_replay)
    return Trained(out, result, summary)


def play(run_dir: str | Path, episodes: int = 10, seed: int = 0, max_steps: int = 10_000, gif: str | Path | None = None,
         gif_frames: int = 1_000, device: str = "cpu") -> tuple[str, Played]:  # fmt: skip
    """Greedy episodes of a run's final network (and the first as a GIF).

    Returns the run's status and a `Played`: the episodes (it is their
    sequence) and the time each greedy decision took.
    """
    config, network = load_run_network(run_dir, resolve_device(device))
    played = play_network(network, config.env, episodes=episodes, seed=seed, max_steps=max_steps, gif_path=gif, gif_max_frames=gif_frames)
    return run_status(run_dir), played


@dataclass(frozen=True)
class Compared:
    """What `compare_sweep` and `study` made."""

    summary: dict[str, Any]  # summary.json's content
    remaining: Remaining | None = None  # set when the time limit stopped the sweep before every run had started
    deploy: dict[str, Any] | None = None  # a study's greedy decision times (deploy.json), when they were measured


def compare(experiment: Experiment, out: str | Path, workers: int, backend: str = "local", population_size: int | None = None,
            address: str | None = None, overwrite: bool = False, on_event: OnEvent | None = None,
            time_limit_seconds: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the experiment's missing runs into `out` (resuming) and rebuild its report; returns the summary.

    backend "local": `workers` processes, one run each at a time. "population":
    each variant's seeds train together in populations of up to
    `population_size` members (if None, each variant's seeds cut into
    `workers` populations), on `workers` processes side by side, one torch
    thread each.
    "ray": one Ray task per run (or per population of up to `population_size`
    seeds), on the cluster at `address` or on a local Ray instance of `workers` CPUs.
    Runs start seed-major, so a sweep cut short leaves whole pairs. With
    `time_limit_seconds`, no run (or population) starts once that long has
    passed; those in flight finish and the report covers what exists
    (`compare_sweep` also says what is left and what it costs).
    """
    return compare_sweep(experiment, out, workers, backend, population_size, address, overwrite, on_event, time_limit_seconds).summary


def compare_sweep(experiment: Experiment, out: str | Path, workers: int, backend: str = "local",
                  population_size: int | None = None, address: str | None = None, overwrite: bool = False,
                  on_event: OnEvent | None = None, time_limit_seconds: float | None = None,
                  play: PlaySettings | None = None) -> Compared:  # fmt: skip
    """As `compare`, returning what a time limit left as well; with `play` (a study's [play] table), a sweep
    that ran to the end then plays every complete run greedily, timing each decision (`deploy.measure_deploy`),
    and writes the table to OUT/deploy.json, under the results directory's lock."""
    out = Path(out)
    limit = TimeLimit(_time_limit(time_limit_seconds))
    runner = make_backend(backend, workers, population_size, address)
    check_experiment_cost(experiment, backend, workers, population_size, out, address)
    for variant in experiment.variants:  # a missing or unreadable behaviour.weights file, before any run
        behaviour_network(experiment.config(variant, experiment.seeds[0]))

    def finish(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
        from dqnlab.analysis.report import build_report  # matplotlib: loaded by the commands that report, not by train

        summary = build_report(path)
        return summary, _deploy(experiment, path, play) if play is not None and not limit.reached else None

    swept = sweep(experiment, out, runner, overwrite, on_event, finish, limit)
    summary, deploy = swept.finished
    return Compared(summary, swept.remaining, deploy)


def _time_limit(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise DqnlabError(f"the time limit must be a finite number of seconds > 0; got {seconds!r}")
    return float(seconds)


def _deploy(experiment: Experiment, out: Path, play: PlaySettings) -> dict[str, Any]:
    """Every complete run's greedy decision time (and the hand-set network's), written to OUT/deploy.json."""
    from dqnlab.deploy import measure_deploy  # playing networks: only studies with [play] need it

    device = experiment.config(experiment.variants[0], experiment.seeds[0]).run.device
    table = measure_deploy(out, [variant.name for variant in experiment.variants], list(experiment.seeds),
                           play.episodes, play.max_steps, play.handset, device)  # fmt: skip
    write_json(out / DEPLOY, table)
    return table


def study(name: str | Path, out: str | Path, workers: int, backend: str = "local", population_size: int | None = None,
          address: str | None = None, overwrite: bool = False, on_event: OnEvent | None = None,
          time_limit_seconds: float | None = None) -> dict[str, Compared | None]:  # fmt: skip
    """Run a study file (studies/NAME.toml from the current directory, or a path to one) as
    `compare --experiment` runs it, then its [play] table if it has one (see `compare_sweep`).

    Returns what each of its experiments made, by results folder: "" (`out` itself) for a study of one
    environment, else one folder under `out` per environment of its `envs`, run one after another;
    the time limit counts from the start of the first, and an experiment it leaves no time for is None.
    """
    parts = study_from(find_study(str(name)))
    made: dict[str, Compared | None] = {}
    for folder, experiment, seconds in study_schedule(parts, time_limit_seconds):
        made[folder] = None if seconds is not None and seconds <= 0 else compare_sweep(
            experiment, Path(out) / folder, workers, backend, population_size, address, overwrite, on_event, seconds,
            parts.play)  # fmt: skip
    return made


def study_schedule(parts: Study, time_limit_seconds: float | None):
    """(folder, experiment, seconds left of the time limit when it starts) for each experiment of a study, lazily:
    the seconds are read as each one is about to start (None without a limit)."""
    began = time.monotonic()
    for folder, experiment in parts.parts:
        yield folder, experiment, None if time_limit_seconds is None else time_limit_seconds - (time.monotonic() - began)


def studies(folder: str | Path = STUDIES) -> dict[str, str]:
    """NAME -> the question (first comment line) of every study file FOLDER/NAME.toml."""
    return {name: study_question(path) for name, path in study_files(Path(folder)).items()}


def report(results_dir: str | Path) -> dict[str, Any]:
    """Rebuild summary.json, summary.md, plots and report.html from a results directory's runs; returns the summary."""
    from dqnlab.analysis.report import build_report

    with output_dir(results_dir, "results", "dqnlab report", keep=True, create=False):
        return build_report(results_dir)


def probe(run_dir: str | Path, out: str | Path | None = None, probe_set: str | Path | None = None, seed: int = 0,
          threshold: float | None = None) -> dict[str, Any]:  # fmt: skip
    """What each hidden unit of a run's network detects (see `dqnlab.probe.report`); returns probe.json's content."""
    from dqnlab.probe.report import probe_run
    from dqnlab.probe import THRESHOLD

    return probe_run(run_dir, out, probe_set, seed, THRESHOLD if threshold is None else threshold)


def handset(out: str | Path, overwrite: bool = False) -> Path:
    """Write the hand-wired four-neuron CartPole network as a run directory; returns its path."""
    return write_handset_run(Path(out), overwrite)


__all__ = ["Trained", "Compared", "check_train", "train", "play", "compare", "compare_sweep", "study", "studies", "report",
           "probe", "handset"]
