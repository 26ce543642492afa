"""Member environments: one environment per population member, stepped together.

CartPole (any registered id whose entry point is Gymnasium's `CartPoleEnv`
with default settings) runs as tensors on the population's device
(`cartpole.py`). Any other environment dqnlab accepts runs as Gymnasium's
`SyncVectorEnv` of ordinary `make_env` environments, with manual resets, while
the learning stays batched.

Either way member k draws its episode starts from its own seed's `env`
stream, as a single run does, and an episode cut by `env.max_episode_steps`
is reported as truncated, not terminated.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import gymnasium as gym
import numpy as np
import torch

from dqnlab import seeding
from dqnlab.config import EnvConfig
from dqnlab.envs import EnvSpec, make_env
from dqnlab.population import cartpole

CARTPOLE_ENTRY_POINT = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"


class Step(NamedTuple):
    """One step of every member, as tensors on the population's device."""

    next_obs: torch.Tensor  # (N, obs_dim) float32
    reward: torch.Tensor  # (N,) float32
    terminated: torch.Tensor  # (N,) bool
    truncated: torch.Tensor  # (N,) bool


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
    """N CartPoles as one (N, 4) float64 state tensor."""

    def __init__(self, config: EnvConfig, spec: EnvSpec, seeds: list[int], device: torch.device) -> None:
        self.spec, self.device = spec, device
        self.max_steps = config.max_episode_steps
        self.reset_seeds = [seeding.ResetSeeds(seed, "env") for seed in seeds]
        self.state = torch.zeros((len(seeds), cartpole.OBS_DIM), dtype=torch.float64, device=device)  # (N, 4)
        self.length = torch.zeros(len(seeds), dtype=torch.int64, device=device)  # (N,) steps this episode
        self.reward = torch.ones(len(seeds), dtype=torch.float32, device=device)  # (N,) +1 every step, as v1

    def reset(self, members: np.ndarray) -> torch.Tensor:
        index = np.flatnonzero(members)  # (k,)
        fresh = np.stack([cartpole.initial_state(self.reset_seeds[i].next()) for i in index])  # (k, 4)
        where = torch.as_tensor(index, device=self.device)  # (k,)
        self.state[where] = torch.as_tensor(fresh, device=self.device)  # (k, 4)
        self.length[where] = 0
        return self.state.float()  # (N, 4)

    def step(self, action: torch.Tensor) -> Step:
        self.state, terminated = cartpole.step(self.state, action)  # (N, 4), (N,)
        self.length += 1  # (N,)
        if self.max_steps is None:
            truncated = torch.zeros_like(terminated)  # (N,)
        else:
            truncated = self.length >= self.max_steps  # (N,) as TimeLimit: may coincide with terminated
        return Step(self.state.float(), self.reward, terminated, truncated)

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
