"""The experience replay buffer: a fixed-capacity ring of transitions.

The tutorial keeps transitions in a Python list and, for every batch, stacks
64 lists of objects into arrays (`np.stack(...)` on `memories.T`), which its
author admits is slow. Here each field lives in one preallocated NumPy array:

- adding writes one row per field at the ring's cursor: O(1), no allocation;
- sampling draws all indices in one vectorized call and gathers each field
  with one fancy-indexing copy;
- on a full ring the oldest transition is overwritten.

`terminated` is kept apart from `truncated`: an episode cut by a time limit did
not reach a terminal state, so its last transition must still bootstrap from
its next state. Only `terminated` masks the TD target.

Save and load use `.npz` without pickle, so loading a file cannot run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from dqnlab.errors import DqnlabError

FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")


class Batch(NamedTuple):
    """A batch of B transitions as tensors on the learner's device."""

    obs: torch.Tensor  # (B, obs_dim) float32
    action: torch.Tensor  # (B,) int64: indexes Q-values, so it must be long
    reward: torch.Tensor  # (B,) float32
    next_obs: torch.Tensor  # (B, obs_dim) float32
    terminated: torch.Tensor  # (B,) bool: masks the bootstrap
    truncated: torch.Tensor  # (B,) bool: recorded, never masks


class ReplayBuffer:
    """Fixed-capacity ring of transitions with uniform sampling.

    >>> buffer = ReplayBuffer(capacity=3, obs_dim=2)
    >>> for step in range(4):
    ...     buffer.add([step, step], 0, 1.0, [step + 1, step + 1], False, False)
    >>> len(buffer), buffer.obs[:, 0].tolist()  # step 3 overwrote step 0
    (3, [3.0, 1.0, 2.0])
    """

    def __init__(self, capacity: int, obs_dim: int) -> None:
        if capacity < 1 or obs_dim < 1:
            raise DqnlabError(f"a replay buffer needs capacity >= 1 and obs_dim >= 1; got {capacity}, {obs_dim}")
        self.capacity, self.obs_dim = capacity, obs_dim
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)  # (C, obs_dim)
        self.action = np.zeros(capacity, dtype=np.int64)  # (C,)
        self.reward = np.zeros(capacity, dtype=np.float32)  # (C,)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)  # (C, obs_dim)
        self.terminated = np.zeros(capacity, dtype=np.bool_)  # (C,)
        self.truncated = np.zeros(capacity, dtype=np.bool_)  # (C,)
        self.cursor = 0  # where the next transition goes
        self.size = 0  # how many slots hold a transition
        self.added = 0  # transitions ever added

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action: int, reward: float, next_obs, terminated: bool, truncated: bool) -> None:
        """Store one transition at the cursor, overwriting the oldest when full."""
        i = self.cursor
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        self.truncated[i] = truncated
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.added += 1

    def sample_indices(self, batch_size: int, rng: np.random.Generator, replace: bool = True) -> np.ndarray:
        """Uniform slot indices (B,) over the stored transitions.

        With replacement this is the tutorial's `random.choices`; without, no
        transition appears twice in a batch (needs size >= batch_size).
        """
        if self.size == 0:
            raise DqnlabError("cannot sample from an empty replay buffer")
        if replace:
            return rng.integers(0, self.size, size=batch_size)  # (B,)
        if batch_size > self.size:
            raise DqnlabError(f"cannot draw {batch_size} distinct transitions from {self.size} stored")
        return rng.choice(self.size, size=batch_size, replace=False)  # (B,)

    def gather(self, indices: np.ndarray, device: torch.device | str = "cpu") -> Batch:
        """The transitions at `indices` (B,) as tensors on `device`."""
        return Batch(*(torch.from_numpy(getattr(self, name)[indices]).to(device) for name in FIELDS))

    def sample(self, batch_size: int, rng: np.random.Generator, replace: bool = True, device="cpu") -> Batch:
        return self.gather(self.sample_indices(batch_size, rng, replace), device)

    @property
    def bytes_per_transition(self) -> int:
        """Storage bytes one transition takes (4-float CartPole state: 46)."""
        return sum(getattr(self, name)[0].nbytes for name in FIELDS)

    @property
    def nbytes(self) -> int:
        """Bytes preallocated for the whole ring."""
        return self.bytes_per_transition * self.capacity

    # ------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        """Write the stored transitions, oldest first, to an .npz file (no pickle)."""
        order = self._chronological()
        arrays = {name: getattr(self, name)[order] for name in FIELDS}
        meta = np.array([self.capacity, self.obs_dim, self.added], dtype=np.int64)
        np.savez(Path(path), meta=meta, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "ReplayBuffer":
        """Read a buffer written by `save`; refuses pickled or malformed files."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                capacity, obs_dim, added = (int(v) for v in data["meta"])
                arrays = {name: data[name] for name in FIELDS}
        except (OSError, KeyError, ValueError) as error:
            raise DqnlabError(f"{path} is not a dqnlab replay file: {error}") from None
        size = len(arrays["action"])
        if size > capacity or arrays["obs"].shape != (size, obs_dim):
            raise DqnlabError(f"{path} is inconsistent: {size} transitions for capacity {capacity}, obs_dim {obs_dim}")
        buffer = cls(capacity, obs_dim)
        for name in FIELDS:
            getattr(buffer, name)[:size] = arrays[name]
        buffer.size, buffer.cursor, buffer.added = size, size % capacity, added
        return buffer

    def _chronological(self) -> np.ndarray:
        """Slot indices from oldest to newest."""
        if self.size < self.capacity:
            return np.arange(self.size)
        return (np.arange(self.capacity) + self.cursor) % self.capacity
