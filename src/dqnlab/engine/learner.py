"""The DQN learner: epsilon-greedy acting and the temporal-difference update.

One learner serves both of the tutorial's agents. The naive agent is the
replay agent with a memory of one transition and batches of one (see
`config.with_agent`); the update below is then the tutorial's
single-transition `learn(state, action, reward, state_, done)`.

The TD update, for each member's batch of B transitions (s, a, r, s', terminated):

    target = r + gamma * (1 - terminated) * max_a' Q(s', a')
    loss   = mean over the batch of (Q(s, a) - target)^2          (MSE)

then one Adam step on the member's own parameters. N members learn at once:
the loss that is differentiated is the sum of the members' losses, so each
member's gradient is its own loss's (member k's parameters appear in member
k's loss only), and Adam is elementwise, so one Adam over the stacked
parameters is N independent Adams.

`td_gradient` says what the gradient sees:

- "full" (the tutorial's code): `max Q(s')` is never detached, so the update
  also moves Q(s') towards Q(s) - r. This is a residual-gradient update, not
  what DQN papers describe, and it comes from the tutorial by accident.
- "semi" (standard DQN, Mnih et al. 2015): the target is a constant; only
  Q(s, a) moves.

`td_loss` and `reference_step` below are the readable reference, with
autograd. Training runs the same update through `kernel.LearnStep`, written
out by hand for speed and tested against this reference and against the
tutorial's own code (tests/test_learner.py).

Adding an algorithm option (a target network, double DQN, n-step returns)
happens once, for every backend, in two matching places: the target in
`td_loss` here, and the same target in `LearnStep.head` (the kernel's
forward and backward through the network do not change, since an option
only changes which Q-values the loss reads and what it compares them with).
The kernel test then parametrizes over the new option. A target network, for
instance, is a second `StackedQNetwork` whose Q(s') replaces `next_q` in both
places, with no gradient, copied from the online one every K learn steps.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from dqnlab.config import LearnerConfig
from dqnlab.engine.kernel import LearnStep
from dqnlab.engine.network import QNetwork, StackedQNetwork
from dqnlab.engine.replay import Batch
from dqnlab.seeding import HIGH

ELEMENTWISE_LOSSES = {"mse": F.mse_loss, "huber": F.smooth_l1_loss}  # smooth L1 with beta 1 is Huber with delta 1


def td_loss(network, batch: Batch, gamma: float, td_gradient: str, loss: str) -> torch.Tensor:
    """Each member's mean TD loss: (N,) for a batch of (N, B, ...) transitions, () for (B, ...).

    `network` maps observations (..., obs_dim) to Q-values (..., A): a
    `StackedQNetwork` for (N, B, ...) batches, a `QNetwork` for (B, ...).
    """
    q = network(batch.obs)  # (..., B, A)
    q_taken = q.gather(-1, batch.action.unsqueeze(-1)).squeeze(-1)  # (..., B)
    with torch.set_grad_enabled(td_gradient == "full" and torch.is_grad_enabled()):
        next_q = network(batch.next_obs)  # (..., B, A)
    next_value = next_q.max(dim=-1).values  # (..., B): the tutorial's torch.max(...)[0]
    target = batch.reward + gamma * (~batch.terminated) * next_value  # (..., B)
    return ELEMENTWISE_LOSSES[loss](q_taken, target, reduction="none").mean(dim=-1)  # (...,)


def make_optimizer(params, lr: float) -> torch.optim.Adam:
    """Adam with PyTorch's defaults (betas 0.9/0.999, eps 1e-8), as the tutorial uses.

    `fused=True` runs the same update as one kernel per step instead of a
    Python loop of tensor ops (faster: benchmarks/RESULTS.md), with float
    rounding that can differ from the loop version in the last bit. The
    kernel calls that fused kernel directly (`kernel.FusedAdam`).
    """
    return torch.optim.Adam(params, lr=lr, fused=True)


def reference_step(network: StackedQNetwork, optimizer: torch.optim.Optimizer, batch: Batch, alive: torch.Tensor,
                   config: LearnerConfig) -> torch.Tensor:  # fmt: skip
    """One TD update with autograd for every member where `alive` (N,) is True; returns the losses (N,).

    `optimizer` steps `network.params`. This is what `kernel.LearnStep` computes.
    """
    losses = td_loss(network, batch, config.gamma, config.td_gradient, config.loss)  # (N,)
    optimizer.zero_grad(set_to_none=False)
    torch.where(alive, losses, 0.0).sum().backward()  # a dead member's loss, NaN or not, is left out
    optimizer.step()
    return losses.detach()


class Learner:
    """N members' stacked Q-networks: epsilon-greedy acting, and the TD update through the fast kernel."""

    def __init__(self, network: StackedQNetwork, config: LearnerConfig, batch_size: int) -> None:
        self.network = network
        self.step = LearnStep(network, config, batch_size)
        self.explore_below = int(config.epsilon * HIGH)  # raw coin < this: a random action

    @torch.no_grad()
    def act(self, obs: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """Epsilon-greedy actions (N,) for obs (N, obs_dim); raw (N, 2) draws: a coin and a random action.

        As in the tutorial, the random action may equal the greedy one; on a
        tie of Q-values the first action wins, as `torch.argmax` does.
        """
        greedy = self.network(obs.unsqueeze(1)).squeeze(1).argmax(dim=1)  # (N,)
        random_action = raw[:, 1] % self.network.n_actions  # (N,)
        return torch.where(raw[:, 0] < self.explore_below, random_action, greedy)  # (N,)

    def learn(self, batch: Batch, alive: torch.Tensor | None = None) -> torch.Tensor:
        """One gradient step for every member where `alive` (N,) is True (None: all); returns the losses (N,)."""
        return self.step(batch, alive)


@torch.inference_mode()
def greedy_action(network: QNetwork, obs: np.ndarray, device: torch.device) -> int:
    """One network's action with the highest Q-value (the first one on a tie, like torch.argmax)."""
    x = torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0)  # (1, obs_dim)
    return int(network(x).argmax(dim=1).item())
