"""The DQN learner: epsilon-greedy acting and the temporal-difference update.

One learner serves both of the tutorial's agents. The naive agent is the
replay agent with a memory of one transition and batches of one (see
`config.with_agent`); the update below is then the tutorial's
single-transition `learn(state, action, reward, state_, done)`.

The TD update, for each member's batch of B transitions (s, a, r, s', terminated):

    target = r + gamma * (1 - terminated) * max_a' Q(s', a')
    loss   = mean over the batch of (Q(s, a) - target)^2          (MSE)

then one Adam step (or centered RMSProp's, `learner.optimizer`) on the member's own parameters. N members learn at once:
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

The replay lab's options change the target only (standard DQN's additions;
off in the `tutorial` preset):

- a target network (`learner.target_update` "hard" or "polyak",
  `target.TargetNetwork`): Q(s') comes from a copy of the network, without
  gradient, so `td_gradient` must be "semi";
- double DQN (`learner.double`): a' = argmax_a Q(s', a) by the online
  network, its value read from the target network (without one, from the
  online network under no-grad, which is the plain max);
- n-step returns (`learner.n_step`, `nstep.n_step_returns`): the batch's
  reward is the discounted sum of up to n rewards and its `discount` gamma^m
  replaces gamma (0 at termination);
- prioritized replay (`replay.prioritized`): the batch's `weight` weights
  each transition's loss, and the TD errors Q(s, a) - target become
  priorities (`Learner.errors`).

`td_loss` and `reference_step` below are the readable reference, with
autograd. Training runs the same update through `kernel.LearnStep`, written
out by hand for speed and tested against this reference, option by option,
and against the tutorial's own code (tests/test_learner.py, tests/test_kernel.py).
Another option that changes the target goes into both, `td_loss` here and
`LearnStep.head`; the kernel's forward and backward do not change.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from dqnlab.config import LearnerConfig
from dqnlab.engine.kernel import LearnStep
from dqnlab.engine.network import StackedQNetwork
from dqnlab.engine.replay import Batch
from dqnlab.engine.target import TargetNetwork
from dqnlab.seeding import HIGH

ELEMENTWISE_LOSSES = {"mse": F.mse_loss, "huber": F.smooth_l1_loss}  # smooth L1 with beta 1 is Huber with delta 1


def td_loss(network, batch: Batch, gamma: float, td_gradient: str, loss: str, target=None, double: bool = False) -> torch.Tensor:
    """Each member's mean TD loss: (N,) for a batch of (N, B, ...) transitions, () for (B, ...).

    `network` maps observations (..., obs_dim) to Q-values (..., A): a
    `StackedQNetwork` for (N, B, ...) batches, a `QNetwork` for (B, ...).
    `target`, a network of the same kind or None, gives Q(s') for the
    bootstrap without gradient; `double` lets `network` pick a' and the target
    (or, without one, `network` under no-grad) evaluate it. The batch's
    `discount` (n-step returns) replaces gamma (0 at termination), and its
    `weight` (prioritized replay) weights each transition's loss.
    """
    q = network(batch.obs)  # (..., B, A)
    q_taken = q.gather(-1, batch.action.unsqueeze(-1)).squeeze(-1)  # (..., B)
    with torch.set_grad_enabled(td_gradient == "full" and torch.is_grad_enabled()):
        next_q = network(batch.next_obs)  # (..., B, A)
    with torch.no_grad():
        next_target = None if target is None else target(batch.next_obs)  # (..., B, A)
    if double:
        best = next_q.detach().argmax(dim=-1, keepdim=True)  # (..., B, 1): a' = argmax_a Q(s', a)
        next_value = (next_q.detach() if next_target is None else next_target).gather(-1, best).squeeze(-1)  # (..., B)
    else:
        next_value = (next_q if next_target is None else next_target).max(dim=-1).values  # (..., B): the tutorial's torch.max(...)[0]
    if batch.discount is None:
        target_value = batch.reward + gamma * (~batch.terminated) * next_value  # (..., B)
    else:
        target_value = batch.reward + batch.discount * next_value  # (..., B)
    elementwise = ELEMENTWISE_LOSSES[loss](q_taken, target_value, reduction="none")  # (..., B)
    if batch.weight is not None:
        elementwise = elementwise * batch.weight  # (..., B)
    return elementwise.mean(dim=-1)  # (...,)


def make_optimizer(params, lr: float, config: LearnerConfig | None = None) -> torch.optim.Optimizer:
    """Adam with PyTorch's defaults (betas 0.9/0.999, eps 1e-8), as the tutorial uses; with a `config` whose
    `optimizer` is "rmsprop", torch's centered RMSprop instead (its single-tensor code, which
    `kernel.CenteredRMSProp` follows operation for operation).

    `fused=True` runs Adam's update as one kernel per step instead of a
    Python loop of tensor ops (faster: benchmarks/RESULTS.md), with float
    rounding that can differ from the loop version in the last bit. The
    kernel calls that fused kernel directly (`kernel.FusedAdam`).
    """
    if config is not None and config.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=config.rmsprop_alpha, eps=config.rmsprop_eps, centered=True,
                                   foreach=False)  # fmt: skip
    return torch.optim.Adam(params, lr=lr, fused=True)


def reference_step(network: StackedQNetwork, optimizer: torch.optim.Optimizer, batch: Batch, alive: torch.Tensor,
                   config: LearnerConfig, target: TargetNetwork | None = None) -> torch.Tensor:  # fmt: skip
    """One TD update with autograd for every member where `alive` (N,) is True; returns the losses (N,).

    `optimizer` steps `network.params`; `target`, if given, is refreshed
    after the step. This is what `kernel.LearnStep` computes.
    """
    losses = td_loss(network, batch, config.gamma, config.td_gradient, config.loss, target, config.double)  # (N,)
    optimizer.zero_grad(set_to_none=False)
    torch.where(alive, losses, 0.0).sum().backward()  # a dead member's loss, NaN or not, is left out
    optimizer.step()
    if target is not None:
        target.learned()
    return losses.detach()


class Learner:
    """N members' stacked Q-networks: epsilon-greedy acting, and the TD update through the fast kernel."""

    def __init__(self, network: StackedQNetwork, config: LearnerConfig, batch_size: int, keep_errors: bool = False) -> None:
        self.network = network
        self.step = LearnStep(network, config, batch_size, keep_errors)
        self.epsilon, self.epsilon_final, self.decay = config.epsilon, config.epsilon_final, config.epsilon_decay_samples
        self.explore_below = int(config.epsilon * HIGH)  # raw coin < this: a random action

    def epsilon_at(self, sample: int) -> float:
        """Epsilon for the `sample`-th transition (1-based): constant, or falling linearly to `epsilon_final`
        over `epsilon_decay_samples` samples (the first sample uses `epsilon`), then constant."""
        if self.epsilon_final is None:
            return self.epsilon
        return self.epsilon + (self.epsilon_final - self.epsilon) * min(1.0, (sample - 1) / self.decay)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, raw: torch.Tensor, sample: int = 1) -> torch.Tensor:
        """Epsilon-greedy actions (N,) for obs (N, obs_dim); raw (N, 2) draws: a coin and a random action.

        As in the tutorial, the random action may equal the greedy one; on a
        tie of Q-values the first action wins, as `torch.argmax` does.
        """
        if self.epsilon_final is not None:
            self.explore_below = int(self.epsilon_at(sample) * HIGH)
        greedy = self.network(obs.unsqueeze(1)).squeeze(1).argmax(dim=1)  # (N,)
        return epsilon_greedy(greedy, raw, self.explore_below, self.network.n_actions)  # (N,)

    def learn(self, batch: Batch, alive: torch.Tensor | None = None) -> torch.Tensor:
        """One gradient step for every member where `alive` (N,) is True (None: all); returns the losses (N,)."""
        return self.step(batch, alive)

    @property
    def errors(self) -> torch.Tensor | None:
        """The last learn step's TD errors Q(s, a) - target (N, B), kept when asked for (prioritized replay)."""
        return self.step.errors


def epsilon_greedy(greedy: torch.Tensor, raw: torch.Tensor, explore_below: int, n_actions: int) -> torch.Tensor:
    """The greedy actions (N,), each replaced by a random one where its raw coin (N,) < explore_below.

    raw (N, 2) holds each member's draws: the coin, then the random action's draw.
    """
    random_action = raw[:, 1] % n_actions  # (N,)
    return torch.where(raw[:, 0] < explore_below, random_action, greedy)  # (N,)

