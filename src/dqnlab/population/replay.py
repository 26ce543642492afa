"""Per-member replay memories in one set of tensors.

Members step in lockstep, so every member adds one transition per step and
all rings share one cursor and one size; what differs is the content and
each member's own draws. Field k of the population is exactly the ring a
single run of member k's seed would hold.
"""

from __future__ import annotations

import torch

from dqnlab.errors import DqnlabError
from dqnlab.replay import FIELDS, Batch, ReplayBuffer


class PopulationReplay:
    """N rings of `capacity` transitions: obs (N, C, obs_dim), action (N, C), ..."""

    def __init__(self, members: int, capacity: int, obs_dim: int, device: torch.device) -> None:
        self.members, self.capacity, self.obs_dim = members, capacity, obs_dim
        layout = ReplayBuffer(1, obs_dim)  # the single-run ring defines each field's shape and dtype
        for name in FIELDS:
            row = torch.from_numpy(getattr(layout, name))  # (1, ...)
            setattr(self, name, torch.zeros((members, capacity, *row.shape[1:]), dtype=row.dtype, device=device))  # (N, C, ...)
        self.bytes_per_transition = layout.bytes_per_transition  # per member, as the single-run ring
        self.offsets = torch.arange(members, device=device).unsqueeze(1) * capacity  # (N, 1): member k's first row
        self.cursor = self.size = self.added = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Store each member's transition (all (N, ...)) at the shared cursor."""
        i = self.cursor
        for name, value in zip(FIELDS, (obs, action, reward, next_obs, terminated, truncated)):
            getattr(self, name)[:, i] = value  # (N, ...)
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        self.added += 1

    def indices(self, raw: torch.Tensor, replace: bool = True) -> torch.Tensor:
        """Uniform slot indices (N, B) from raw draws (N, B), uniform int64 in [0, 2**62).

        With replacement: raw mod size (bias below 2**-40). Without: Floyd's
        algorithm, vectorized over members: a uniform B-subset of the slots.
        """
        if not replace:
            return _distinct(raw, self.size)
        return raw % self.size  # (N, B)

    def gather(self, index: torch.Tensor) -> Batch:
        """Member k's transitions at index[k] (B,), as a Batch of (N, B, ...) tensors."""
        flat = (index + self.offsets).view(-1)  # (N*B,) rows of the (N*C, ...) flattened fields
        fields = (getattr(self, name) for name in FIELDS)  # each (N, C, ...)
        return Batch(*(f.flatten(0, 1).index_select(0, flat).view(*index.shape, *f.shape[2:]) for f in fields))  # each (N, B, ...)

    def member(self, k: int) -> ReplayBuffer:
        """Member k's ring as an ordinary (NumPy) ReplayBuffer, cursor and all."""
        buffer = ReplayBuffer(self.capacity, self.obs_dim)
        for name in FIELDS:
            getattr(buffer, name)[:] = getattr(self, name)[k].cpu().numpy()  # (C, ...)
        buffer.cursor, buffer.size, buffer.added = self.cursor, self.size, self.added
        return buffer


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

