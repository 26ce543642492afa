"""The target network: a second copy of the online stack's parameters, which the bootstrap reads.

Standard DQN (Mnih et al. 2015) computes r + gamma max_a' Q_target(s', a')
with a copy of the network that stays fixed between refreshes, so the
target does not move with every update it causes. Two ways to refresh it:

- "hard": copy the online parameters every `target_every` learn steps
  (Mnih et al.'s C);
- "polyak": after every learn step, target <- tau online + (1 - tau) target
  (Lillicrap et al. 2016), computed by `torch.lerp` as target + tau (online -
  target) for tau < 0.5 and online - (1 - tau) (online - target) from 0.5 on.

The copy is a `StackedQNetwork` of its own (N members, one flat buffer laid out
like the online one), made at the start from the initial weights, so the
target equals the online network until the first refresh. Members learn in
lockstep, so one learn-step count serves them all: member k's target is
refreshed exactly as in its single run.
"""

from __future__ import annotations

import torch

from dqnlab.config import LearnerConfig
from dqnlab.engine.network import StackedQNetwork


class TargetNetwork:
    """A frozen copy of `online`, refreshed by `learned()` after every learn step as `config.target_update` says."""

    def __init__(self, online: StackedQNetwork, config: LearnerConfig) -> None:
        self.online = online.params.detach()  # (P,)
        self.network = StackedQNetwork([online.member(k) for k in range(online.members)], online.params.device)
        self.params = self.network.params.detach()  # (P,) what `learned` writes
        self.weights_t, self.biases = self.network.weights_t, self.network.biases  # (N, in, out), (N, 1, out): the kernel reads these
        self.hard, self.every, self.tau = config.target_update == "hard", config.target_every, config.target_tau
        self.learn_steps = 0

    @torch.no_grad()
    def __call__(self, obs: torch.Tensor) -> torch.Tensor:
        """Q_target (N, B, A) of obs (N, B, obs_dim), without gradient."""
        return self.network(obs)

    @torch.no_grad()
    def learned(self) -> None:
        """Count one learn step of the online network and refresh the copy if it is due."""
        self.learn_steps += 1
        if self.hard:
            if self.learn_steps % self.every == 0:
                self.params.copy_(self.online)  # (P,)
        else:
            self.params.lerp_(self.online, self.tau)  # (P,): target + tau (online - target)
