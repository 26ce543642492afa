"""Run directories: what one training run leaves on disk, and how to read it back.

    RUN_DIR/
      config.json        the resolved configuration (written first)
      episodes.csv       one row per finished episode, replaced atomically as they come
      evaluations.csv    greedy evaluations every run.eval_every samples, if set
      weights.pt         final Q-network state_dict (torch.load(..., weights_only=True))
      checkpoints/       samples-000010000.pt ... when run.checkpoint_every is set
      replay.npz         the replay memory, with --save-replay (no pickle)
      tensorboard/       event files, with --tensorboard
      result.json        totals and status ("complete" or "diverged"); written last, so a
                         run without it did not finish

Analysis reads only these files, never the training code's objects.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable

import torch

from dqnlab import __version__
from dqnlab.config import Config, config_from_dict, config_to_json
from dqnlab.engine.envs import make_env
from dqnlab.engine.network import QNetwork
from dqnlab.engine.records import EpisodeRecord, EvaluationRecord, TrainResult
from dqnlab.engine.replay import bytes_per_transition
from dqnlab.engine.training import train
from dqnlab.errors import DqnlabError

CONFIG, EPISODES, WEIGHTS, RESULT, REPLAY = "config.json", "episodes.csv", "weights.pt", "result.json", "replay.npz"
EVALUATIONS = "evaluations.csv"
CHECKPOINTS, TENSORBOARD = "checkpoints", "tensorboard"
CHECKPOINT_FILE = "samples-{:09d}.pt"  # the samples trained when it was saved
EPISODE_COLUMNS = [f.name for f in fields(EpisodeRecord)]
EVALUATION_COLUMNS = [f.name for f in fields(EvaluationRecord)]


def prepare_run_dir(path: str | Path, overwrite: bool = False) -> Path:
    """Create an empty run directory; refuse to clobber anything that is not ours."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DqnlabError(f"{path} exists and is not a directory; choose another --out")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise DqnlabError(f"{path} already holds files; pass --overwrite to replace the run, or choose another --out")
        if not (path / CONFIG).is_file():
            raise DqnlabError(f"{path} is not a dqnlab run directory (no {CONFIG}); refusing to overwrite it")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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
    tmp = path.with_name(path.name + ".tmp")
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, tmp)
    os.replace(tmp, path)


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
        atomic_write_text(path / CONFIG, config_to_json(config))
        self._write_episodes()
        self._tb = _tensorboard_writer(path / TENSORBOARD) if tensorboard else None

    def _write_episodes(self) -> None:
        atomic_write_text(self.path / EPISODES, _csv_text(EPISODE_COLUMNS, []) + "".join(self._rows))
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
        atomic_write_text(self.path / EVALUATIONS, _csv_text(EVALUATION_COLUMNS, self._evaluations))

    def checkpoint(self, samples: int, network: QNetwork) -> None:
        (self.path / CHECKPOINTS).mkdir(exist_ok=True)
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
        atomic_write_text(self.path / RESULT, json.dumps(summary, indent=2) + "\n")
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
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RESULT, json.dumps({"status": "failed", "error": text.splitlines()[0] if text else ""}, indent=2) + "\n")


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


# ---------------------------------------------------------------- reading


def run_status(run_dir: str | Path) -> str:
    """result.json's status ("complete", "diverged", "failed"), or "incomplete" without one."""
    try:
        status = json.loads((Path(run_dir) / RESULT).read_text()).get("status")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return "incomplete"
    return str(status or "incomplete")


def checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(samples, path) of every checkpoint a run saved, oldest first."""
    found = []
    for path in (Path(run_dir) / CHECKPOINTS).glob("samples-*.pt"):
        digits = path.name.removeprefix("samples-").removesuffix(".pt")
        if digits.isdigit():
            found.append((int(digits), path))
    return sorted(found)


def load_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise DqnlabError(f"{run_dir} is not a dqnlab run directory: it has no {CONFIG}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DqnlabError(f"{path} is not valid JSON: {error}") from None
    return config_from_dict(data, source=str(path))


def load_run_network(run_dir: str | Path, device: torch.device | str = "cpu", weights: str | Path | None = None):
    """A run's configuration and its final Q-network (or the weights file named)."""
    config = load_config(run_dir)
    env, spec = make_env(config.env)
    env.close()
    network = load_network(weights or Path(run_dir) / WEIGHTS, spec.obs_dim, spec.n_actions, device)
    return config, network


def load_network(path: str | Path, obs_dim: int, n_actions: int, device: torch.device | str = "cpu") -> QNetwork:
    """A Q-network from a weights file, its shape read from the file and checked."""
    path = Path(path)
    if not path.is_file():
        raise DqnlabError(f"{path} does not exist: the run has no weights (did it finish?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable or unsafe files
        raise DqnlabError(f"{path} is not a readable weights file: {str(error).splitlines()[0]}") from None
    weights = [state.get(f"layers.{i}.weight") for i in range(len(state) // 2)] if isinstance(state, dict) else [None]
    if not weights or any(w is None or w.dim() != 2 for w in weights):
        raise DqnlabError(f"{path} does not hold a dqnlab Q-network (expected layers.N.weight/bias tensors)")
    hidden = tuple(int(w.shape[0]) for w in weights[:-1])
    if int(weights[0].shape[1]) != obs_dim or int(weights[-1].shape[0]) != n_actions:
        raise DqnlabError(
            f"{path} maps {weights[0].shape[1]} inputs to {weights[-1].shape[0]} actions, "
            f"but the environment has {obs_dim} observations and {n_actions} actions"
        )
    network = QNetwork(obs_dim, n_actions, hidden)
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise DqnlabError(f"{path} does not match a {hidden} network: {str(error).splitlines()[0]}") from None
    return network.to(device)
