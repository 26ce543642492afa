"""Every dqnlab command as a Python function: it returns what it made and raises DqnlabError, and prints nothing.

    from dqnlab import api
    summary = api.compare(experiment, "results/x", workers=2, backend="population")

The CLI (`dqnlab.cli`) turns options into these calls and their results into
lines, progress bars and exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dqnlab.analysis.report import build_report
from dqnlab.config import Config
from dqnlab.engine.envs import make_env
from dqnlab.engine.records import EpisodeRecord, TrainResult
from dqnlab.experiments.backends import make_backend
from dqnlab.experiments.events import OnEvent
from dqnlab.experiments.limits import check_cost, check_experiment_cost
from dqnlab.experiments.spec import Experiment
from dqnlab.experiments.sweep import sweep
from dqnlab.experiments.trainrun import train_into
from dqnlab.handset import write_handset_run
from dqnlab.networks import load_run_network
from dqnlab.play import PlayEpisode
from dqnlab.play import play as play_network
from dqnlab.rundir.ownership import output_dir
from dqnlab.rundir.reading import run_status
from dqnlab.rundir.writer import require_tensorboard
from dqnlab.runtime import resolve_device


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
         gif_frames: int = 1_000, device: str = "cpu") -> tuple[str, list[PlayEpisode]]:  # fmt: skip
    """Greedy episodes of a run's final network (and the first as a GIF); returns the run's status and the episodes."""
    config, network = load_run_network(run_dir, resolve_device(device))
    results = play_network(network, config.env, episodes=episodes, seed=seed, max_steps=max_steps, gif_path=gif, gif_max_frames=gif_frames)
    return run_status(run_dir), results


def compare(experiment: Experiment, out: str | Path, workers: int, backend: str = "local", population_size: int | None = None,
            address: str | None = None, overwrite: bool = False, on_event: OnEvent | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the experiment's missing runs into `out` (resuming) and rebuild its report; returns the summary.

    backend "local": `workers` processes, one run each at a time. "population":
    each variant's seeds train together in populations of up to
    `population_size` members (if None, each variant's seeds cut into
    `workers` populations), on `workers` processes side by side, one torch
    thread each.
    "ray": one Ray task per run (or per population of up to `population_size`
    seeds), on the cluster at `address` or on a local Ray instance of `workers` CPUs.
    """
    out = Path(out)
    runner = make_backend(backend, workers, population_size, address)
    check_experiment_cost(experiment, backend, workers, population_size, out, address)
    _, summary = sweep(experiment, out, runner, overwrite, on_event, finish=build_report)
    return summary


def report(results_dir: str | Path) -> dict[str, Any]:
    """Rebuild summary.json, summary.md, plots and report.html from a results directory's runs; returns the summary."""
    with output_dir(results_dir, "results", "dqnlab report", keep=True, create=False):
        return build_report(results_dir)


def probe(run_dir: str | Path, out: str | Path | None = None, probe_set: str | Path | None = None, seed: int = 0,
          threshold: float | None = None) -> dict[str, Any]:  # fmt: skip
    """What each hidden unit of a run's network detects (see `dqnlab.probe.report`); returns probe.json's content."""
    from dqnlab.probe.report import probe_run
    from dqnlab.probe.stability import THRESHOLD

    return probe_run(run_dir, out, probe_set, seed, THRESHOLD if threshold is None else threshold)


def handset(out: str | Path, overwrite: bool = False) -> Path:
    """Write the hand-wired four-neuron CartPole network as a run directory; returns its path."""
    return write_handset_run(Path(out), overwrite)


__all__ = ["Trained", "check_train", "train", "play", "compare", "report", "probe", "handset"]
