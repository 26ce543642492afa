"""The experience replay memory: N fixed-capacity rings of transitions in one tensor.

The tutorial keeps transitions in a Python list and, for every batch, stacks
64 lists of objects into arrays (`np.stack(...)` on `memories.T`), which its
author admits is slow. Here the memory is one preallocated float32 tensor of
rows (C, N, F) on the engine's device, slot by slot, each row one member's
transition packed as [obs, next_obs, action, reward, terminated, truncated]
(F = 2 obs_dim + 4 floats; actions are exact as floats below 2**24):

- adding writes the N members' rows of one slot, contiguous, in one copy,
  at the shared cursor: O(1), no allocation (members step in lockstep, so
  their rings fill alike);
- a batch is drawn from raw random numbers (each member's own, see
  `seeding.MemberDraws`) and gathered with one `index_select`; its fields are
  views of the gathered rows (actions and flags converted to the learner's
  dtypes);
- on a full ring the oldest transition is overwritten.

`terminated` is kept apart from `truncated`: an episode cut by a time limit did
not reach a terminal state, so its last transition must still bootstrap from
its next state. Only `terminated` masks the TD target.

`Replay.member(k)` copies one member's ring out as a `Ring` of NumPy arrays,
which saves to and loads from `.npz` without pickle, so loading a file
cannot run code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from dqnlab.errors import DqnlabError

DTYPES = {"obs": torch.float32, "action": torch.int64, "reward": torch.float32,
          "next_obs": torch.float32, "terminated": torch.bool, "truncated": torch.bool}  # fmt: skip
FIELDS = tuple(DTYPES)  # a transition's stored fields, in Batch's order
STORED = torch.float32  # every field is stored as one float of the packed row


class Batch(NamedTuple):
    """A batch of transitions as tensors: (N, B, ...) for N members, or (B, ...) for one network."""

    obs: torch.Tensor  # (..., B, obs_dim) float32
    action: torch.Tensor  # (..., B) int64: indexes Q-values, so it must be long
    reward: torch.Tensor  # (..., B) float32
    next_obs: torch.Tensor  # (..., B, obs_dim) float32
    terminated: torch.Tensor  # (..., B) bool: masks the bootstrap
    truncated: torch.Tensor  # (..., B) bool: recorded, never masks
    # Set by the sampler's options, None otherwise (then the learner uses gamma, 0 at termination, and weight 1):
    discount: torch.Tensor | None = None  # (..., B) float32: the bootstrap's factor, gamma^m or 0 (n-step returns)
    weight: torch.Tensor | None = None  # (..., B) float32: each transition's loss weight (prioritized replay)


def row_width(obs_dim: int) -> int:
    """Floats in one packed transition: obs, next_obs, action, reward, terminated, truncated."""
    return 2 * obs_dim + 4


def bytes_per_transition(obs_dim: int) -> int:
    """Storage bytes one transition takes in the memory (4-float CartPole state: 48)."""
    return row_width(obs_dim) * torch.empty((), dtype=STORED).element_size()


def ring_bytes_per_transition(obs_dim: int) -> int:
    """Bytes one transition takes copied out in the learner's dtypes, as a `Ring` and in replay.npz (CartPole: 46)."""
    return sum(torch.empty((), dtype=dtype).element_size() * (obs_dim if name.endswith("obs") else 1)
               for name, dtype in DTYPES.items())  # fmt: skip


