"""Every random stream of a run, derived from one integer seed.

This is the only module that turns seeds into generators; everything else
receives a `torch.Generator` or `np.random.Generator`. Each purpose has its own
stream, so that two runs with the same seed share what they should share and
nothing else:

- `network`: initial weights. Depends only on the seed, so seed k gives every
  variant of an experiment the same starting weights (for equal shapes).
- `env`: the environment's reset seeds, one per episode. Episode i of seed k
  starts from the same state whatever the agent did before.
- `explore`: epsilon-greedy coin flips and random actions.
- `replay`: which stored transitions each batch draws.
- `evaluate`: reset seeds for greedy play, apart from training's.
- `behaviour`: a fixed behaviour's coin flips and random actions, for learners
  that do not act (engine/behaviour.py); apart from `explore`, which a
  learning behaviour uses as any acting run does.

Streams are `SeedSequence(seed, spawn_key=(stream,))`, NumPy's recommended way
to derive independent streams from one seed.

The engine trains N >= 1 members at once and needs each step's draws as one
(N, ...) tensor: `MemberDraws` draws them from each member's own stream, in
blocks whose size never depends on N. So seed k consumes exactly the same
numbers, in the same order, alone (a single run) or beside any companions
(a population), on every backend.
"""

from __future__ import annotations

import numpy as np
import torch

STREAMS = {"network": 0, "env": 1, "explore": 2, "replay": 3, "evaluate": 4, "behaviour": 5}


def seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(STREAMS[stream],))


def numpy_generator(seed: int, stream: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, stream)))


def torch_generator(seed: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    state = seed_sequence(seed, stream).generate_state(1, np.uint64)[0]
    generator = torch.Generator(device=device)
    generator.manual_seed(int(state) >> 1)  # manual_seed takes values below 2**63
    return generator


HIGH = 2**62  # MemberDraws' raw draws are uniform in [0, HIGH)


class MemberDraws:
    """Each member's raw random numbers from its own seed's stream, drawn in blocks.

    `next()` gives (N, width) int64 uniform in [0, 2**62): row k comes from
    `numpy_generator(seeds[k], stream)` alone, so a member's draws do not
    depend on the population it is in.
    """

    def __init__(self, seeds: list[int], stream: str, width: int, device: str | torch.device = "cpu") -> None:
        self.rngs = [numpy_generator(seed, stream) for seed in seeds]
        self.width, self.device = width, device
        self.block = max(16, 4096 // width)  # draws per refill; never a function of N
        self._drawn: torch.Tensor | None = None
        self._next = 0

    def next(self) -> torch.Tensor:
        if self._drawn is None or self._next == self.block:
            per_member = [rng.integers(0, HIGH, size=(self.block, self.width)) for rng in self.rngs]  # N x (T, W)
            self._drawn = torch.as_tensor(np.stack(per_member, axis=1), device=self.device)  # (T, N, W)
            self._next = 0
        self._next += 1
        return self._drawn[self._next - 1]  # (N, W)


class ResetSeeds:
    """An endless, reproducible sequence of per-episode reset seeds."""

    def __init__(self, seed: int, stream: str = "env") -> None:
        self._rng = numpy_generator(seed, stream)

    def next(self) -> int:
        return int(self._rng.integers(2**31 - 1))
