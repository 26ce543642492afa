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
n-step batch is gathered from the same rows with one `index_select`. The
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

import torch

from dqnlab.engine.replay import Batch, Replay, unpack
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
    members, capacity, width = replay.members, replay.capacity, replay.rows.shape[2]
    memory = replay.rows.view(-1, width)  # (C*N, F): row slot * N + member
    offsets = torch.arange(n, device=index.device)  # (n,) j: transition t+j is j slots after t
    slots = (index.unsqueeze(2) + offsets) % capacity  # (N, B, n)
    flat = slots * members + replay.member_rows.unsqueeze(2)  # (N, B, n) rows of the memory
    rows = memory.index_select(0, flat.view(-1)).view(*flat.shape, width)  # (N, B, n, F)
    steps = unpack(rows, replay.obs_dim)  # fields (N, B, n, ...)

    newest = (replay.cursor - 1) % capacity  # the slot of the newest stored transition
    successors = (newest - index) % capacity  # (N, B) stored transitions after t
    stops = steps.terminated | steps.truncated | (offsets == successors.clamp(max=n - 1).unsqueeze(2))  # (N, B, n)
    last = stops.byte().argmax(dim=2, keepdim=True)  # (N, B, 1) j = m - 1 of the first stop: argmax takes the first

    powers = torch.tensor([gamma**j for j in range(n + 1)], dtype=torch.float64, device=index.device)  # (n + 1,)
    terms = steps.reward.double() * powers[:n]  # (N, B, n) gamma^j r_{t+j}; those after the stop are never summed
    reward = terms.cumsum(dim=2).gather(dim=2, index=last).squeeze(dim=2).float()  # (N, B) G, summed j = 0, 1, ...
    first = unpack(rows[:, :, 0], replay.obs_dim)  # fields (N, B, ...) of transition t
    end_rows = memory.index_select(0, flat.gather(dim=2, index=last).view(-1)).view(*index.shape, width)  # (N, B, F)
    end = unpack(end_rows, replay.obs_dim)  # fields (N, B, ...) of transition t+m-1
    bootstrap = powers[last.squeeze(dim=2) + 1]  # (N, B) gamma^m
    discount = torch.where(end.terminated, 0.0, bootstrap).float()  # (N, B)
    batch = Batch(obs=first.obs, action=first.action, reward=reward, next_obs=end.next_obs,
                  terminated=end.terminated, truncated=end.truncated)  # fmt: skip
    return batch, discount
