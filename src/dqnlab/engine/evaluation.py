"""Greedy episodes: a Q-network acts, nothing learns, nothing explores.

A good agent on unwrapped CartPole never stops by itself, so every episode is
capped at `max_steps`; an episode that reaches the cap is reported as capped.
Training's greedy evaluations and `dqnlab play` both run `greedy_episodes`.

Every greedy decision is timed (the forward pass and argmax only, not the
environment's step nor rendering), so `dqnlab play` can say how long an agent
takes to pick an action once it has stopped learning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dqnlab import seeding
from dqnlab.config import EnvConfig
from dqnlab.engine.envs import make_env
from dqnlab.engine.network import QNetwork, greedy_action
from dqnlab.errors import DqnlabError


@dataclass(frozen=True)
class PlayEpisode:
    seed: int  # the reset seed: replay this episode with env.reset(seed=seed)
    score: float
    length: int
    terminated: bool  # the episode ended by itself (pole fell, goal reached, ...)
    capped: bool  # stopped at max_steps (or by the environment's time limit)


def greedy_episodes(network: QNetwork, env_config: EnvConfig, episodes: int = 10, seed: int = 0, max_steps: int = 10_000,
                    frames: int = 0) -> tuple[list[PlayEpisode], list[np.ndarray], int, np.ndarray]:  # fmt: skip
    """Play `episodes` greedy episodes from the `seed`'s evaluation starts.

    The same seed gives the same starting states, so evaluations at different
    checkpoints, and of different variants, face the same episodes. Returns the
    episodes, up to `frames` RGB frames (H, W, 3) of the first, the
    environment's frames per second, and the seconds each greedy decision took:
    a float64 array (steps,) over every step of every episode in order, so its
    length is the sum of the episodes' lengths. Two clock reads per step cost
    well under a microsecond, against tens of microseconds for a forward pass.
    """
    if episodes < 1 or max_steps < 1 or frames < 0:
        raise DqnlabError(f"episodes and max_steps must be >= 1 and frames >= 0; got {episodes}, {max_steps}, {frames}")
    device = next(network.parameters()).device
    env, _ = make_env(env_config, render_mode="rgb_array" if frames else None)
    reset_seeds = seeding.ResetSeeds(seed, "evaluate")
    results, recorded, decision_seconds = [], [], []
    for index in range(episodes):
        reset_seed = reset_seeds.next()
        obs, _ = env.reset(seed=reset_seed)
        score, length, terminated, truncated = 0.0, 0, False, False
        while not (terminated or truncated) and length < max_steps:
            if index == 0 and len(recorded) < frames:
                recorded.append(env.render())
            # greedy_action ends in .item(), which waits for the GPU: on CUDA the clock sees the whole decision
            started = time.perf_counter()
            action = greedy_action(network, obs, device)
            decision_seconds.append(time.perf_counter() - started)
            obs, reward, terminated, truncated, _ = env.step(action)
            score += float(reward)
            length += 1
        results.append(PlayEpisode(reset_seed, score, length, bool(terminated), not terminated))
    env.close()
    fps = env.metadata.get("render_fps") or 50
    return results, recorded, fps, np.asarray(decision_seconds, dtype=np.float64)  # (steps,)
