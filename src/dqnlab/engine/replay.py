"""The experience replay memory: N fixed-capacity rings of transitions in one tensor.

The tutorial keeps transitions in a Python list and, for every batch, stacks
64 lists of objects into arrays (`np.stack(...)` on `memories.T`), which its
author admits is slow. Here the memory is one preallocated tensor of rows
(C, N, F) on the engine's device, slot by slot, each row one member's
transition packed as [obs, next_obs, action, reward, terminated, truncated].
How a row is packed is its layout:

- `FloatRows` (vector observations): F = 2 obs_dim + 4 float32s; actions are
  exact as floats below 2**24. A CartPole transition takes 48 bytes;
- `BitRows` (binary frames, `EnvSpec.binary`): F bytes of uint8, each
  observation's 0/1 cells packed 8 to a byte, the action as 4 bytes of
  int32, the reward as the 4 bytes of its float32, then a byte per flag:
  2 ceil(obs_dim / 8) + 10 bytes. A MinAtar Breakout transition (two
  10 x 10 x 4 frames) takes 110 bytes, against 3,216 as float rows: an
  eighth of a byte a cell. Unpacked cells are exactly 0.0 and 1.0, so a
  batch is the same as float rows would give, bit for bit.

Either way:

- adding writes the N members' rows of one slot, contiguous, in one copy,
  at the shared cursor: O(1), no allocation (members step in lockstep, so
  their rings fill alike);
- a batch is drawn from raw random numbers (each member's own, see
  `seeding.MemberDraws`) and gathered with one `index_select`; its fields
  are unpacked from the gathered rows into the learner's dtypes (float rows:
  obs and reward as views, the action and flags converted);
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
STORED = torch.float32  # float rows store every field as one float of the packed row


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


class FloatRows:
    """Vector observations: a row of 2 obs_dim + 4 float32s [obs, next_obs, action, reward, terminated, truncated]."""

    dtype = STORED

    def __init__(self, obs_dim: int) -> None:
        self.obs_dim, self.width = obs_dim, 2 * obs_dim + 4

    def pack(self, into: torch.Tensor, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Write each member's transition (all (N, ...)) into the rows `into` (N, F)."""
        columns = (obs, next_obs, action.unsqueeze(1), reward.unsqueeze(1), terminated.unsqueeze(1), truncated.unsqueeze(1))
        torch.cat(columns, dim=1, out=into)  # (N, F): one contiguous write, converted to floats

    def unpack(self, rows: torch.Tensor) -> Batch:
        """Packed rows (..., F) as a Batch: obs and reward as views, the action and flags converted."""
        d = self.obs_dim
        return Batch(
            obs=rows[..., :d], action=rows[..., 2 * d].long(), reward=rows[..., 2 * d + 1], next_obs=rows[..., d : 2 * d],
            terminated=rows[..., 2 * d + 2] > 0, truncated=rows[..., 2 * d + 3] > 0,
        )  # fmt: skip

    def reward(self, rows: torch.Tensor) -> torch.Tensor:
        """The rewards (...,) float32 of packed rows (..., F)."""
        return rows[..., 2 * self.obs_dim + 1]

    def ended(self, rows: torch.Tensor) -> torch.Tensor:
        """(...,) > 0 where the row's transition terminated or was truncated."""
        return rows[..., 2 * self.obs_dim + 2] + rows[..., 2 * self.obs_dim + 3]


