"""Run directories: what one training run leaves on disk, written as it trains.

    RUN_DIR/
      .dqnlab            the marker that makes it dqnlab's to replace (ownership.py; written first)
      config.json        the resolved configuration
      episodes.csv       one row per finished episode, replaced atomically as they come
      evaluations.csv    greedy evaluations every run.eval_every samples, if set
      weights.pt         final Q-network state_dict (torch.load(..., weights_only=True))
      checkpoints/       samples-000010000.pt ... when run.checkpoint_every is set
      replay.npz         the replay memory, with --save-replay (no pickle)
      tensorboard/       event files, with --tensorboard
      result.json        totals and status ("complete" or "diverged"); written last, so a
                         run without it did not finish

Analysis reads only these files (through runfiles.py, which checks them),
never the training code's objects.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable

import torch

from dqnlab import __version__
from dqnlab.config import Config, config_to_json
from dqnlab.engine.network import QNetwork
from dqnlab.engine.records import EpisodeRecord, EvaluationRecord, TrainResult
from dqnlab.engine.replay import bytes_per_transition
from dqnlab.engine.training import train
from dqnlab.disk import make_dir, write_json, write_text, write_with
from dqnlab.errors import DqnlabError
from dqnlab.ownership import claim

CONFIG, EPISODES, WEIGHTS, RESULT, REPLAY = "config.json", "episodes.csv", "weights.pt", "result.json", "replay.npz"
EVALUATIONS = "evaluations.csv"
CHECKPOINTS, TENSORBOARD = "checkpoints", "tensorboard"
CHECKPOINT_FILE = "samples-{:09d}.pt"  # the samples trained when it was saved
EPISODE_COLUMNS = [f.name for f in fields(EpisodeRecord)]
EVALUATION_COLUMNS = [f.name for f in fields(EvaluationRecord)]


def _csv_text(header: list[str] | None, records: list) -> str:
    """CSV lines for dataclass records (None written as an empty field), after an optional header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(["" if v is None else v for v in asdict(record).values()] for record in records)
    return buffer.getvalue()


def save_weights(network: QNetwork, path: Path) -> None:
    """Write a CPU state_dict atomically: a crash never leaves half a file."""
    state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
    write_with(path, lambda handle: torch.save(state, handle))


class RunWriter:
    """Writes one run directory as training goes.

    episodes.csv is rewritten whole, through a temporary file and a rename, at
    most once a second and at the end: whenever the run is interrupted, the
    file on disk is a complete CSV of finished episodes (at most a second old).
    """

    def __init__(self, path: Path, config: Config, tensorboard: bool = False, flush_seconds: float = 1.0) -> None:
        self.path = path
        self._rows: list[str] = []
        self._evaluations: list[EvaluationRecord] = []
        self._flush_seconds, self._flushed_at = flush_seconds, time.monotonic()
        write_text(path / CONFIG, config_to_json(config))
        self._write_episodes()
        self._tb = _tensorboard_writer(path / TENSORBOARD) if tensorboard else None

    def _write_episodes(self) -> None:
        write_text(self.path / EPISODES, _csv_text(EPISODE_COLUMNS, []) + "".join(self._rows))
        self._flushed_at = time.monotonic()

    def episode(self, record: EpisodeRecord) -> None:
        self._rows.append(_csv_text(None, [record]))
        if time.monotonic() - self._flushed_at >= self._flush_seconds:
            self._write_episodes()
        if self._tb is not None:
            for key in ("score", "length", "high_score"):
                self._tb.add_scalar(f"charts/{key}", getattr(record, key), record.samples)
            if record.td_loss is not None:
                self._tb.add_scalar("losses/td_loss", record.td_loss, record.samples)

    def evaluation(self, record: EvaluationRecord) -> None:
        self._evaluations.append(record)
        write_text(self.path / EVALUATIONS, _csv_text(EVALUATION_COLUMNS, self._evaluations))

    def checkpoint(self, samples: int, network: QNetwork) -> None:
        make_dir(self.path / CHECKPOINTS)
        save_weights(network, self.path / CHECKPOINTS / CHECKPOINT_FILE.format(samples))

    def finish(self, result: TrainResult, backend: str = "single", clock: str = "own") -> dict[str, Any]:
        """Write episodes, weights (and the replay memory, if the result kept it), then result.json last.

        `clock` says what the run's wall seconds measure (see `summarize`).
        """
        self.close()
        save_weights(result.network, self.path / WEIGHTS)
        if result.replay is not None:
            result.replay.save(self.path / REPLAY)
        summary = summarize(result, backend, clock)
        write_json(self.path / RESULT, summary)
        return summary

    def close(self) -> None:
        self._write_episodes()
        if self._tb is not None:
            self._tb.close()


def require_tensorboard() -> type:
    """TensorBoard's SummaryWriter, or a one-line error naming the install command."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise DqnlabError("--tensorboard needs the tensorboard package: pip install 'dqnlab[tensorboard]'") from None
    return SummaryWriter


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
            on_checkpoint=writer.checkpoint, on_evaluation=writer.evaluation, keep_replay=save_replay,
        )  # fmt: skip
    except BaseException:
        writer.close()
        raise
    return result, writer.finish(result, clock=clock)


def write_failure(run_dir: Path, error: BaseException | str) -> None:
    """Mark a run that crashed: result.json with status "failed" and the error's one-line text."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    claim(run_dir, "run")
    write_json(run_dir / RESULT, {"status": "failed", "error": text.splitlines()[0] if text.strip() else ""})


def _tensorboard_writer(path: Path):
    return require_tensorboard()(log_dir=str(path))


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
        "episodes": len(episodes),
        "high_score": max((e.score for e in episodes), default=None),
        "unfinished_episode": {"score": result.unfinished_score, "length": result.unfinished_length},
        "first_reached": {f"{r.score:g}": {"samples": r.samples, "wall_seconds": round(r.wall_seconds, 3)} for r in result.reached},
        "learn_steps": result.learn_steps,
        "transitions_processed": result.transitions_processed,
        "wall_seconds": round(result.wall_seconds, 3),
        "env_id": result.spec.id,
        "obs_dim": result.spec.obs_dim,
        "n_actions": result.spec.n_actions,
        "replay_capacity": result.replay_capacity,
        "replay_bytes_per_transition": bytes_per_transition(result.spec.obs_dim),
        "device": result.device,
        "threads": result.threads,
        "backend": backend,
        "clock": clock,
        "population": result.population,
        "torch_version": torch.__version__,
        "dqnlab_version": __version__,
    }


# Reading a run directory back (run_status, checkpoints, load_config, load_run_network): dqnlab.runfiles;
# a weights file (load_network): dqnlab.weightfile.
