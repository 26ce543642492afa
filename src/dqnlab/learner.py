"""The DQN learner: epsilon-greedy acting and the temporal-difference update.

One learner serves both of the tutorial's agents. The naive agent is the
replay agent with a memory of one transition and batches of one (see
`config.with_agent`); the update below is then exactly the tutorial's
single-transition `learn(state, action, reward, state_, done)`.

The TD update, for a batch of B transitions (s, a, r, s', terminated):

    target = r + gamma * (1 - terminated) * max_a' Q(s', a')
    loss   = mean over the batch of (Q(s, a) - target)^2          (MSE)

`td_gradient` says what the gradient sees:

- "full" (the tutorial's code): `max Q(s')` is never detached, so the update
  also moves Q(s') towards Q(s) - r. This is a residual-gradient update, not
  what DQN papers describe, and it comes from the tutorial by accident.
- "semi" (standard DQN, Mnih et al. 2015): the target is a constant; only
  Q(s, a) moves.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from dqnlab.config import LearnerConfig
from dqnlab.networks import QNetwork
from dqnlab.replay import Batch

LOSS_FUNCTIONS = {"mse": F.mse_loss, "huber": F.smooth_l1_loss}


def td_loss(network: QNetwork, batch: Batch, gamma: float, td_gradient: str, loss: str) -> torch.Tensor:
    """The TD loss of `network` on `batch`; see the module docstring."""
    q = network(batch.obs)  # (B, A)
    q_taken = q.gather(1, batch.action.unsqueeze(1)).squeeze(1)  # (B,)
    with torch.set_grad_enabled(td_gradient == "full" and torch.is_grad_enabled()):
        next_q = network(batch.next_obs)  # (B, A)
    next_value = next_q.max(dim=1).values  # (B,)
    target = batch.reward + gamma * (~batch.terminated) * next_value  # (B,)
    return LOSS_FUNCTIONS[loss](q_taken, target)  # ()


def make_optimizer(network: QNetwork, lr: float) -> torch.optim.Adam:
    """Adam with PyTorch's defaults (betas 0.9/0.999, eps 1e-8), as the tutorial uses.

    `fused=True` runs the same update as one kernel per step instead of a
    Python loop of tensor ops (faster: benchmarks/RESULTS.md), with float
    rounding that differs from the loop version in the last bit.
    """
    return torch.optim.Adam(network.parameters(), lr=lr, fused=True)


@torch.inference_mode()
def greedy_action(network: QNetwork, obs: np.ndarray, device: torch.device) -> int:
    """The action with the highest Q-value (the first one on a tie, like torch.argmax)."""
    x = torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0)  # (1, obs_dim)
    return int(network(x).argmax(dim=1).item())


class Learner:
    """A Q-network, its Adam optimizer and an epsilon-greedy policy."""

    def __init__(self, network: QNetwork, config: LearnerConfig, explore_rng: np.random.Generator) -> None:
        self.network = network
        self.config = config
        self.optimizer = make_optimizer(network, config.lr)
        self.explore_rng = explore_rng
        self.device = next(network.parameters()).device
        self.learn_steps = 0

    def act(self, obs: np.ndarray) -> int:
        """Epsilon-greedy: a uniformly random action with probability epsilon.

        As in the tutorial, the random action may equal the greedy one.
        """
        if self.explore_rng.random() < self.config.epsilon:
            return int(self.explore_rng.integers(self.network.n_actions))
        return greedy_action(self.network, obs, self.device)

    def learn(self, batch: Batch) -> torch.Tensor:
        """One gradient step on `batch`; returns the (detached) loss."""
        config = self.config
        loss = td_loss(self.network, batch, config.gamma, config.td_gradient, config.loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.learn_steps += 1
        return loss.detach()