class Replay:
    """N rings of `capacity` transitions as packed rows (C, N, F); `fields()` unpacks them, (N, C, ...).

    >>> replay = Replay(members=1, capacity=3, obs_dim=2, device="cpu")
    >>> for step in range(4):
    ...     replay.add(torch.full((1, 2), step), torch.zeros(1), torch.ones(1),
    ...                torch.full((1, 2), step + 1), torch.zeros(1), torch.zeros(1))
    >>> len(replay), replay.fields().obs[0, :, 0].tolist()  # step 3 overwrote step 0
    (3, [3.0, 1.0, 2.0])
    """

    def __init__(self, members: int, capacity: int, obs_dim: int, device: torch.device | str) -> None:
        if capacity < 1 or obs_dim < 1:
            raise DqnlabError(f"a replay memory needs capacity >= 1 and obs_dim >= 1; got {capacity}, {obs_dim}")
        self.members, self.capacity, self.obs_dim = members, capacity, obs_dim
        self.rows = torch.zeros((capacity, members, row_width(obs_dim)), dtype=STORED, device=device)  # (C, N, F)
        self.member_rows = torch.arange(members, device=device).unsqueeze(1)  # (N, 1): member k's row within a slot
        self.cursor = 0  # where the next transitions go
        self.size = 0  # how many slots hold a transition
        self.added = 0  # transitions ever added, per member

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Store each member's transition (all (N, ...)) at the cursor, overwriting the oldest when full."""
        i = self.cursor
        columns = (obs, next_obs, action.unsqueeze(1), reward.unsqueeze(1), terminated.unsqueeze(1), truncated.unsqueeze(1))
        torch.cat(columns, dim=1, out=self.rows[i])  # (N, F): one contiguous write, converted to floats
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.added += 1

    def newest(self) -> int:
        """The slot of the newest transition (every member's: they share the cursor)."""
        return (self.cursor - 1) % self.capacity

    def indices(self, raw: torch.Tensor, replace: bool = True, combined: bool = False) -> torch.Tensor:
        """Uniform slot indices (N, B) from raw draws (N, B), uniform int64 in [0, 2**62).

        With replacement (the tutorial's `random.choices`): raw mod size, a
        bias below 2**-40. Without: Floyd's algorithm, vectorized over members,
        a uniform B-subset of the slots, no transition twice in a batch.
        `combined` (Zhang & Sutton 2017): the last index is the newest
        transition's, the other B - 1 are drawn as above from the first B - 1
        raw draws (without replacement: from the slots other than the newest).
        """
        if self.size == 0:
            raise DqnlabError("cannot sample from an empty replay memory")
        if combined:
            drawn = raw[:, :-1]  # (N, B - 1)
            others = drawn % self.size if replace else (_distinct(drawn, self.size - 1) + self.cursor) % self.size  # (N, B - 1)
            return with_newest(torch.cat((others, others.new_empty(len(raw), 1)), dim=1), self.newest())  # (N, B)
        if not replace:
            return _distinct(raw, self.size)
        return raw % self.size  # (N, B)

    def gather(self, index: torch.Tensor) -> Batch:
        """Member k's transitions at slots index[k] (B,), as a Batch of (N, B, ...) tensors."""
        return unpack(self.rows_at(index), self.obs_dim)

    def rows_at(self, index: torch.Tensor) -> torch.Tensor:
        """Member k's packed rows at slots index[k] (N, ...): (N, ..., F), with one `index_select`."""
        members = self.member_rows if index.dim() == 2 else self.member_rows.view(-1, *[1] * (index.dim() - 1))  # (N, 1, ...)
        flat = (index * self.members + members).view(-1)  # (N*...,) rows of the (C*N, F) memory
        return self.rows.view(-1, self.rows.shape[2]).index_select(0, flat).view(*index.shape, -1)  # (N, ..., F)

    def fields(self) -> Batch:
        """Every ring's fields, (N, C, ...) in the learner's dtypes, slot by slot (not oldest first)."""
        return unpack(self.rows.transpose(0, 1), self.obs_dim)  # (N, C, ...)

    def member(self, k: int) -> Ring:
        """Member k's stored transitions, oldest first, copied to NumPy."""
        order = torch.arange(self.size) if self.size < self.capacity else (torch.arange(self.capacity) + self.cursor) % self.capacity
        fields = unpack(self.rows[:, k].cpu()[order], self.obs_dim)  # each (size, ...)
        return Ring(capacity=self.capacity, added=self.added, **{name: getattr(fields, name).numpy() for name in FIELDS})


def unpack(rows: torch.Tensor, obs_dim: int) -> Batch:
    """Packed rows (..., F) as a Batch: obs and reward as views, the action and flags converted."""
    d = obs_dim
    return Batch(
        obs=rows[..., :d], action=rows[..., 2 * d].long(), reward=rows[..., 2 * d + 1], next_obs=rows[..., d : 2 * d],
        terminated=rows[..., 2 * d + 2] > 0, truncated=rows[..., 2 * d + 3] > 0,
    )  # fmt: skip


def with_newest(index: torch.Tensor, newest: int) -> torch.Tensor:
    """`index` (N, B) with its last column set to the newest slot, in place: combined replay's batch."""
    index[:, -1] = newest  # (N,)
    return index


def _distinct(raw: torch.Tensor, size: int) -> torch.Tensor:
    """Floyd's sampling of B distinct slots out of `size`, for every member at once."""
    members, batch = raw.shape
    if batch > size:
        raise DqnlabError(f"cannot draw {batch} distinct transitions from {size} stored")
    chosen = torch.empty_like(raw)  # (N, B)
    for i, j in enumerate(range(size - batch, size)):
        t = raw[:, i] % (j + 1)  # (N,) uniform in [0, j]
        taken = (chosen[:, :i] == t.unsqueeze(1)).any(dim=1)  # (N,)
        chosen[:, i] = torch.where(taken, j, t)  # (N,) j itself when t was already chosen
    return chosen


@dataclass(frozen=True)
class Ring:
    """One member's replay memory as NumPy arrays, oldest transition first."""

    capacity: int
    added: int  # transitions ever added; more than stored once the ring wrapped
    obs: np.ndarray  # (S, obs_dim) float32
    action: np.ndarray  # (S,) int64
    reward: np.ndarray  # (S,) float32
    next_obs: np.ndarray  # (S, obs_dim) float32
    terminated: np.ndarray  # (S,) bool
    truncated: np.ndarray  # (S,) bool

    def __len__(self) -> int:
        return len(self.action)
