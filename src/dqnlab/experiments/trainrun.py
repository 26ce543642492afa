"""Training one configuration into a run directory: the engine's results handed to the run directory's writer."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch

from dqnlab import __version__
from dqnlab.config import Config
from dqnlab.engine.envs import make_env
from dqnlab.engine.network import QNetwork
from dqnlab.engine.records import EpisodeRecord, TrainResult
from dqnlab.engine.replay import Ring, bytes_per_transition
from dqnlab.engine.training import train
from dqnlab.errors import DqnlabError
from dqnlab.rundir.layout import REPLAY_FIELDS
from dqnlab.rundir.weights import read_weights
from dqnlab.rundir.writer import RunWriter, save_replay


def train_into(
    run_dir: Path,
    config: Config,
    on_episode: Callable[[EpisodeRecord], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    tensorboard: bool = False,
    save_replay: bool = False,
    clock: str = "own",
) -> tuple[TrainResult, dict[str, Any]]:
    """Train `config` into the (prepared, empty) `run_dir`; returns the result and result.json's content.

    If training raises (Ctrl-C included), the finished episodes are written and
    no result.json is: the directory reads as incomplete.
    """
    writer = RunWriter(run_dir, config, tensorboard)

    def episode(record: EpisodeRecord) -> None:
        writer.episode(record)
        if on_episode is not None:
            on_episode(record)

    try:
        result = train(
            config, on_episode=episode, on_progress=on_progress,
            on_checkpoint=lambda samples, network: writer.checkpoint(samples, network.state_dict()),
            on_evaluation=writer.evaluation, keep_replay=save_replay, behaviour_network=behaviour_network(config),
        )  # fmt: skip
    except BaseException:
        with contextlib.suppress(DqnlabError):  # a full disk must not hide the error being raised
            writer.close()
        raise
    return result, finish(writer, result, clock=clock)


def behaviour_network(config: Config) -> QNetwork | None:
    """The saved network behaviour.actor "weights" plays, read from `behaviour.weights` with every tensor
    checked (`rundir.weights`); None for every other actor. The engine reads no files: this hands it in."""
    if config.behaviour.actor != "weights":
        return None
    spec = make_env(config.env)[1]
    try:
        state, hidden, conv = read_weights(config.behaviour.weights, spec.obs_dim, spec.n_actions, frame=spec.frame)
    except DqnlabError as error:
        raise DqnlabError(f"behaviour.weights: {error}") from None
    network = QNetwork(spec.obs_dim, spec.n_actions, hidden, conv, spec.frame if conv else None)
    network.load_state_dict(state)  # every name and shape was checked
    return network


def finish(writer: RunWriter, result: TrainResult, backend: str = "single", clock: str = "own") -> dict[str, Any]:
    """Write the run's weights, replay memory (if kept) and result.json (last); returns result.json's content."""
    summary = summarize(result, backend, clock)
    ring = result.replay
    writer.finish(summary, result.network.state_dict(), None if ring is None else lambda path: save_ring(path, ring))
    return summary


def save_ring(path: Path, ring: Ring) -> None:
    """One member's replay memory as replay.npz (rundir.replayfile reads it back)."""
    save_replay(path, ring.capacity, ring.added, {name: getattr(ring, name) for name in REPLAY_FIELDS})


CLOCKS = ("own", "shared")


def summarize(result: TrainResult, backend: str = "single", clock: str = "own") -> dict[str, Any]:
    """The run's totals, as written to result.json.

    `backend`: "single" or "population". `clock`: "own" when the run's wall
    seconds are one agent's alone on its own core; "shared" when it shared its
    clock (a population of several members, or more workers than cores), so
    its seconds measure the batch, not one agent.
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {CLOCKS}; got {clock!r}")
    episodes = result.episodes
    return {
        "status": result.status,
        "diverged": None if result.divergence is None else asdict(result.divergence),
        "samples": result.samples,
        # "self": the run chose its actions; otherwise its episodes are this behaviour's, not its own
        "behaviour": result.config.behaviour.actor,
        "episodes": len(episodes),
        "high_score": max((e.score for e in episodes), default=None),
        "unfinished_episode": {"score": result.unfinished_score, "length": result.unfinished_length},
        "first_reached": {f"{r.score:g}": {"samples": r.samples, "wall_seconds": round(r.wall_seconds, 3)} for r in result.reached},
        "learn_steps": result.learn_steps,
        "transitions_processed": result.transitions_processed,
        "wall_seconds": round(result.wall_seconds, 3),
        "env_id": result.spec.id,
        "obs_dim": result.spec.obs_dim,
        "frame": None if result.spec.frame is None else list(result.spec.frame),  # (H, W, C) of image observations
        "n_actions": result.spec.n_actions,
        "replay_capacity": result.replay_capacity,
        "replay_bytes_per_transition": bytes_per_transition(result.spec.obs_dim, result.spec.binary),
        "device": result.device,
        "threads": result.threads,
        "backend": backend,
        "clock": clock,
        "population": result.population,
        "torch_version": torch.__version__,
        "dqnlab_version": __version__,
    }
