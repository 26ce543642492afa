"""The TD update: hand-computed targets, the reference against the tutorial's code, and acting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dqnlab import seeding
from dqnlab.config import LearnerConfig
from dqnlab.engine.learner import Learner, td_loss
from dqnlab.engine.network import StackedQNetwork, build_network
from dqnlab.engine.replay import Batch, Replay
from tests import tutorial_reference as tutorial

# Our update against the tutorial's over 300 updates: one forward over [obs; next_obs]
# and a fused Adam sum in another order than the tutorial's two forwards and for-loop
# Adam, so parameters agree to float rounding compounded over the updates (measured:
# at most 3e-8 apart on weights of size up to 0.5), not bit for bit.
TUTORIAL_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def linear_q_network():
    """A 1-unit ReLU network with Q(s) = [s0 + s1, 2 * (s0 + s1)] for s0 + s1 >= 0."""
    network = build_network(2, 2, (1,), torch.Generator().manual_seed(0))
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor([[1.0, 1.0]]))
        network.layers[0].bias.zero_()
        network.layers[1].weight.copy_(torch.tensor([[1.0], [2.0]]))
        network.layers[1].bias.zero_()
    return network


def batch_of(obs, action, reward, next_obs, terminated, truncated=None) -> Batch:
    n = len(action)
    return Batch(
        torch.tensor(np.array(obs), dtype=torch.float32),
        torch.tensor(action, dtype=torch.int64),
        torch.tensor(reward, dtype=torch.float32),
        torch.tensor(np.array(next_obs), dtype=torch.float32),
        torch.tensor(terminated, dtype=torch.bool),
        torch.tensor(truncated or [False] * n, dtype=torch.bool),
    )


HAND_BATCH = dict(
    obs=[[1, 0], [1, 0], [1, 0]],
    action=[0, 1, 1],
    reward=[1.0, 0.5, 2.0],
    next_obs=[[1, 1], [0, 3], [0, 3]],
    terminated=[False, False, True],
    truncated=[False, True, False],  # truncation must not mask the bootstrap
)


def test_td_targets_by_hand():
    network = linear_q_network()
    batch = batch_of(**HAND_BATCH)
    # s=(1,0): Q=[1,2]; s'=(1,1): Q=[2,4], max 4; s'=(0,3): Q=[3,6], max 6
    # gamma 0.5: targets 1 + 0.5*4 = 3, 0.5 + 0.5*6 = 3.5, 2 (terminal); Q(s,a) = 1, 2, 2
    expected = ((1 - 3) ** 2 + (2 - 3.5) ** 2 + (2 - 2) ** 2) / 3
    assert td_loss(network, batch, gamma=0.5, td_gradient="semi", loss="mse").item() == pytest.approx(expected)
    huber = td_loss(network, batch, gamma=0.5, td_gradient="semi", loss="huber")
    assert huber.item() == pytest.approx(((2 - 0.5) + (1.5 - 0.5) + 0) / 3)


def test_a_stack_gives_each_member_its_own_loss():
    """td_loss over (N, B) batches is each member's loss on its own batch, (N,)."""
    first, second = linear_q_network(), linear_q_network()
    with torch.no_grad():
        second.layers[1].weight.mul_(2)  # Q(s) = [2, 4] (s0 + s1)
    stacked = StackedQNetwork([first, second])
    other = {**HAND_BATCH, "reward": [0.0, 0.0, 0.0]}
    batch = Batch(*(None if pair[0] is None else torch.stack(pair) for pair in zip(batch_of(**HAND_BATCH), batch_of(**other))))  # (2, 3, ...)
    with torch.no_grad():
        losses = td_loss(stacked, batch, 0.5, "semi", "mse")  # (2,)
        expected = [td_loss(first, batch_of(**HAND_BATCH), 0.5, "semi", "mse"), td_loss(second, batch_of(**other), 0.5, "semi", "mse")]
    assert losses.shape == (2,) and torch.allclose(losses, torch.stack(expected))
    # second member by hand: Q(s,a) = 2, 4, 4; max Q(s') = 8, 12, -; targets 4, 6, 0
    assert losses[1].item() == pytest.approx(((2 - 4) ** 2 + (4 - 6) ** 2 + (4 - 0) ** 2) / 3)


