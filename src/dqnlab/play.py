"""Greedy play: a trained Q-network acts, nothing learns, nothing explores.

A good agent on unwrapped CartPole never stops by itself, so every episode is
capped at `max_steps`; an episode that reaches the cap is reported as capped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dqnlab import seeding
from dqnlab.config import EnvConfig
from dqnlab.rundir.disk import write_with
from dqnlab.engine.envs import make_env
from dqnlab.engine.learner import greedy_action
from dqnlab.engine.network import QNetwork
from dqnlab.errors import DqnlabError


@dataclass(frozen=True)
class PlayEpisode:
    seed: int  # the reset seed: replay this episode with env.reset(seed=seed)
    score: float
    length: int
    terminated: bool  # the episode ended by itself (pole fell, goal reached, ...)
    capped: bool  # stopped at max_steps (or by the environment's time limit)


def play(
    network: QNetwork,
    env_config: EnvConfig,
    episodes: int = 10,
    seed: int = 0,
    max_steps: int = 10_000,
    gif_path: str | Path | None = None,
    gif_max_frames: int = 1_000,
) -> list[PlayEpisode]:
    """Play `episodes` greedy episodes from the `seed`'s evaluation starts; record the first as a GIF if asked.

    The same seed gives the same starting states, so evaluations at different
    checkpoints, and of different variants, face the same episodes.
    """
    if episodes < 1 or max_steps < 1 or gif_max_frames < 1:
        raise DqnlabError(f"episodes, max_steps and gif frames must be >= 1; got {episodes}, {max_steps}, {gif_max_frames}")
    if gif_path is not None:
        check_gif_target(Path(gif_path))  # before playing: a refusal costs nothing
    device = next(network.parameters()).device
    env, _ = make_env(env_config, render_mode="rgb_array" if gif_path else None)
    reset_seeds = seeding.ResetSeeds(seed, "evaluate")
    results, frames = [], []
    for index in range(episodes):
        reset_seed = reset_seeds.next()
        obs, _ = env.reset(seed=reset_seed)
        recording = gif_path is not None and index == 0
        score, length, terminated, truncated = 0.0, 0, False, False
        while not (terminated or truncated) and length < max_steps:
            if recording and len(frames) < gif_max_frames:
                frames.append(env.render())
            obs, reward, terminated, truncated, _ = env.step(greedy_action(network, obs, device))
            score += float(reward)
            length += 1
        results.append(PlayEpisode(reset_seed, score, length, bool(terminated), not terminated))
    env.close()
    if gif_path is not None:
        write_gif(frames, Path(gif_path), fps=env.metadata.get("render_fps") or 50)
    return results


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
