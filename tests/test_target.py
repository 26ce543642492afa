"""The target network: a copy of the online stack, refreshed by hard copies or Polyak averaging, checked exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqnlab.config import LearnerConfig
from dqnlab.engine.network import StackedQNetwork, build_network
from dqnlab.engine.target import TargetNetwork


def stack(n=3, seed=0):
    return StackedQNetwork([build_network(4, 2, (16, 8), torch.Generator().manual_seed(seed + k)) for k in range(n)])


def nudge(online, step):
    """Move every online parameter, as a learn step would (deterministically, padding left at 0)."""
    with torch.no_grad():
        for weight in online.weights:
            weight.add_(0.01 * (step + 1))


def test_the_target_starts_as_the_online_network():
    online = stack()
    target = TargetNetwork(online, LearnerConfig(td_gradient="semi", target_update="hard"))
    assert torch.equal(target.params, online.params.detach())
    obs = torch.randn(3, 5, 4)
    assert torch.equal(target(obs), online(obs).detach())


def test_a_hard_target_is_copied_every_k_learn_steps_and_frozen_between():
    online = stack()
    target = TargetNetwork(online, LearnerConfig(td_gradient="semi", target_update="hard", target_every=3))
    copied = online.params.detach().clone()
    for step in range(1, 10):
        nudge(online, step)
        target.learned()
        if step % 3 == 0:
            copied = online.params.detach().clone()
        assert torch.equal(target.params, copied), step  # the copy of learn step 3, 6, 9, or the start
        assert step % 3 == 0 or not torch.equal(target.params, online.params.detach())


@pytest.mark.parametrize("tau", [0.005, 0.1, 0.5, 1.0])
def test_a_polyak_target_moves_by_tau_each_learn_step(tau):
    """target <- target + tau (online - target) for tau < 0.5, online - (1 - tau) (online - target) from 0.5 on
    (torch.lerp's two forms), each element rounded once (a fused multiply-add, as torch's vectorized lerp does)
    or twice (its scalar tail); tau 1 is a copy."""
    online = stack()
    target = TargetNetwork(online, LearnerConfig(td_gradient="semi", target_update="polyak", target_tau=tau))
    t = np.float32(tau)
    for step in range(5):
        nudge(online, step)
        before, now = target.params.numpy().copy(), online.params.detach().numpy()
        target.learned()
        difference = (now - before).astype(np.float32)  # (P,)
        start, step_size = (before, t) if tau < 0.5 else (now, -np.float32(1 - t))
        fused = (start.astype(np.float64) + np.float64(step_size) * difference.astype(np.float64)).astype(np.float32)
        rounded_twice = start + step_size * difference
        after = target.params.numpy()
        assert ((after == fused) | (after == rounded_twice)).all()
        if tau == 1.0:
            assert np.array_equal(after, now)
        else:
            assert not np.array_equal(after, now) and not np.array_equal(after, before)


def test_polyak_averaging_is_exact_on_dyadic_values():
    """With tau 0.25 and parameters that are multiples of 1/4, every step is exact arithmetic."""
    online = stack(n=1)
    with torch.no_grad():
        online.params.copy_(torch.arange(online.params.numel(), dtype=torch.float32) % 8)
        target = TargetNetwork(online, LearnerConfig(td_gradient="semi", target_update="polyak", target_tau=0.25))
        online.params.mul_(4)  # online = 4 x target
    expected = target.params.numpy().astype(np.float64)
    for _ in range(3):
        target.learned()
        expected = expected + 0.25 * (online.params.detach().numpy() - expected)
        assert np.array_equal(target.params.numpy(), expected.astype(np.float32))
