"""What each learn step reads from the replay memory: which transitions, with what return and what weight.

The memory (`replay.Replay`) only stores; the `Sampler` decides, from each
member's own raw draws (the `replay` stream, B per learn step whatever the
options), how a batch is made:

- which slots: uniform with or without replacement (the tutorial draws with),
  or in proportion to priority (`replay.prioritized`, Schaul et al. 2016,
  `priority.Priorities`); with `replay.combined` the batch's last transition
  is always the newest one (Zhang & Sutton 2017), and the other B - 1 are
  drawn as usual (its raw draw is then unused, so the stream stays in step);
- what return: one step (the tutorial's), or n steps (`learner.n_step`,
  `nstep.n_step_returns`), whose bootstrap factor gamma^m goes to the learner
  as the batch's `discount`;
- what weight: with prioritized replay, importance weights
  (size P(i))^-beta / the batch's largest, beta rising linearly from
  `replay.priority_beta` at sample 0 to 1 at the end of the budget, as the
  batch's `weight`; after the learn step, the batch's TD errors become its
  transitions' new priorities (`learned`).

Every option works member by member on (N, ...) tensors, so member k's
batches are those of its single run.
"""

from __future__ import annotations

import torch

from dqnlab.config import Config
from dqnlab.engine.nstep import n_step_returns
from dqnlab.engine.priority import Priorities
from dqnlab.engine.replay import Batch, Replay, with_newest


class Sampler:
    """Stores transitions in `memory` and draws each learn step's Batch as `config.replay` and `config.learner` say."""

    def __init__(self, memory: Replay, config: Config, device: torch.device | str) -> None:
        replay, learner = config.replay, config.learner
        self.memory, self.replace, self.combined = memory, replay.with_replacement, replay.combined
        self.n_step, self.gamma = learner.n_step, learner.gamma
        self.priorities = None
        if replay.prioritized:
            self.priorities = Priorities(memory.members, memory.capacity, replay.priority_alpha, replay.priority_epsilon, device)
        self.beta, self.samples = replay.priority_beta, config.run.samples
        self.index: torch.Tensor | None = None  # (N, B): the last batch's slots

    def add(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        """Store each member's transition (all (N, ...)); a prioritized one gets its member's largest priority."""
        slot = self.memory.cursor
        self.memory.add(obs, action, reward, next_obs, terminated, truncated)
        if self.priorities is not None:
            self.priorities.added(slot)

    def draw(self, raw: torch.Tensor, sample: int) -> Batch:
        """The Batch (N, B, ...) for a learn step at the `sample`-th transition, from raw draws (N, B)."""
        if self.priorities is None:
            index = self.memory.indices(raw, self.replace, self.combined)  # (N, B)
        else:
            index = self.priorities.sample(raw)  # (N, B)
            if self.combined:
                index = with_newest(index, self.memory.newest())  # (N, B)
        self.index = index
        if self.n_step == 1:
            batch = self.memory.gather(index)
        else:
            batch, discount = n_step_returns(self.memory, index, self.n_step, self.gamma)
            batch = batch._replace(discount=discount)  # (N, B)
        if self.priorities is not None:
            beta = self.beta + (1.0 - self.beta) * min(1.0, sample / self.samples)
            batch = batch._replace(weight=self.priorities.weights(index, len(self.memory), beta))  # (N, B)
        return batch

    def learned(self, errors: torch.Tensor | None) -> None:
        """The last batch's TD errors (N, B) become its transitions' priorities (prioritized replay only)."""
        if self.priorities is not None:
            self.priorities.update(self.index, errors)