def test_semi_gradient_treats_the_target_as_a_constant():
    batch = batch_of([[1, 0]], [0], [1.0], [[1, 1]], [False])
    grads = {}
    for mode in ("full", "semi"):
        network = linear_q_network()
        td_loss(network, batch, 1.0, mode, "mse").backward()
        grads[mode] = network.layers[1].weight.grad.flatten().tolist()
    # hidden h(s)=1, h(s')=2; Q(s,0)=1, target 1 + Q(s',1) = 5; error e = 1 - 5 = -4
    # semi: dL/dw_out0 = 2e*h(s) = -8, dL/dw_out1 = 0
    assert grads["semi"] == pytest.approx([-8.0, 0.0])
    # full: the target's max Q(s',1) = w_out1*h(s') also moves: dL/dw_out1 = -2e*h(s') = 16
    assert grads["full"] == pytest.approx([-8.0, 16.0])


def random_transitions(count, seed=0):
    rng = np.random.default_rng(seed)
    for t in range(count):
        yield (
            rng.normal(size=4).astype(np.float32),
            int(rng.integers(2)),
            1.0,
            rng.normal(size=4).astype(np.float32),
            bool(t % 9 == 8),
        )


def one_member(state, action, reward, state_, done):
    """One transition as the engine's (N=1) tensors."""
    return (torch.as_tensor(state).unsqueeze(0), torch.tensor([action]), torch.tensor([reward]),
            torch.as_tensor(state_).unsqueeze(0), torch.tensor([done]), torch.tensor([False]))  # fmt: skip


def assert_same_network(ours: Learner, reference: torch.nn.Module, **tolerance):
    for a, b in zip(ours.network.member(0).parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, **tolerance)


def test_naive_agent_makes_the_tutorials_learn_on_arrival_update():
    """Capacity 1, batch 1, store-then-learn, over 300 updates == the tutorial's learn(state, ..., done)."""
    hidden, config = (64, 32), LearnerConfig()
    ours = Learner(StackedQNetwork([build_network(4, 2, hidden, torch.Generator().manual_seed(3))]), config, 1)
    reference = build_network(4, 2, hidden, torch.Generator().manual_seed(3))
    reference_optimizer = torch.optim.Adam(reference.parameters(), lr=config.lr)  # the tutorial's optimizer
    memory, draws = Replay(1, 1, 4, "cpu"), seeding.MemberDraws([0], "replay", 1)
    alive = torch.ones(1, dtype=torch.bool)
    for transition in random_transitions(300):
        memory.add(*one_member(*transition))
        loss = ours.learn(memory.gather(memory.indices(draws.next())), alive)
        tutorial.naive_learn(reference, reference_optimizer, *transition)
    assert loss.shape == (1,) and memory.added == 300
    assert_same_network(ours, reference, **TUTORIAL_TOLERANCE)


def test_replay_agent_makes_the_tutorials_batched_update():
    """Given the same draws, our ring + kernel over 300 updates == the tutorial's list + np.stack + learn."""
    hidden, config = (64, 32), LearnerConfig()
    ours = Learner(StackedQNetwork([build_network(4, 2, hidden, torch.Generator().manual_seed(4))]), config, 16)
    reference = build_network(4, 2, hidden, torch.Generator().manual_seed(4))
    reference_optimizer = torch.optim.Adam(reference.parameters(), lr=config.lr)
    memory, tutorial_memory = Replay(1, 400, 4, "cpu"), []
    draws, drawn = seeding.MemberDraws([9], "replay", 16), []
    alive = torch.ones(1, dtype=torch.bool)

    def choices(population, k):  # random.choices' contract, drawing what our memory drew
        return [population[i] for i in drawn[-1]]

    for transition in random_transitions(315):
        memory.add(*one_member(*transition))
        tutorial_memory.append(list(transition))
        if len(memory) >= 16:
            index = memory.indices(draws.next())  # (1, 16)
            drawn.append(index[0].tolist())
            ours.learn(memory.gather(index), alive)
        tutorial.replay_learn(reference, reference_optimizer, tutorial_memory, 16, choices)
    assert len(drawn) == 300
    assert_same_network(ours, reference, **TUTORIAL_TOLERANCE)


