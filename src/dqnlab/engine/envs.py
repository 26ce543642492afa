"""Environments: checking a Gymnasium id, and stepping one environment per member.

Any registered environment with a `Discrete` action space and either a flat
(1-D) `Box` observation or binary image frames (a 3-D `Box` of 0/1 values,
H x W x C, as MinAtar's 10 x 10 x C) works; other images (an Atari screen's
0-255 colours) are refused. Frames are flattened, row by row with channels
last, into vectors of H * W * C floats: the engine handles one kind of
observation, a `network.conv` network reads them back as frames, and the
replay memory stores them as bits (`replay.BitRows`).

MinAtar's games (`MinAtar/Breakout-v1`, ...; v0: the full set of 6 actions)
need `pip install 'dqnlab[minatar]'`; dqnlab registers them with Gymnasium
when an id asks for one. Without a time limit (`env.max_episode_steps` absent)
the environment is used `.unwrapped`, exactly as the tutorial does; with one,
episodes are cut at that many steps and reported as *truncated*, not
terminated, so the learner still bootstraps from their last state.

The engine steps N >= 1 members at once through one interface, `MemberEnvs`:

- CartPole (any registered id whose entry point is Gymnasium's `CartPoleEnv`
  with default settings) runs as arrays, NumPy on the CPU (Gymnasium's
  states bit for bit) and torch tensors on a GPU (`cartpole.py`, tested
  against Gymnasium's);
- any other environment runs as Gymnasium's `SyncVectorEnv` of `make_env`
  environments, reset by hand.

Either way member k draws its episode starts from its own seed's `env`
stream, so seed k starts episode i from the same state on every backend and
for every agent. `make_env` gives one ordinary Gymnasium environment, for
greedy play, GIFs and the probe.
"""

from __future__ import annotations

import os
import warnings
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
MINATAR = "MinAtar/"  # the namespace MinAtar's games register under
SUPPORTED = "dqnlab supports a flat Box (a 1-D vector of numbers) or binary frames (a 3-D Box of 0/1 values, H x W x C, as MinAtar's)"


@dataclass(frozen=True)
class EnvSpec:
    """What the learner needs to know about an environment."""

    id: str
    obs_dim: int  # numbers in one observation: a frame's H * W * C
    n_actions: int
    registered_max_steps: int | None  # the limit Gymnasium registers; None if none
    frame: tuple[int, int, int] | None = None  # (H, W, C) of binary frames; None for vectors

    @property
    def binary(self) -> bool:
        """Observations are 0/1 cells (frames): the replay memory stores them as bits."""
        return self.frame is not None


def make_env(config: EnvConfig, render_mode: str | None = None) -> tuple[gym.Env, EnvSpec]:
    """Build the environment and check that dqnlab can learn on it."""
    if render_mode is not None:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # render off-screen, no display needed
    if config.id.startswith(MINATAR):
        register_minatar(config.id)
    try:
        with warnings.catch_warnings():  # MinAtar's v0 ids (the paper's 6 actions) are "out of date" to Gymnasium
            warnings.filterwarnings("ignore", message=".*is out of date.*")
            wrapped = gym.make(config.id, render_mode=render_mode)
    except gym.error.DependencyNotInstalled as error:
        raise DqnlabError(f"environment {config.id!r} needs a package that is not installed: {error}") from None
    except gym.error.Error as error:
        raise DqnlabError(f"unknown environment {config.id!r} ({error}); any registered Gymnasium id works") from None
    registered = wrapped.spec.max_episode_steps if wrapped.spec is not None else None
    env: gym.Env = wrapped.unwrapped
    if config.max_episode_steps is not None:
        env = TimeLimit(env, max_episode_steps=config.max_episode_steps)
    obs_dim, n_actions, frame = _check_spaces(env, config.id)
    return env, EnvSpec(config.id, obs_dim, n_actions, registered_max_steps=registered, frame=frame)


def register_minatar(env_id: str) -> None:
    """Register MinAtar's games with Gymnasium (its package does not, under Gymnasium 1.x); one line if it is missing."""
    if env_id in gym.registry:
        return
    try:
        from minatar.gym import register_envs
    except ImportError:
        raise DqnlabError(f"environment {env_id!r} needs the minatar package, which is not installed: "
                          "pip install 'dqnlab[minatar]'") from None  # fmt: skip
    register_envs()


def _check_spaces(env: gym.Env, env_id: str) -> tuple[int, int, tuple[int, int, int] | None]:
    """(obs_dim, n_actions, frame) of a usable environment; a one-line DqnlabError, the environment closed, otherwise."""
    obs_space, action_space = env.observation_space, env.action_space

    def refuse(problem: str) -> DqnlabError:
        env.close()
        return DqnlabError(f"environment {env_id!r} has {problem}")

    if not isinstance(action_space, gym.spaces.Discrete):
        raise refuse(f"a {type(action_space).__name__} action space; dqnlab needs a Discrete one "
                     "(Q-learning picks the best of finitely many actions)")  # fmt: skip
    shape = getattr(obs_space, "shape", None)
    if not isinstance(obs_space, gym.spaces.Box) or len(shape) not in (1, 3):
        raise refuse(f"a {type(obs_space).__name__} observation space of shape {shape}; {SUPPORTED}")
    numbers = obs_space.dtype == np.bool_ or np.issubdtype(obs_space.dtype, np.floating) or np.issubdtype(obs_space.dtype, np.integer)
    if not numbers:
        raise refuse(f"{obs_space.dtype} observations; dqnlab needs numbers")
    if len(shape) == 3:
        binary = obs_space.dtype == np.bool_ or (np.all(obs_space.low == 0) and np.all(obs_space.high == 1))
        if not binary:
            low, high = np.min(obs_space.low), np.max(obs_space.high)
            raise refuse(f"image observations of shape {shape} with values in [{low:g}, {high:g}]; {SUPPORTED}")
        return int(np.prod(shape)), int(action_space.n), (int(shape[0]), int(shape[1]), int(shape[2]))
    return int(shape[0]), int(action_space.n), None


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

    On the CPU, the physics runs on NumPy arrays (`cartpole.step`: about 2 us
    a step for one cart and 29 us for 128, where the same step as torch
    operations on the CPU takes about 50 us for one) and steps hand back
    torch views of its arrays (the observation's float32 copy, the flags).
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
        array = np.asarray(array)
        if dtype is torch.float32 and array.ndim > 2:  # frames (N, H, W, C): flattened, as the engine keeps them
            array = array.reshape(len(array), -1)  # (N, obs_dim)
        return torch.as_tensor(array, device=self.device).to(dtype)

    def close(self) -> None:
        self.vector.close()
