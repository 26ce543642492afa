"""Writing one run directory as training goes (layout.py says what lies where).

Everything here takes plain values (records, state dicts, summaries): this
layer never imports the engine. `experiments.trainrun` feeds it from training.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from dqnlab.config import Config, config_to_json
from dqnlab.errors import DqnlabError
from dqnlab.rundir.disk import make_dir, write_json, write_text, write_with
from dqnlab.rundir.layout import (
    CHECKPOINT_FILE,
    CHECKPOINTS,
    CONFIG,
    EPISODE_COLUMNS,
    EPISODES,
    EVALUATION_COLUMNS,
    EVALUATIONS,
    REPLAY,
    REPLAY_FIELDS,
    RESULT,
    TENSORBOARD,
    WEIGHTS,
)
from dqnlab.rundir.ownership import claim

Record = Any  # a dataclass whose fields are EPISODE_COLUMNS or EVALUATION_COLUMNS (engine.records)


def _csv_text(header: list[str] | None, records: list) -> str:
    """CSV lines for dataclass records (None written as an empty field), after an optional header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(["" if v is None else v for v in asdict(record).values()] for record in records)
    return buffer.getvalue()


def save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    """Write a state_dict's tensors, as CPU copies, atomically: a crash never leaves half a file."""
    state = {k: v.detach().cpu() for k, v in state.items()}
    write_with(path, lambda handle: torch.save(state, handle))


def save_replay(path: Path, capacity: int, added: int, arrays: dict[str, Any]) -> None:
    """A replay memory's transitions (REPLAY_FIELDS, oldest first) as an .npz file, no pickle; see replayfile.py."""
    meta = np.array([capacity, arrays["obs"].shape[1], added], dtype=np.int64)
    write_with(path, lambda handle: np.savez(handle, meta=meta, **{name: arrays[name] for name in REPLAY_FIELDS}))


class RunWriter:
    """Writes one run directory as training goes.

    episodes.csv is rewritten whole, through a temporary file and a rename, at
    most once a second and at the end: whenever the run is interrupted, the
    file on disk is a complete CSV of finished episodes (at most a second old).
    """

    def __init__(self, path: Path, config: Config, tensorboard: bool = False, flush_seconds: float = 1.0) -> None:
        self.path = path
        self._rows: list[str] = []
        self._evaluations: list[Record] = []
        self._flush_seconds, self._flushed_at = flush_seconds, time.monotonic()
        write_text(path / CONFIG, config_to_json(config))
        self._write_episodes()
        self._tb = _tensorboard_writer(path / TENSORBOARD) if tensorboard else None

    def _write_episodes(self) -> None:
        write_text(self.path / EPISODES, _csv_text(EPISODE_COLUMNS, []) + "".join(self._rows))
        self._flushed_at = time.monotonic()

    def episode(self, record: Record) -> None:
        self._rows.append(_csv_text(None, [record]))
        if time.monotonic() - self._flushed_at >= self._flush_seconds:
            self._write_episodes()
        if self._tb is not None:
            for key in ("score", "length", "high_score"):
                self._tb.add_scalar(f"charts/{key}", getattr(record, key), record.samples)
            if record.td_loss is not None:
                self._tb.add_scalar("losses/td_loss", record.td_loss, record.samples)

    def evaluation(self, record: Record) -> None:
        self._evaluations.append(record)
        write_text(self.path / EVALUATIONS, _csv_text(EVALUATION_COLUMNS, self._evaluations))

    def checkpoint(self, samples: int, state: dict[str, torch.Tensor]) -> None:
        make_dir(self.path / CHECKPOINTS)
        save_weights(state, self.path / CHECKPOINTS / CHECKPOINT_FILE.format(samples))

    def finish(self, summary: dict[str, Any], weights: dict[str, torch.Tensor], replay: Callable[[Path], None] | None = None) -> None:
        """Write episodes, weights (and the replay memory, through `replay(path)`), then result.json (`summary`) last."""
        self.close()
        save_weights(weights, self.path / WEIGHTS)
        if replay is not None:
            replay(self.path / REPLAY)
        write_json(self.path / RESULT, summary)

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


def write_failure(run_dir: Path, error: BaseException | str) -> None:
    """Mark a run that crashed: result.json with status "failed" and the error's one-line text."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    claim(run_dir, "run")
    write_json(run_dir / RESULT, {"status": "failed", "error": text.splitlines()[0] if text.strip() else ""})


def _tensorboard_writer(path: Path):
    return require_tensorboard()(log_dir=str(path))
