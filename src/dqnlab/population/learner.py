"""Batched epsilon-greedy acting and TD updates for a population.

The loss is the *sum* over members of each member's own TD loss (the mean
over its batch, as the single-run learner computes it). Member k's
parameters appear in member k's loss only, so the gradient each member gets
is its own loss's gradient; Adam is elementwise, so one Adam over the
stacked parameters is exactly N independent Adams (tests/test_population.py
checks both). A member whose loss stopped being finite is left out of the
sum, so it cannot touch the others.

The update itself is `step.LearnStep`: the same arithmetic autograd would
do, written out over preallocated buffers.
"""

from __future__ import annotations

import torch

from dqnlab.config import LearnerConfig
from dqnlab.population.draws import HIGH
from dqnlab.population.network import StackedQNetwork
from dqnlab.population.step import LearnStep
from dqnlab.replay import Batch


class PopulationLearner:
    """A stacked Q-network, one Adam over its stacked parameters, and batched epsilon-greedy."""

    def __init__(self, network: StackedQNetwork, config: LearnerConfig, batch_size: int) -> None:
        self.network, self.config = network, config
        self.step = LearnStep(network, config, batch_size)
        self.learn_steps = 0
        self.explore_below = int(config.epsilon * HIGH)  # raw coin < this: a random action

    @torch.no_grad()
    def act(self, obs: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Epsilon-greedy actions (N,) for obs (N, obs_dim); raw (N, 2) draws: a coin and a random action."""
        greedy = self.network(obs.unsqueeze(1)).squeeze(1).argmax(dim=1)  # (N,)
        random_action = raw[:, 1] % self.network.n_actions  # (N,)
        return torch.where(raw[:, 0] < self.explore_below, random_action, greedy)  # (N,)

    def learn(self, batch: Batch, alive: torch.Tensor) -> torch.Tensor:
        """One gradient step for every member where `alive` (N,) is True; returns the losses (N,)."""
        losses = self.step(batch, alive)  # (N,)
        self.learn_steps += 1
        return losses
