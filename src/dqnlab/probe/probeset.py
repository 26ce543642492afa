"""The probe set: states to show a network, fixed and saved so results compare; and what each unit does on them.

Three parts (CartPole; other environments get the first two only):

- `greedy`: states the network visits playing greedily, from seeded starts;
- `epsilon`: states from epsilon-greedy play (epsilon 0.5): off the greedy
  path, where a detector's selectivity shows;
- `grid`: a grid over pole angle x pole angular velocity, cart centred and
  still: every unit's response map over the two variables that matter most.

A probe set is a function of (network, environment, seed): the same inputs
give the same states. It is saved as .npz without pickle, with the
environment it came from, so one probe set can serve every checkpoint of a
run, and every run of an experiment. Image observations (MinAtar's frames)
are kept flattened row by row with channels last, as the engine keeps them.

`responses` shows a network the states. A convolution's feature detectors
are its channels, not its H' x W' x channels outputs (every position of a
channel applies the same filter), so a channel's activation on a state is its
largest output over the positions, and where that was is kept (the window
the pictures outline). A fully connected layer's units are its outputs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from dqnlab import seeding
from dqnlab.config import EnvConfig
from dqnlab.engine.envs import make_env
from dqnlab.engine.network import QNetwork, greedy_action
from dqnlab.errors import DqnlabError
from dqnlab.rundir.disk import write_with
from dqnlab.rundir.npzfile import check_array, read_npz

SOURCES = ("greedy", "epsilon", "grid")
PLAYED = 4_000  # states per played part
GRID = 50  # grid points per axis
GRID_THETA = 0.2095  # +-12 degrees: CartPole's termination angle
GRID_THETA_DOT = 2.0  # rad/s
EPISODE_CAP = 500  # steps per probing episode: long enough to see the balanced regime, short enough to vary starts
CARTPOLE_IDS = ("CartPole-v0", "CartPole-v1")


@dataclass(frozen=True)
class ProbeSet:
    env_id: str
    states: np.ndarray  # (S, obs_dim) float32
    source: np.ndarray  # (S,) int8: index into SOURCES
    grid_theta: np.ndarray  # (G,) pole angles of the grid; empty without a grid
    grid_theta_dot: np.ndarray  # (G,) angular velocities of the grid
    seed: int

    def __len__(self) -> int:
        return len(self.states)

    @property
    def obs_dim(self) -> int:
        return int(self.states.shape[1])

    def part(self, name: str) -> np.ndarray:
        """Indices (k,) of the states from one source."""
        return np.flatnonzero(self.source == SOURCES.index(name))

    def save(self, path: str | Path) -> None:
        arrays = dict(env_id=np.array(self.env_id), states=self.states, source=self.source,
                      grid_theta=self.grid_theta, grid_theta_dot=self.grid_theta_dot, seed=np.array(self.seed))  # fmt: skip
        write_with(path, lambda handle: np.savez(handle, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> "ProbeSet":
        """A probe set saved by `save`, every array's kind, shape and values checked; one-line DqnlabError otherwise."""
        what = "a dqnlab probe set"
        data = read_npz(path, ("env_id", "states", "source", "grid_theta", "grid_theta_dot", "seed"), what)
        kinds = {"env_id": ("U", 0), "states": ("f", 2), "source": ("iu", 1), "grid_theta": ("f", 1),
                 "grid_theta_dot": ("f", 1), "seed": ("iu", 0)}  # fmt: skip
        data = {name: check_array(path, what, name, data[name], kind, ndim) for name, (kind, ndim) in kinds.items()}
        states, source = data["states"], data["source"]

        def refuse(problem: str) -> DqnlabError:
            return DqnlabError(f"{path} is not {what}: {problem}")

        if states.shape[0] == 0 or states.shape[1] == 0:
            raise refuse(f"states has shape {states.shape}; expected at least one state of at least one observation")
        if len(source) != len(states):
            raise refuse(f"states and sources do not line up ({len(states)} states, {len(source)} sources)")
        if source.min() < 0 or source.max() >= len(SOURCES):
            raise refuse(f"source holds values outside 0..{len(SOURCES) - 1} ({', '.join(SOURCES)})")
        theta, theta_dot = data["grid_theta"], data["grid_theta_dot"]
        if (source == SOURCES.index("grid")).sum() != len(theta) * len(theta_dot):
            raise refuse(f"its grid part does not hold the {len(theta)} x {len(theta_dot)} states its grid axes describe")
        return cls(str(data["env_id"]), states.astype(np.float32), source.astype(np.int8), theta.astype(np.float32),
                   theta_dot.astype(np.float32), int(data["seed"]))  # fmt: skip

    def check(self, env_id: str, obs_dim: int, where: str = "the network") -> None:
        """Refuse a probe set from another environment."""
        if self.env_id != env_id or self.obs_dim != obs_dim:
            raise DqnlabError(
                f"the probe set holds {self.obs_dim}-dimensional states of {self.env_id}, "
                f"but {where} is for {env_id} ({obs_dim} observations); build one for {env_id}"
            )


