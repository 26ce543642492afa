"""The TD update, checked against hand-computed values and against the tutorial's code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqnlab import seeding
from dqnlab.config import LearnerConfig
from dqnlab.learner import Learner, make_optimizer, td_loss
from dqnlab.networks import build_network
from dqnlab.replay import Batch, ReplayBuffer
from tests import tutorial_reference as tutorial


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


def test_td_targets_by_hand():
    network = linear_q_network()
    # s=(1,0): Q=[1,2]; s'=(1,1): Q=[2,4], max 4; s'=(0,3): Q=[3,6], max 6
    batch = batch_of(
        obs=[[1, 0], [1, 0], [1, 0]],
        action=[0, 1, 1],
        reward=[1.0, 0.5, 2.0],
        next_obs=[[1, 1], [0, 3], [0, 3]],
        terminated=[False, False, True],
        truncated=[False, True, False],  # truncation must not mask the bootstrap
    )
    # gamma 0.5: targets 1 + 0.5*4 = 3, 0.5 + 0.5*6 = 3.5, 2 (terminal); Q(s,a) = 1, 2, 2
    expected = ((1 - 3) ** 2 + (2 - 3.5) ** 2 + (2 - 2) ** 2) / 3
    loss = td_loss(network, batch, gamma=0.5, td_gradient="semi", loss="mse")
    assert loss.item() == pytest.approx(expected)
    huber = td_loss(network, batch, gamma=0.5, td_gradient="semi", loss="huber")
    assert huber.item() == pytest.approx(((2 - 0.5) + (1.5 - 0.5) + 0) / 3)


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


def test_naive_agent_is_exactly_the_tutorials_learn_on_arrival():
    """Capacity 1, batch 1, store-then-learn == the tutorial's learn(state, ..., done), bit for bit."""
    config = LearnerConfig()
    ours = Learner(build_network(4, 2, (64, 32), torch.Generator().manual_seed(3)), config, np.random.default_rng(0))
    reference = build_network(4, 2, (64, 32), torch.Generator().manual_seed(3))
    reference_optimizer = make_optimizer(reference, config.lr)
    buffer, rng = ReplayBuffer(capacity=1, obs_dim=4), np.random.default_rng(0)
    for state, action, reward, state_, done in random_transitions(300):
        buffer.add(state, action, reward, state_, done, False)
        ours.learn(buffer.sample(1, rng))
        tutorial.naive_learn(reference, reference_optimizer, state, action, reward, state_, done)
    for a, b in zip(ours.network.parameters(), reference.parameters()):
        assert torch.equal(a, b)
    assert ours.learn_steps == 300


def test_replay_agent_is_exactly_the_tutorials_batched_learn():
    """Given the same draws, our ring buffer + td_loss == the tutorial's list + np.stack code."""
    config = LearnerConfig()
    ours = Learner(build_network(4, 2, (64, 32), torch.Generator().manual_seed(4)), config, np.random.default_rng(0))
    reference = build_network(4, 2, (64, 32), torch.Generator().manual_seed(4))
    reference_optimizer = make_optimizer(reference, config.lr)
    buffer, memory = ReplayBuffer(capacity=500, obs_dim=4), []
    ours_rng, reference_rng = np.random.default_rng(9), np.random.default_rng(9)

    def choices(population, k):  # random.choices' contract, drawn like sample_indices
        return [population[i] for i in reference_rng.integers(0, len(population), size=k)]

    for state, action, reward, state_, done in random_transitions(200):
        buffer.add(state, action, reward, state_, done, False)
        memory.append([state, action, reward, state_, done])
        if len(buffer) >= 16:
            ours.learn(buffer.sample(16, ours_rng))
        tutorial.replay_learn(reference, reference_optimizer, memory, 16, choices)
    for a, b in zip(ours.network.parameters(), reference.parameters()):
        assert torch.equal(a, b)
    assert ours.learn_steps == 200 - 16 + 1


def test_fused_adam_is_adam():
    """Our optimizer is torch's Adam: within float rounding of the for-loop implementation."""
    nets = [build_network(4, 2, (32,), torch.Generator().manual_seed(0)) for _ in range(2)]
    optimizers = [make_optimizer(nets[0], 1e-3), torch.optim.Adam(nets[1].parameters(), lr=1e-3, foreach=False)]
    for transition in random_transitions(100, seed=2):
        batch = batch_of([transition[0]], [transition[1]], [transition[2]], [transition[3]], [transition[4]])
        for network, optimizer in zip(nets, optimizers):
            optimizer.zero_grad()
            td_loss(network, batch, 1.0, "full", "mse").backward()
            optimizer.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("epsilon, expected_random_share", [(0.0, 0.0), (0.1, 0.1), (1.0, 1.0)])
def test_epsilon_greedy(epsilon, expected_random_share):
    network = linear_q_network()  # greedy action at s=(1,0) is 1 (Q = [1, 2])
    learner = Learner(network, LearnerConfig(epsilon=epsilon), seeding.numpy_generator(0, "explore"))
    actions = np.array([learner.act(np.array([1.0, 0.0])) for _ in range(4000)])
    # a random action is 0 half the time: P(action 0) = epsilon / 2
    assert np.mean(actions == 0) == pytest.approx(expected_random_share / 2, abs=0.015)
