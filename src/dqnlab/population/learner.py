"""Batched epsilon-greedy acting and TD updates for a population.

The loss is the *sum* over members of each member's own TD loss (the mean
over its batch, as the single-run learner computes it). Member k's
parameters appear in member k's loss only, so the gradient each member gets
is its own loss's gradient; Adam is elementwise, so one Adam over the
stacked parameters is exactly N independent Adams (tests/test_population.py
checks both). A member whose loss stopped being finite is masked out of the
sum, so it cannot touch the others.

With `td_gradient = "full"` (the tutorial's update: the gradient also flows
through max Q(s')) Q(s) and Q(s') come from one forward pass over
[obs; next_obs], so every matmul is twice as tall and the two paths'
gradients are summed inside the matmuls; "semi" evaluates Q(s') without a
graph.
"""

from __future__ import annotations

import torch

from dqnlab.config import LearnerConfig
from dqnlab.learner import LOSS_FUNCTIONS, make_optimizer, td_pairs
from dqnlab.population.draws import HIGH
from dqnlab.population.network import StackedQNetwork
from dqnlab.replay import Batch


class PopulationLearner:
    """A stacked Q-network, one Adam over its stacked parameters, and batched epsilon-greedy."""

    def __init__(self, network: StackedQNetwork, config: LearnerConfig) -> None:
        self.network, self.config = network, config
        self.optimizer = make_optimizer(network, config.lr)
        self.learn_steps = 0
        self.explore_below = int(config.epsilon * HIGH)  # raw coin < this: a random action

    @torch.no_grad()
    def act(self, obs: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Epsilon-greedy actions (N,) for obs (N, obs_dim); raw (N, 2) draws: a coin and a random action."""
        greedy = self.network(obs.unsqueeze(1)).squeeze(1).argmax(dim=1)  # (N,)
        random_action = raw[:, 1] % self.network.n_actions  # (N,)
        return torch.where(raw[:, 0] < self.explore_below, random_action, greedy)  # (N,)

    def losses(self, batch: Batch) -> torch.Tensor:
        """Each member's TD loss (N,) on its batch of (N, B, ...) tensors."""
        config = self.config
        if config.td_gradient == "full":
            both = self.network(torch.cat((batch.obs, batch.next_obs), dim=1))  # (N, 2B, A)
            q, next_q = both.chunk(2, dim=1)  # (N, B, A) each
        else:
            q = self.network(batch.obs)  # (N, B, A)
            with torch.no_grad():
                next_q = self.network(batch.next_obs)  # (N, B, A)
        q_taken, target = td_pairs(q, next_q, batch, config.gamma)  # (N, B) each
        return LOSS_FUNCTIONS[config.loss](q_taken, target, reduction="none").mean(dim=1)  # (N,)

    def learn(self, batch: Batch, alive: torch.Tensor) -> torch.Tensor:
        """One gradient step for every member where `alive` (N,) is True; returns the losses (N,), detached."""
        losses = self.losses(batch)  # (N,)
        total = torch.where(alive, losses, 0.0).sum()  # ()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.learn_steps += 1
        return losses.detach()
