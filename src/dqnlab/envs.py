"""Gymnasium environments that dqnlab can learn on.

Any registered environment with a `Discrete` action space and a flat (1-D)
`Box` observation works. Without a time limit (`env.max_episode_steps` absent)
the environment is used `.unwrapped`, exactly as the tutorial does; with one, a
`TimeLimit` wrapper cuts episodes and reports them as *truncated*, not
terminated, so the learner still bootstraps from their last state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from dqnlab.config import EnvConfig
from dqnlab.errors import DqnlabError


@dataclass(frozen=True)
class EnvSpec:
    """What the learner needs to know about an environment."""

    id: str
    obs_dim: int
    n_actions: int
    registered_max_steps: int | None  # the limit Gymnasium registers; None if none


def make_env(config: EnvConfig, render_mode: str | None = None) -> tuple[gym.Env, EnvSpec]:
    """Build the environment and check that dqnlab can learn on it."""
    if render_mode is not None:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # render off-screen, no display needed
    try:
        wrapped = gym.make(config.id, render_mode=render_mode)
    except gym.error.DependencyNotInstalled as error:
        raise DqnlabError(f"environment {config.id!r} needs a package that is not installed: {error}") from None
    except gym.error.Error as error:
        raise DqnlabError(f"unknown environment {config.id!r} ({error}); any registered Gymnasium id works") from None
    registered = wrapped.spec.max_episode_steps if wrapped.spec is not None else None
    env: gym.Env = wrapped.unwrapped
    if config.max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps=config.max_episode_steps)
    spec = EnvSpec(config.id, *_check_spaces(env, config.id), registered_max_steps=registered)
    return env, spec


def _check_spaces(env: gym.Env, env_id: str) -> tuple[int, int]:
    obs_space, action_space = env.observation_space, env.action_space
    if not isinstance(action_space, gym.spaces.Discrete):
        env.close()
        raise DqnlabError(
            f"environment {env_id!r} has a {type(action_space).__name__} action space; "
            "dqnlab needs a Discrete one (Q-learning picks the best of finitely many actions)"
        )
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        env.close()
        shape = getattr(obs_space, "shape", None)
        raise DqnlabError(
            f"environment {env_id!r} has a {type(obs_space).__name__} observation space of shape {shape}; "
            "dqnlab needs a flat Box (a 1-D vector of numbers)"
        )
    if not np.issubdtype(obs_space.dtype, np.floating) and not np.issubdtype(obs_space.dtype, np.integer):
        env.close()
        raise DqnlabError(f"environment {env_id!r} has {obs_space.dtype} observations; dqnlab needs numbers")
    return int(obs_space.shape[0]), int(action_space.n)


def time_limit_note(config: EnvConfig, spec: EnvSpec) -> str | None:
    """A hint when an environment registers a time limit that this run does not use."""
    if config.max_episode_steps is None and spec.registered_max_steps is not None and config.id != "CartPole-v1":
        return (
            f"note: {spec.id} registers a {spec.registered_max_steps}-step time limit; this run uses none "
            f"(add --set env.max_episode_steps={spec.registered_max_steps} to use it)"
        )
    return None
