"""n-step returns read straight out of the replay memory.

A one-step TD target r + gamma * max Q(s') propagates a reward back by one
transition per update. The n-step target (Sutton & Barto 2018, section 7.1)

    G = r_t + gamma r_{t+1} + ... + gamma^(m-1) r_{t+m-1}
    target = G + gamma^m * (1 - terminated) * max_a' Q(s_{t+m}, a')

moves it back by n, at the price of rewards gathered by an older policy.
Rainbow (Hessel et al. 2018) and the replay study of Fedus et al. (2020),
which found n-step returns the ingredient that lets DQN use a larger memory,
both use n = 3.

No second memory holds n-step transitions: the replay stores one-step
transitions in time order, so transition t+j sits j slots after t, and the
n-step batch is gathered from the same rows (`Replay.rows_at`). The
return uses m <= n steps and stops early:

- after a transition that ends its episode. A termination ends it for good
  (discount 0); a time-limit truncation did not reach a terminal state, so the
  return still bootstraps from the truncated transition's next state, with
  gamma^m (the distinction `replay.py` keeps `truncated` for);
- at the newest stored transition, whose successors do not exist yet: the
  return bootstraps from its next state with gamma^m.

The successor of a stored slot is always newer than it: the slots after the
newest one hold the oldest transitions (or nothing), and are never read.
"""

from __future__ import annotations

import functools

import torch

from dqnlab.engine.replay import Batch, Replay
from dqnlab.errors import DqnlabError


def n_step_returns(replay: Replay, index: torch.Tensor, n: int, gamma: float) -> tuple[Batch, torch.Tensor]:
    """The n-step version of `replay.gather(index)`, and each target's bootstrap discount.

    For member k's slot index[k, b] holding transition t, with m (1 <= m <= n)
    the number of steps the return uses (see the module docstring):

    - batch.obs, batch.action: transition t's, as `gather` gives them;
    - batch.reward: G = sum over j < m of gamma^j r_{t+j}, accumulated in
      float64 in order j = 0, 1, ..., then cast to float32;
    - batch.next_obs, batch.terminated, batch.truncated: transition t+m-1's;
    - discount (N, B) float32: gamma^m (computed in float64), 0 where
      transition t+m-1 terminated.

    The TD target is then `batch.reward + discount * max_a' Q(batch.next_obs, a')`.
    With n = 1 the batch is exactly `gather(index)` and the discount is
    gamma where not terminated, 0 where terminated.
    """
    if n < 1:
        raise DqnlabError(f"n-step returns need n >= 1; got n = {n}")
    capacity, rows_layout = replay.capacity, replay.layout
    offsets, powers = _constants(n, gamma, index.device)  # (n,) j, (n + 1,) float64 gamma^j
    slots = index.unsqueeze(2) + offsets  # (N, B, n) slot of t+j, before wrapping: below capacity + n - 1
    # one compare and subtract wraps them when n <= capacity (as config.validate ensures); an int64 % costs more
    slots = torch.where(slots >= capacity, slots - capacity, slots) if n <= capacity else slots % capacity  # (N, B, n)
    rows = replay.rows_at(slots)  # (N, B, n, F)

    successors = replay.newest() - index  # (N, B) in (-capacity, capacity)
    successors = torch.where(successors < 0, successors + capacity, successors)  # (N, B) stored transitions after t
    ended = rows_layout.ended(rows)  # (N, B, n) > 0 where t+j terminated or was truncated
    stops = (ended > 0).logical_or_(offsets == successors.clamp_(max=n - 1).unsqueeze(2))  # (N, B, n)
    last = stops.byte().argmax(dim=2, keepdim=True)  # (N, B, 1) j = m - 1 of the first stop: argmax takes the first

    terms = rows_layout.reward(rows).double().mul_(powers[:n])  # (N, B, n) gamma^j r_{t+j}; those after the stop are never summed
    reward = terms.cumsum_(dim=2).gather(dim=2, index=last).squeeze(dim=2).float()  # (N, B) G, summed j = 0, 1, ...
    first = rows_layout.unpack(rows[:, :, 0])  # fields (N, B, ...) of transition t
    end = rows_layout.unpack(replay.rows_at(slots.gather(dim=2, index=last).squeeze(dim=2)))  # fields (N, B, ...) of transition t+m-1
    discount = torch.where(end.terminated, 0.0, powers[last.squeeze(dim=2) + 1]).float()  # (N, B) gamma^m, 0 at termination
    batch = Batch(obs=first.obs, action=first.action, reward=reward, next_obs=end.next_obs,
                  terminated=end.terminated, truncated=end.truncated)  # fmt: skip
    return batch, discount


@functools.lru_cache(maxsize=64)
def _constants(n: int, gamma: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The offsets 0..n-1 (n,) and the powers gamma^0..gamma^n (n + 1,) in float64, made once per setting."""
    offsets = torch.arange(n, device=device)  # (n,)
    powers = torch.tensor([gamma**j for j in range(n + 1)], dtype=torch.float64, device=device)  # (n + 1,)
    return offsets, powers
