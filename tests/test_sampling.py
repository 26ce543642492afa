"""The sampler: which transitions a learn step reads, their returns and weights, and prioritized replay's bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqnlab.engine.nstep import n_step_returns
from dqnlab.engine.replay import Replay
from dqnlab.engine.sampling import Sampler
from dqnlab.seeding import HIGH
from tests.conftest import tiny_config


def sampler_with(count, *overrides, members=2, capacity=16):
    """A Sampler over a ring of `capacity` holding transitions 0..count-1 (reward t, every 5th terminated)."""
    config = tiny_config("replay", f"replay.capacity={capacity}", "replay.batch_size=4", "replay.warmup=4", *overrides)
    sampler = Sampler(Replay(members, capacity, 2, "cpu"), config, "cpu")
    for t in range(count):
        obs = torch.full((members, 2), float(t))
        sampler.add(obs, torch.full((members,), t % 2), torch.full((members,), float(t)), obs + 1,
                    torch.full((members,), t % 5 == 4), torch.zeros(members, dtype=torch.bool))  # fmt: skip
    return sampler


def raw(seed, members=2, batch=4):
    return torch.randint(0, HIGH, (members, batch), generator=torch.Generator().manual_seed(seed))


def test_uniform_one_step_batches_have_no_discount_and_no_weight():
    sampler = sampler_with(10)
    batch = sampler.draw(raw(0), sample=10)
    assert batch.discount is None and batch.weight is None
    assert torch.equal(batch.obs, sampler.memory.gather(sampler.index).obs)


def test_n_step_batches_carry_their_discounts():
    sampler = sampler_with(20, "learner.n_step=3", 'learner.td_gradient="semi"', "learner.gamma=0.5")
    batch = sampler.draw(raw(1), sample=20)
    expected, discount = n_step_returns(sampler.memory, sampler.index, 3, 0.5)
    assert torch.equal(batch.reward, expected.reward) and torch.equal(batch.discount, discount)
    assert set(batch.discount.flatten().tolist()) <= {0.0, 0.5, 0.25, 0.125}


def test_combined_prioritized_batches_end_with_the_newest():
    sampler = sampler_with(20, "replay.prioritized=true", "replay.combined=true")
    for seed in range(20):
        assert (sampler.draw(raw(seed), sample=20).obs[:, -1, 0] == 19).all()


@pytest.mark.parametrize("sample, beta", [(0, 0.4), (200, 0.7), (400, 1.0)])
def test_importance_weights_anneal_beta_to_one_over_the_budget(sample, beta):
    """The tiny budget is 400 samples: beta = 0.4 + 0.6 sample / 400. Weights against the formula."""
    sampler = sampler_with(12, "replay.prioritized=true")
    priorities = torch.as_tensor(np.arange(1, 13, dtype=np.float64)).expand(2, -1)  # (N, 12) p before alpha
    sampler.priorities.update(torch.arange(12).expand(2, -1), priorities - 1e-6)  # |error| = p - epsilon
    batch = sampler.draw(raw(2), sample=sample)
    p = priorities.numpy() ** 0.6  # (N, 12)
    probability = np.take_along_axis(p / p.sum(axis=1, keepdims=True), sampler.index.numpy(), axis=1)  # (N, B)
    weight = (12 * probability) ** -beta
    np.testing.assert_allclose(batch.weight.numpy(), weight / weight.max(axis=1, keepdims=True), rtol=1e-6)


def test_the_learned_errors_become_the_batchs_priorities():
    sampler = sampler_with(12, "replay.prioritized=true", "replay.priority_alpha=0.5")
    sampler.draw(raw(3), sample=12)
    errors = torch.tensor([[-4.0, 1.0, 0.0, 9.0], [2.0, -2.0, 3.0, 0.5]])  # (N, B)
    sampler.learned(errors)
    leaves, checked = sampler.priorities.tree.leaves(), 0  # (N, C)
    for k in range(2):
        for slot, error in zip(sampler.index[k].tolist(), errors[k].tolist()):
            if sampler.index[k].tolist().count(slot) == 1:  # (a slot drawn twice keeps its larger priority)
                assert leaves[k, slot].item() == pytest.approx((abs(error) + 1e-6) ** 0.5, rel=1e-12)
                checked += 1
    assert checked >= 4
    assert sampler.priorities.max_priority.tolist() == pytest.approx([9.000001, 3.000001])


def test_without_prioritized_replay_learning_changes_nothing():
    sampler = sampler_with(12)
    sampler.draw(raw(4), sample=12)
    sampler.learned(None)
    assert sampler.priorities is None
