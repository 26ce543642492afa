"""One agent's clock: what a variant's single run costs, timed in the same command.

A run that shared its clock (a member of a population of several, or one of
more runs than cores) carries the batch's wall seconds, which measure
throughput, not what one agent costs. For every variant with such runs,
`compare` trains the variant's first seed once more, alone, on one torch
thread, in the command's own process after the sweep (when none of its
runs is going), and keeps that run's (samples, seconds) points as
OUT/clock/VARIANT.json. Analysis maps each shared run's samples onto these
points: its per-second figures are then the seconds one agent alone took to
reach those samples on one core of this machine.
"""

from __future__ import annotations

from pathlib import Path

import torch

from dqnlab.config import Config, config_to_dict
from dqnlab.engine.training import train
from dqnlab.errors import DqnlabError
from dqnlab.experiments.runner import KEPT_STATUSES
from dqnlab.experiments.spec import Experiment, timing_config
from dqnlab.experiments.trainrun import behaviour_network
from dqnlab.rundir.disk import make_dir, read_json_object, write_json
from dqnlab.rundir.layout import RESULT, clock_file_for, run_dir_for


def variants_to_time(experiment: Experiment, out: Path) -> list[str]:
    """Variants with a finished run on a shared clock and no up-to-date clock file."""
    names = []
    for variant in experiment.variants:
        shared = any(_shared(run_dir_for(out, variant.name, seed)) for seed in experiment.seeds)
        if shared and not _current(clock_file_for(out, variant.name), timing_config(experiment, variant.name)):
            names.append(variant.name)
    return names


def time_one_agent(experiment: Experiment, out: Path, variant_name: str) -> Path:
    """Train the variant's first seed alone on one thread; write its samples -> seconds points."""
    config = timing_config(experiment, variant_name)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(config, behaviour_network=behaviour_network(config))
    finally:
        torch.set_num_threads(previous)
    ends = [(e.samples, e.wall_seconds) for e in result.episodes]
    points = [(0, 0.0), *ends, (result.samples, result.wall_seconds)]
    path = clock_file_for(out, variant_name)
    make_dir(path.parent)
    record = {
        "variant": variant_name, "seed": config.run.seed, "threads": 1, "device": result.device,
        "status": result.status, "config": config_to_dict(config),
        "samples": [int(s) for s, _ in points], "seconds": [round(float(t), 4) for _, t in points],
    }  # fmt: skip
    write_json(path, record, indent=1)
    return path


def _shared(run_dir: Path) -> bool:
    try:
        result = read_json_object(run_dir / RESULT)  # strict; absent or corrupt reads as not shared
    except (DqnlabError, OSError):
        return False
    return result.get("status") in KEPT_STATUSES and result.get("clock") == "shared"


def _current(path: Path, config: Config) -> bool:
    try:
        stored = read_json_object(path)  # strict; absent or corrupt reads as out of date
    except (DqnlabError, OSError):
        return False
    return stored.get("config") == config_to_dict(config)