def build_probe_set(networks: list[QNetwork], env: EnvConfig, seed: int = 0) -> ProbeSet:
    """Greedy and epsilon-greedy states of `networks` (shared equally), plus CartPole's grid."""
    greedy = [_play_states(net, env, seed + i, 0.0, PLAYED // len(networks)) for i, net in enumerate(networks)]
    epsilon = [_play_states(net, env, seed + i, 0.5, PLAYED // len(networks)) for i, net in enumerate(networks)]
    parts = [np.concatenate(greedy), np.concatenate(epsilon)]
    theta = theta_dot = np.zeros(0, dtype=np.float32)
    if env.id in CARTPOLE_IDS:
        theta = np.linspace(-GRID_THETA, GRID_THETA, GRID, dtype=np.float32)  # (G,)
        theta_dot = np.linspace(-GRID_THETA_DOT, GRID_THETA_DOT, GRID, dtype=np.float32)  # (G,)
        t, td = np.meshgrid(theta, theta_dot, indexing="ij")  # (G, G) each: row i is theta[i]
        grid = np.zeros((GRID * GRID, 4), dtype=np.float32)  # (G*G, 4): cart centred and still
        grid[:, 2], grid[:, 3] = t.reshape(-1), td.reshape(-1)
        parts.append(grid)
    else:  # no grid: played states make up the count
        parts = [np.concatenate([p, _play_states(networks[0], env, seed + 1000, e, PLAYED // 2)]) for p, e in zip(parts, (0.0, 0.5))]
    source = np.concatenate([np.full(len(p), i, dtype=np.int8) for i, p in enumerate(parts)])  # (S,)
    return ProbeSet(env.id, np.concatenate(parts).astype(np.float32), source, theta, theta_dot, seed)


def _play_states(network: QNetwork, env_config: EnvConfig, seed: int, epsilon: float, count: int) -> np.ndarray:
    """`count` states (count, obs_dim) visited by epsilon-greedy play from seeded starts."""
    env, _ = make_env(env_config)
    starts, rng = seeding.ResetSeeds(seed, "evaluate"), seeding.numpy_generator(seed, "explore")
    device = next(network.parameters()).device
    states: list[np.ndarray] = []
    with _one_thread():
        while len(states) < count:
            _play_episode(network, env, starts.next(), rng, epsilon, count, states, device)
    env.close()
    return np.stack(states)  # (count, obs_dim)


def _play_episode(network: QNetwork, env, seed: int, rng: np.random.Generator, epsilon: float, count: int,
                  states: list[np.ndarray], device: torch.device) -> None:  # fmt: skip
    """One episode from a seeded start, its states appended (flattened: a frame as the engine keeps it) up to `count`."""
    obs, _ = env.reset(seed=seed)
    for _ in range(EPISODE_CAP):
        states.append(np.asarray(obs, dtype=np.float32).reshape(-1))  # (obs_dim,)
        if rng.random() < epsilon:
            action = int(rng.integers(env.action_space.n))
        else:
            action = greedy_action(network, obs, device)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated or len(states) == count:
            return


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one CPU thread for the block: play asks for one action at a time, and a thread pool's hand-offs
    cost more than they save there (MinAtar's conv network, one greedy action on a busy 2-core machine: 2 ms on 2 threads, 0.34 ms on 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class Responses:
    """A network's units on a probe set: a convolution's channels, a fully connected layer's units."""

    hidden: list[np.ndarray]  # per hidden layer (S, units): a channel's largest output over positions, or a unit's output
    positions: list[np.ndarray | None]  # per hidden layer: (S, channels, 2) (row, column) of that largest output; None if fully connected
    q: np.ndarray  # (S, n_actions)


@torch.no_grad()
def responses(network: QNetwork, states: np.ndarray) -> Responses:
    """Every hidden unit's activation on the states (S, obs_dim), where a channel fired hardest, and the Q-values."""
    x = torch.as_tensor(states, dtype=torch.float32, device=next(network.parameters()).device)  # (S, obs_dim)
    outputs = network.activations(x)  # [(S, H', W', channels) per convolution, then (S, width) per fully connected layer]
    last_dense = bool(outputs) and outputs[-1].dim() == 2
    q = network.layers[-1](outputs[-1]) if last_dense else network(x)  # (S, A)
    hidden, positions = [], []
    for output in outputs:
        values, where = channel_units(output.cpu().numpy()) if output.dim() == 4 else (output.cpu().numpy(), None)
        hidden.append(values)
        positions.append(where)
    return Responses(hidden, positions, q.cpu().numpy())


def activations(network: QNetwork, states: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Each hidden layer's units [(S, units), ...] (a convolution's: its channels' maxima) and the Q-values (S, n_actions)."""
    result = responses(network, states)
    return result.hidden, result.q


def channel_units(conv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A convolution's output (S, H', W', C) as channel units: each channel's largest output per state (S, C), and
    its (row, column) (S, C, 2), the first in row-major order on a tie (a silent channel: (0, 0))."""
    states, _, width, channels = conv.shape
    flat = conv.reshape(states, -1, channels)  # (S, H' * W', C): positions row by row
    best = flat.argmax(axis=1)  # (S, C): index of the first largest position
    values = np.take_along_axis(flat, best[:, None, :], axis=1)[:, 0, :]  # (S, C)
    return values, np.stack(np.divmod(best, width), axis=-1)  # (S, C), (S, C, 2)
