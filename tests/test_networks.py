"""Q-networks: one network's initialisation and shape, and N networks stacked in one flat buffer."""

from __future__ import annotations

import torch
from torch import nn

import pytest

from dqnlab.engine.network import ALIGN, StackedQNetwork, build_network, count_parameters


def test_initialisation_is_pytorchs_default_drawn_from_the_generator():
    """A network built after torch.manual_seed(s) with nn.Linear equals ours from Generator(s)."""
    torch.manual_seed(11)
    reference = [nn.Linear(4, 32), nn.Linear(32, 16), nn.Linear(16, 2)]
    ours = build_network(4, 2, (32, 16), torch.Generator().manual_seed(11))
    for ref, layer in zip(reference, ours.layers):
        assert torch.equal(ref.weight, layer.weight)
        assert torch.equal(ref.bias, layer.bias)


def test_building_does_not_touch_the_global_rng():
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    build_network(4, 2, (8,), torch.Generator().manual_seed(1))
    assert torch.equal(before, torch.random.get_rng_state())


def test_tutorial_network_shape():
    network = build_network(4, 2, (1024, 512), torch.Generator().manual_seed(0))
    assert [tuple(layer.weight.shape) for layer in network.layers] == [(1024, 4), (512, 1024), (2, 512)]
    assert count_parameters(network) == 4 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 2 + 2
    assert network(torch.zeros(3, 4)).shape == (3, 2)


def test_activations_are_the_hidden_relu_outputs():
    network = build_network(2, 2, (3,), torch.Generator().manual_seed(0))
    with torch.no_grad():
        network.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        network.layers[0].bias.zero_()
    (hidden,) = network.activations(torch.tensor([[2.0, -3.0]]))
    assert hidden.tolist() == [[2.0, 0.0, 0.0]]


def networks(n, hidden=(16, 8), obs_dim=4, n_actions=2):
    return [build_network(obs_dim, n_actions, hidden, torch.Generator().manual_seed(100 + k)) for k in range(n)]


def test_a_stack_computes_each_members_network_and_gives_it_back():
    nets = networks(3)
    stacked = StackedQNetwork(nets)
    x = torch.randn(3, 5, 4)  # (N, B, obs_dim)
    with torch.no_grad():
        q = stacked(x)  # (N, B, A)
    for k, net in enumerate(nets):
        torch.testing.assert_close(q[k], net(x[k]), rtol=1e-6, atol=1e-6)
        member = stacked.member(k)
        assert all(torch.equal(a, b) for a, b in zip(member.state_dict().values(), net.state_dict().values()))
    with pytest.raises(ValueError, match="same shape"):
        StackedQNetwork([*nets, *networks(1, hidden=(4,))])


@pytest.mark.parametrize("n, hidden, obs_dim, n_actions", [(1, (16, 8), 4, 2), (3, (5,), 3, 3), (7, (64, 64), 6, 3)])
def test_every_members_block_is_aligned_whatever_n_is(n, hidden, obs_dim, n_actions):
    """Member k's parameters start on a 64-byte boundary and the buffer is whole vectors long, so that
    elementwise kernels (Adam) treat member k's elements alike in any population."""
    stacked = StackedQNetwork(networks(n, hidden, obs_dim, n_actions))
    assert stacked.params.numel() % ALIGN == 0
    base = stacked.params.data_ptr()
    for tensor in (*stacked.weights, *stacked.biases):
        assert all((tensor[k].data_ptr() - base) % (ALIGN * 4) == 0 for k in range(n))
    views = [t for pair in zip(stacked.weights, stacked.biases) for t in pair]
    assert sum(t.numel() for t in views) == n * count_parameters(networks(1, hidden, obs_dim, n_actions)[0])
    used = torch.zeros_like(stacked.params, dtype=torch.bool)
    for t in views:
        used.view(-1).as_strided(t.shape, t.stride(), t.storage_offset()).fill_(True)
    assert used.sum() == sum(t.numel() for t in views)  # no two views overlap
    assert stacked.params.detach()[~used].abs().sum() == 0  # and the padding holds zeros


def test_the_stack_is_differentiable_in_its_flat_parameters():
    stacked = StackedQNetwork(networks(2))
    stacked(torch.randn(2, 3, 4)).sum().backward()
    grad_weights, _ = stacked.views(stacked.params.grad)
    assert grad_weights[0].abs().sum() > 0 and grad_weights[0].shape == (2, 16, 4)
