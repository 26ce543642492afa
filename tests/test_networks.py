"""Q-networks: one network's initialisation and shape, and N networks stacked in one flat buffer."""

from __future__ import annotations

import torch
from torch import nn

import pytest

from dqnlab.engine.network import ALIGN, StackedQNetwork, build_network, count_parameters
from dqnlab.errors import DqnlabError


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



def assert_members(stacked: StackedQNetwork, nets: list, x: torch.Tensor) -> None:
    """Member k of the stack computes network k's Q-values on x[k] (N, B, obs_dim) and gives its weights back."""
    with torch.no_grad():
        q = stacked(x)  # (N, B, A)
    for k, net in enumerate(nets):
        torch.testing.assert_close(q[k], net(x[k]), rtol=1e-6, atol=1e-6)
        member = stacked.member(k)
        assert all(torch.equal(a, b) for a, b in zip(member.state_dict().values(), net.state_dict().values()))


def test_a_stack_computes_each_members_network_and_gives_it_back():
    nets = networks(3)
    stacked = StackedQNetwork(nets)
    x = torch.randn(3, 5, 4)  # (N, B, obs_dim)
    assert_members(stacked, nets, x)
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


FRAME = (6, 5, 3)  # H, W, C: not square, so rows and columns cannot be mixed up unnoticed


def conv_networks(n, conv=(4,), hidden=(8,), frame=FRAME, n_actions=3, seed=200):
    return [build_network(frame[0] * frame[1] * frame[2], n_actions, hidden, torch.Generator().manual_seed(seed + k), conv, frame)
            for k in range(n)]  # fmt: skip


def test_a_conv_network_is_initialised_as_pytorchs_conv2d_and_linear_layers():
    torch.manual_seed(5)
    reference = [nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 3), nn.Linear(2 * 2 * 1, 8), nn.Linear(8, 3)]
    ours = conv_networks(1, conv=(4, 2), seed=5)[0]
    for ref, layer in zip(reference, ours.layers):
        assert torch.equal(ref.weight, layer.weight) and torch.equal(ref.bias, layer.bias)


def test_a_conv_network_reads_frames_flat_or_shaped():
    network = conv_networks(1)[0]
    frames = (torch.rand(7, *FRAME) > 0.5).float()  # (B, H, W, C)
    assert torch.equal(network(frames), network(frames.reshape(7, -1)))
    conv_out = network.activations(frames)[0]  # (B, H', W', channels)
    assert conv_out.shape == (7, 4, 3, 4)
    # the output of the convolution at row 1, column 2 is its kernel applied to the frame's cells rows 1-3, columns 2-4
    kernel, bias = network.layers[0].weight, network.layers[0].bias  # (4, C, 3, 3), (4,)
    window = frames[:, 1:4, 2:5, :].permute(0, 3, 1, 2)  # (B, C, 3, 3)
    expected = torch.relu(torch.einsum("bchw,ochw->bo", window, kernel) + bias)  # (B, 4)
    torch.testing.assert_close(conv_out[:, 1, 2, :], expected)


@pytest.mark.parametrize("conv", [(4,), (4, 2)])
def test_a_stack_of_conv_networks_computes_each_members_network_by_batched_matmuls(conv):
    """The stack's im2col and batched matmuls against nn.Conv2d: two implementations of one network."""
    nets = conv_networks(3, conv=conv)
    stacked = StackedQNetwork(nets)
    x = (torch.rand(3, 5, FRAME[0] * FRAME[1] * FRAME[2]) > 0.5).float()  # (N, B, obs_dim)
    assert_members(stacked, nets, x)
    stacked(x).sum().backward()  # and autograd differentiates it in the flat parameters
    assert stacked.views(stacked.params.grad)[0][0].abs().sum() > 0


def test_a_convolution_needs_frames_and_room_in_them():
    with pytest.raises(DqnlabError, match=r"network.conv \[16\] needs image observations"):
        build_network(4, 2, (8,), torch.Generator(), conv=(16,))
    with pytest.raises(DqnlabError, match="3 3x3 convolutions leave nothing of a 6 x 5 frame; use at most 2"):
        conv_networks(1, conv=(4, 4, 4))
