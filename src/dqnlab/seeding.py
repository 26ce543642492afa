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

Streams are `SeedSequence(seed, spawn_key=(stream,))`, NumPy's recommended way
to derive independent streams from one seed.
"""

from __future__ import annotations

import numpy as np
import torch

STREAMS = {"network": 0, "env": 1, "explore": 2, "replay": 3, "evaluate": 4}


def seed_sequence(seed: int, stream: str) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(STREAMS[stream],))


def numpy_generator(seed: int, stream: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, stream)))


def torch_generator(seed: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    state = seed_sequence(seed, stream).generate_state(1, np.uint64)[0]
    generator = torch.Generator(device=device)
    generator.manual_seed(int(state) >> 1)  # manual_seed takes values below 2**63
    return generator


class ResetSeeds:
    """An endless, reproducible sequence of per-episode reset seeds."""

    def __init__(self, seed: int, stream: str = "env") -> None:
        self._rng = numpy_generator(seed, stream)

    def next(self) -> int:
        return int(self._rng.integers(2**31 - 1))