def test_the_tolerance_would_catch_a_real_difference():
    """The tolerance above is tight enough to tell standard DQN's update from the tutorial's."""
    hidden = (64, 32)
    ours = Learner(StackedQNetwork([build_network(4, 2, hidden, torch.Generator().manual_seed(3))]),
                   dataclasses.replace(LearnerConfig(), td_gradient="semi"), 1)  # fmt: skip
    reference = build_network(4, 2, hidden, torch.Generator().manual_seed(3))
    reference_optimizer = torch.optim.Adam(reference.parameters(), lr=1e-4)
    memory, alive = Replay(1, 1, 4, "cpu"), torch.ones(1, dtype=torch.bool)
    for transition in random_transitions(300):
        memory.add(*one_member(*transition))
        ours.learn(memory.gather(torch.zeros((1, 1), dtype=torch.int64)), alive)
        tutorial.naive_learn(reference, reference_optimizer, *transition)
    with pytest.raises(AssertionError):
        assert_same_network(ours, reference, **TUTORIAL_TOLERANCE)


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 1.0])
def test_epsilon_greedy_takes_random_actions_at_the_configured_rate(epsilon):
    stacked = StackedQNetwork([linear_q_network(), linear_q_network()])  # greedy action at s=(1,0) is 1 (Q = [1, 2])
    learner = Learner(stacked, LearnerConfig(epsilon=epsilon), 8)
    draws = seeding.MemberDraws([3, 4], "explore", 2)
    obs = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    actions = torch.stack([learner.act(obs, draws.next()) for _ in range(4000)])  # (T, 2)
    # a random action is 0 half the time: P(action 0) = epsilon / 2
    share = (actions == 0).double().mean(dim=0)  # (2,)
    assert torch.allclose(share, torch.full((2,), epsilon / 2, dtype=torch.float64), atol=0.015)


def test_epsilon_anneals_linearly_then_stays():
    learner = Learner(StackedQNetwork([linear_q_network()]), LearnerConfig(epsilon=1.0, epsilon_final=0.1, epsilon_decay_samples=10), 8)
    assert [round(learner.epsilon_at(sample), 12) for sample in (1, 2, 6, 11, 12, 1000)] == [1.0, 0.91, 0.55, 0.1, 0.1, 0.1]
    constant = Learner(StackedQNetwork([linear_q_network()]), LearnerConfig(epsilon=0.3), 8)
    assert {constant.epsilon_at(sample) for sample in (1, 50, 10**6)} == {0.3}


def test_annealed_epsilon_explores_at_the_scheduled_rate():
    """From all random (epsilon 1) to none (epsilon 0) over 2,000 samples: P(action 0) = epsilon / 2 at each sample."""
    learner = Learner(StackedQNetwork([linear_q_network()] * 4), LearnerConfig(epsilon=1.0, epsilon_final=0.0, epsilon_decay_samples=2000), 8)
    draws = seeding.MemberDraws([1, 2, 3, 4], "explore", 2)
    obs = torch.tensor([[1.0, 0.0]] * 4)  # greedy action 1
    actions = torch.stack([learner.act(obs, draws.next(), sample) for sample in range(1, 4001)])  # (T, 4)
    first, second, late = ((actions[a:b] == 0).double().mean().item() for a, b in ((0, 1000), (1000, 2000), (2000, 4000)))
    assert first == pytest.approx(0.375, abs=0.02) and second == pytest.approx(0.125, abs=0.02) and late == 0.0
