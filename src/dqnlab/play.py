"""`dqnlab play`: greedy episodes of a trained network, the first one as a GIF, and how long each decision took."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dqnlab.config import EnvConfig
from dqnlab.engine.evaluation import PlayEpisode, greedy_episodes
from dqnlab.engine.network import QNetwork
from dqnlab.errors import DqnlabError
from dqnlab.rundir.disk import write_with

__all__ = ["PlayEpisode", "Played", "play", "decision_quartiles", "write_gif", "check_gif_target"]


@dataclass(frozen=True, eq=False)  # eq=False: the dataclass __eq__ would compare arrays ambiguously
class Played:
    """Greedy episodes and the time each greedy decision took."""

    episodes: tuple[PlayEpisode, ...]
    decision_seconds: np.ndarray  # (steps,) float64: every step of every episode, in order
    device: str  # where the network ran: "cpu", "cuda:0", ...
    threads: int  # torch's CPU threads while it played (torch.get_num_threads())


def play(
    network: QNetwork,
    env_config: EnvConfig,
    episodes: int = 10,
    seed: int = 0,
    max_steps: int = 10_000,
    gif_path: str | Path | None = None,
    gif_max_frames: int = 1_000,
) -> Played:
    """Play `episodes` greedy episodes (engine.evaluation), timing each decision; record the first as a GIF at `gif_path` if given."""
    if gif_max_frames < 1:
        raise DqnlabError(f"gif frames must be >= 1; got {gif_max_frames}")
    if gif_path is not None:
        check_gif_target(Path(gif_path))  # before playing: a refusal costs nothing
    frames = gif_max_frames if gif_path is not None else 0
    results, recorded, fps, decision_seconds = greedy_episodes(network, env_config, episodes, seed, max_steps, frames)
    if gif_path is not None:
        write_gif(recorded, Path(gif_path), fps=fps)
    device = str(next(network.parameters()).device)
    return Played(tuple(results), decision_seconds, device, torch.get_num_threads())


def decision_quartiles(decision_seconds: np.ndarray) -> tuple[float, float, float]:
    """First quartile, median and third quartile of decision times, in microseconds.

    Quartiles rather than a mean: the times are skewed, with rare decisions
    that wait hundreds of microseconds on the operating system or the
    garbage collector; the median and quartiles describe the typical one.
    """
    if len(decision_seconds) == 0:
        raise DqnlabError("no decisions were timed: play at least one step")
    low, median, high = np.percentile(decision_seconds, [25, 50, 75]) * 1e6  # (3,) microseconds
    return float(low), float(median), float(high)


def write_gif(frames: list[np.ndarray], path: Path, fps: int = 50) -> None:
    """Write RGB frames (H, W, 3) as a looping GIF; CartPole renders at 50 fps, its real time."""
    from PIL import Image

    if not frames:
        raise DqnlabError("no frames to write: the environment rendered nothing")
    check_gif_target(path)
    images = [Image.fromarray(frame) for frame in frames]
    write_with(path, lambda handle: images[0].save(
        handle, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, comment=GIF_COMMENT,
    ))  # fmt: skip


GIF_COMMENT = b"written by dqnlab play"  # how a GIF that dqnlab may replace is recognised


def check_gif_target(path: Path) -> None:
    """Refuse a GIF path in a missing folder, behind a link, or holding a file dqnlab did not write."""
    from PIL import Image, UnidentifiedImageError

    if not path.parent.is_dir():
        raise DqnlabError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_symlink():
        raise DqnlabError(f"{path} is a symbolic link; dqnlab never writes through links: choose another --gif path")
    if not path.exists():
        return
    try:
        with Image.open(path) as image:
            ours = image.format == "GIF" and image.info.get("comment") == GIF_COMMENT
    except (OSError, UnidentifiedImageError, ValueError):
        ours = False
    if not ours or not path.is_file():
        raise DqnlabError(f"{path} exists and was not written by dqnlab play; choose another --gif path")
