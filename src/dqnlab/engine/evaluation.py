"""Greedy episodes: a Q-network acts, nothing learns, nothing explores.

A good agent on unwrapped CartPole never stops by itself, so every episode is
capped at `max_steps`; an episode that reaches the cap is reported as capped.
Training's greedy evaluations and `dqnlab play` both run `greedy_episodes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dqnlab import seeding
from dqnlab.config import EnvConfig
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


def greedy_episodes(network: QNetwork, env_config: EnvConfig, episodes: int = 10, seed: int = 0, max_steps: int = 10_000,
                    frames: int = 0) -> tuple[list[PlayEpisode], list[np.ndarray], int]:  # fmt: skip
    """Play `episodes` greedy episodes from the `seed`'s evaluation starts.

    The same seed gives the same starting states, so evaluations at different
    checkpoints, and of different variants, face the same episodes. Returns the
    episodes, up to `frames` RGB frames (H, W, 3) of the first, and the
    environment's frames per second.
    """
    if episodes < 1 or max_steps < 1 or frames < 0:
        raise DqnlabError(f"episodes and max_steps must be >= 1 and frames >= 0; got {episodes}, {max_steps}, {frames}")
    device = next(network.parameters()).device
    env, _ = make_env(env_config, render_mode="rgb_array" if frames else None)
    reset_seeds = seeding.ResetSeeds(seed, "evaluate")
    results, recorded = [], []
    for index in range(episodes):
        reset_seed = reset_seeds.next()
        obs, _ = env.reset(seed=reset_seed)
        score, length, terminated, truncated = 0.0, 0, False, False
        while not (terminated or truncated) and length < max_steps:
            if index == 0 and len(recorded) < frames:
                recorded.append(env.render())
            obs, reward, terminated, truncated, _ = env.step(greedy_action(network, obs, device))
            score += float(reward)
            length += 1
        results.append(PlayEpisode(reset_seed, score, length, bool(terminated), not terminated))
    env.close()
    return results, recorded, env.metadata.get("render_fps") or 50