class BitRows:
    """Binary observations: a row of uint8 [obs bits, next_obs bits, action int32, reward float32, terminated, truncated]."""

    dtype = torch.uint8

    def __init__(self, obs_dim: int) -> None:
        self.obs_dim, self.cells = obs_dim, -(-obs_dim // 8)  # bytes per observation
        self.action_at = 2 * self.cells  # the action's 4 bytes, then the reward's 4, then the two flags
        self.width = self.action_at + 10
        self.weights = None  # (8,) 1, 2, ..., 128 and shifts (8,) 0..7, made on the device at first use

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self.weights is None or self.weights.device != device:
            self.shifts = torch.arange(8, dtype=torch.uint8, device=device)  # (8,)
            self.weights = torch.ones(8, dtype=torch.int32, device=device) << self.shifts.int()  # (8,) 1, 2, ..., 128
        return self.weights, self.shifts

    def _bits(self, obs: torch.Tensor) -> torch.Tensor:
        """obs (N, obs_dim) of 0/1 values -> (N, cells) bytes, cell 8j + i in bit i of byte j (NumPy's
        packbits, little bit order, on the CPU: a few microseconds, against ~70 for the torch ops)."""
        if obs.device.type == "cpu":
            return torch.from_numpy(np.packbits(obs.numpy() > 0.5, axis=1, bitorder="little"))  # (N, cells)
        weights, _ = self._constants(obs.device)
        cells = torch.zeros(len(obs), self.cells * 8, dtype=torch.int32, device=obs.device)  # (N, 8 cells): padded with 0
        cells[:, : self.obs_dim] = obs > 0.5
        return (cells.view(len(obs), self.cells, 8) * weights).sum(dim=2).to(torch.uint8)  # (N, cells)

    def _cells(self, packed: torch.Tensor) -> torch.Tensor:
        """Packed bytes (..., cells) -> the 0/1 cells (..., obs_dim) as float32."""
        if packed.device.type == "cpu":
            cells = np.unpackbits(packed.numpy(), axis=-1, count=self.obs_dim, bitorder="little")  # (..., obs_dim) uint8
            return torch.from_numpy(cells.astype(np.float32))
        _, shifts = self._constants(packed.device)
        bits = (packed.unsqueeze(-1) >> shifts) & 1  # (..., cells, 8)
        return bits.flatten(-2)[..., : self.obs_dim].float()  # (..., obs_dim)

    def pack(self, into: torch.Tensor, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Write each member's transition (all (N, ...)) into the rows `into` (N, F)."""
        c, a = self.cells, self.action_at
        into[:, :c], into[:, c:a] = self._bits(obs), self._bits(next_obs)  # (N, cells) each
        into[:, a : a + 4] = action.to(torch.int32).contiguous().view(torch.uint8).view(-1, 4)  # (N, 4): its bytes
        into[:, a + 4 : a + 8] = reward.to(torch.float32).contiguous().view(torch.uint8).view(-1, 4)  # (N, 4)
        into[:, a + 8], into[:, a + 9] = terminated, truncated  # (N,) each, 0 or 1

    def _number(self, rows: torch.Tensor, at: int, dtype: torch.dtype) -> torch.Tensor:
        """The 4-byte number at byte `at` of rows (..., F), as `dtype` (...,)."""
        return rows[..., at : at + 4].clone(memory_format=torch.contiguous_format).view(dtype).squeeze(-1)  # (...,)

    def unpack(self, rows: torch.Tensor) -> Batch:
        """Packed rows (..., F) as a Batch in the learner's dtypes (every field a copy)."""
        c, a = self.cells, self.action_at
        return Batch(
            obs=self._cells(rows[..., :c]), action=self._number(rows, a, torch.int32).long(),
            reward=self._number(rows, a + 4, torch.float32), next_obs=self._cells(rows[..., c:a]),
            terminated=rows[..., a + 8] > 0, truncated=rows[..., a + 9] > 0,
        )  # fmt: skip

    def reward(self, rows: torch.Tensor) -> torch.Tensor:
        return self._number(rows, self.action_at + 4, torch.float32)

    def ended(self, rows: torch.Tensor) -> torch.Tensor:
        return rows[..., self.action_at + 8] + rows[..., self.action_at + 9]


def layout(obs_dim: int, binary: bool = False) -> FloatRows | BitRows:
    """How a transition is packed: bits for binary frames, float32s otherwise."""
    return BitRows(obs_dim) if binary else FloatRows(obs_dim)


def row_width(obs_dim: int) -> int:
    """Floats in one packed transition of vector observations: obs, next_obs, action, reward, terminated, truncated."""
    return FloatRows(obs_dim).width


def bytes_per_transition(obs_dim: int, binary: bool = False) -> int:
    """Storage bytes one transition takes in the memory (4-float CartPole state: 48; MinAtar Breakout's frames: 110)."""
    rows = layout(obs_dim, binary)
    return rows.width * torch.empty((), dtype=rows.dtype).element_size()


def ring_bytes_per_transition(obs_dim: int) -> int:
    """Bytes one transition takes copied out in the learner's dtypes, as a `Ring` and in replay.npz (CartPole: 46)."""
    return sum(torch.empty((), dtype=dtype).element_size() * (obs_dim if name.endswith("obs") else 1)
               for name, dtype in DTYPES.items())  # fmt: skip


class Replay:
    """N rings of `capacity` transitions as packed rows (C, N, F) in `layout`; `fields()` unpacks them, (N, C, ...).

    >>> replay = Replay(members=1, capacity=3, obs_dim=2, device="cpu")
    >>> for step in range(4):
    ...     replay.add(torch.full((1, 2), step), torch.zeros(1), torch.ones(1),
    ...                torch.full((1, 2), step + 1), torch.zeros(1), torch.zeros(1))
    >>> len(replay), replay.fields().obs[0, :, 0].tolist()  # step 3 overwrote step 0
    (3, [3.0, 1.0, 2.0])
    """

    def __init__(self, members: int, capacity: int, obs_dim: int, device: torch.device | str, binary: bool = False) -> None:
        if capacity < 1 or obs_dim < 1:
            raise DqnlabError(f"a replay memory needs capacity >= 1 and obs_dim >= 1; got {capacity}, {obs_dim}")
        self.members, self.capacity, self.obs_dim = members, capacity, obs_dim
        self.layout = layout(obs_dim, binary)  # FloatRows or BitRows
        self.rows = torch.zeros((capacity, members, self.layout.width), dtype=self.layout.dtype, device=device)  # (C, N, F)
        self.member_rows = torch.arange(members, device=device).unsqueeze(1)  # (N, 1): member k's row within a slot
        self.cursor = 0  # where the next transitions go
        self.size = 0  # how many slots hold a transition
        self.added = 0  # transitions ever added, per member

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Store each member's transition (all (N, ...)) at the cursor, overwriting the oldest when full."""
        i = self.cursor
        self.layout.pack(self.rows[i], obs, action, reward, next_obs, terminated, truncated)  # (N, F)
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
        return self.layout.unpack(self.rows_at(index))

    def rows_at(self, index: torch.Tensor) -> torch.Tensor:
        """Member k's packed rows at slots index[k] (N, ...): (N, ..., F), with one `index_select`."""
        members = self.member_rows if index.dim() == 2 else self.member_rows.view(-1, *[1] * (index.dim() - 1))  # (N, 1, ...)
        flat = (index * self.members + members).view(-1)  # (N*...,) rows of the (C*N, F) memory
        return self.rows.view(-1, self.rows.shape[2]).index_select(0, flat).view(*index.shape, -1)  # (N, ..., F)

    def fields(self) -> Batch:
        """Every ring's fields, (N, C, ...) in the learner's dtypes, slot by slot (not oldest first)."""
        return self.layout.unpack(self.rows.transpose(0, 1))  # (N, C, ...)

    def member(self, k: int) -> Ring:
        """Member k's stored transitions, oldest first, copied to NumPy."""
        order = torch.arange(self.size) if self.size < self.capacity else (torch.arange(self.capacity) + self.cursor) % self.capacity
        fields = self.layout.unpack(self.rows[:, k].cpu()[order])  # each (size, ...)
        return Ring(capacity=self.capacity, added=self.added, **{name: getattr(fields, name).numpy() for name in FIELDS})


def with_newest(index: torch.Tensor, newest: int) -> torch.Tensor:
    """`index` (N, B) with its last column set to the newest slot, in place: combined replay's batch."""
    index[:, -1] = newest  # (N,)
    return index


def _distinct(raw: torch.Tensor, size: int) -> torch.Tensor:
    """Floyd's sampling of B distinct slots out of `size`, for every member at once.

    Step i (j = size - B + i) draws t_i = raw_i mod (j + 1) and takes it, or j
    itself when t_i was taken before. Where no t_i equals an earlier t or an
    earlier j (j's are size - B, ..., so t_i >= size - B is such a clash), every
    step takes its t_i: those members' slots are t, computed at once. Only
    members with a clash (for B = 32 out of 5,000 slots, about one draw in ten)
    walk the steps one by one: the same slots as the walk for all, at a
    fraction of its cost (32 steps of torch calls took about 1 ms).
    """
    members, batch = raw.shape
    if batch > size:
        raise DqnlabError(f"cannot draw {batch} distinct transitions from {size} stored")
    if batch == 1:  # one step, which takes its t: raw mod size (the naive agent's memory of one)
        return raw % size
    bound = torch.arange(size - batch + 1, size + 1, device=raw.device)  # (B,) j + 1
    t = raw % bound  # (N, B) t_i uniform in [0, j]
    earlier = torch.ones(batch, batch, dtype=torch.bool, device=raw.device).triu_(1)  # (B, B): i' < i
    repeats = ((t.unsqueeze(2) == t.unsqueeze(1)) & earlier).any(dim=1)  # (N, B) t_i equals an earlier t
    clash = (repeats | (t >= size - batch)).any(dim=1)  # (N,) members whose walk may take some j
    if not clash.any():
        return t
    chosen = t.clone()  # (N, B)
    for k in torch.nonzero(clash).flatten().tolist():
        row, taken = t[k].tolist(), set()
        for i, j in enumerate(range(size - batch, size)):
            row[i] = j if row[i] in taken else row[i]
            taken.add(row[i])
        chosen[k] = torch.tensor(row, device=raw.device)
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
