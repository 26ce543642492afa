"""Environments: checking a Gymnasium id, and stepping one environment per member.

Any registered environment with a `Discrete` action space and a flat (1-D)
`Box` observation works. Without a time limit (`env.max_episode_steps` absent)
the environment is used `.unwrapped`, exactly as the tutorial does; with one,
episodes are cut at that many steps and reported as *truncated*, not
terminated, so the learner still bootstraps from their last state.

The engine steps N >= 1 members at once through one interface, `MemberEnvs`:

- CartPole (any registered id whose entry point is Gymnasium's `CartPoleEnv`
  with default settings) runs as arrays, NumPy on the CPU and torch tensors
  on a GPU (`cartpole.py`, tested against Gymnasium's);
- any other environment runs as Gymnasium's `SyncVectorEnv` of `make_env`
  environments, reset by hand.

Either way member k draws its episode starts from its own seed's `env`
stream, so seed k starts episode i from the same state on every backend and
for every agent. `make_env` gives one ordinary Gymnasium environment, for
greedy play, GIFs and the probe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import gymnasium as gym
import numpy as np
import torch
from gymnasium.wrappers import TimeLimit

from dqnlab import seeding
from dqnlab.config import EnvConfig
from dqnlab.engine import cartpole
from dqnlab.errors import DqnlabError

CARTPOLE_ENTRY_POINT = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"


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


class Step(NamedTuple):
    """One step of every member, as tensors on the population's device."""

    next_obs: torch.Tensor  # (N, obs_dim) float32
    reward: torch.Tensor  # (N,) float32
    terminated: torch.Tensor  # (N,) bool
    truncated: torch.Tensor  # (N,) bool

    def outcome(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rewards (N,) float, terminated (N,) bool and truncated (N,) bool as NumPy arrays, for the books.

        On the CPU these are views, no copy; on a GPU, one transfer for the three.
        """
        if self.reward.device.type == "cpu":
            return self.reward.numpy(), self.terminated.numpy(), self.truncated.numpy()
        outcome = torch.stack((self.reward, self.terminated.float(), self.truncated.float())).cpu().numpy()  # (3, N)
        return outcome[0], outcome[1] > 0, outcome[2] > 0


class MemberEnvs(Protocol):
    spec: EnvSpec

    def reset(self, members: np.ndarray) -> torch.Tensor:
        """Start a new episode for each member where `members` (N,) is True; all members' obs (N, obs_dim)."""

    def step(self, action: torch.Tensor) -> Step:
        """Step every member with its action (N,)."""

    def close(self) -> None: ...


def make_member_envs(config: EnvConfig, seeds: list[int], device: torch.device) -> MemberEnvs:
    """The tensor CartPole where the environment is CartPole, Gymnasium's vector env otherwise."""
    env, spec = make_env(config)  # raises dqnlab's one-line errors for unusable environments
    env.close()
    registered = gym.spec(config.id)
    if registered.entry_point == CARTPOLE_ENTRY_POINT and not registered.kwargs:
        return TensorCartPole(config, spec, seeds, device)
    return GymVectorEnvs(config, spec, seeds, device)


class TensorCartPole:
    """N CartPoles as one (N, 4) float64 state: a NumPy array on the CPU, a torch tensor on a GPU.

    On the CPU, the physics runs in NumPy (about 20 us a step for a few carts,
    against about 100 us of torch dispatch) and steps hand back torch views
    of its arrays, without a copy.
    """

    def __init__(self, config: EnvConfig, spec: EnvSpec, seeds: list[int], device: torch.device) -> None:
        self.spec, self.device, self.on_cpu = spec, device, device.type == "cpu"
        self.max_steps = config.max_episode_steps
        self.reset_seeds = [seeding.ResetSeeds(seed, "env") for seed in seeds]
        n = len(seeds)
        if self.on_cpu:
            self.state = np.zeros((n, cartpole.OBS_DIM))  # (N, 4) float64
            self.length = np.zeros(n, dtype=np.int64)  # (N,) steps this episode
        else:
            self.state = torch.zeros((n, cartpole.OBS_DIM), dtype=torch.float64, device=device)  # (N, 4)
            self.length = torch.zeros(n, dtype=torch.int64, device=device)  # (N,)
        self.reward = torch.ones(n, dtype=torch.float32, device=device)  # (N,) +1 every step, as v1
        self.untruncated = torch.zeros(n, dtype=torch.bool, device=device)  # (N,) without a time limit

    def reset(self, members: np.ndarray) -> torch.Tensor:
        index = np.flatnonzero(members)  # (k,)
        fresh = np.stack([cartpole.initial_state(self.reset_seeds[i].next()) for i in index])  # (k, 4)
        where = index if self.on_cpu else torch.as_tensor(index, device=self.device)  # (k,)
        self.state[where] = fresh if self.on_cpu else torch.as_tensor(fresh, device=self.device)  # (k, 4)
        self.length[where] = 0
        return self._obs()  # (N, 4)

    def step(self, action: torch.Tensor) -> Step:
        self.state, terminated = cartpole.step(self.state, action.numpy() if self.on_cpu else action)  # (N, 4), (N,)
        self.length += 1  # (N,)
        if self.max_steps is None:
            truncated = self.untruncated  # (N,)
        else:
            truncated = self._tensor(self.length >= self.max_steps)  # (N,) as TimeLimit: may coincide with terminated
        return Step(self._obs(), self.reward, self._tensor(terminated), truncated)

    def _obs(self) -> torch.Tensor:
        return torch.from_numpy(self.state.astype(np.float32)) if self.on_cpu else self.state.float()  # (N, 4)

    def _tensor(self, flags) -> torch.Tensor:
        return torch.from_numpy(flags) if self.on_cpu else flags

    def close(self) -> None:
        pass


class GymVectorEnvs:
    """Gymnasium's SyncVectorEnv of `make_env` environments, reset by hand with each member's seeds."""

    def __init__(self, config: EnvConfig, spec: EnvSpec, seeds: list[int], device: torch.device) -> None:
        self.spec, self.device = spec, device
        self.reset_seeds = [seeding.ResetSeeds(seed, "env") for seed in seeds]
        self.vector = gym.vector.SyncVectorEnv(
            [lambda: make_env(config)[0] for _ in seeds], autoreset_mode=gym.vector.AutoresetMode.DISABLED
        )

    def reset(self, members: np.ndarray) -> torch.Tensor:
        seeds = [rs.next() if m else None for rs, m in zip(self.reset_seeds, members)]
        obs, _ = self.vector.reset(seed=seeds, options={"reset_mask": np.asarray(members, dtype=np.bool_)})
        return self._tensor(obs, torch.float32)  # (N, obs_dim)

    def step(self, action: torch.Tensor) -> Step:
        obs, reward, terminated, truncated, _ = self.vector.step(action.cpu().numpy())
        return Step(
            self._tensor(obs, torch.float32), self._tensor(reward, torch.float32),
            self._tensor(terminated, torch.bool), self._tensor(truncated, torch.bool),
        )  # fmt: skip

    def _tensor(self, array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), device=self.device).to(dtype)

    def close(self) -> None:
        self.vector.close()
