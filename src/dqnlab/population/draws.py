"""Each member's random numbers, drawn from its own seed's streams in blocks.

A single run draws one number at a time from NumPy generators; a population
needs N numbers per step as one tensor. Drawing a block of T steps per
member at once keeps the Python cost per step constant, and keeps member k's
numbers a function of member k's seed alone.
"""

from __future__ import annotations

import numpy as np
import torch

HIGH = 2**62  # raw draws are uniform in [0, HIGH)


class MemberDraws:
    """Each member's raw random numbers, from its own seed's stream, drawn in blocks.

    `next()` gives (N, width) int64 uniform in [0, 2**62): row k comes from
    `seeding.numpy_generator(seeds[k], stream)` alone, so a member's draws do
    not depend on the population it is in.
    """

    def __init__(self, rngs: list[np.random.Generator], width: int, device: torch.device) -> None:
        self.rngs, self.width, self.device = rngs, width, device
        self.block = max(16, 4096 // width)  # draws per refill; never a function of N
        self._drawn, self._next = None, 0

    def next(self) -> torch.Tensor:
        if self._drawn is None or self._next == self.block:
            per_member = [rng.integers(0, HIGH, size=(self.block, self.width)) for rng in self.rngs]  # N x (T, W)
            self._drawn = torch.as_tensor(np.stack(per_member, axis=1), device=self.device)  # (T, N, W)
            self._next = 0
        self._next += 1
        return self._drawn[self._next - 1]  # (N, W)
